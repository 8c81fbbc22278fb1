"""One chunk through the GPU task's own path (`gpu_workers.tasks._process_chunk`): frames/s
and cores kept busy (CPU seconds of this process and its ffmpeg children / wall).

    python -m bench.chunk_overlap [--size 854x480] [--frames 48] [--runs 3] [--threads 1]

Embedded defaults (SQLite, local objects) in a temporary folder, a generated black-and-
white clip, the default colorizer at the default render size, per-frame colour (the path
that streams) or --colour-mode keyframes. The same command run with PYTHONPATH on an
older checkout measures that one: the function's signature is unchanged. One warm-up run
is left out. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def _clip(path: Path, size: str, frames: int) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=24",
                    "-frames:v", str(frames), "-vf", "hue=s=0,format=yuv420p", "-c:v", "libx264", "-preset",
                    "ultrafast", "-g", "24", str(path)], check=True)
    return path


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="854x480")
    parser.add_argument("--frames", type=int, default=48, help="the chunk's own frames (CHUNK_FRAMES)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: as each pool process has)")
    parser.add_argument("--colour-mode", default="per-frame", choices=("per-frame", "keyframes"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tintype-bench-chunk-") as tmp:
        os.environ.update(TINTYPE_DATA_DIR=f"{tmp}/data", CHUNK_FRAMES=str(args.frames))
        print(json.dumps(_measure(Path(tmp), args), indent=2))


def _measure(tmp: Path, args: argparse.Namespace) -> dict:
    import torch

    from tintype.gpu_workers import tasks
    from tintype.gpu_workers.models.registry import configure
    from tintype.jobs import state as jobstate
    from tintype.jobs.intake import Submission, create_job, parse_options
    from tintype.queue.app import make_celery
    from tintype.settings import load_settings
    from tintype.storage import keys
    from tintype.storage.db import upgrade
    from tintype.storage.objects import store_from_settings

    torch.set_num_threads(args.threads)
    settings = load_settings()
    upgrade(settings.database_url)
    store = store_from_settings(settings)
    configure(settings)
    clip = _clip(tmp / "clip.mp4", args.size, 3 * args.frames)
    digest = hashlib.sha256(clip.read_bytes()).hexdigest()

    class Worker:  # what _process_chunk reads from its JobTask
        store, db_url, app = store_from_settings(settings), settings.database_url, make_celery(settings)

    Worker.settings = settings
    form = {"colorize": "yes", "colour_mode": args.colour_mode}
    runs = []
    for run in range(args.runs + 1):
        sub = Submission(clip, clip.name, clip.stat().st_size, digest, parse_options(form, settings))
        job_id = create_job(sub, settings, store, settings.database_url, lambda job_id: "bench")
        _plan(Worker(), job_id, args.colour_mode)
        chunk = jobstate.get_chunk(settings.database_url, job_id, 1)  # a middle chunk: context both sides
        attempt = jobstate.chunk_attempt(settings.database_url, job_id, 1)
        cpu, began = _cpu_seconds(), time.monotonic()
        answer = tasks._process_chunk(Worker(), job_id, 1, chunk, keys.chunk_key(job_id, 1), attempt)
        wall, used = time.monotonic() - began, _cpu_seconds() - cpu
        if answer != "done":
            raise SystemExit(f"the chunk answered {answer!r}")
        if run:  # the first run warms the model and the caches up
            runs.append({"wall_s": round(wall, 3), "frames_per_s": round(args.frames / wall, 2),
                         "cores_busy": round(used / wall, 2)})
    return {"size": args.size, "frames": args.frames, "torch_threads": args.threads,
            "colour_mode": args.colour_mode, "render_size": settings.render_size, "cores": os.cpu_count(),
            "runs": runs, "median_frames_per_s": statistics.median(r["frames_per_s"] for r in runs),
            "median_cores_busy": statistics.median(r["cores_busy"] for r in runs)}


def _plan(worker, job_id: str, colour_mode: str) -> None:
    """The chunk rows and, colouring from keyframes, the colour plan, as tasks.probe and
    gpu.plan_colour make them."""
    from tintype.gpu_workers import plan_colour
    from tintype.jobs import state as jobstate
    from tintype.jobs.facts import load_facts
    from tintype.tasks.probe import plan_chunks

    settings = worker.settings
    facts = load_facts(worker.store, job_id, jobstate.get_job(settings.database_url, job_id).input_facts)
    jobstate.plan_chunks(settings.database_url, job_id, plan_chunks(facts, settings.chunk_frames,
                                                                    settings.context_frames))
    if colour_mode == "keyframes":
        plan_colour._plan(worker, job_id)


if __name__ == "__main__":
    main()
