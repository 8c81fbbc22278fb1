"""Read-only questions about jobs: one job, an owner's list, a retried submission.

Every query the front door asks lives here, so web never builds SQL and owner filters
are applied in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import func, select

from tintype.storage.db import session_scope
from tintype.storage.models import Job


@dataclass(frozen=True)
class JobFilter:
    """Which jobs a list shows; `owner` None means every owner (operators only)."""

    owner: str | None
    statuses: Sequence[str] = ()
    kind: str | None = None


@dataclass(frozen=True)
class JobPage:
    items: list[Job]
    total: int


def list_jobs(url: str, where: JobFilter, page: int, per_page: int) -> JobPage:
    """Newest first; `page` counts from 1."""
    query = select(Job)
    if where.owner is not None:
        query = query.where(Job.owner == where.owner)
    if where.statuses:
        query = query.where(Job.status.in_(list(where.statuses)))
    if where.kind:
        query = query.where(Job.kind == where.kind)
    with session_scope(url) as s:
        total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = s.scalars(query.order_by(Job.created_at.desc(), Job.id)
                         .offset((page - 1) * per_page).limit(per_page)).all()
        return JobPage(list(rows), total)


def find_submission(url: str, owner: str, idempotency_key: str) -> Job | None:
    """The job an earlier try of the same submission (same Idempotency-Key) created."""
    with session_scope(url) as s:
        return s.scalar(select(Job).where(Job.owner == owner, Job.idempotency_key == idempotency_key))


def jobs_by_id(url: str, job_ids: Sequence[str]) -> list[Job]:
    """The jobs that still exist among `job_ids`, in one query (a collection's jobs in flight)."""
    if not job_ids:
        return []
    with session_scope(url) as s:
        return list(s.scalars(select(Job).where(Job.id.in_(list(job_ids)))))


def database_answers(url: str) -> None:
    """Raises the database's OperationalError when it is down (the health check)."""
    with session_scope(url) as s:
        s.execute(select(1))
