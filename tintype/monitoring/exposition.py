"""Rendering /metrics: this process group's own metrics (summed over its processes in
multiprocess mode) plus, for the web, the gauges read from the database and the broker
at scrape time."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from tintype.jobs import workload
from tintype.monitoring import pools
from tintype.settings import Settings


class _Default(Collector):
    """The single-process registry, when no multiprocess directory is set."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def process_registry() -> CollectorRegistry:
    """A registry of this process group's own metrics."""
    registry = CollectorRegistry(auto_describe=False)
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        MultiProcessCollector(registry, path=directory)
    else:
        registry.register(_Default())
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def forget_other_processes(directory: Path | None) -> None:
    """Remove the files of processes of an earlier run of this process group (they would
    be summed into this one's numbers); called by a worker's main process at start."""
    if directory is None or not directory.is_dir():
        return
    own = str(os.getpid())
    for path in directory.glob("*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid != own:
            mark_process_dead(int(pid), str(directory)) if pid.isdigit() else None
            path.unlink(missing_ok=True)


class ScrapeCollector(Collector):
    """Gauges computed when Prometheus scrapes: jobs, chunks, queues and the pools."""

    def __init__(self, settings: Settings, broker_url: str, broker_options: dict[str, Any]) -> None:
        self.settings, self.broker_url, self.broker_options = settings, broker_url, broker_options

    def collect(self) -> Iterator[Metric]:
        now = datetime.now(timezone.utc)
        snap = pools.snapshot(self.settings, self.broker_url, self.broker_options, now)
        counts = _job_counts(self.settings.database_url)
        yield _source_up(snap.queues is not None, snap.work is not None and counts is not None)
        if counts is not None:
            yield _jobs(counts)
        if snap.work is not None:
            yield _family("tintype_chunks", "Chunks of jobs still processing, by state", ["state"],
                          {(state,): n for state, n in snap.work.chunks.items()})
            yield from _pools(snap.pools())
        if snap.queues is not None:
            yield from _queues(snap)

    def describe(self) -> Iterable[Metric]:
        return []  # computed at scrape time: never collect while registering


def _job_counts(url: str) -> dict[tuple[str, str], int] | None:
    try:
        return workload.job_counts(url)
    except Exception:  # noqa: BLE001 - reported as tintype_source_up{source="database"} 0
        return None


def _family(name: str, doc: str, labels: list[str], values: dict[tuple[str, ...], float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def _source_up(broker: bool, database: bool) -> GaugeMetricFamily:
    return _family("tintype_source_up", "1 if this scrape could read the source", ["source"],
                   {("broker",): float(broker), ("database",): float(database)})


def _jobs(counts: dict[tuple[str, str], int]) -> GaugeMetricFamily:
    from tintype.storage.models import KINDS, STATUSES

    values = {(kind, status): float(counts.get((kind, status), 0)) for kind in KINDS for status in STATUSES}
    return _family("tintype_jobs", "Jobs in the database by kind and status", ["kind", "status"], values)


def _pools(status: dict[str, pools.PoolStatus]) -> Iterator[GaugeMetricFamily]:
    fields = {"waiting": "Work waiting for the pool (broker or database, the larger)",
              "running": "Work the pool runs now (live heartbeats)",
              "workers_alive": "Worker processes seen alive",
              "worker_slots_alive": "Task slots of the workers seen alive",
              "workers_needed": "ceil((waiting + running) / slots per worker): the scaling signal"}
    for name, doc in fields.items():
        attribute = "slots_alive" if name == "worker_slots_alive" else name
        yield _family(f"tintype_pool_{name}", doc, ["pool"],
                      {(pool,): float(getattr(s, attribute)) for pool, s in status.items()})


def _queues(snap: pools.Snapshot) -> Iterator[GaugeMetricFamily]:
    now = snap.measured_at.timestamp()
    yield _family("tintype_queue_messages", "Messages waiting in the broker queue", ["queue"],
                  {(queue,): float(depth.waiting) for queue, depth in snap.queues.items()})
    yield _family("tintype_queue_oldest_message_age_seconds", "Age of the oldest waiting message (0: none)",
                  ["queue"], {(queue,): depth.age(now) or 0.0 for queue, depth in snap.queues.items()})
