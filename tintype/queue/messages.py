"""The task names both pools agree on, and sending them by name.

Tasks are sent by name, never by importing the function, so a sender needs none of the
receiver's code: the web never imports a task, the GPU pool never imports a CPU task.
"""

from __future__ import annotations

from celery import Celery

from tintype.jobs import state as jobstate

PROBE, TRACK, FINALIZE, RECONCILE = "tasks.probe", "tasks.track", "tasks.finalize", "tasks.reconcile"
CHUNK, IMAGE = "gpu.process_chunk", "gpu.process_image"


def send(app: Celery, task: str, *args: object) -> str:
    """Send a task by name; returns its id. No result is ever read (job state lives in the
    database), so sending never touches the result backend: only the broker must answer."""
    return app.send_task(task, args=args, ignore_result=True).id


def send_finalize(app: Celery, db_url: str, job_id: str) -> bool:
    """Send finalize if every chunk is done and nobody has sent it yet (compare-and-set)."""
    if not jobstate.claim_finalize(db_url, job_id):
        return False
    send(app, FINALIZE, job_id)
    return True
