"""Per-key request rate limits and per-owner quotas, answered with 429 and Retry-After.

The request rate is a fixed one-minute window per key, counted in Redis so every web
process shares it (in memory in the embedded mode). If the counter store is down the
limiter lets requests through and logs it: losing rate limiting for a while is better
than refusing every archivist because of a cache. Quotas (jobs in flight, bytes
uploaded per 24 h) are counted from PostgreSQL, inside the transaction that records
the job, so concurrent submissions cannot overshoot them.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tintype.storage.models import Job, as_utc, utcnow
from tintype.jobs.intake import IntakeError
from tintype.jobs.state import ACTIVE
from tintype.settings import Settings
from tintype.web.auth import Principal

log = logging.getLogger(__name__)
WINDOW = 60


class QuotaExceeded(IntakeError):
    def __init__(self, message: str, code: str, retry_after: int) -> None:
        super().__init__(message, code, 429)
        self.retry_after = max(1, retry_after)


class RateLimiter:
    """`hit(name, limit)` counts one request; returns seconds to wait when over the limit."""

    def __init__(self, url: str) -> None:
        self.redis = None
        if url.startswith(("redis://", "rediss://")):
            import redis

            self.redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.counts: dict[tuple[str, int], int] = {}
        self.lock = threading.Lock()

    def hit(self, name: str, limit: int) -> int | None:
        now = time.time()
        window = int(now // WINDOW)
        count = self._count(name, window)
        if count is None or count <= limit:
            return None
        return int(WINDOW - now % WINDOW) + 1

    def _count(self, name: str, window: int) -> int | None:
        if self.redis is None:
            with self.lock:
                self.counts = {k: v for k, v in self.counts.items() if k[1] >= window}
                self.counts[(name, window)] = self.counts.get((name, window), 0) + 1
                return self.counts[(name, window)]
        key = f"tintype:rate:{name}:{window}"
        try:
            with self.redis.pipeline() as pipe:
                count, _ = pipe.incr(key).expire(key, WINDOW * 2).execute()
            return int(count)
        except Exception:  # noqa: BLE001 - fail open, see the module docstring
            log.warning("rate-limit store unavailable; letting the request through", exc_info=True)
            return None


def admit_job(session: Session, who: Principal, settings: Settings, incoming_bytes: int) -> None:
    """Refuse a new job over the owner's quotas; runs inside the transaction that inserts it."""
    if session.bind.dialect.name == "postgresql":  # one admission per owner at a time
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:owner))"), {"owner": who.owner})
    in_flight_limit = who.limits.jobs_in_flight or settings.quota_jobs_in_flight
    in_flight = session.scalar(select(func.count()).select_from(Job)
                               .where(Job.owner == who.owner, Job.status.in_(ACTIVE)))
    if in_flight >= in_flight_limit:
        raise QuotaExceeded(f"{who.owner} already has {in_flight} jobs queued or running (the limit is "
                            f"{in_flight_limit}); submit more when some finish", "quota_jobs_in_flight", 30)
    _check_bytes(session, who, settings, incoming_bytes)


def _check_bytes(session: Session, who: Principal, settings: Settings, incoming: int) -> None:
    limit = who.limits.bytes_per_day or settings.quota_bytes_per_day
    since = utcnow() - timedelta(days=1)
    used, oldest = session.execute(select(func.coalesce(func.sum(Job.input_bytes), 0), func.min(Job.created_at))
                                   .where(Job.owner == who.owner, Job.created_at > since)).one()
    if used + incoming <= limit:
        return
    wait = 3600 if oldest is None else int((as_utc(oldest) - since).total_seconds()) + 1
    raise QuotaExceeded(f"{who.owner} has uploaded {used} bytes in the last 24 h; this {incoming}-byte file "
                        f"would pass the daily limit of {limit} bytes", "quota_bytes_per_day", wait)
