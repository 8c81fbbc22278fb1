"""Entry point of the CPU pool, beat and flower: `celery -A tintype.tasks.worker worker -Q cpu`.

Builds the app from this process's settings and names the CPU task modules; nothing
here imports torch (GPU tasks are sent by name).
"""

from __future__ import annotations

from tintype.monitoring import worker as monitoring
from tintype.queue import drain
from tintype.queue.app import make_celery
from tintype.settings import load_settings

CPU_TASKS = ("tintype.tasks.probe", "tintype.tasks.track", "tintype.tasks.finalize", "tintype.tasks.reconcile")

app = make_celery(load_settings(), include=CPU_TASKS)
monitoring.install(app, "cpu")
drain.install(app)  # the worker registry row and the graceful drain (SIGTERM, tintype drain)
__all__ = ["app"]
