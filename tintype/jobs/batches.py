"""A batch: many files in one submission, one job per item, one id for them all.

The whole batch is validated before anything is stored: a file intake would refuse
refuses the batch (4xx naming the file), and no object, job or batch row is left. Every
item then becomes an ordinary job (each runs, fails and is fetched on its own); the batch
rows only group them, so its status is counted from its jobs when asked, never kept.
"""

from __future__ import annotations

import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sqlalchemy import select

from tintype.jobs import quotas
from tintype.jobs.intake import (
    IntakeError,
    Submission,
    Validated,
    check_filename,
    enqueue_job,
    job_row,
    put_objects,
    validate,
)
from tintype.settings import Settings
from tintype.storage import keys
from tintype.storage.apikeys import Limits
from tintype.storage.db import session_scope
from tintype.storage.models import STATUSES, Batch, BatchItem, Job
from tintype.storage.objects import ObjectStore

MAX_ITEMS = 1000  # items in one batch; a larger collection is several batches
REMOVED = "removed"  # an item whose job was deleted on its own


@dataclass(frozen=True)
class BatchSource:
    """Where a batch's files came from: "upload" (multipart) or "prefix" (a storage prefix)."""

    kind: str
    prefix: str | None = None


@dataclass
class BatchView:
    """A batch with each item's job (None once that job was removed)."""

    batch: Batch
    items: list[tuple[BatchItem, Job | None]]

    def counts(self) -> dict[str, int]:
        """Items by their job's status; every status named, zero or not."""
        found = Counter(job.status if job is not None else REMOVED for _, job in self.items)
        return {status: found.get(status, 0) for status in (*STATUSES, REMOVED)}


def check_count(count: int) -> None:
    """Refuse an empty batch or one over MAX_ITEMS before any file is read."""
    if count == 0:
        raise IntakeError("a batch needs at least one file: send each as a multipart field 'files'",
                          "empty_batch", 400)
    if count > MAX_ITEMS:
        raise IntakeError(f"a batch holds at most {MAX_ITEMS} items, got {count}; send several batches",
                          "batch_too_large", 413)


def create_batch(subs: list[Submission], source: BatchSource, settings: Settings, store: ObjectStore,
                 db_url: str, enqueue: Callable[[str], str], limits: Limits | None = None,
                 names: list[str] | None = None) -> tuple[str, list[str]]:
    """Validate every item, then store all objects and rows in one go, then enqueue each
    job; a refusal or failure before the enqueue undoes everything. `names`: what each
    item is called in the batch (a prefix's keys), by default its file name. Returns the
    batch id and the job ids in submission order."""
    check_count(len(subs))
    batch_id = uuid.uuid4().hex
    with tempfile.TemporaryDirectory(prefix="tintype-batch-") as tmp:
        checked = [_validated(sub, settings, Path(tmp) / str(n)) for n, sub in enumerate(subs)]
        job_ids = [uuid.uuid4().hex for _ in subs]
        try:
            for job_id, sub, valid in zip(job_ids, subs, checked):
                put_objects(store, job_id, sub, valid)
            _record(db_url, batch_id, source, subs, checked, job_ids, settings, limits,
                    names or [sub.filename for sub in subs])
        except BaseException:
            for job_id in job_ids:
                store.delete_prefix(keys.job_prefix(job_id))
            raise
    for job_id in job_ids:
        enqueue_job(job_id, store, db_url, enqueue)
    return batch_id, job_ids


def _validated(sub: Submission, settings: Settings, scratch: Path) -> Validated:
    """An item checked as a single submission is; a refusal names the item."""
    scratch.mkdir()
    try:
        check_filename(sub.filename)
        return validate(sub, settings, scratch)
    except IntakeError as exc:
        refused = IntakeError(f"{sub.filename}: {exc}", exc.code, exc.status)
        refused.retry_after = getattr(exc, "retry_after", None)
        raise refused from exc


def _record(db_url: str, batch_id: str, source: BatchSource, subs: list[Submission], checked: list[Validated],
            job_ids: list[str], settings: Settings, limits: Limits | None, names: list[str]) -> None:
    """The batch, its items and their jobs in one transaction; quotas are admitted job by
    job inside it (the jobs added before count against the next)."""
    with session_scope(db_url) as s:
        s.add(Batch(id=batch_id, owner=subs[0].owner, source=source.kind, prefix=source.prefix, items=len(subs)))
        for position, (job_id, sub, valid, name) in enumerate(zip(job_ids, subs, checked, names)):
            if limits is not None:
                quotas.admit(s, sub.owner, limits, settings, sub.size)
            s.add(job_row(job_id, sub, valid))
            s.add(BatchItem(batch_id=batch_id, position=position, name=name, job_id=job_id))
            s.flush()


def get_batch(db_url: str, batch_id: str) -> BatchView | None:
    """The batch and its items' jobs, or None."""
    with session_scope(db_url) as s:
        batch = s.get(Batch, batch_id)
        if batch is None:
            return None
        items = list(s.scalars(select(BatchItem).where(BatchItem.batch_id == batch_id)
                               .order_by(BatchItem.position)))
        jobs = {job.id: job for job in s.scalars(select(Job).where(Job.id.in_([i.job_id for i in items])))}
        return BatchView(batch, [(item, jobs.get(item.job_id)) for item in items])
