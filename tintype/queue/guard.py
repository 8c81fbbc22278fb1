"""What a task does when its work raises: retry what is transient, fail the job otherwise.

Every failure ends with the job marked `failed` with a reason a user can act on and its
work objects removed; the exception is re-raised so Celery records it too.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded, TaskPredicate
from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy.exc import OperationalError

from tintype.jobs import state as jobstate
from tintype.media.errors import MediaError, ModelFailure, ToolFailed
from tintype.storage import keys
from tintype.storage.objects import ObjectStore, StorageError, StorageUnavailable

log = logging.getLogger(__name__)
# Storage, database or broker not answering: retry with backoff. If even the retry cannot
# be sent (the broker is down), the job stays active and the reconciler re-sends its work.
TRANSIENT = (StorageUnavailable, OperationalError, KombuOperationalError, ConnectionError, TimeoutError)


def cleanup_work(store: ObjectStore, job_id: str) -> None:
    """Remove a job's intermediate objects; never let cleanup mask the real error."""
    try:
        store.delete_prefix(keys.work_prefix(job_id))
    except StorageError:
        log.warning("could not remove work objects of job %s", job_id, exc_info=True)


def fail_job(db_url: str, store: ObjectStore, job_id: str, code: str, message: str) -> None:
    if jobstate.fail(db_url, job_id, code, message):
        log.error("job %s failed: %s: %s", job_id, code, message)
    cleanup_work(store, job_id)


def classify(exc: BaseException, what: str) -> tuple[str, str]:
    """The error code and the message a user reads for a failure while doing `what`."""
    if isinstance(exc, MediaError):
        return exc.code, str(exc)
    if isinstance(exc, ModelFailure):
        return "model_error", f"{what}: {exc}"
    if isinstance(exc, SoftTimeLimitExceeded):
        return "timeout", f"{what} ran past its time limit; try a shorter clip or a smaller render size"
    if isinstance(exc, TRANSIENT):  # before ToolFailed: ffmpeg that could not reach storage is one
        return "service_unavailable", f"{what}: storage or database unavailable after retries ({exc})"
    if isinstance(exc, ToolFailed):
        return "processing_failed", f"{what}: {exc}"
    return "internal_error", f"{what} failed unexpectedly ({type(exc).__name__}: {exc})"


@contextmanager
def job_guard(task: Task, db_url: str, store: ObjectStore, job_id: str, what: str) -> Iterator[None]:
    """Retry transient errors with backoff up to the task's max_retries; fail the job on
    anything else (or when the retries are spent)."""
    try:
        yield
    except TaskPredicate:  # replace/retry/ignore are control flow, not failures
        raise
    except TRANSIENT as exc:
        if task.request.retries < (task.max_retries or 0):
            raise task.retry(exc=exc, countdown=min(60, 2 ** task.request.retries)) from exc
        fail_job(db_url, store, job_id, *classify(exc, what))
        raise
    except Exception as exc:
        fail_job(db_url, store, job_id, *classify(exc, what))
        raise
