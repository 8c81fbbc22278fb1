"""Fixtures: a whole tintype deployment on loopback for the integration tests.

The `stack` fixture runs real Redis (broker and results), a real PostgreSQL database, a
real S3-API server, gunicorn serving the Flask app, and one CPU and one GPU Celery
worker, each a separate process configured only through environment variables.
"""

from __future__ import annotations

import signal
from typing import Iterator

import pytest

from tests import services
from tests.stack import Stack, running_stack
from tintype.settings import Settings, load_settings
from tintype.storage.db import dispose_engines, upgrade
from tintype.storage.objects import LocalStore

pytest_plugins = ["tests.reliability_report"]


def pytest_configure(config: pytest.Config) -> None:
    """Let the processes the tests start be interrupted, as from a terminal.

    A shell script started in the background (`bash .ci/run &`, nohup) runs with SIGINT
    ignored, every child inherits that, and the Ctrl-C tests would then see a CLI that
    cannot be interrupted finish its work and exit 0.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture()
def settings(tmp_path, monkeypatch) -> Settings:
    """The embedded defaults (SQLite, local objects) in a fresh data folder, migrated."""
    monkeypatch.setenv("TINTYPE_DATA_DIR", str(tmp_path / "data"))
    loaded = load_settings()
    upgrade(loaded.database_url)
    return loaded


@pytest.fixture()
def store(settings: Settings) -> LocalStore:
    return LocalStore(settings.data_dir / "objects")


@pytest.fixture(scope="module")
def db_url() -> Iterator[str]:
    """A private PostgreSQL database, migrated, dropped after the module."""
    admin = services.postgres_admin()
    name, url = services.create_database(admin)
    upgrade(url)
    yield url
    dispose_engines()
    services.drop_database(admin, name)
