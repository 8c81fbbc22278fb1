"""Running a command as one measured process tree: wall time, CPU seconds of the whole
tree and the peak memory of each of its processes.

CPU seconds come from the kernel's accounting of reaped children (`getrusage(RUSAGE_CHILDREN)`
before and after), so even processes that lived between two samples (an ffmpeg of a
second) are counted. This process becomes a child subreaper, so the descendants a dying
parent leaves behind are reparented here and reaped (counted) too; any still running
once the command exits are waited for a while, then killed and reported. Peak memory is
each process's own high-water mark (`VmHWM` in /proc/PID/status), sampled every
`every` seconds, so it catches peaks between samples of processes that live that long.
A sample reads /proc once (about 5 ms of CPU here): at 0.5 s, 1 % of one core.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

PR_SET_CHILD_SUBREAPER = 36
LEFTOVER_GRACE_S = 20.0


@dataclass
class TreeRun:
    """What one measured command cost."""

    returncode: int
    launched: float  # wall clock (time.time()) when the command was started
    exited: float  # when the command itself exited
    cpu_seconds: float  # user + system of the command and every descendant
    peak_rss_mb: dict[str, float] = field(default_factory=dict)  # "label pid" → MiB
    leftovers: list[str] = field(default_factory=list)  # descendants still running at exit

    @property
    def wall(self) -> float:
        return self.exited - self.launched

    @property
    def cores_busy(self) -> float:
        return self.cpu_seconds / self.wall if self.wall > 0 else 0.0


def become_subreaper() -> None:
    """Orphaned descendants come to this process (Linux), so they are reaped and counted."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def descendants(root: int) -> list[int]:
    """Every living process below `root` (from /proc, one pass)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def label(pid: int) -> str:
    """A short name for a process: the program and what it runs (celery pool, module)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in args if a]
    if not words:  # exiting (a zombie has no command line): its short name then
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip() or "?"
        except OSError:
            return "?"
    name = Path(words[0]).name
    if "-m" in words:
        module = words[words.index("-m") + 1] if words.index("-m") + 1 < len(words) else ""
        rest = [w for w in words if w in ("restore", "cpu", "gpu") or w.startswith("tintype.")]
        return " ".join([module, *rest[:2]]).strip()
    return name


def _hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class _Sampler:
    def __init__(self, every: float, extra: Callable[[], None] | None) -> None:
        self.every, self.extra = every, extra
        self.peaks: dict[str, float] = {}
        self.names: dict[int, str] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            self.sample()

    def sample(self) -> None:
        for pid in descendants(os.getpid()):
            name = self.names.get(pid) or self.names.setdefault(pid, label(pid))
            hwm = _hwm_mb(pid)
            if hwm is not None:
                key = f"{name} {pid}"
                self.peaks[key] = max(self.peaks.get(key, 0.0), hwm)
        if self.extra is not None:
            self.extra()


def _children_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def _reap_leftovers() -> list[str]:
    """Wait for descendants still alive after the command exited, kill them after a grace."""
    deadline = time.monotonic() + LEFTOVER_GRACE_S
    seen: list[str] = []
    while True:
        alive = descendants(os.getpid())
        if not alive:
            break
        seen = sorted(set(seen) | {f"{label(p)} {p}" for p in alive})
        if time.monotonic() > deadline:
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        _reap_zombies()
        time.sleep(0.1)
    _reap_zombies()
    return seen


def _reap_zombies() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def run_tree(cmd: list[str], env: dict[str, str], log: Path, every: float = 0.5,
             extra: Callable[[], None] | None = None, timeout: float = 3600) -> TreeRun:
    """Run `cmd` (stdout and stderr to `log`) and measure its whole process tree; `extra`
    is called at each sample (e.g. to watch the object store)."""
    become_subreaper()
    _reap_zombies()
    sampler = _Sampler(every, extra)
    cpu_before = _children_cpu()
    with log.open("wb") as out:
        launched = time.time()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        sampler.thread.start()
        try:
            returncode = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            returncode = proc.wait()
        exited = time.time()
    leftovers = _reap_leftovers()
    sampler.stop.set()
    sampler.thread.join(5)
    return TreeRun(returncode, launched, exited, _children_cpu() - cpu_before,
                   {k: round(v, 1) for k, v in sampler.peaks.items()}, leftovers)
