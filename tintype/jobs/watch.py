"""Cheap reads for watching jobs change (the web's event streams poll these).

A stream asks one small question per poll: "what is this job's version?" (four columns
of one row) or "which of this owner's jobs changed since then?" (an index-friendly range
on updated_at). Only when the answer changed does it load the whole row and the chunk
history for the pace (tintype.jobs.pace).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select

from tintype.jobs.pace import Pace, Sample, estimate
from tintype.storage.db import session_scope
from tintype.storage.models import TERMINAL, Chunk, Job, as_utc, utcnow

DONE = "done"


@dataclass(frozen=True)
class Version:
    """What a watcher compares between polls: any change in it is worth an event."""

    status: str
    stage: str
    chunks_done: int
    chunks_total: int
    updated_at: datetime

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def event_id(self) -> str:
        """A stable id for the SSE `id:` line: the same state gives the same id, so a
        reconnecting client that sends it back as Last-Event-ID is not sent it again."""
        millis = int(as_utc(self.updated_at).timestamp() * 1000)
        return f"{millis}.{self.chunks_done}.{self.chunks_total}.{self.status}.{self.stage}"


def version(url: str, job_id: str) -> Version | None:
    """The job's version, None once it is gone (deleted)."""
    with session_scope(url) as s:
        row = s.execute(select(Job.status, Job.stage, Job.chunks_done, Job.chunks_total, Job.updated_at)
                        .where(Job.id == job_id)).one_or_none()
    if row is None:
        return None
    return Version(row.status, row.stage, row.chunks_done or 0, row.chunks_total or 0, as_utc(row.updated_at))


def pace(url: str, job_id: str, now: datetime | None = None) -> Pace:
    """Frames per second and time left from the job's chunk rows (none for a photo)."""
    with session_scope(url) as s:
        rows = s.execute(select(Chunk.count, Chunk.status, Chunk.seconds, Chunk.updated_at)
                         .where(Chunk.job_id == job_id)).all()
    total = sum(r.count for r in rows)
    samples = [Sample(r.count, as_utc(r.updated_at), r.seconds) for r in rows if r.status == DONE]
    return estimate(samples, total, now or utcnow())


def changed_since(url: str, owner: str | None, since: datetime, limit: int = 50,
                  after_id: str | None = None) -> list[Job]:
    """Jobs (of `owner`; every owner's for None) whose row changed at or after `since`,
    oldest change first (then by id), at most `limit`. With `after_id`, the cursor is the
    pair (since, after_id) and only rows after it come: a watcher moves it to the last
    row's pair, so a burst larger than `limit`, even of one timestamp, arrives over the
    next polls instead of the same rows coming back."""
    after = Job.updated_at >= since if after_id is None else or_(
        Job.updated_at > since, and_(Job.updated_at == since, Job.id > after_id))
    query = select(Job).where(after).order_by(Job.updated_at, Job.id).limit(limit)
    if owner is not None:
        query = query.where(Job.owner == owner)
    with session_scope(url) as s:
        return list(s.scalars(query))


__all__ = ["Version", "version", "pace", "changed_since"]
