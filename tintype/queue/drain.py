"""A worker's row in the registry, and its graceful drain.

Each worker entry point calls `install(app)`. The worker then keeps its row in the
`workers` table (tintype.storage.workers): registered when ready, beaten every
HEARTBEAT_SECONDS from a thread of the main process, with what each pool process runs,
removed on exit. On that beat it also reads whether an operator asked it to drain
(`tintype drain HOST`), and if so sends itself SIGTERM, so both roads are one:

SIGTERM → Celery's warm shutdown: the worker stops consuming at once (prefetch 1 and
late acks mean it holds no message beyond the ones running) and waits for running
tasks. Here a thread bounds that wait to DRAIN_SECONDS; work still running then is
handed back: a chunk is set pending again without counting the attempt, a finalize
gives up its lease, and the pool process is killed, which with
`task_reject_on_worker_lost` requeues its message at once (Redis and the folder broker
alike) rather than after the visibility timeout or the reconciler's lease. Chunk results
are idempotent (a deterministic object key, a compare-and-set count), so a chunk that
ran partly here and again elsewhere is still done exactly once.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_ready, worker_shutdown, worker_shutting_down

from tintype.jobs import state as jobstate
from tintype.queue.app import settings_of
from tintype.queue.messages import CHUNK, FINALIZE, RECONCILE
from tintype.storage import workers as registry
from tintype.storage.models import utcnow

log = logging.getLogger(__name__)


class WorkerLife:
    """The registry row and the drain of the worker process running `app`."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.name: str | None = None
        self.stopping = threading.Event()
        self.drain_asked = False

    @property
    def db_url(self) -> str:
        return settings_of(self.app).database_url

    # -- main process ------------------------------------------------------------------

    def on_ready(self, sender: Any = None, **_kwargs: Any) -> None:
        self.name = sender.hostname
        queues = ",".join(sorted(self.app.amqp.queues.consume_from or self.app.amqp.queues))
        slots = int(getattr(getattr(sender, "controller", None), "concurrency", 0) or 1)
        registry.register(self.db_url, self.name, socket.gethostname(), queues, os.getpid(), slots)
        threading.Thread(target=self._beat, name="worker-registry", daemon=True).start()
        log.info("worker %s registered (pool %s)", self.name, queues)

    def _beat(self) -> None:
        every = settings_of(self.app).heartbeat_seconds
        while not self.stopping.wait(every):
            try:
                drain = registry.beat(self.db_url, self.name)
            except Exception:  # noqa: BLE001 - a database blip must not end the worker
                log.warning("worker registry beat failed", exc_info=True)
                continue
            if drain and not self.drain_asked:
                self.drain_asked = True
                log.warning("an operator asked worker %s to drain: stopping after its running work", self.name)
                os.kill(os.getpid(), signal.SIGTERM)

    def on_shutting_down(self, **_kwargs: Any) -> None:
        """Runs in the signal handler: start the bounded drain, never block here."""
        if self.name is not None and not self.stopping.is_set():
            threading.Thread(target=self._drain, name="worker-drain", daemon=True).start()

    def _drain(self) -> None:
        from celery.worker.state import active_requests

        seconds = settings_of(self.app).drain_seconds
        try:
            registry.mark_draining(self.db_url, self.name)
        except Exception:  # noqa: BLE001
            log.warning("could not mark worker %s draining", self.name, exc_info=True)
        log.warning("draining: no new work; running work has %g s to finish", seconds)
        deadline = time.monotonic() + seconds
        while active_requests and time.monotonic() < deadline and not self.stopping.is_set():
            time.sleep(0.2)
        for request in tuple(active_requests):
            self.give_back(request)

    def give_back(self, request: Any) -> None:
        """Hand a running task's message back to the queue now (see the module doc)."""
        args = list(request.args or ())
        try:
            if request.name == CHUNK and len(args) >= 2:
                jobstate.chunk_given_back(self.db_url, args[0], int(args[1]))
            elif request.name == FINALIZE and args:
                jobstate.release_finalize(self.db_url, args[0])
        except Exception:  # noqa: BLE001 - the kill below still hands the message back
            log.warning("could not record the give-back of %s%s", request.name, tuple(args), exc_info=True)
        pid = request.worker_pid
        log.warning("drain time is up: giving %s%s back to the queue (pool process %s)", request.name,
                    tuple(args), pid)
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)  # task_reject_on_worker_lost requeues its message at once
            except ProcessLookupError:
                pass

    def on_shutdown(self, **_kwargs: Any) -> None:
        self.stopping.set()
        if self.name is not None:
            try:
                registry.remove(self.db_url, self.name)
            except Exception:  # noqa: BLE001
                log.warning("could not remove worker %s from the registry", self.name, exc_info=True)

    # -- pool processes ----------------------------------------------------------------

    def on_task_start(self, sender: Any = None, args: Any = None, **_kwargs: Any) -> None:
        if sender is None or sender.name == RECONCILE or not sender.name.startswith(("tasks.", "gpu.")):
            return
        args = list(args or ())
        work = {"task": sender.name, "job": args[0] if args else None,
                "chunk": args[1] if sender.name == CHUNK and len(args) > 1 else None,
                "since": utcnow().isoformat(timespec="seconds")}
        self._record(sender, work)

    def on_task_end(self, sender: Any = None, **_kwargs: Any) -> None:
        if sender is not None and sender.name != RECONCILE and sender.name.startswith(("tasks.", "gpu.")):
            self._record(sender, None)

    def _record(self, task: Any, work: dict[str, Any] | None) -> None:
        name = getattr(task.request, "hostname", None)
        if not name:
            return
        try:
            registry.set_running(self.db_url, name, os.getpid(), work)
        except Exception:  # noqa: BLE001 - bookkeeping never fails the task
            log.warning("could not record the running task in the worker registry", exc_info=True)


def install(app: Celery) -> WorkerLife:
    """Keep this worker's registry row and drain it gracefully (call once per worker app)."""
    life = WorkerLife(app)
    worker_ready.connect(life.on_ready, weak=False)
    worker_shutting_down.connect(life.on_shutting_down, weak=False)
    worker_shutdown.connect(life.on_shutdown, weak=False)
    task_prerun.connect(life.on_task_start, weak=False)
    task_postrun.connect(life.on_task_end, weak=False)
    return life
