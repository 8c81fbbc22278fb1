"""The task names both pools agree on, and sending them by name.

Tasks are sent by name, never by importing the function, so a sender needs none of the
receiver's code: the web never imports a task, the GPU pool never imports a CPU task.
"""

from __future__ import annotations

from celery import Celery

from tintype.jobs import state as jobstate

PROBE, TRACK, FINALIZE, RECONCILE = "tasks.probe", "tasks.track", "tasks.finalize", "tasks.reconcile"
CHUNK, IMAGE, PLAN_COLOUR = "gpu.process_chunk", "gpu.process_image", "gpu.plan_colour"


def send(app: Celery, task: str, *args: object) -> str:
    """Send a task by name; returns its id. No result is ever read (job state lives in the
    database), so sending never touches the result backend: only the broker must answer."""
    return app.send_task(task, args=args, ignore_result=True).id


def fan_out(app: Celery, db_url: str, job_id: str, chunks: int, window: int = 0) -> None:
    """Send the first `window` chunks (every chunk when `window` is 0) and hold the rest:
    finalize releases chunk k + window once it has assembled chunk k (`release`), so a
    GPU pool faster than the encoder cannot pile up intermediates. The first chunk to
    finish sends finalize (see `send_finalize`). Plain messages, not `replace` with a
    group: a replaced group becomes a chord again."""
    sent = range(min(chunks, window) if window > 0 else chunks)
    jobstate.chunks_sent(db_url, job_id, sent)  # first: the reconciler judges sent chunks from now
    jobstate.hold_chunks(db_url, job_id, len(sent))
    if not jobstate.update_job(db_url, job_id, stage="processing"):
        return  # the job ended (cancelled) meanwhile: nothing to send
    for index in sent:
        send(app, CHUNK, job_id, index)


def release(app: Celery, db_url: str, job_id: str, upto: int) -> list[int]:
    """Send the held chunks before `upto` (each by exactly one caller); returns them."""
    released = jobstate.release_chunks(db_url, job_id, upto)
    for index in released:
        send(app, CHUNK, job_id, index)
    return released


def start_processing(app: Celery, db_url: str, job_id: str, chunks: int, plan_colour: bool,
                     window: int = 0) -> None:
    """What follows probing (and tracking): a job coloured from keyframes first has its
    colour planned (one pass over the film, gpu.plan_colour, which then fans out);
    every other job fans its chunks out at once."""
    if plan_colour:
        jobstate.update_job(db_url, job_id, stage="colour_queued")
        send(app, PLAN_COLOUR, job_id)
    else:
        fan_out(app, db_url, job_id, chunks, window)


def send_finalize(app: Celery, db_url: str, job_id: str) -> bool:
    """Send finalize if a chunk is done and nobody has sent it yet (compare-and-set)."""
    if not jobstate.claim_finalize(db_url, job_id):
        return False
    send(app, FINALIZE, job_id)
    return True
