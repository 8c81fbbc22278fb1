"""The reconciler: PostgreSQL says what must happen; the broker is only a delivery path.

Run by beat every RECONCILE_SECONDS. For each job that has not ended it checks that
the next piece of work is either held by the broker (waiting or delivered) or has a
live heartbeat, and re-sends exactly what is missing: a probe lost with a broker's
data, the chunks of a worker that died, the finalize of a chunk that finished but
died before sending it. Every task is idempotent, so a needless re-send costs time,
never correctness.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tasks.broker_scan import Message
from tasks.jobstate import ActiveJob

PROBE, TRACK, CHUNK, FINALIZE = "tasks.probe", "tasks.track", "gpu.process_chunk", "tasks.finalize"
IMAGE = "gpu.process_image"
FINALIZE_STAGES = ("finalize_queued", "finalizing")


@dataclass(frozen=True)
class Resend:
    task: str
    args: tuple
    reason: str

    @property
    def job_id(self) -> str:
        return self.args[0]


def plan_resends(jobs: list[ActiveJob], held: set[Message] | None, now: datetime,
                 lease_seconds: float) -> list[Resend]:
    """The messages to send again. `held` is what the broker holds (None: unknown, so
    only silent heartbeats count as lost)."""
    silent_since = now - timedelta(seconds=lease_seconds)
    plans: list[Resend] = []
    for job in jobs:
        plans += _job_resends(job, held, silent_since)
    return plans


def _lost(message: Message, held: set[Message] | None) -> bool:
    return held is not None and message not in held


def _job_resends(job: ActiveJob, held: set[Message] | None, silent_since: datetime) -> list[Resend]:
    quiet = job.updated_at < silent_since
    if job.status == "queued":
        probe = (PROBE, (job.id,))
        if job.celery_id is None or (quiet and _lost(probe, held)):
            return [Resend(PROBE, probe[1], "the job was accepted but its first task is not in the broker")]
        return []
    if job.stage in ("probing", "tracking"):
        task = TRACK if job.stage == "tracking" else PROBE
        if quiet and (held is None or (task, (job.id,)) not in held):
            return [Resend(task, (job.id,), f"{job.stage} stopped without a heartbeat")]
        return []
    if job.kind == "image":
        return _image_resend(job, held, quiet)
    if job.stage == "processing":
        if job.chunks_total and job.chunks_done >= job.chunks_total:
            # The last chunk claims finalize itself; a quiet job means it died first.
            return [] if not quiet else [Resend(FINALIZE, (job.id,), "every chunk is done but finalize was never sent")]
        return [r for chunk in job.open_chunks if (r := _chunk_resend(job.id, chunk, held, silent_since))]
    if job.stage in FINALIZE_STAGES and quiet and (held is None or (FINALIZE, (job.id,)) not in held):
        return [Resend(FINALIZE, (job.id,), "finalize stopped without a heartbeat")]
    return []


def _chunk_resend(job_id: str, chunk, held: set[Message] | None, silent_since: datetime) -> Resend | None:
    if chunk.updated_at >= silent_since:
        return None
    message = (CHUNK, (job_id, chunk.index))
    if chunk.status == "running":
        return Resend(CHUNK, message[1], f"chunk {chunk.index}'s worker stopped its heartbeat")
    if _lost(message, held):
        return Resend(CHUNK, message[1], f"chunk {chunk.index}'s message is not in the broker")
    return None


def _image_resend(job: ActiveJob, held: set[Message] | None, quiet: bool) -> list[Resend]:
    """A photograph is one GPU task with a job heartbeat."""
    message = (IMAGE, (job.id,))
    if quiet and (held is None or message not in held):
        return [Resend(IMAGE, message[1], "the photograph's worker stopped its heartbeat")]
    return []
