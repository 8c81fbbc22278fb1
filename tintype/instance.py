"""The record a running `tintype run` leaves in its data folder, and how others find it.

Why: `tintype restore` on a folder that a `tintype run` already serves needs no workers of
its own. Starting two more model processes would cost seconds and memory and compete
with the running ones for the same queue; submitting to the running deployment costs
nothing. The record (`run.json`: pid, web address, start time and the services it uses)
is written once the web answers and removed when `tintype run` exits. A record left by a
run that crashed is recognised as stale: its process is gone, or its web does not
answer `/healthz`.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from tintype.settings import Settings

RUN_FILE = "run.json"
HEALTH_TIMEOUT = 2.0  # seconds a live web takes at most to answer /healthz


@dataclass(frozen=True)
class Instance:
    """A `tintype run` as its record describes it."""

    pid: int
    url: str
    started_at: float
    database_url: str
    broker_url: str
    storage_url: str

    def same_services(self, settings: Settings) -> bool:
        """Whether a job submitted with `settings` reaches this run's workers and its
        results are where this run keeps them."""
        return (self.database_url, self.broker_url, self.storage_url) == (
            settings.database_url, settings.broker_url, settings.storage_url)


def record_path(data_dir: Path) -> Path:
    return data_dir / RUN_FILE


def web_url(host: str, port: int) -> str:
    """The address a client on this machine reaches a server listening on host:port by."""
    target = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)
    return f"http://{target}:{port}"


def write_record(settings: Settings, url: str) -> Path:
    """Write this process's record atomically (a reader never sees half of it)."""
    record = Instance(os.getpid(), url, time.time(), settings.database_url, settings.broker_url,
                      settings.storage_url)
    path = record_path(settings.data_dir)
    fd, partial = tempfile.mkstemp(dir=settings.data_dir, prefix=f".{RUN_FILE}.", suffix=".part")
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(record), fh)
    os.replace(partial, path)
    return path


def remove_record(data_dir: Path) -> None:
    """Remove the record if it is this process's (a later run may have replaced it)."""
    path = record_path(data_dir)
    found = read_record(path)
    if found is not None and found.pid == os.getpid():
        path.unlink(missing_ok=True)


def read_record(path: Path) -> Instance | None:
    try:
        return Instance(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):  # none, half-gone or not ours
        return None


def find_running(data_dir: Path) -> Instance | None:
    """The live `tintype run` of `data_dir`, or None (no record, or a stale one)."""
    found = read_record(record_path(data_dir))
    if found is None or not pid_alive(found.pid) or not answers(found.url):
        return None
    return found


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def answers(url: str, timeout: float = HEALTH_TIMEOUT) -> bool:
    """Whether a tintype web serves at `url` now (a reused pid would not answer)."""
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False
