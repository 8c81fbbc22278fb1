"""Starting and stopping the worker and web processes of the embedded mode and the CLI."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Sequence

from tintype.settings import Settings


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


def web_command(settings: Settings) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-w", "2", "--threads", "4", "-b",
            f"{settings.web_host}:{settings.web_port}", "--timeout", "600", "tintype.web.wsgi:app"]


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
