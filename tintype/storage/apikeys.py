"""API keys: made by an operator with `tintype keys create`, shown once, stored hashed.

A token is `tt_<id>_<secret>`. The id is public (it names the key in lists and logs);
the database keeps only the SHA-256 of the whole token, so a leaked database yields no
usable key. Secrets are 256 random bits, so a fast hash is enough (no password
stretching needed), and comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update

from tintype.storage.db import session_scope
from tintype.storage.models import OPERATOR, USER, ApiKey, as_utc, utcnow

TOKEN = re.compile(r"^tt_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
OWNER = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int | None = None
    jobs_in_flight: int | None = None
    bytes_per_day: int | None = None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_key(url: str, owner: str, operator: bool = False, label: str = "",
               limits: Limits = Limits()) -> tuple[ApiKey, str]:
    """A new key for `owner`; returns the row and the token, which exists nowhere else."""
    if not OWNER.match(owner):
        raise ValueError(f"owner {owner!r} must be 1-64 of a-z 0-9 . _ - (starting with a letter or digit)")
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    token = f"tt_{key_id}_{secret}"
    key = ApiKey(id=key_id, owner=owner, role=OPERATOR if operator else USER, token_sha256=_digest(token),
                 label=label[:128], requests_per_minute=limits.requests_per_minute,
                 jobs_in_flight=limits.jobs_in_flight, bytes_per_day=limits.bytes_per_day, created_at=utcnow())
    with session_scope(url) as s:
        s.add(key)
    return key, token


def verify(url: str, token: str) -> ApiKey | None:
    """The live key a token belongs to, or None (malformed, unknown, wrong secret, revoked)."""
    match = TOKEN.match(token or "")
    if match is None:
        return None
    with session_scope(url) as s:
        key = s.get(ApiKey, match.group(1))
        if key is None or not hmac.compare_digest(key.token_sha256, _digest(token)) or key.revoked_at:
            return None
        now = utcnow()
        if key.last_used_at is None or (now - as_utc(key.last_used_at)).total_seconds() > 60:
            key.last_used_at = now  # at most one write a minute per key, not one per request
        return key


def find(url: str, key_id: str) -> ApiKey | None:
    """A live key by id (a browser session remembers the id, not the token)."""
    with session_scope(url) as s:
        key = s.get(ApiKey, key_id)
        return key if key is not None and key.revoked_at is None else None


def revoke(url: str, key_id: str) -> bool:
    with session_scope(url) as s:
        result = s.execute(update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
                           .values(revoked_at=utcnow()))
        return result.rowcount == 1


def list_keys(url: str) -> list[ApiKey]:
    with session_scope(url) as s:
        return list(s.scalars(select(ApiKey).order_by(ApiKey.owner, ApiKey.created_at)))


__all__ = ["Limits", "create_key", "verify", "find", "revoke", "list_keys", "OPERATOR", "USER"]
