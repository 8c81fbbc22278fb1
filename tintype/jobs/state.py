"""Job state transitions, each one a single compare-and-set statement.

Web, CPU and GPU processes race on the same rows (a cancel arriving while a chunk
finishes, a redelivered chunk running twice); every transition names the states it
may leave, so the database decides who wins and nothing is counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import delete, func, select, update

from tintype.storage.db import session_scope
from tintype.storage.models import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, TERMINAL, Chunk, Job, as_utc, utcnow
from tintype.telemetry import job_ended

ACTIVE = (QUEUED, RUNNING)
# Chunk rows: planned but outside the dispatch window (not sent yet; see release_chunks),
# sent and waiting, running, done. A done chunk whose intermediate is gone was assembled.
HELD, PENDING, DONE = "held", "pending", "done"
# Stages in which a video's chunks run: from the fan-out until finalize has assembled them
# all, since finalize starts with the first finished chunk and streams the rest as they come.
CHUNK_STAGES = ("processing", "finalize_queued", "finalizing")


@dataclass(frozen=True)
class OpenChunk:
    index: int
    status: str
    updated_at: datetime


@dataclass(frozen=True)
class ActiveJob:
    """What the reconciler needs to know about a job that has not ended."""

    id: str
    kind: str
    status: str
    stage: str
    updated_at: datetime
    celery_id: str | None
    chunks_total: int
    chunks_done: int
    open_chunks: tuple[OpenChunk, ...]


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


def is_finished(url: str, job_id: str) -> bool:
    with session_scope(url) as s:
        return s.scalar(select(Job.status).where(Job.id == job_id)) in TERMINAL


def has_succeeded(url: str, job_id: str) -> bool:
    with session_scope(url) as s:
        return s.scalar(select(Job.status).where(Job.id == job_id)) == SUCCEEDED


def mark_running(url: str, job_id: str, stage: str, from_stages: Iterable[str] | None = None) -> bool:
    """queued/running → running at `stage`; False if the job has ended (e.g. cancelled)
    or, given `from_stages`, has moved past them (a late duplicate of an earlier task)."""
    now = utcnow()
    where = [Job.id == job_id, Job.status.in_(ACTIVE)]
    if from_stages is not None:
        where.append(Job.stage.in_(list(from_stages)))
    with session_scope(url) as s:
        result = s.execute(
            update(Job).where(*where)
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


def add_keyframes(url: str, job_id: str, entries: Iterable[dict[str, Any]]) -> bool:
    """Record keyframes the pipeline stored (`jobs.keyframes.store_keyframe`) on an active
    job, under the row's lock; a frame already listed keeps its entry, so a redelivered task
    adds nothing twice. False if the job has ended (a cancel won)."""
    entries = list(entries)
    with session_scope(url) as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is None or job.status not in ACTIVE:
            return False
        job.keyframes = merged_keyframes(job.keyframes or [], entries)
        job.updated_at = utcnow()
        return True


def merged_keyframes(existing: Iterable[dict[str, Any]], added: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keyframe entries by frame; a frame already listed keeps its entry (adding the same
    frame twice keeps one, and a user's keyframe is never replaced by an automatic one)."""
    by_frame: dict[int, dict[str, Any]] = {}
    for item in [*existing, *added]:
        by_frame.setdefault(int(item["frame"]), {"frame": int(item["frame"]), "source": str(item["source"])})
    return [by_frame[frame] for frame in sorted(by_frame)]


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


def chunk_ranges(url: str, job_id: str) -> list[tuple[int, int]]:
    """(first frame, frame count) of each chunk of a job, in order."""
    with session_scope(url) as s:
        rows = s.execute(select(Chunk.start, Chunk.count).where(Chunk.job_id == job_id)
                         .order_by(Chunk.index)).all()
        return [(start, count) for start, count in rows]


def chunk_attempt(url: str, job_id: str, index: int) -> int:
    """Count an attempt at a chunk and mark it running; returns the attempt number."""
    with session_scope(url) as s:
        s.execute(update(Chunk).where(Chunk.job_id == job_id, Chunk.index == index, Chunk.status != "done")
                  .values(attempts=Chunk.attempts + 1, status="running", updated_at=utcnow()))
        s.execute(update(Job).where(Job.id == job_id).values(updated_at=utcnow()))
        return int(s.scalar(select(Chunk.attempts).where(Chunk.job_id == job_id, Chunk.index == index)) or 0)


def chunk_superseded(url: str, job_id: str, index: int, attempt: int) -> bool:
    """Whether attempt `attempt` at a chunk has lost it: the chunk is done, or a later
    attempt began (the reconciler re-sent it after this one's heartbeat went silent).
    Checked just before storing the result, so a worker cut off mid-chunk and back after
    its chunk was redone does not write that result a second time."""
    with session_scope(url) as s:
        row = s.execute(select(Chunk.status, Chunk.attempts)
                        .where(Chunk.job_id == job_id, Chunk.index == index)).one_or_none()
        return row is None or row.status == "done" or row.attempts > attempt


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


def touch_chunk(url: str, job_id: str, index: int) -> None:
    """A running chunk's heartbeat: the reconciler re-sends chunks whose heartbeat stops."""
    with session_scope(url) as s:
        s.execute(update(Chunk).where(Chunk.job_id == job_id, Chunk.index == index, Chunk.status == "running")
                  .values(updated_at=utcnow()))


def touch_job(url: str, job_id: str) -> None:
    """A heartbeat of the job's CPU stage (probe, tracking, finalize)."""
    with session_scope(url) as s:
        s.execute(update(Job).where(Job.id == job_id, Job.status.in_(ACTIVE)).values(updated_at=utcnow()))


def chunks_sent(url: str, job_id: str, indices: Iterable[int]) -> None:
    """Chunks whose message was (re)sent wait as pending from now."""
    with session_scope(url) as s:
        s.execute(update(Chunk).where(Chunk.job_id == job_id, Chunk.index.in_(list(indices)),
                                      Chunk.status != "done")
                  .values(status="pending", updated_at=utcnow()))


def hold_chunks(url: str, job_id: str, first: int) -> None:
    """pending → held for the chunks from `first` on: planned, but outside the dispatch
    window, so nothing sends them and the reconciler leaves them alone until finalize
    releases them (`release_chunks`)."""
    with session_scope(url) as s:
        s.execute(update(Chunk).where(Chunk.job_id == job_id, Chunk.index >= first, Chunk.status == PENDING)
                  .values(status=HELD, updated_at=utcnow()))


def release_chunks(url: str, job_id: str, upto: int) -> list[int]:
    """held → pending for the chunks before `upto`; returns the ones this caller released,
    which it must send (a compare-and-set, so two callers never both send one; one that
    dies before sending leaves a pending chunk the broker lacks, which the reconciler sends)."""
    with session_scope(url) as s:
        rows = s.execute(update(Chunk).where(Chunk.job_id == job_id, Chunk.index < upto, Chunk.status == HELD)
                         .values(status=PENDING, updated_at=utcnow()).returning(Chunk.index)).all()
    return sorted(index for (index,) in rows)


def chunk_status(url: str, job_id: str, index: int) -> str | None:
    """A chunk's status while its job is active; None once the job has ended (finalize
    stops waiting)."""
    with session_scope(url) as s:
        row = s.execute(select(Job.status, Chunk.status).join(Chunk, Chunk.job_id == Job.id)
                        .where(Job.id == job_id, Chunk.index == index)).one_or_none()
    return row[1] if row is not None and row[0] in ACTIVE else None


def done_chunks(url: str, job_id: str) -> list[int]:
    """Indices of the chunks counted done, in order."""
    with session_scope(url) as s:
        return list(s.scalars(select(Chunk.index).where(Chunk.job_id == job_id, Chunk.status == DONE)
                              .order_by(Chunk.index)))


def rewind_chunks(url: str, job_id: str, indices: Iterable[int]) -> int:
    """done → held, and progress back by as many, for done chunks whose intermediate is
    gone: a finalize that died had assembled and deleted them, so the next finalize, which
    streams from chunk 0 again, has them computed again (deterministically, so the output
    is the same bytes). The attempt counter restarts: recomputing is not a crash. Returns
    how many were rewound."""
    indices = list(indices)
    if not indices:
        return 0
    with session_scope(url) as s:
        result = s.execute(update(Chunk).where(Chunk.job_id == job_id, Chunk.index.in_(indices),
                                               Chunk.status == DONE)
                           .values(status=HELD, attempts=0, seconds=None, updated_at=utcnow()))
        rewound = int(result.rowcount)
        if rewound:
            s.execute(update(Job).where(Job.id == job_id)
                      .values(chunks_done=Job.chunks_done - rewound, updated_at=utcnow()))
        return rewound


def chunk_given_back(url: str, job_id: str, index: int) -> None:
    """A draining worker stopped this chunk and handed its message back: running →
    pending, and the attempt is not counted (the worker did not die on it)."""
    with session_scope(url) as s:
        s.execute(update(Chunk).where(Chunk.job_id == job_id, Chunk.index == index, Chunk.status == "running",
                                      Chunk.attempts > 0)
                  .values(status="pending", attempts=Chunk.attempts - 1, updated_at=utcnow()))


def claim_finalize(url: str, job_id: str) -> bool:
    """processing → finalize_queued once a chunk is done; True for exactly one caller,
    which then sends the finalize task (no chord counter to lose). Finalize starts this
    early because it streams: it assembles chunk 0, 1, … as each is done."""
    with session_scope(url) as s:
        result = s.execute(update(Job).where(Job.id == job_id, Job.status == RUNNING, Job.stage == "processing",
                                             Job.chunks_total > 0, Job.chunks_done > 0)
                           .values(stage="finalize_queued", updated_at=utcnow()))
        return result.rowcount == 1


def start_finalize(url: str, job_id: str, lease_seconds: float) -> bool:
    """Take the finalize lease: a queued finalize, or one whose runner went silent for
    `lease_seconds`. A duplicate delivery of finalize while another runs gets False."""
    from datetime import timedelta

    now = utcnow()
    expired = now - timedelta(seconds=lease_seconds)
    with session_scope(url) as s:
        result = s.execute(update(Job).where(
            Job.id == job_id, Job.status == RUNNING,
            (Job.stage == "finalize_queued") | ((Job.stage == "finalizing") & (Job.updated_at < expired)))
            .values(stage="finalizing", updated_at=now))
        return result.rowcount == 1


def active_jobs(url: str) -> list[ActiveJob]:
    """Every queued or running job with the chunks it still lacks."""
    with session_scope(url) as s:
        jobs = s.execute(select(Job.id, Job.kind, Job.status, Job.stage, Job.updated_at, Job.celery_id,
                                Job.chunks_total, Job.chunks_done).where(Job.status.in_(ACTIVE))).all()
        ids = [j.id for j in jobs if j.kind == "video" and j.stage in CHUNK_STAGES]
        chunks: dict[str, list[OpenChunk]] = {}
        if ids:
            rows = s.execute(select(Chunk.job_id, Chunk.index, Chunk.status, Chunk.updated_at)
                             .where(Chunk.job_id.in_(ids), Chunk.status.notin_([DONE, HELD]))
                             .order_by(Chunk.index))
            for row in rows:
                chunks.setdefault(row.job_id, []).append(OpenChunk(row.index, row.status, as_utc(row.updated_at)))
    return [ActiveJob(j.id, j.kind, j.status, j.stage, as_utc(j.updated_at), j.celery_id, j.chunks_total or 0,
                      j.chunks_done or 0, tuple(chunks.get(j.id, ()))) for j in jobs]


def requeue_finalize(url: str, job_id: str, lease_seconds: float) -> bool:
    """The reconciler's claim before it re-sends finalize: a chunk done but finalize
    never claimed, a finalize message lost, or a finalize runner silent for
    `lease_seconds` → finalize_queued, so the re-sent task can take the lease at once."""
    from datetime import timedelta

    now = utcnow()
    expired = now - timedelta(seconds=lease_seconds)
    with session_scope(url) as s:
        result = s.execute(update(Job).where(
            Job.id == job_id, Job.status == RUNNING,
            ((Job.stage == "processing") & (Job.chunks_total > 0) & (Job.chunks_done > 0))
            | (Job.stage == "finalize_queued")
            | ((Job.stage == "finalizing") & (Job.updated_at < expired)))
            .values(stage="finalize_queued", updated_at=now))
        return result.rowcount == 1


def release_finalize(url: str, job_id: str) -> None:
    """finalizing → finalize_queued when a finalize run ends without ending the job (a
    retry for a transient error), so its retry can take the lease at once."""
    with session_scope(url) as s:
        s.execute(update(Job).where(Job.id == job_id, Job.status == RUNNING, Job.stage == "finalizing")
                  .values(stage="finalize_queued", updated_at=utcnow()))


def chunk_seconds(url: str, job_id: str) -> float:
    """GPU time the chunks took, each counted once (their last successful attempt)."""
    with session_scope(url) as s:
        return float(s.scalar(select(func.coalesce(func.sum(Chunk.seconds), 0.0))
                              .where(Chunk.job_id == job_id)) or 0.0)


def succeed(url: str, job_id: str, **values: Any) -> bool:
    now = utcnow()
    return _end(url, update(Job).where(Job.id == job_id, Job.status == RUNNING)
                .values(status=SUCCEEDED, stage="done", finished_at=now, updated_at=now, **values), now)


def fail(url: str, job_id: str, code: str, message: str) -> bool:
    """Any active state → failed with a reason a user can act on; first failure wins."""
    now = utcnow()
    return _end(url, update(Job).where(Job.id == job_id, Job.status.in_(ACTIVE))
                .values(status=FAILED, error_code=code, error=message[:4000], finished_at=now, updated_at=now),
                now, code)


def cancel(url: str, job_id: str) -> bool:
    now = utcnow()
    return _end(url, update(Job).where(Job.id == job_id, Job.status.in_(ACTIVE))
                .values(status=CANCELLED, stage="cancelled", finished_at=now, updated_at=now), now)


def _end(url: str, statement: Any, now: datetime, code: str | None = None) -> bool:
    """Run a job's final transition; the process whose statement won counts the end
    (once, after the commit) with its end-to-end latency."""
    with session_scope(url) as s:
        won = s.execute(statement.returning(Job.kind, Job.status, Job.created_at)).all()
    if len(won) != 1:
        return False
    kind, status, created = won[0]
    job_ended(kind, status, (now - as_utc(created)).total_seconds() if created else None, code)
    return True


def delete_finished(url: str, job_id: str) -> bool:
    """Remove a job's row and its chunks, only if it has ended; False if it is active or gone."""
    with session_scope(url) as s:
        if s.scalar(select(Job.status).where(Job.id == job_id)) not in TERMINAL:
            return False
        s.execute(delete(Chunk).where(Chunk.job_id == job_id))
        return s.execute(delete(Job).where(Job.id == job_id, Job.status.in_(TERMINAL))).rowcount == 1


def finished_before(url: str, moment: datetime, limit: int) -> list[str]:
    """Ids of jobs that ended before `moment`, oldest first, at most `limit`."""
    with session_scope(url) as s:
        return list(s.scalars(select(Job.id).where(Job.status.in_(TERMINAL), Job.finished_at < moment)
                              .order_by(Job.finished_at).limit(limit)))


__all__ = ["ActiveJob", "OpenChunk", "active_jobs", "ChunkPlan", "get_job", "is_active", "has_succeeded",
           "mark_running", "update_job", "add_timing", "add_note", "add_keyframes", "plan_chunks", "get_chunk",
           "chunk_attempt", "chunk_given_back", "hold_chunks", "release_chunks", "chunk_status",
           "done_chunks", "rewind_chunks", "HELD", "PENDING", "DONE", "CHUNK_STAGES",
           "chunk_superseded", "chunk_done", "chunk_seconds", "succeed",
           "merged_keyframes",
           "fail", "cancel", "touch_chunk", "touch_job", "chunks_sent", "claim_finalize",
           "start_finalize", "release_finalize", "requeue_finalize", "delete_finished", "finished_before",
           "is_finished",
           "FAILED", "SUCCEEDED", "CANCELLED"]
