"""The one Celery app every process uses: web (to send), CPU workers and GPU workers.

Start a CPU worker with `celery -A tintype.tasks.celery_app worker -Q cpu`; GPU workers use
`celery -A tintype.gpu_workers.worker worker -Q gpu`, which registers the model tasks on the
same app. GPU tasks are sent by name, so this module never imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import worker_process_init
from kombu import Queue

from tintype.storage.db import dispose_engines
from tintype.settings import Settings, get_settings


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
        "broker_connection_retry_on_startup": True,
        "worker_max_tasks_per_child": 200,
        "result_expires": 24 * 3600,
        "result_extended": False,
        # Job state lives in the database; nothing waits on task results.
        "task_ignore_result": True,
        "beat_schedule": {
            "reconcile": {"task": "tasks.reconcile", "schedule": settings.reconcile_seconds},
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
        }
        # A broker without broadcast: revoke cannot reach workers, so tasks also check
        # the job's status in the database before and during work.
        config["worker_enable_remote_control"] = False
    else:
        visibility = longest_task + 600
        config["broker_transport_options"] = {"visibility_timeout": visibility}
        config["result_backend_transport_options"] = {"visibility_timeout": visibility}
    if settings.result_backend.startswith("db+sqlite"):
        Path(settings.result_backend.split("///", 1)[-1]).parent.mkdir(parents=True, exist_ok=True)
    return config


def make_celery(settings: Settings) -> Celery:
    broker = settings.broker_url
    if settings.is_embedded_broker:
        from tintype.tasks import fs_transport

        broker = fs_transport.register()
    app = Celery("tintype", broker=broker, backend=settings.result_backend)
    app.conf.update(celery_config(settings))
    app.conf.include = ["tintype.tasks.pipeline"]
    return app


@worker_process_init.connect
def _after_fork(**_kwargs: Any) -> None:
    """Each pool process opens its own database connections."""
    dispose_engines()


app = make_celery(get_settings())


def send(task: str, *args: object) -> str:
    """Send a task by name; returns its id. No result is ever read (job state lives in the
    database), so sending never touches the result backend: only the broker must answer."""
    return app.send_task(task, args=args, ignore_result=True).id
