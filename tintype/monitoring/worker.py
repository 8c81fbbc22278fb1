"""What every Celery worker process adds for operators: /metrics on METRICS_PORT (its
pool processes summed), a heartbeat row for the scaling signal, per-task counters, and
the job/chunk/stage/worker context of every log line (docs/metrics.md).

`install(app, pool)` is called by the two worker entry modules; the hooks run in the
worker's main process (start, ready, shutdown) and in each pool process (tasks).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Celery, signals
from prometheus_client import start_http_server
from prometheus_client.multiprocess import mark_process_dead

from tintype import telemetry as metrics
from tintype.monitoring import exposition, logs
from tintype.queue.app import settings_of

log = logging.getLogger(__name__)


class WorkerHooks:
    """Signal handlers bound to one worker's app and pool."""

    def __init__(self, app: Celery, pool: str) -> None:
        self.app, self.pool = app, pool
        self.settings = settings_of(app)
        self.started: dict[str, tuple[float, Any]] = {}  # task id → (start, log context token)

    def connect(self) -> None:
        if self.settings.log_format == "json":
            signals.after_setup_logger.connect(logs.on_celery_logger_setup, weak=False)
            signals.after_setup_task_logger.connect(logs.on_celery_logger_setup, weak=False)
        signals.worker_init.connect(self.on_init, weak=False)
        signals.worker_ready.connect(self.on_ready, weak=False)
        signals.worker_process_shutdown.connect(self.on_process_shutdown, weak=False)
        signals.task_prerun.connect(self.on_task_start, weak=False)
        signals.task_postrun.connect(self.on_task_end, weak=False)

    def on_init(self, **_kwargs: Any) -> None:
        """Main process, before the pool forks: drop an earlier run's metric files."""
        exposition.forget_other_processes(self.settings.metrics_dir)

    def on_ready(self, sender: Any = None, **_kwargs: Any) -> None:
        """Main process, pool started: serve /metrics (the worker's row in the registry,
        which the scaling signal counts, is tintype.queue.drain's)."""
        if self.settings.metrics_port and self.settings.metrics_dir is None:
            log.error("METRICS_PORT is set but PROMETHEUS_MULTIPROC_DIR is not: the pool processes' metrics "
                      "cannot be summed, so none are served (docs/metrics.md)")
        elif self.settings.metrics_port:
            try:
                start_http_server(self.settings.metrics_port, registry=exposition.process_registry())
                log.info("metrics on port %s", self.settings.metrics_port)
            except OSError:  # the port is taken: the worker still works, unwatched
                log.exception("cannot serve metrics on port %s", self.settings.metrics_port)

    def on_process_shutdown(self, pid: int | None = None, **_kwargs: Any) -> None:
        """A pool process exits: its live gauges (GPU memory) stop counting."""
        if self.settings.metrics_dir is not None and pid:
            mark_process_dead(pid, str(self.settings.metrics_dir))

    def on_task_start(self, task_id: str = "", task: Any = None, args: Any = (), **_kwargs: Any) -> None:
        name = getattr(task, "name", "") or ""
        job_id, chunk = _job_and_chunk(name, args)
        token = logs.bind(job_id=job_id, chunk=chunk, stage=name.rsplit(".", 1)[-1], task_id=task_id,
                          worker=getattr(getattr(task, "request", None), "hostname", None), pool=self.pool)
        self.started[task_id] = (time.monotonic(), token)

    def on_task_end(self, task_id: str = "", task: Any = None, state: str | None = None, **_kwargs: Any) -> None:
        began, token = self.started.pop(task_id, (None, None))
        name = getattr(task, "name", "unknown") or "unknown"
        outcome = (state or "unknown").lower()
        metrics.TASKS.labels(name, outcome).inc()
        if began is not None:
            seconds = time.monotonic() - began
            metrics.TASK_DURATION.labels(name).observe(seconds)
            log.info("task finished", extra={"duration_s": round(seconds, 3), "outcome": outcome})
        if token is not None:
            logs.reset(token)


def _job_and_chunk(task: str, args: Any) -> tuple[str | None, int | None]:
    """Every job task's first argument is the job id; a chunk task's second is its index."""
    args = list(args or ())
    job_id = args[0] if args and isinstance(args[0], str) and task != "tasks.reconcile" else None
    chunk = args[1] if task.endswith("process_chunk") and len(args) > 1 else None
    return job_id, chunk


def install(app: Celery, pool: str) -> WorkerHooks:
    """Connect the hooks for a worker of `pool` built on `app`."""
    hooks = WorkerHooks(app, pool)
    hooks.connect()
    return hooks
