"""The worker registry: each worker process's row, kept by the worker itself.

A worker inserts its row when it is ready (with its pool and task slots, which the
scaling signal counts), beats `seen_at` every HEARTBEAT_SECONDS,
records what each of its pool processes runs, and removes the row when it exits; a row
whose beat stopped belongs to a worker that died. An operator's `tintype drain` sets
`drain_requested_at`, which the worker reads on its next beat. Works the same with the
Redis broker and the embedded folder broker (which has no remote control).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update

from tintype.storage.db import session_scope
from tintype.storage.models import Worker, as_utc, utcnow

FORGET_AFTER = timedelta(days=1)  # rows of workers that died are removed after this
# A worker is alive while its last beat is younger than this many HEARTBEAT_SECONDS: the
# beat runs in the worker's main process, never behind a task, so three missed ones mean
# it is gone (killed, or cut off from the database).
ALIVE_BEATS = 3


@dataclass(frozen=True)
class WorkerView:
    name: str
    host: str
    pool: str
    pid: int
    started_at: datetime
    seen_at: datetime
    running: dict[str, Any]
    drain_requested_at: datetime | None
    draining_since: datetime | None


def register(url: str, name: str, host: str, pool: str, pid: int, slots: int = 1) -> None:
    """This worker is up (a row left by an earlier process of the same name is replaced)."""
    now = utcnow()
    with session_scope(url) as s:
        s.execute(delete(Worker).where(Worker.name == name))
        s.add(Worker(name=name, host=host, pool=pool, slots=slots, pid=pid, started_at=now, seen_at=now,
                     running={}))


def beat(url: str, name: str) -> bool:
    """Touch the row (and forget workers long dead); True when an operator asked this
    worker to drain."""
    now = utcnow()
    with session_scope(url) as s:
        s.execute(update(Worker).where(Worker.name == name).values(seen_at=now))
        s.execute(delete(Worker).where(Worker.seen_at < now - FORGET_AFTER))
        return s.scalar(select(Worker.drain_requested_at).where(Worker.name == name)) is not None


def alive(url: str, since: datetime) -> dict[str, tuple[int, int]]:
    """(workers, task slots) per pool of the workers seen since `since`."""
    with session_scope(url) as s:
        rows = s.execute(select(Worker.pool, func.count(), func.coalesce(func.sum(Worker.slots), 0))
                         .where(Worker.seen_at >= since).group_by(Worker.pool)).all()
    return {pool: (int(workers), int(slots)) for pool, workers, slots in rows}


def set_running(url: str, name: str, pid: int, work: dict[str, Any] | None) -> None:
    """What pool process `pid` runs now (None: nothing); each pool process writes its own entry."""
    with session_scope(url) as s:
        row = s.execute(select(Worker).where(Worker.name == name).with_for_update()).scalar_one_or_none()
        if row is None:
            return
        running = dict(row.running or {})
        if work is None:
            running.pop(str(pid), None)
        else:
            running[str(pid)] = work
        row.running = running


def mark_draining(url: str, name: str) -> None:
    with session_scope(url) as s:
        s.execute(update(Worker).where(Worker.name == name, Worker.draining_since.is_(None))
                  .values(draining_since=utcnow()))


def remove(url: str, name: str) -> None:
    with session_scope(url) as s:
        s.execute(delete(Worker).where(Worker.name == name))


def request_drain(url: str, host: str) -> list[str]:
    """Ask the workers on `host` (a host name, or one worker's node name) to drain; returns
    the node names asked."""
    with session_scope(url) as s:
        names = list(s.scalars(select(Worker.name).where(or_(Worker.host == host, Worker.name == host))))
        s.execute(update(Worker).where(Worker.name.in_(names), Worker.drain_requested_at.is_(None))
                  .values(drain_requested_at=utcnow()))
        return names


def list_workers(url: str) -> list[WorkerView]:
    with session_scope(url) as s:
        rows = s.scalars(select(Worker).order_by(Worker.host, Worker.name)).all()
        return [WorkerView(r.name, r.host, r.pool, r.pid, as_utc(r.started_at), as_utc(r.seen_at),
                           dict(r.running or {}), r.drain_requested_at and as_utc(r.drain_requested_at),
                           r.draining_since and as_utc(r.draining_since)) for r in rows]
