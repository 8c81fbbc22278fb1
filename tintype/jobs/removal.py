"""Removing finished jobs: on request (DELETE of a job that has ended) and by age
(RETENTION_DAYS, from the reconciler).

A job's objects all live under its prefix (input, mask, reference, keyframes, chunks,
results, masks used, posters: `tintype.storage.keys`), so they go first, then its row;
a failure half way leaves the row, and removing it again finishes the work. A recolour
made from the job has its own copies, so it is not affected.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tintype.jobs import state as jobstate
from tintype.storage import keys
from tintype.storage.objects import ObjectStore

BATCH = 100  # jobs removed by one retention run at most; the next run takes the rest


def remove_finished(db_url: str, store: ObjectStore, job_id: str) -> bool:
    """Delete an ended job's objects and row; False (nothing removed) if it has not ended."""
    if not jobstate.is_finished(db_url, job_id):
        return False
    store.delete_prefix(keys.job_prefix(job_id))
    return jobstate.delete_finished(db_url, job_id)


def remove_expired(db_url: str, store: ObjectStore, days: int, now: datetime) -> list[str]:
    """Remove jobs that ended more than `days` days before `now` (0: keep every job)."""
    if days <= 0:
        return []
    expired = jobstate.finished_before(db_url, now - timedelta(days=days), BATCH)
    return [job_id for job_id in expired if remove_finished(db_url, store, job_id)]


__all__ = ["BATCH", "remove_expired", "remove_finished"]
