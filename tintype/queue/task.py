"""The base of every job task in both pools: settings and handles from the app it runs
on, the failure policy, heartbeats and the retry budget in one place.

Tasks are declared with `celery.shared_task(name=..., base=JobTask, bind=True)`, so they
bind to whichever app a worker builds; time limits come from that app's configuration
(see `tintype.queue.app.time_limits`), not from decorator arguments fixed at import.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Callable

from celery import Task

from tintype.jobs import state as jobstate
from tintype.queue import guard
from tintype.queue.app import settings_of, store_of
from tintype.queue.heartbeat import heartbeat
from tintype.settings import Settings
from tintype.storage.models import CANCELLED
from tintype.storage.objects import ObjectStore


def ended_answer(db_url: str, job_id: str) -> str:
    """What a task answers when its job ended while it worked: "cancelled" when a user
    cancelled it, "inactive" otherwise (failed elsewhere, or gone)."""
    job = jobstate.get_job(db_url, job_id)
    return "cancelled" if job is not None and job.status == CANCELLED else "inactive"


class JobTask(Task):
    max_retries = 5

    @property
    def settings(self) -> Settings:
        return settings_of(self.app)

    @property
    def store(self) -> ObjectStore:
        return store_of(self.app)

    @property
    def db_url(self) -> str:
        return self.settings.database_url

    def guard(self, job_id: str, what: str) -> AbstractContextManager[None]:
        """Retry transient errors, fail the job on anything else (see tintype.queue.guard)."""
        return guard.job_guard(self, self.db_url, self.store, job_id, what)

    def beating(self, job_id: str) -> AbstractContextManager[None]:
        """Keep the job's heartbeat while a block runs, so the reconciler sees it alive."""
        return self.heartbeat(lambda: jobstate.touch_job(self.db_url, job_id))

    def heartbeat(self, beat: Callable[[], None]) -> AbstractContextManager[None]:
        return heartbeat(beat, self.settings.heartbeat_seconds)

    def fail_job(self, job_id: str, code: str, message: str) -> None:
        guard.fail_job(self.db_url, self.store, job_id, code, message)

    def cleanup_work(self, job_id: str) -> None:
        guard.cleanup_work(self.store, job_id)

    def ended(self, job_id: str) -> str:
        return ended_answer(self.db_url, job_id)
