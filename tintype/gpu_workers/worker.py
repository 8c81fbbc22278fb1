"""Entry point of a GPU-pool worker: `celery -A tintype.gpu_workers.worker worker -Q gpu -c 1`.

Builds the app from this process's settings with the model tasks, and loads the
configured models once in each pool process, after the fork; with several pool
processes (`-c N`, see gpu_workers.devices) each takes its own GPU, where there are any.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from billiard.process import current_process
from celery.signals import worker_process_init

from tintype.gpu_workers import devices
from tintype.monitoring import worker as monitoring
from tintype.queue import drain
from tintype.queue.app import make_celery, settings_of
from tintype.settings import load_settings
from tintype.telemetry import record_gpu

GPU_TASKS = ("tintype.gpu_workers.tasks", "tintype.gpu_workers.plan_colour")

app = make_celery(load_settings(), include=GPU_TASKS)
monitoring.install(app, "gpu")
drain.install(app)  # the worker registry row and the graceful drain (SIGTERM, tintype drain)
__all__ = ["app"]
log = logging.getLogger(__name__)


@worker_process_init.connect
def _load_models(**_kwargs: Any) -> None:
    """Build this process's model registry from the settings, after the fork, and load
    the default models into it so the first chunk does not pay for loading them.
    The GPU is chosen first: CUDA reads CUDA_VISIBLE_DEVICES when torch first uses it."""
    index = int(getattr(current_process(), "index", 0) or 0)  # billiard numbers pool processes 0..N-1
    gpu = devices.pin_this_process(index)

    import torch

    from tintype.gpu_workers.masks import SCRATCH_MODEL
    from tintype.gpu_workers.models.registry import ModelError, configure

    settings = settings_of(app)
    threads = settings.torch_threads or devices.usable_cores()
    torch.set_num_threads(threads)
    log.info("pool process %d (pid %d): %s, %d torch thread(s)", index, os.getpid(),
             f"GPU {gpu}" if gpu is not None else "no GPU", threads)
    registry = configure(settings)
    for name in (settings.colorize_model, settings.inpaint_model, SCRATCH_MODEL):
        try:
            registry.get(name)
        except ModelError:
            # The worker stays up: jobs that need this model fail with this message,
            # jobs that use other models still run (and scratch detection uses its filters).
            log.exception("model %s could not be loaded", name)
    record_gpu()
