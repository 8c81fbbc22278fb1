"""What the database says each worker pool has to do: work waiting and work running.

The scaling signal and the operators' `/api/v1/pools` read these counts. A task that set
its running stage (or claimed its chunk) and still beats is running; one silent for
LEASE_SECONDS counts as waiting, because the reconciler will send it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from tintype.jobs.state import ACTIVE, CHUNK_STAGES, DONE, HELD
from tintype.storage.db import session_scope
from tintype.storage.models import RUNNING, Chunk, Job

POOLS = ("cpu", "gpu")
# Job stages by the pool that works on them next: handed over (waiting) or running.
WAITING_STAGES = {"queued": "cpu", "track_queued": "cpu", "finalize_queued": "cpu",
                  "colour_queued": "gpu", "image_queued": "gpu"}
RUNNING_STAGES = {"probing": "cpu", "tracking": "cpu", "finalizing": "cpu", "planning_colour": "gpu"}


@dataclass
class PoolWork:
    waiting: int = 0
    running: int = 0


@dataclass
class Workload:
    pools: dict[str, PoolWork] = field(default_factory=lambda: {pool: PoolWork() for pool in POOLS})
    chunks: dict[str, int] = field(default_factory=lambda: {"pending": 0, "running": 0, "stalled": 0})


def measure(url: str, now: datetime, lease_seconds: float) -> Workload:
    """Two grouped queries over the active jobs and their open chunks."""
    expired = now - timedelta(seconds=lease_seconds)
    work = Workload()
    with session_scope(url) as s:
        stages = s.execute(select(Job.kind, Job.stage, Job.updated_at >= expired, func.count())
                           .where(Job.status.in_(ACTIVE)).group_by(Job.kind, Job.stage, Job.updated_at >= expired))
        for kind, stage, alive, count in stages:
            _count_stage(work, kind, stage, bool(alive), int(count))
        chunks = s.execute(select(Chunk.status, Chunk.updated_at >= expired, func.count())
                           .join(Job, Job.id == Chunk.job_id)
                           .where(Job.status == RUNNING, Job.kind == "video", Job.stage.in_(CHUNK_STAGES),
                                  Chunk.status.notin_([DONE, HELD]))
                           .group_by(Chunk.status, Chunk.updated_at >= expired))
        for status, alive, count in chunks:
            _count_chunks(work, status, bool(alive), int(count))
    return work


def _count_stage(work: Workload, kind: str, stage: str, alive: bool, count: int) -> None:
    if kind == "image" and stage == "processing":
        pool, running = "gpu", alive
    elif stage in RUNNING_STAGES:
        pool, running = RUNNING_STAGES[stage], alive
    elif stage in WAITING_STAGES:
        pool, running = WAITING_STAGES[stage], False
    else:
        return  # a video processing its chunks: counted chunk by chunk
    if running:
        work.pools[pool].running += count
    else:
        work.pools[pool].waiting += count


def _count_chunks(work: Workload, status: str, alive: bool, count: int) -> None:
    if status == "running" and alive:
        work.chunks["running"] += count
        work.pools["gpu"].running += count
        return
    work.chunks["stalled" if status == "running" else "pending"] += count
    work.pools["gpu"].waiting += count


def job_counts(url: str) -> dict[tuple[str, str], int]:
    """Jobs by (kind, status): one grouped count over the jobs table."""
    with session_scope(url) as s:
        rows = s.execute(select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status)).all()
    return {(kind, status): int(count) for kind, status, count in rows}
