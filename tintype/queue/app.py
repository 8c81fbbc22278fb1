"""The Celery app factory every process uses: web and CLI (to send), CPU and GPU workers.

An app is built from a Settings object and carries it, so a task reads its settings from
the app it runs on, never from import-time globals. Worker entry points are the tiny
modules `tintype.tasks.worker` (CPU pool, beat, flower) and `tintype.gpu_workers.worker`
(GPU pool); each builds its app from `load_settings()` and names the task modules it runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable

from celery import Celery
from celery.signals import before_task_publish, worker_process_init
from kombu import Queue

from tintype.queue import fs_transport, messages, redis_transport
from tintype.queue.broker_scan import SENT_AT
from tintype.settings import Settings
from tintype.storage.db import dispose_engines
from tintype.storage.objects import ObjectStore, store_from_settings

PROBE_TIME_LIMIT = 900  # seconds; probing and the poster frame never need long
_SETTINGS, _STORE = "tintype_settings", "_tintype_store"


def time_limits(settings: Settings) -> dict[str, dict[str, int]]:
    """Per-task time limits as Celery annotations: read when the app is built, so a
    worker started with other settings gets other limits (nothing frozen at import)."""
    long_task = {"soft_time_limit": settings.finalize_time_limit, "time_limit": settings.finalize_time_limit + 60}
    chunk = {"soft_time_limit": settings.chunk_soft_time_limit, "time_limit": settings.chunk_time_limit}
    return {
        messages.PROBE: {"soft_time_limit": PROBE_TIME_LIMIT, "time_limit": PROBE_TIME_LIMIT + 60},
        messages.TRACK: long_task,
        # Finalize streams while the chunks run, so it lasts as long as the job: it bounds
        # its own wait for each next chunk by FINALIZE_TIME_LIMIT (tintype.tasks.finalize).
        messages.FINALIZE: {},
        messages.CHUNK: chunk,
        messages.IMAGE: chunk,
        messages.PLAN_COLOUR: long_task,
    }


def celery_config(settings: Settings) -> dict[str, Any]:
    longest_task = max(settings.chunk_time_limit, settings.finalize_time_limit)
    config: dict[str, Any] = {
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,  # at-least-once; every task is idempotent
        "task_reject_on_worker_lost": True,  # a killed worker's chunk is redelivered
        "worker_prefetch_multiplier": 1,  # long tasks: reserve only what runs
        "task_track_started": True,
        "task_default_queue": "cpu",
        "task_queues": [Queue("cpu"), Queue("gpu")],
        "task_routes": {"gpu.*": {"queue": "gpu"}, "tasks.*": {"queue": "cpu"},
                        "celery.*": {"queue": "cpu"}},
        "task_annotations": time_limits(settings),
        "broker_connection_retry_on_startup": True,
        # A worker never gives up on the broker (Celery's default is 100 attempts, about
        # an hour): an outage ends, and a worker that exited would need a person.
        "broker_connection_max_retries": None,
        "worker_max_tasks_per_child": 200,
        "result_expires": 24 * 3600,
        "result_extended": False,
        # Job state lives in the database; nothing waits on task results.
        "task_ignore_result": True,
        "beat_schedule": {
            "reconcile": {"task": messages.RECONCILE, "schedule": settings.reconcile_seconds},
        },
    }
    if settings.is_embedded_broker:
        queue_dir = settings.data_dir / "broker"
        for sub in ("queue", "processed", "control"):
            (queue_dir / sub).mkdir(parents=True, exist_ok=True)
        config["broker_transport_options"] = {
            "data_folder_in": str(queue_dir / "queue"),
            "data_folder_out": str(queue_dir / "queue"),
            "processed_folder": str(queue_dir / "processed"),
            "control_folder": str(queue_dir / "control"),  # not ./control in the working directory
            "store_processed": False,
            # kombu sleeps this long after finding the folder empty (its default 1 s made
            # every step of a job wait 0-1 s); listing one folder costs microseconds.
            "polling_interval": settings.broker_poll_seconds,
        }
        # A broker without broadcast: revoke cannot reach workers, so tasks also check
        # the job's status in the database before and during work.
        config["worker_enable_remote_control"] = False
    else:
        visibility = longest_task + 600
        config["broker_transport_options"] = {"visibility_timeout": visibility}
        if settings.broker_url.startswith("redis://"):
            # kombu's Redis transport with the close that outlives a broker outage
            # (tintype.queue.redis_transport); the URL stays redis://.
            config["broker_transport"] = redis_transport.register()
        config["result_backend_transport_options"] = {"visibility_timeout": visibility}
    if settings.result_backend.startswith("db+sqlite"):
        Path(settings.result_backend.split("///", 1)[-1]).parent.mkdir(parents=True, exist_ok=True)
    return config


def make_celery(settings: Settings, include: Iterable[str] = ()) -> Celery:
    """A Celery app for `settings`; `include` names the task modules a worker runs (a
    process that only sends, like the web, includes none)."""
    broker = settings.broker_url
    if settings.is_embedded_broker:
        broker = fs_transport.register()
    app = Celery("tintype", broker=broker, backend=settings.result_backend)
    app.conf.update(celery_config(settings))
    app.conf.include = list(include)
    setattr(app, _SETTINGS, settings)
    return app


def settings_of(app: Celery) -> Settings:
    """The Settings the app was built from."""
    try:
        return getattr(app, _SETTINGS)
    except AttributeError:
        raise RuntimeError("this Celery app was not built by tintype.queue.app.make_celery") from None


def store_of(app: Celery) -> ObjectStore:
    """The app's object store, made on first use (in each pool process, after the fork)."""
    store = getattr(app, _STORE, None)
    if store is None:
        store = store_from_settings(settings_of(app))
        setattr(app, _STORE, store)
    return store


@worker_process_init.connect
def _after_fork(**_kwargs: Any) -> None:
    """Each pool process opens its own database connections."""
    dispose_engines()


@before_task_publish.connect
def _stamp_send_time(headers: dict[str, Any] | None = None, **_kwargs: Any) -> None:
    """Every message tintype publishes carries its send time, so a scrape can tell how
    long the oldest waiting message has waited (the broker itself keeps no such time)."""
    if headers is not None:
        headers.setdefault(SENT_AT, time.time())
