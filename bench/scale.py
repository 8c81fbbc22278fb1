"""Benchmark of the GPU pool's scaling: frames/s with 1 and with 2 GPU worker processes.

    python -m bench.scale --out bench-results/scale [--videos 4] [--frames 96] [--size 320x240]

For each pool size a whole deployment runs on this machine (tests/stack.py: real Redis,
PostgreSQL and moto's S3 server, gunicorn, one CPU worker with beat, and N GPU-pool
Celery workers with `-c 1` and TORCH_THREADS=1 each). One warm-up job loads the model in
the workers; then a queue of generated greyscale videos (ffmpeg testsrc2) is submitted at
once and colorized. Measured, per pool size:

* end-to-end frames/s: every frame of the queue over first submit → last job succeeded
  (probe, colour plan, chunks and finalize, as a user sees it);
* chunk-stage frames/s: every frame over first chunk started → last chunk done (the GPU
  pool's own work, which is what adding GPU workers scales);
* GPU-pool busy share: chunk seconds summed / (workers × chunk-stage span);
* time from submit to the first chunk started, for the first job (empty queue) and the
  median over the queue (which includes waiting behind earlier jobs); before its first
  chunk a job is probed (CPU pool) and its colour is planned (GPU pool);
* where the CPU time went while the queue ran: CPU seconds of the GPU workers, the CPU
  worker, the web server and Redis + S3 (each process with its children, from /proc),
  beside what the whole machine spent (PostgreSQL and other users' work are the rest).

Scaling efficiency = 2-worker frames/s / (2 × 1-worker frames/s), for both rates. The
load average is recorded before and after each run: other work on the machine slows
every number here, and two worker processes cannot scale past the free cores.

The scaling runs have metrics on as deployed (prometheus-client multiprocess directories,
each worker serving /metrics on METRICS_PORT) and a scraper reading the web's and every
worker's /metrics every SCRAPE_SECONDS (far more often than Prometheus usually does).
Metrics overhead: the largest pool size runs once more with metrics off (no multiprocess
directories, METRICS_PORT=0, no scraper; the in-process counters remain, they are code),
and the two rates are compared; the scrape latencies are reported too.

Writes OUT/results.json and OUT/results.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from datetime import timezone
from pathlib import Path
from typing import Any

from bench.report import write_results
from tests.media_factory import grey_video
from tests.stack import Stack, running_stack

# The queue is watched in the database, not through the API (polling would cost the web CPU
# and hit the per-key rate limit, which is raised here for the submits).
ENV = {"TORCH_THREADS": "1", "OMP_NUM_THREADS": "1", "CHUNK_FRAMES": "12", "RENDER_SIZE": "128",
       "RECONCILE_SECONDS": "5", "RATE_LIMIT_PER_MINUTE": "100000"}
TARGET_EFFICIENCY = 0.9
SCRAPE_SECONDS = 1.0


def log(message: str) -> None:
    print(f"[bench.scale {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _epoch(value: Any) -> float:
    return value.replace(tzinfo=value.tzinfo or timezone.utc).timestamp()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (living, or reaped by it)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        if current in stats:  # utime, stime, cutime, cstime are fields 14-17 of stat
            total += sum(int(x) for x in stats[current][11:15]) / tick
        todo += children.get(current, [])
    return total


def _machine_busy_seconds() -> float:
    """CPU seconds every process on the machine has spent (all cores), from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _cpu_use(stack: Stack) -> dict[str, float]:
    groups = {"gpu_workers": [p.pid for name, p in stack.procs.items() if name.startswith("gpu-worker")],
              "cpu_worker": [stack.procs["cpu-worker"].pid], "web": [stack.procs["web"].pid],
              "redis_and_s3": [stack.redis[0].pid] + ([stack.s3_server.pid] if stack.s3_server else [])}
    use = {name: sum(_cpu_seconds(pid) for pid in pids) for name, pids in groups.items()}
    use["machine"] = _machine_busy_seconds()
    return use


class Scraper:
    """Reads every process's /metrics every `every` seconds in a thread, timing each read."""

    def __init__(self, stack: Stack, every: float) -> None:
        self.urls = {name: stack.metrics_url(name) for name in stack.process_env}
        self.every, self.stop = every, threading.Event()
        self.seconds: dict[str, list[float]] = {"web": [], "workers": []}
        self.failures = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import requests

        while not self.stop.wait(self.every):
            for name, url in self.urls.items():
                began = time.monotonic()
                try:
                    requests.get(url, timeout=10).raise_for_status()
                except requests.RequestException:
                    self.failures += 1
                    continue
                self.seconds["web" if name == "web" else "workers"].append(time.monotonic() - began)

    def start(self) -> Scraper:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.thread.join(15)

    def summary(self) -> dict[str, Any]:
        return {"every_s": self.every, "failures": self.failures,
                **{f"{kind}_scrapes": len(times) for kind, times in self.seconds.items()},
                **{f"{kind}_mean_ms": round(1000 * statistics.mean(times), 1) if times else None
                   for kind, times in self.seconds.items()}}


def _first_running(stack: Stack, pending: dict[str, float], seen: dict[str, float]) -> None:
    """Record, for jobs whose first chunk has not been seen yet, whether one is running now."""
    if not pending:
        return
    rows = stack.db("SELECT DISTINCT job_id FROM chunks WHERE job_id = ANY(:ids) AND attempts > 0",
                    ids=list(pending))
    now = time.time()
    for (job_id,) in rows:
        seen[job_id] = now - pending.pop(job_id)


def measure(workers: int, clips: list[Path], work: Path, timeout: float, metrics: bool = True) -> dict[str, Any]:
    """One deployment with `workers` GPU workers: a warm-up job, then the queue of clips
    (with metrics on, scraped every SCRAPE_SECONDS while the queue runs)."""
    load_before = os.getloadavg()
    env = dict(ENV) if metrics else {**ENV, "METRICS_PORT": "0"}
    with running_stack(work, env, gpu_workers=workers, cpu_concurrency=2, metrics=metrics) as stack:
        log(f"{workers} GPU worker(s): warm-up job")
        warm = stack.wait(stack.submit(clips[0], operations="colorize").json()["id"], timeout=timeout)
        if warm["status"] != "succeeded":
            raise RuntimeError(f"warm-up job {warm['status']}: {warm.get('error')}\n{stack.tail()}")
        log(f"{workers} GPU worker(s): {len(clips)} videos queued")
        cpu_before = _cpu_use(stack)
        scraper = Scraper(stack, SCRAPE_SECONDS).start() if metrics else None
        began = time.time()
        submitted: dict[str, float] = {}
        first_chunk: dict[str, float] = {}
        waiting: dict[str, float] = {}
        for clip in clips:
            response = stack.submit(clip, operations="colorize")
            response.raise_for_status()
            job_id = response.json()["id"]
            submitted[job_id] = waiting[job_id] = time.time()
            _first_running(stack, waiting, first_chunk)
        deadline = time.monotonic() + timeout
        finished: dict[str, float] = {}
        while len(finished) < len(submitted):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the queue did not finish in {timeout} s\n{stack.tail()}")
            _first_running(stack, waiting, first_chunk)
            for job_id, status, error in stack.db("SELECT id, status, error FROM jobs WHERE id = ANY(:ids)",
                                                  ids=list(submitted.keys() - finished.keys())):
                if status in ("failed", "cancelled"):
                    raise RuntimeError(f"job {job_id} {status}: {error}")
                if status == "succeeded":
                    finished[job_id] = time.time()
            stack.check_alive()
            time.sleep(0.1)
        if scraper:
            scraper.close()
        cpu_after = _cpu_use(stack)
        ids = list(submitted)
        frames = sum(stack.job(j)["input"]["facts"]["frames"] for j in ids)
        last_done, chunk_seconds, chunk_count, chunk_frames = stack.db(
            "SELECT max(updated_at), sum(seconds), count(*), sum(count) FROM chunks WHERE job_id = ANY(:ids)",
            ids=ids)[0]
        chunk_start = min(submitted[j] + first_chunk[j] for j in first_chunk)
        chunk_end = _epoch(last_done)
    load_after = os.getloadavg()
    end_to_end = max(finished.values()) - began
    chunk_span = chunk_end - chunk_start
    first_job = ids[0]
    return {
        "gpu_workers": workers,
        "metrics": scraper.summary() if scraper else "off",
        "videos": len(ids),
        "frames": frames,
        "chunks": int(chunk_count),
        "end_to_end_s": round(end_to_end, 2),
        "end_to_end_fps": round(frames / end_to_end, 2),
        "chunk_stage_s": round(chunk_span, 2),
        "chunk_stage_fps": round(int(chunk_frames) / chunk_span, 2),
        "chunk_seconds_sum": round(float(chunk_seconds), 2),
        "gpu_pool_busy_share": round(float(chunk_seconds) / (workers * chunk_span), 3),
        "first_chunk_started_s": round(first_chunk.get(first_job, float("nan")), 2),
        "median_submit_to_first_chunk_s": round(statistics.median(first_chunk.values()), 2),
        "cpu_seconds": {name: round(cpu_after[name] - cpu_before[name], 1) for name in cpu_before},
        "core_seconds_available": round(end_to_end * (os.cpu_count() or 1), 1),
        # what the deployment itself spent per frame: steadier than frames/s when others load the machine
        "stack_cpu_ms_per_frame": round(1000 * sum(cpu_after[k] - cpu_before[k] for k in cpu_before
                                                   if k != "machine") / frames, 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
    }


def _markdown(report: dict[str, Any]) -> str:
    runs, eff = report["runs"], report["efficiency"]
    lines = [
        "# GPU pool scaling (`make bench-scale`)",
        "",
        f"{report['machine']}; {report['videos']} videos × {report['frames_per_video']} frames "
        f"({report['size']}), chunks of {ENV['CHUNK_FRAMES']} frames, render size {ENV['RENDER_SIZE']}, "
        "TORCH_THREADS=1 per GPU worker; real Redis, PostgreSQL, moto S3, gunicorn, 1 CPU worker (-c 2).",
        "",
        "| GPU workers | end-to-end frames/s | chunk-stage frames/s | GPU pool busy | first chunk after submit "
        "(empty queue) | median submit → first chunk | load before → after (1 min) |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        lines.append(f"| {run['gpu_workers']}{'' if run['metrics'] != 'off' else ' (metrics off)'} | "
                     f"{run['end_to_end_fps']} | {run['chunk_stage_fps']} | "
                     f"{run['gpu_pool_busy_share']:.0%} | {run['first_chunk_started_s']} s | "
                     f"{run['median_submit_to_first_chunk_s']} s | {run['load_before'][0]} → {run['load_after'][0]} |")
    lines += ["", "CPU seconds spent while the queue ran (each process with its children; `machine` is every "
              "process on the machine, other users' included):", "",
              "| GPU workers | core-seconds available | GPU workers | CPU worker | web | Redis + S3 | machine "
              "| deployment CPU ms per frame |",
              "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        cpu = run["cpu_seconds"]
        lines.append(f"| {run['gpu_workers']}{'' if run['metrics'] != 'off' else ' (metrics off)'} | "
                     f"{run['core_seconds_available']} | {cpu['gpu_workers']} | "
                     f"{cpu['cpu_worker']} | {cpu['web']} | {cpu['redis_and_s3']} | {cpu['machine']} | "
                     f"{run['stack_cpu_ms_per_frame']} |")
    lines += [
        "",
        f"Scaling efficiency (2-worker / 2 × 1-worker): end-to-end **{eff['end_to_end'] or 'n/a'}**, chunk stage "
        f"**{eff['chunk_stage'] or 'n/a'}** (target ≥ {TARGET_EFFICIENCY} where the cores allow it).",
        "",
        f"Metrics overhead: {report['metrics_overhead']}",
        "",
    ]
    return "\n".join(lines)


def _metrics_overhead(runs: list[dict[str, Any]]) -> str:
    off = [run for run in runs if run["metrics"] == "off"]
    if not off:
        return "not measured (--no-metrics-run)"
    on = [run for run in runs if run["metrics"] != "off" and run["gpu_workers"] == off[0]["gpu_workers"]][0]
    scrape = on["metrics"]
    parts = [f"{1 - on[f'{kind}_fps'] / off[0][f'{kind}_fps']:+.1%} {kind.replace('_', '-')} frames/s"
             for kind in ("chunk_stage", "end_to_end")]
    return (f"with {on['gpu_workers']} GPU workers, metrics on and scraped every {scrape['every_s']:g} s cost "
            f"{' and '.join(parts)} against metrics off (positive: slower with metrics; run-to-run noise on a "
            f"shared machine is of the same order); a scrape took {scrape['web_mean_ms']} ms on the web (it "
            f"queries the database and the broker) and {scrape['workers_mean_ms']} ms on a worker, "
            f"{scrape['failures']} failed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results/scale"))
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--no-metrics-run", action="store_true", help="skip the run with metrics off")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tintype-bench-scale-") as tmp:
        work = Path(tmp)
        clips = [grey_video(work / f"clip{i}.mp4", size=args.size, frames=args.frames, audio=True)
                 for i in range(args.videos)]
        runs = [measure(n, clips, work / f"workers{n}", args.timeout) for n in args.workers]
        if not args.no_metrics_run:
            top = max(args.workers)
            runs.append(measure(top, clips, work / f"workers{top}-no-metrics", args.timeout, metrics=False))
    by_workers = {run["gpu_workers"]: run for run in runs if run["metrics"] != "off"}
    efficiency = {"end_to_end": None, "chunk_stage": None}
    if 1 in by_workers and 2 in by_workers:
        for name in efficiency:
            efficiency[name] = round(by_workers[2][f"{name}_fps"] / (2 * by_workers[1][f"{name}_fps"]), 3)
    overhead = _metrics_overhead(runs)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "videos": args.videos, "frames_per_video": args.frames, "size": args.size, "env": ENV,
        "runs": runs, "efficiency": efficiency,
        "metrics_overhead": overhead,
        "targets": [{"name": "chunk-stage scaling efficiency", "measured": efficiency["chunk_stage"],
                     "met": (efficiency["chunk_stage"] or 0) >= TARGET_EFFICIENCY}],
    }
    write_results(args.out, report, _markdown(report), log)
    log(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
