"""One `tintype restore` measured from outside, through its public surfaces only: the
command line, the job's row and chunk rows in the data directory's database, the
workers' JSON logs and the object store's folder.

While the command runs, the object store is watched (every sample of bench.proctree):
the job's intermediates under `storage.keys.work_prefix` (count, bytes, how many are
chunk files) and the first playable MP4 (a result or preview object under the job's
prefix, or the `-o` file), so the figures stay right when finalize starts streaming
earlier or a preview appears. Afterwards the database gives submit and end times and
when each chunk was done, and the logs' "task finished" lines give every task's span
(for the timeline).
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.forward_timer import ENV as FORWARD_ENV
from bench.forward_timer import read_forward_log
from bench.proctree import TreeRun, run_tree

HOOK_DIR = Path(__file__).resolve().parent / "forward_hook"
ROOT = HOOK_DIR.parent.parent


def bench_env(forward_log: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a measured run, the naive script's and tintype's alike: JSON
    logs, the forward timer first on the path, and OpenMP threads that sleep while they
    wait, as tintype sets for its workers (tintype.processes.child_env): spinning threads
    collapse a process's throughput on a busy machine, which would handicap the script."""
    paths = [str(HOOK_DIR), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, "PYTHONPATH": os.pathsep.join(paths),
            FORWARD_ENV: str(forward_log), "LOG_FORMAT": "json", **(extra or {})}


def _epoch(text: str | None) -> float | None:
    """A database time (UTC, with or without an offset) as epoch seconds."""
    if not text:
        return None
    value = datetime.fromisoformat(str(text))
    return value.replace(tzinfo=value.tzinfo or timezone.utc).timestamp()


def is_playable_mp4(path: Path) -> bool:
    """True when the file is an MP4 whose boxes include an index (moov) and media (mdat or
    moof): enough for a player to start. Reads only box headers."""
    try:
        with path.open("rb") as fh:
            seen: set[bytes] = set()
            while True:
                header = fh.read(8)
                if len(header) < 8:
                    break
                size, kind = int.from_bytes(header[:4], "big"), header[4:]
                seen.add(kind)
                if size == 1:
                    size = int.from_bytes(fh.read(8), "big") - 8
                elif size == 0:
                    break
                fh.seek(size - 8, os.SEEK_CUR)
    except OSError:
        return False
    return b"moov" in seen and bool(seen & {b"mdat", b"moof"})


@dataclass
class StoreWatch:
    """Peaks of the intermediates and the first playable output, sampled during a run."""

    objects: Path
    output: Path
    peak_bytes: int = 0
    peak_objects: int = 0
    peak_chunks: int = 0
    first_playable: float | None = None
    playable_name: str | None = None
    series: list[tuple[float, int, int]] = field(default_factory=list)  # (time, bytes, chunk files)

    def sample(self) -> None:
        import time

        from tintype.storage import keys

        now = time.time()
        total = count = chunks = 0
        jobs = self.objects / "jobs"
        for job in (jobs.iterdir() if jobs.is_dir() else []):
            work = self.objects / keys.work_prefix(job.name)
            for path in (work.rglob("*") if work.is_dir() else []):
                if path.is_file() and not path.name.startswith("."):
                    try:
                        total += path.stat().st_size
                    except OSError:
                        continue
                    count += 1
                    chunks += path.name.startswith("chunk-")
            if self.first_playable is None:
                self._look_for_playable(job, now)
        if self.first_playable is None and self.output.exists() and is_playable_mp4(self.output):
            self.first_playable, self.playable_name = now, "cli output"
        self.peak_bytes, self.peak_objects = max(self.peak_bytes, total), max(self.peak_objects, count)
        self.peak_chunks = max(self.peak_chunks, chunks)
        self.series.append((now, total, chunks))

    def _look_for_playable(self, job: Path, now: float) -> None:
        for path in job.iterdir():
            if path.suffix == ".mp4" and not path.name.startswith(".") and is_playable_mp4(path):
                self.first_playable, self.playable_name = now, path.name
                return


def read_job(data_dir: Path) -> dict[str, Any]:
    """The one job of a CLI data directory: its row, and its chunks' done times."""
    with sqlite3.connect(data_dir / "tintype.db") as db:
        db.row_factory = sqlite3.Row
        job = db.execute("SELECT * FROM jobs ORDER BY created_at DESC LIMIT 1").fetchone()
        if job is None:
            raise RuntimeError(f"no job in {data_dir / 'tintype.db'}")
        chunks = db.execute("SELECT * FROM chunks WHERE job_id = ?", (job["id"],)).fetchall()
    return {"id": job["id"], "status": job["status"], "error": job["error"],
            "created": _epoch(job["created_at"]), "started": _epoch(job["started_at"]),
            "finished": _epoch(job["finished_at"]), "timings": json.loads(job["timings"] or "{}"),
            "chunks_total": job["chunks_total"],
            "chunks_done_at": sorted(_epoch(c["updated_at"]) for c in chunks if c["status"] == "done")}


def read_task_spans(logs: Path) -> list[dict[str, Any]]:
    """Every "task finished" line of the JSON logs as {stage, chunk, worker, start, end}."""
    spans = []
    for path in sorted(logs.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("message") != "task finished" or "duration_s" not in record:
                continue
            end = datetime.fromisoformat(record["time"]).timestamp()
            spans.append({"stage": record.get("stage", "?"), "chunk": record.get("chunk"),
                          "worker": record.get("worker", path.stem), "start": end - record["duration_s"],
                          "end": end})
    return sorted(spans, key=lambda s: s["start"])


def restore_command(source: Path, output: Path, data_dir: Path, flags: list[str]) -> list[str]:
    return [sys.executable, "-m", "tintype.cli", "restore", str(source), "-o", str(output), "--force",
            "--data-dir", str(data_dir), *flags]


@dataclass
class TintypeRun:
    tree: TreeRun
    job: dict[str, Any]
    spans: list[dict[str, Any]]
    forwards: list[tuple[int, float, float, int]]
    store: StoreWatch


def run_restore(source: Path, work: Path, flags: list[str], env_extra: dict[str, str] | None = None,
                timeout: float = 3600) -> TintypeRun:
    """`tintype restore SOURCE` into a fresh data directory under `work`, measured."""
    data_dir, output = work / "data", work / f"out{source.suffix}"
    work.mkdir(parents=True, exist_ok=True)
    forward_log = work / "forward.log"
    store = StoreWatch(data_dir / "objects", output)
    tree = run_tree(restore_command(source, output, data_dir, flags), bench_env(forward_log, env_extra),
                    work / "restore.log", extra=store.sample, timeout=timeout)
    store.sample()
    if tree.returncode != 0:
        tail = (work / "restore.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"tintype restore {source.name} exited {tree.returncode}:\n{tail}")
    job = read_job(data_dir)
    if job["status"] != "succeeded":
        raise RuntimeError(f"job {job['id']} {job['status']}: {job['error']}")
    return TintypeRun(tree, job, read_task_spans(data_dir / "logs"), read_forward_log(forward_log), store)
