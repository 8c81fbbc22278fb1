"""Job state transitions, each one a single compare-and-set statement.

Web, CPU and GPU processes race on the same rows (a cancel arriving while a chunk
finishes, a redelivered chunk running twice); every transition names the states it
may leave, so the database decides who wins and nothing is counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import func, select, update

from storage.db import session_scope
from storage.models import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, Chunk, Job, utcnow

ACTIVE = (QUEUED, RUNNING)


@dataclass(frozen=True)
class ChunkPlan:
    index: int
    start: int
    count: int
    decode_start: int
    decode_count: int
    seek_time: float | None


def get_job(url: str, job_id: str) -> Job | None:
    with session_scope(url) as s:
        return s.get(Job, job_id)


def is_active(url: str, job_id: str) -> bool:
    with session_scope(url) as s:
        return s.scalar(select(Job.status).where(Job.id == job_id)) in ACTIVE


def mark_running(url: str, job_id: str, stage: str) -> bool:
    """queued/running → running at `stage`; False if the job has ended (e.g. cancelled)."""
    now = utcnow()
    with session_scope(url) as s:
        result = s.execute(
            update(Job).where(Job.id == job_id, Job.status.in_(ACTIVE))
            .values(status=RUNNING, stage=stage, updated_at=now,
                    started_at=func.coalesce(Job.started_at, now))
        )
        return result.rowcount == 1


def update_job(url: str, job_id: str, **values: Any) -> bool:
    """Set fields of a job that is still active (facts, stage, preview...)."""
    with session_scope(url) as s:
        result = s.execute(update(Job).where(Job.id == job_id, Job.status.in_(ACTIVE))
                           .values(updated_at=utcnow(), **values))
        return result.rowcount == 1


def add_timing(url: str, job_id: str, name: str, seconds: float) -> None:
    with session_scope(url) as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is not None:
            job.timings = {**(job.timings or {}), name: round(seconds, 3)}


def add_note(url: str, job_id: str, note: str) -> None:
    with session_scope(url) as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is not None and note not in (job.notes or []):
            job.notes = [*(job.notes or []), note]


def plan_chunks(url: str, job_id: str, plans: Iterable[ChunkPlan]) -> int:
    """Create the chunk rows once; a re-run probe keeps the rows (and progress) it finds."""
    plans = list(plans)
    with session_scope(url) as s:
        existing = s.scalar(select(func.count()).select_from(Chunk).where(Chunk.job_id == job_id))
        if existing:
            return int(existing)
        s.add_all(Chunk(job_id=job_id, index=p.index, start=p.start, count=p.count,
                        decode_start=p.decode_start, decode_count=p.decode_count,
                        seek_time=p.seek_time, status="pending", attempts=0, updated_at=utcnow())
                  for p in plans)
        s.execute(update(Job).where(Job.id == job_id)
                  .values(chunks_total=len(plans), chunks_done=0, updated_at=utcnow()))
        return len(plans)


def get_chunk(url: str, job_id: str, index: int) -> Chunk | None:
    with session_scope(url) as s:
        return s.get(Chunk, (job_id, index))


def chunk_attempt(url: str, job_id: str, index: int) -> int:
    """Count an attempt at a chunk (a heartbeat too); returns the attempt number."""
    with session_scope(url) as s:
        s.execute(update(Chunk).where(Chunk.job_id == job_id, Chunk.index == index)
                  .values(attempts=Chunk.attempts + 1, updated_at=utcnow()))
        s.execute(update(Job).where(Job.id == job_id).values(updated_at=utcnow()))
        return int(s.scalar(select(Chunk.attempts).where(Chunk.job_id == job_id, Chunk.index == index)) or 0)


def chunk_done(url: str, job_id: str, index: int, seconds: float) -> bool:
    """pending → done and progress +1, in one transaction; False if it was already done."""
    with session_scope(url) as s:
        result = s.execute(update(Chunk)
                           .where(Chunk.job_id == job_id, Chunk.index == index, Chunk.status != "done")
                           .values(status="done", seconds=round(seconds, 3), updated_at=utcnow()))
        if result.rowcount != 1:
            return False
        s.execute(update(Job).where(Job.id == job_id)
                  .values(chunks_done=Job.chunks_done + 1, updated_at=utcnow()))
        return True


def chunk_seconds(url: str, job_id: str) -> float:
    """GPU time the chunks took, each counted once (their last successful attempt)."""
    with session_scope(url) as s:
        return float(s.scalar(select(func.coalesce(func.sum(Chunk.seconds), 0.0))
                              .where(Chunk.job_id == job_id)) or 0.0)


def succeed(url: str, job_id: str, **values: Any) -> bool:
    now = utcnow()
    with session_scope(url) as s:
        result = s.execute(update(Job).where(Job.id == job_id, Job.status == RUNNING)
                           .values(status=SUCCEEDED, stage="done", finished_at=now, updated_at=now,
                                   **values))
        return result.rowcount == 1


def fail(url: str, job_id: str, code: str, message: str) -> bool:
    """Any active state → failed with a reason a user can act on; first failure wins."""
    now = utcnow()
    with session_scope(url) as s:
        result = s.execute(update(Job).where(Job.id == job_id, Job.status.in_(ACTIVE))
                           .values(status=FAILED, error_code=code, error=message[:4000],
                                   finished_at=now, updated_at=now))
        return result.rowcount == 1


def cancel(url: str, job_id: str) -> bool:
    now = utcnow()
    with session_scope(url) as s:
        result = s.execute(update(Job).where(Job.id == job_id, Job.status.in_(ACTIVE))
                           .values(status=CANCELLED, stage="cancelled", finished_at=now, updated_at=now))
        return result.rowcount == 1


def stale_jobs(url: str, older_than_seconds: float) -> list[str]:
    """Running jobs that have not been touched for `older_than_seconds` (a queued job may
    legitimately wait behind others, so only running ones are judged)."""
    from datetime import timedelta

    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    with session_scope(url) as s:
        return list(s.scalars(select(Job.id).where(Job.status == RUNNING, Job.updated_at < cutoff)))


__all__ = ["ChunkPlan", "get_job", "is_active", "mark_running", "update_job", "add_timing",
           "add_note", "plan_chunks", "get_chunk", "chunk_attempt", "chunk_done", "chunk_seconds", "succeed",
           "fail", "cancel", "stale_jobs", "FAILED", "SUCCEEDED", "CANCELLED"]
