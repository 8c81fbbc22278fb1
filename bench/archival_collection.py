"""Collections against single calls: photos per second of one `tintype restore DIR -o
OUTDIR` over a folder, against the same photos restored one `tintype restore` call at a
time, and the seconds before the folder run's first result.

    python -m bench.archival_collection --out bench-results/archival [--photos 500] [--sample 20]

The photos are greyscale copies of ../shared/data/colorize_train photographs when that
folder is there (the report says so), else generated ones. Every call is a fresh
process as a user runs it, on the embedded defaults, with no `tintype run` to reuse: the
folder run starts its workers once, each single call starts (and stops) its own. The
single-call rate comes from a SAMPLE of the photos, evenly spread, timed one after the
other; restoring all of them that way would take the folder run's time many times over.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "colorize_train"
SERVICE_VARS = ("DATABASE_URL", "BROKER_URL", "RESULT_BACKEND", "STORAGE_URL", "S3_ENDPOINT_URL")
GENERATED_SIZE = (240, 180)
RESULT_NAMES = ("summary.csv", ".tintype-ledger.jsonl")


def make_photos(folder: Path, count: int) -> str:
    """`count` greyscale JPEGs in `folder`; says where they came from."""
    folder.mkdir(parents=True, exist_ok=True)
    shared = sorted(SHARED.rglob("*.jpg"))[:count] if SHARED.is_dir() else []
    if len(shared) == count:
        for n, path in enumerate(shared):
            with Image.open(path) as img:
                img.convert("L").save(folder / f"{n:05d}.jpg", quality=90)
        return f"greyscale copies of the first {count} photographs of ../shared/data/colorize_train (sorted paths)"
    rng = np.random.default_rng(0)
    for n in range(count):
        coarse = rng.integers(0, 256, (9, 12), dtype=np.uint8)
        img = Image.fromarray(coarse, "L").resize(GENERATED_SIZE, Image.Resampling.BICUBIC)
        img.save(folder / f"{n:05d}.jpg", quality=90)
    return f"{count} generated greyscale photos of {GENERATED_SIZE[0]}x{GENERATED_SIZE[1]} (shared data absent)"


def _env(data_dir: Path) -> dict[str, str]:
    """The embedded defaults in a folder no `tintype run` serves: each call is on its own."""
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env["TINTYPE_DATA_DIR"] = str(data_dir)
    return env


def _restore(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tintype.cli", "restore", *args, "--colorize"], env=env,
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def time_folder(photos: Path, results: Path, env: dict[str, str]) -> dict[str, Any]:
    """Seconds for the whole folder and before its first result appeared."""
    first: list[float] = []
    done = threading.Event()
    start = time.monotonic()

    def watch() -> None:
        while not done.is_set():
            if results.is_dir() and any(p.name not in RESULT_NAMES and not p.name.startswith(".")
                                        for p in results.iterdir()):
                first.append(time.monotonic() - start)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    proc = _restore(str(photos), "-o", str(results), env=env)
    _, err = proc.communicate()
    seconds = time.monotonic() - start
    done.set()
    watcher.join()
    written = sum(1 for p in results.iterdir() if p.name not in RESULT_NAMES and not p.name.startswith("."))
    if proc.returncode != 0:
        raise RuntimeError(f"the folder run exited {proc.returncode}: {err[-2000:]}")
    return {"seconds": seconds, "first_result_seconds": first[0] if first else None, "written": written}


def time_singles(sample: list[Path], results: Path, env: dict[str, str]) -> list[float]:
    """Seconds of each single call, one after the other."""
    results.mkdir(parents=True, exist_ok=True)
    seconds = []
    for photo in sample:
        start = time.monotonic()
        proc = _restore(str(photo), "-o", str(results / photo.name), env=env)
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"tintype restore {photo.name} exited {proc.returncode}: {err[-2000:]}")
        seconds.append(time.monotonic() - start)
    return seconds


def measure(out_dir: Path, photos: int = 500, single_sample: int = 20) -> dict:
    """Time the folder mode over `photos` photos and `single_sample` of them as single
    calls; per-photo rates and their ratio."""
    out_dir.mkdir(parents=True, exist_ok=True)
    folder = out_dir / "photos"
    source = make_photos(folder, photos)
    everything = sorted(folder.glob("*.jpg"))
    step = max(1, len(everything) // max(1, single_sample))
    sample = everything[::step][:single_sample]
    collection = time_folder(folder, out_dir / "folder-results", _env(out_dir / "data-folder"))
    singles = time_singles(sample, out_dir / "single-results", _env(out_dir / "data-single"))
    folder_rate = photos / collection["seconds"]
    single_rate = len(singles) / sum(singles)
    return {"photos": photos, "source": source, "folder": collection, "folder_photos_per_s": folder_rate,
            "single_sample": len(singles), "single_seconds": singles, "single_photos_per_s": single_rate,
            "speedup": folder_rate / single_rate, "cpu_count": os.cpu_count()}


def markdown(result: dict) -> str:
    """The result as a short markdown section."""
    folder, singles = result["folder"], result["single_seconds"]
    first = folder["first_result_seconds"]
    lines = [
        "## Archival collection: one folder run against single calls", "",
        f"Photos: {result['source']}.", "",
        "| mode | photos | seconds | photos/s |", "|---|---:|---:|---:|",
        f"| `tintype restore DIR -o OUTDIR` | {result['photos']} | {folder['seconds']:.1f} "
        f"| {result['folder_photos_per_s']:.2f} |",
        f"| one `tintype restore` per photo (sample) | {result['single_sample']} | {sum(singles):.1f} "
        f"| {result['single_photos_per_s']:.2f} |", "",
        f"Speed-up of the folder run: **{result['speedup']:.1f}x** (target: at least 5x). "
        + (f"First result after {first:.1f} s." if first is not None else "No result appeared."), "",
        f"The single-call rate comes from a sample of {result['single_sample']} of the {result['photos']} "
        f"photos, evenly spread and run one after the other (each a fresh process that starts and stops its "
        f"own workers; {min(singles):.1f}-{max(singles):.1f} s each), not from restoring all of them that way. "
        f"Machine: {result['cpu_count']} CPU cores.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.archival_collection", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results/archival"))
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--sample", type=int, default=20)
    args = parser.parse_args(argv)
    result = measure(args.out, args.photos, args.sample)
    (args.out / "archival_collection.json").write_text(json.dumps(result, indent=2))
    text = markdown(result)
    (args.out / "archival_collection.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
