"""Starting and stopping the worker and web processes of the embedded mode and the CLI."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from tintype.gpu_workers.devices import PoolPlan, plan_pool
from tintype.settings import Settings

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def worker_command(pool: str, settings: Settings, concurrency: int = 1, beat: bool = False) -> list[str]:
    """The celery command of one pool; `gpu` registers the model tasks, `cpu` never imports torch."""
    module = "tintype.gpu_workers.worker" if pool == "gpu" else "tintype.tasks.worker"
    cmd = [sys.executable, "-m", "celery", "-A", module, "worker", "-Q", pool, "-c", str(concurrency),
           "-n", f"{pool}-{uuid.uuid4().hex[:6]}@%h", "--loglevel", "INFO", "--without-gossip",
           "--without-mingle"]
    if beat:
        settings.data_dir.mkdir(parents=True, exist_ok=True)  # beat's schedule file lives there
        cmd += ["-B", "-s", str(settings.data_dir / "celerybeat-schedule")]
    return cmd


def gpu_plan(settings: Settings, processes: int | None = None) -> PoolPlan:
    """How many model processes the GPU-pool worker runs and with how many torch threads:
    `processes` (`tintype worker gpu -c N`) or GPU_PROCESSES, and TORCH_THREADS, or else
    one per GPU / one single-thread one per core."""
    return plan_pool(settings.gpu_processes if processes is None else processes, settings.torch_threads)


def gpu_env(plan: PoolPlan, env: dict[str, str]) -> dict[str, str]:
    """The environment of a GPU-pool worker run with `plan` (and of the processes beside
    it, which report its task slots): its pool processes read TORCH_THREADS, share out
    the GPUs listed in CUDA_VISIBLE_DEVICES, and the scaling signal counts its slots
    (GPU_WORKER_SLOTS, unless set) as the processes it runs."""
    extra = {"TORCH_THREADS": str(plan.threads), "GPU_WORKER_SLOTS": env.get("GPU_WORKER_SLOTS", str(plan.processes))}
    if plan.gpus:
        extra["CUDA_VISIBLE_DEVICES"] = ",".join(plan.gpus)
    return {**env, **extra}


def web_command(settings: Settings) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-w", "2", "--threads", "4", "-b",
            f"{settings.web_host}:{settings.web_port}", "--timeout", "600", "tintype.web.wsgi:app"]


def check_can_listen(host: str, port: int) -> None:
    """Raise OSError (EADDRINUSE, EACCES, an unknown host) if a server could not listen on
    host:port now. Binds as gunicorn does (SO_REUSEADDR), so a busy port is found before
    anything starts, rather than in web.log after "tintype is running" was printed."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)


def wait_listening(proc: subprocess.Popen, host: str, port: int, timeout: float = 60.0) -> bool:
    """True once host:port accepts connections, False if `proc` (the server) exits first
    or the time runs out: the URL is printed only when it answers."""
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection((target, port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.2)
    return False


def start(cmd: Sequence[str], env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
    """Start a process in its own group so stop() can end it with its children."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (kept open for the child)
    return subprocess.Popen(list(cmd), env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def exit_on_sigterm() -> None:
    """SIGTERM (systemd, `docker stop`, `kill`) unwinds like Ctrl-C, so the `finally` that
    stops the children runs instead of leaving them orphaned."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


def stop(procs: Sequence[subprocess.Popen], grace: float = 15.0) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def kill(procs: Sequence[subprocess.Popen], timeout: float = 5.0) -> None:
    """End processes with everything they started, at once (SIGKILL to each group).

    For workers whose job is over or abandoned (`tintype restore`): a Celery warm or cold
    shutdown takes 5-15 s even when idle (the pool child is re-forked and reloads its
    model, a master may hang), and nothing they would finish is wanted. Each process must
    have been started by start(), in a group of its own; after adopt_orphans(), the
    group's other members are reaped here too, so none is left when this returns."""
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # the group is already gone
            pass
    deadline = time.monotonic() + timeout
    for proc in procs:
        proc.wait()
        _reap_group(proc.pid, deadline)


def adopt_orphans() -> None:
    """Become the reaper of orphaned descendants (Linux; elsewhere nothing changes).

    A worker killed with its pool children leaves them to the reaper; init does it in
    its own time (seconds in some containers, listed as <defunct> meanwhile), this
    process at once in kill()."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _reap_group(pgid: int, deadline: float) -> None:
    """Wait for the killed members of a group that were reparented to this process."""
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:  # none of the group is (any longer) a child of this process
            return
        if pid == 0:
            time.sleep(0.01)


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ctrl-C is ignored while children are being stopped: pressed twice, the second
    would otherwise cut the stopping short and leave a child running."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def sigint_deferred() -> Iterator[None]:
    """Ctrl-C waits for the end of a few steps that must happen together (a result renamed
    into place and the ledger line naming it): cut between them, a folder would hold a
    result its ledger and summary call not done. Off the main thread (signals cannot be
    handled there) the steps just run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if pending:
            signal.raise_signal(signal.SIGINT)  # handled now, as it would have been


def child_env(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TINTYPE_DATA_DIR", str(settings.data_dir))
    env["PYTHONUNBUFFERED"] = "1"
    # torch's OpenMP threads spin while waiting; on CPUs shared with the web server and
    # ffmpeg that collapses throughput (measured: 1.5 vs 9.9 frames/s), so they sleep.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.update(extra or {})
    return env


def metrics_env(directory: Path, port: int = 0) -> dict[str, str]:
    """The environment one process group needs for its metrics: its own, empty
    prometheus_client multiprocess directory (web and workers must not share one, and
    files of an earlier run would be summed in) and the port a worker serves them on
    (0: none). See docs/metrics.md."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return {"PROMETHEUS_MULTIPROC_DIR": str(directory), "METRICS_PORT": str(port)}


class Supervisor:
    """The processes of `tintype run`, each started again when it exits unexpectedly.

    A process started with `restart=True` that exits non-zero (crashed, killed, gave up
    on the broker) is started again after a backoff that doubles from `first_delay` up
    to `max_delay`, and falls back to `first_delay` once a run lasted `stable_after`
    seconds; every exit and restart is logged to stderr and to the process's own log. A
    clean exit (0: a drained worker, see `tintype drain`) is logged and left stopped.
    `watch` returns the name of a process that exited and is not restarted, for the
    caller to end everything.
    """

    def __init__(self, env: dict[str, str], logs: Path, first_delay: float = 1.0, max_delay: float = 30.0,
                 stable_after: float = 60.0, say=None) -> None:
        self.env, self.logs = env, logs
        self.first_delay, self.max_delay, self.stable_after = first_delay, max_delay, stable_after
        self.say = say or (lambda line: print(f"tintype: {line}", file=sys.stderr, flush=True))
        self._slots: dict[str, dict] = {}

    @property
    def procs(self) -> list[subprocess.Popen]:
        return [slot["proc"] for slot in self._slots.values() if slot["proc"] is not None]

    def start(self, name: str, cmd: Sequence[str], restart: bool = False,
              env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start `name` (with `env` instead of the supervisor's, if given), logging to
        logs/<name>.log; it is started again after a crash when `restart`."""
        env = self.env if env is None else env
        proc = start(cmd, env, self.logs / f"{name}.log")
        self._slots[name] = {"cmd": list(cmd), "env": env, "restart": restart, "proc": proc,
                             "began": time.monotonic(), "delay": self.first_delay, "due": None, "restarts": 0}
        return proc

    def restarts(self, name: str) -> int:
        return self._slots[name]["restarts"]

    def watch(self, every: float = 1.0, until: float | None = None) -> str | None:
        """Supervise until a process that is not restarted exits (its name), or until the
        monotonic time `until` (None)."""
        while until is None or time.monotonic() < until:
            ended = self.check()
            if ended is not None:
                return ended
            time.sleep(every)
        return None

    def check(self) -> str | None:
        now = time.monotonic()
        for name, slot in self._slots.items():
            proc = slot["proc"]
            if proc is None:
                if slot["due"] is not None and now >= slot["due"]:
                    self._restart(name, slot)
                continue
            code = proc.poll()
            if code is None:
                continue
            slot["proc"] = None
            if not slot["restart"]:
                self._note(name, f"{name} exited with {code}")
                return name
            if code == 0:
                self._note(name, f"{name} stopped cleanly (drained); not restarted")
                continue
            if now - slot["began"] >= self.stable_after:
                slot["delay"] = self.first_delay
            slot["due"] = now + slot["delay"]
            self._note(name, f"{name} exited with {code}; starting it again in {slot['delay']:g} s")
            slot["delay"] = min(self.max_delay, slot["delay"] * 2)
        return None

    def stop(self, grace: float = 15.0) -> None:
        stop(self.procs, grace)

    def _restart(self, name: str, slot: dict) -> None:
        slot["proc"] = start(slot["cmd"], slot["env"], self.logs / f"{name}.log")
        slot["began"], slot["due"] = time.monotonic(), None
        slot["restarts"] += 1
        self._note(name, f"{name} started again (restart {slot['restarts']})")

    def _note(self, name: str, line: str) -> None:
        self.say(line)
        with open(self.logs / f"{name}.log", "a") as log:
            log.write(f"[tintype run] {time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")
