"""Per-owner quotas on new jobs: jobs in flight and bytes uploaded in 24 hours.

Counted from the database inside the transaction that records the job, so concurrent
submissions cannot overshoot them; a refusal carries how long to wait (Retry-After).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tintype.jobs.errors import IntakeError
from tintype.jobs.state import ACTIVE
from tintype.settings import Settings
from tintype.storage.apikeys import Limits
from tintype.storage.db import session_scope
from tintype.storage.models import Job, Upload, as_utc, utcnow

STAGED = ("open", "completing", "completed")  # tintype.jobs.uploads' statuses before a job takes one


class QuotaExceeded(IntakeError):
    def __init__(self, message: str, code: str, retry_after: int) -> None:
        super().__init__(message, code, 429)
        self.retry_after = max(1, retry_after)


def check_quota(url: str, owner: str, limits: Limits, settings: Settings, incoming_bytes: int) -> None:
    """Refuse early, before an upload is read; `admit` checks again at insert."""
    with session_scope(url) as s:
        admit(s, owner, limits, settings, incoming_bytes)


def admit(session: Session, owner: str, limits: Limits, settings: Settings, incoming_bytes: int) -> None:
    """Refuse a new job over the owner's quotas; runs inside the transaction that inserts it."""
    if session.bind.dialect.name == "postgresql":  # one admission per owner at a time
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:owner))"), {"owner": owner})
    in_flight_limit = limits.jobs_in_flight or settings.quota_jobs_in_flight
    in_flight = session.scalar(select(func.count()).select_from(Job)
                               .where(Job.owner == owner, Job.status.in_(ACTIVE)))
    if in_flight >= in_flight_limit:
        raise QuotaExceeded(f"{owner} already has {in_flight} jobs queued or running (the limit is "
                            f"{in_flight_limit}); submit more when some finish", "quota_jobs_in_flight", 30)
    _check_bytes(session, owner, limits, settings, incoming_bytes)


def check_bytes(url: str, owner: str, limits: Limits, settings: Settings, incoming_bytes: int) -> None:
    """Only the daily bytes: a staged upload is bytes coming in, not a job (an owner whose
    jobs are running may stage the next film)."""
    with session_scope(url) as s:
        _check_bytes(s, owner, limits, settings, incoming_bytes)


def _check_bytes(session: Session, owner: str, limits: Limits, settings: Settings, incoming: int) -> None:
    """Jobs' inputs and staged uploads no job was made of yet (a job made of one counts
    its bytes once, as the job's), over the last 24 h."""
    limit = limits.bytes_per_day or settings.quota_bytes_per_day
    since = utcnow() - timedelta(days=1)
    used, oldest = session.execute(select(func.coalesce(func.sum(Job.input_bytes), 0), func.min(Job.created_at))
                                   .where(Job.owner == owner, Job.created_at > since)).one()
    staged, first = session.execute(select(func.coalesce(func.sum(Upload.size), 0), func.min(Upload.created_at))
                                    .where(Upload.owner == owner, Upload.created_at > since,
                                           Upload.status.in_(STAGED))).one()
    used += staged
    oldest = min((as_utc(t) for t in (oldest, first) if t is not None), default=None)
    if used + incoming <= limit:
        return
    wait = 3600 if oldest is None else int((as_utc(oldest) - since).total_seconds()) + 1
    raise QuotaExceeded(f"{owner} has uploaded {used} bytes in the last 24 h; this {incoming}-byte file "
                        f"would pass the daily limit of {limit} bytes", "quota_bytes_per_day", wait)
