"""The reconciler: PostgreSQL says what must happen; the broker is only a delivery path.

Run by beat every RECONCILE_SECONDS. For each job that has not ended it checks that
the next piece of work is either held by the broker (waiting or delivered) or has a
live heartbeat, and re-sends exactly what is missing: a probe lost with a broker's
data, the chunks of a worker that died (never a chunk held back by the dispatch window),
the finalize of a chunk that finished but died before sending it. Every task is
idempotent, so a needless re-send costs time, never correctness. It also applies RETENTION_DAYS
(tintype.jobs.removal) and aborts staged uploads past UPLOAD_EXPIRY_HOURS (tintype.jobs.uploads).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import shared_task

from tintype import telemetry as metrics
from tintype.jobs import state as jobstate
from tintype.jobs.removal import remove_expired
from tintype.jobs.state import CHUNK_STAGES, ActiveJob
from tintype.jobs.uploads import expire as expire_uploads
from tintype.queue.broker_scan import Message, held_messages
from tintype.queue.messages import CHUNK, FINALIZE, IMAGE, PLAN_COLOUR, PROBE, RECONCILE, TRACK, send
from tintype.queue.task import JobTask

log = logging.getLogger(__name__)
# Stages a running task sets for itself (it beats), and stages set when work is handed to
# the next task (which may wait in a queue for a long time, rightly).
STARTED = {"probing": PROBE, "tracking": TRACK, "planning_colour": PLAN_COLOUR, "finalizing": FINALIZE}
HANDED_OVER = {"track_queued": TRACK, "colour_queued": PLAN_COLOUR, "finalize_queued": FINALIZE,
               "image_queued": IMAGE}


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
        # No task id yet: the broker was down at submit (or the web is just recording it).
        if quiet and (job.celery_id is None or _lost(probe, held)):
            return [Resend(PROBE, probe[1], "the job was accepted but its first task is not in the broker")]
        return []
    # Finalize streams while chunks still run, so a video's chunks are judged in every
    # stage from the fan-out to the last chunk, beside the stage's own task.
    chunks = job.kind == "video" and job.stage in CHUNK_STAGES
    opened = [r for chunk in job.open_chunks if (r := _chunk_resend(job.id, chunk, held, silent_since))] \
        if chunks else []
    return _stage_resends(job, held, quiet) + opened


def _stage_resends(job: ActiveJob, held: set[Message] | None, quiet: bool) -> list[Resend]:
    started = IMAGE if job.kind == "image" and job.stage == "processing" else STARTED.get(job.stage)
    if started is not None:
        # The running task set this stage and beats; silence means its worker died, even
        # if its message still sits unacknowledged until the visibility timeout.
        return [Resend(started, (job.id,), f"{job.stage} stopped without a heartbeat")] if quiet else []
    waiting = HANDED_OVER.get(job.stage)
    if waiting is not None:
        # Sent and waiting its turn in a queue, unless the broker no longer holds it.
        if quiet and (held is None or (waiting, (job.id,)) not in held):
            return [Resend(waiting, (job.id,), f"the {job.stage.replace('_', ' ')} task is not in the broker")]
        return []
    if job.stage == "processing" and job.chunks_done > 0 and quiet:
        # The first chunk to finish claims finalize itself; a quiet job means it died first.
        return [Resend(FINALIZE, (job.id,), "a chunk is done but finalize was never sent")]
    return []


def _chunk_resend(job_id: str, chunk, held: set[Message] | None, silent_since: datetime) -> Resend | None:
    if chunk.updated_at >= silent_since or chunk.status not in ("pending", "running"):
        return None  # alive, or held back by the dispatch window (finalize releases it)
    message = (CHUNK, (job_id, chunk.index))
    if chunk.status == "running":
        return Resend(CHUNK, message[1], f"chunk {chunk.index}'s worker stopped its heartbeat")
    if _lost(message, held):
        return Resend(CHUNK, message[1], f"chunk {chunk.index}'s message is not in the broker")
    return None


@shared_task(name=RECONCILE, base=JobTask, bind=True)
def reconcile(self: JobTask) -> list[dict[str, str]]:
    """Re-send the work the database says is missing from the broker."""
    options = self.app.conf.broker_transport_options or {}
    held = held_messages(self.app.conf.broker_url or "", ["cpu", "gpu"], options)
    plans = plan_resends(jobstate.active_jobs(self.db_url), held, jobstate.utcnow(), self.settings.lease_seconds)
    done = [plan for plan in plans if _resend(self, plan)]
    for plan in done:
        metrics.RESENDS.labels(plan.task).inc()
        log.warning("reconciler re-sent %s%s: %s", plan.task, plan.args, plan.reason)
    _retire(self)
    _expire_uploads(self)
    return [{"task": p.task, "args": list(p.args), "reason": p.reason} for p in done]


def _retire(task: JobTask) -> None:
    """RETENTION_DAYS: remove finished jobs that have outlived it (a batch per run)."""
    removed = remove_expired(task.db_url, task.store, task.settings.retention_days, jobstate.utcnow())
    if removed:
        log.info("retention removed %d finished job(s) older than %d days: %s", len(removed),
                 task.settings.retention_days, ", ".join(removed))


def _expire_uploads(task: JobTask) -> None:
    """UPLOAD_EXPIRY_HOURS: abort staged uploads nobody finished or used (a batch per run)."""
    expired = expire_uploads(task.db_url, task.store, jobstate.utcnow())
    if expired:
        log.info("aborted %d expired staged upload(s): %s", len(expired), ", ".join(expired))


def _resend(task: JobTask, plan: Resend) -> bool:
    db_url, job_id = task.db_url, plan.job_id
    if plan.task == FINALIZE and not jobstate.requeue_finalize(db_url, job_id, task.settings.lease_seconds):
        return False  # someone took it meanwhile
    task_id = send(task.app, plan.task, *plan.args)
    if plan.task == CHUNK:
        jobstate.chunks_sent(db_url, job_id, [plan.args[1]])
    elif plan.task != FINALIZE:
        jobstate.update_job(db_url, job_id, celery_id=task_id)  # restarts the quiet clock too
    jobstate.add_note(db_url, job_id, f"recovered: {plan.reason}; the work was sent again")
    return True
