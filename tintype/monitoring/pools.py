"""The scaling signal: how many workers each pool needs now, from the database and the
broker together, never from the queue length alone (docs/metrics.md).

A queue-length scaler sees only messages still waiting; while every chunk is being
processed the list is empty and it would scale the pool to zero under running work. Here
the work a pool has is what waits (in the broker, or pending in the database) plus what
runs (claimed work with a live heartbeat in the database).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from tintype.jobs import workload
from tintype.queue.broker_scan import QueueDepth, queue_depths
from tintype.settings import Settings
from tintype.storage import workers as registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolStatus:
    waiting: int
    waiting_in_broker: int | None  # None: the broker could not be read
    waiting_in_database: int
    running: int
    oldest_waiting_seconds: float | None
    workers_alive: int
    slots_alive: int
    slots_per_worker: int

    @property
    def workers_needed(self) -> int:
        return math.ceil((self.waiting + self.running) / self.slots_per_worker)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "workers_needed": self.workers_needed}


@dataclass(frozen=True)
class Snapshot:
    """One reading of the database and the broker; `queues` is None when the broker
    could not be read, `work` None when the database could not."""

    measured_at: datetime
    queues: dict[str, QueueDepth] | None
    work: workload.Workload | None
    alive: dict[str, tuple[int, int]]
    slots_per_worker: dict[str, int]

    def pools(self) -> dict[str, PoolStatus]:
        return {pool: self._pool(pool) for pool in workload.POOLS} if self.work is not None else {}

    def _pool(self, pool: str) -> PoolStatus:
        depth = self.queues.get(pool) if self.queues is not None else None
        work = self.work.pools[pool]
        in_broker = depth.waiting if depth is not None else None
        oldest = depth.age(self.measured_at.timestamp()) if depth is not None else None
        workers, slots = self.alive.get(pool, (0, 0))
        return PoolStatus(max(in_broker or 0, work.waiting), in_broker, work.waiting, work.running, oldest,
                          workers, slots, self.slots_per_worker[pool])


def snapshot(settings: Settings, broker_url: str, broker_options: dict[str, Any], now: datetime) -> Snapshot:
    """Read the broker and the database once; a source that fails is left out (logged)."""
    slots = {"gpu": settings.gpu_worker_slots, "cpu": settings.cpu_worker_slots}
    return Snapshot(now, _broker(broker_url, broker_options), _database(settings, now), _alive(settings, now), slots)


def _broker(url: str, options: dict[str, Any]) -> dict[str, QueueDepth] | None:
    try:
        return queue_depths(url, workload.POOLS, options)
    except Exception:  # noqa: BLE001 - a broker outage must not break the scrape
        log.warning("could not read the broker's queues", exc_info=True)
        return None


def _database(settings: Settings, now: datetime) -> workload.Workload | None:
    try:
        return workload.measure(settings.database_url, now, settings.lease_seconds)
    except Exception:  # noqa: BLE001 - reported as tintype_source_up{source="database"} 0
        log.warning("could not read the workload from the database", exc_info=True)
        return None


def _alive(settings: Settings, now: datetime) -> dict[str, tuple[int, int]]:
    try:
        return registry.alive(settings.database_url, now - timedelta(seconds=registry.ALIVE_BEATS *
                                                                      settings.heartbeat_seconds))
    except Exception:  # noqa: BLE001 - as above
        log.warning("could not read worker heartbeats", exc_info=True)
        return {}
