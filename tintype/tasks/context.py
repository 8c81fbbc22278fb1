"""Per-process handles the tasks share: settings, the object store, the database URL."""

from __future__ import annotations

from functools import lru_cache

from tintype.storage.objects import ObjectStore, store_from_settings
from tintype.settings import get_settings


@lru_cache(maxsize=1)
def store() -> ObjectStore:
    return store_from_settings(get_settings())


def db_url() -> str:
    return get_settings().database_url
