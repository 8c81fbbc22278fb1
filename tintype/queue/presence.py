"""Worker heartbeats in the database: which worker processes are alive, per pool.

The scaling signal reports the task slots of the workers seen alive next to the work
waiting and running. The database is the one place every process can reach whatever the
broker (Redis, the embedded folder, anything else), so the heartbeat is a row there,
written by each worker's main process every HEARTBEAT_SECONDS.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from tintype.storage.db import session_scope
from tintype.storage.models import WorkerHeartbeat, utcnow

log = logging.getLogger(__name__)
FORGET_AFTER = timedelta(days=1)  # rows of workers that died are removed after this
# A worker is alive while its last beat is younger than this many HEARTBEAT_SECONDS: the
# beat runs in the worker's main process, never behind a task, so three missed ones mean
# it is gone (killed, or cut off from the database).
ALIVE_BEATS = 3


def beat(url: str, name: str, pool: str, slots: int) -> None:
    """Record that worker `name` is alive now (insert or refresh its row)."""
    now = utcnow()
    with session_scope(url) as s:
        row = s.get(WorkerHeartbeat, name)
        if row is None:
            s.add(WorkerHeartbeat(name=name, pool=pool, slots=slots, host=socket.gethostname(),
                                  pid=os.getpid(), started_at=now, seen_at=now))
        else:
            row.pool, row.slots, row.seen_at = pool, slots, now
        s.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.seen_at < now - FORGET_AFTER))


def leave(url: str, name: str) -> None:
    """A worker that stops cleanly removes its row at once."""
    with session_scope(url) as s:
        s.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.name == name))


def alive(url: str, since: datetime) -> dict[str, tuple[int, int]]:
    """(workers, slots) per pool of the workers seen since `since`."""
    with session_scope(url) as s:
        rows = s.execute(select(WorkerHeartbeat.pool, func.count(), func.coalesce(func.sum(WorkerHeartbeat.slots), 0))
                         .where(WorkerHeartbeat.seen_at >= since).group_by(WorkerHeartbeat.pool)).all()
    return {pool: (int(workers), int(slots)) for pool, workers, slots in rows}


class Heartbeat:
    """A daemon thread that beats for one worker until stopped; a failed beat is logged
    and the next one tries again (a database blip must not stop the worker)."""

    def __init__(self, url: str, name: str, pool: str, slots: int, every: float) -> None:
        self.url, self.name, self.pool, self.slots, self.every = url, name, pool, slots, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tintype-presence", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.every + 5)
        try:
            leave(self.url, self.name)
        except Exception:  # noqa: BLE001 - the row ages out instead
            log.warning("could not remove the heartbeat row of %s", self.name, exc_info=True)

    def _run(self) -> None:
        while True:
            try:
                beat(self.url, self.name, self.pool, self.slots)
            except Exception:  # noqa: BLE001 - reported, and the next beat tries again
                log.warning("worker heartbeat failed", exc_info=True)
            if self._stop.wait(self.every):
                return
