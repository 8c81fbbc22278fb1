"""Colorization benchmark: quality against the true colours, and speed on this machine.

    python -m bench.colorize --out bench-results/colorize [--data ../shared/data]
        [--model effnet-lite0-unet] [--limit N] [--clip-step 4] [--render-size 256]

Quality, each beside the greyscale baseline (a = b = 0 on the true L) measured in the same run:

* **held-out photos**: the validation split of ``colorize_train`` exactly as
  ``training/train.py`` computes it (``split_images`` with training's default seed and
  fraction), i.e. images the shipped model never trained on;
* **video frames**: every ``--clip-step``-th frame of every sequence in ``clips/``,
  colorized in batches as a chunk task does.

Each input is grey with the true image's L; it is colorized with the registered model at
the render size through ``gpu_workers.colorize.colorize_frames`` (what the worker runs), and
compared with the original: PSNR and SSIM on RGB (bench/metrics.py) and colourfulness
(Hasler-Suesstrunk) as a fraction of the ground truth's (ratio of the means). A diagnostic
PSNR with each output's mean chroma moved onto the truth's shows how much of the gap to the
truth is the whole-frame colour cast rather than the colours of objects.

Speed: frames per second for 48 frames (one chunk) at 854x480, after a warm-up, with the
worker's batch size and torch thread count (TORCH_THREADS or all cores), plus the peak
resident memory of this process. The machine's load average is recorded: other work on
the machine (such as a test run) slows the numbers down.

How far hedging alone could go (bench/trust.py): the model's own chroma scaled per item
with the truth known, an upper bound for any confidence-based decoding of the same colours.

Writes ``results.json``, ``results.md`` (tables), ``grid.png`` (input grey | tintype |
ground truth for a fixed sample) and ``trust.png`` (that bound against colourfulness) under
``--out``. Exits 2 if the data folder is absent, 1 if the model cannot be loaded. Nothing is
copied from the data folder.
"""

from __future__ import annotations

import os

# OpenMP reads its settings once, when torch loads. This process's own (untimed) quality
# runs wait passively, so they do not crawl when other work shares the CPU; speed is
# measured in child processes, with the worker's environment as it was given and with
# OMP_WAIT_POLICY=PASSIVE (see speed_in_child).
ORIGINAL_ENV = dict(os.environ)
if not os.environ.get("_BENCH_SPEED_CHILD"):
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Sequence  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench import trust  # noqa: E402
from bench.metrics import colourfulness, colourfulness_ratio, psnr, psnr_true_cast, ssim  # noqa: E402
from tintype.gpu_workers.colorize import colorize_frames  # noqa: E402
from tintype.gpu_workers.models.registry import ModelError, ModelRegistry, default_device  # noqa: E402
from tintype.media.color import lightness, merge_lightness_chroma  # noqa: E402
from tintype.settings import load_settings  # noqa: E402
from tintype.training import train  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
SPEED_SIZE = (854, 480)  # width, height
SPEED_FRAMES = 48  # one chunk (CHUNK_FRAMES)
SPEED_REPEATS = 3
GRID_PHOTOS, GRID_CLIPS = 4, 2
GRID_HEIGHT = 180
TARGETS = {"psnr_gain_db": 0.0, "colourfulness_ratio": 0.60, "fps": 10.0}


# ----------------------------------------------------------------------------- helpers


def read_rgb(path: Path) -> np.ndarray:
    return train.read_rgb(path)


def grey_of(rgb: np.ndarray) -> np.ndarray:
    """The true image's L with a = b = 0: both the model's input and the greyscale baseline."""
    light = lightness(rgb)
    return merge_lightness_chroma(light, np.zeros((*light.shape, 2), np.float32))


def score(out: np.ndarray, grey: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    return {
        "psnr": psnr(out, truth), "psnr_grey": psnr(grey, truth),
        "psnr_true_cast": psnr_true_cast(out, truth),
        "ssim": ssim(out, truth), "ssim_grey": ssim(grey, truth),
        "colourfulness": colourfulness(out), "colourfulness_truth": colourfulness(truth),
    }


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    if not rows:
        return {"items": 0}
    mean = lambda key: float(np.mean([r[key] for r in rows]))  # noqa: E731
    summary = {"items": len(rows)}
    for key in ("psnr", "psnr_grey", "psnr_true_cast", "ssim", "ssim_grey", "colourfulness", "colourfulness_truth"):
        summary[key] = mean(key)
    summary["psnr_gain_db"] = summary["psnr"] - summary["psnr_grey"]
    summary["ssim_gain"] = summary["ssim"] - summary["ssim_grey"]
    summary["colourfulness_ratio"] = colourfulness_ratio(summary["colourfulness"],
                                                         summary["colourfulness_truth"])
    summary["share_above_grey"] = float(np.mean([r["psnr"] > r["psnr_grey"] for r in rows]))
    return summary


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_state() -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True,
                               text=True, timeout=10).stdout.strip() != ""
        return {"commit": commit or None, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def sequences(clips_root: Path) -> list[Path]:
    return sorted(p for p in clips_root.iterdir() if (p / "frames").is_dir())


def frame_paths(sequence: Path) -> list[Path]:
    return sorted(p for p in (sequence / "frames").iterdir() if p.suffix.lower() in train.IMAGE_SUFFIXES)


# ----------------------------------------------------------------------------- measurements


def measure_speed(model: Any, clips_root: Path, render_size: int) -> dict[str, Any]:
    """Frames/s for one chunk of 854x480 grey frames, as the worker colorizes them."""
    width, height = SPEED_SIZE
    frames: list[np.ndarray] = []
    sources = []
    native = [s for s in sequences(clips_root) if read_rgb(frame_paths(s)[0]).shape[:2] == (height, width)]
    for seq in native or sequences(clips_root):
        for path in frame_paths(seq)[: SPEED_FRAMES - len(frames)]:
            rgb = read_rgb(path)
            if rgb.shape[:2] != (height, width):
                rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
            frames.append(grey_of(rgb))
        sources.append(seq.name)
        if len(frames) >= SPEED_FRAMES:
            break
    colorize_frames(model, frames[:8], render_size)  # warm-up: allocations, kernel choice
    load_before = os.getloadavg()
    times, cpu = [], []
    for _ in range(SPEED_REPEATS):
        start_cpu, start = cpu_seconds(), time.perf_counter()
        colorize_frames(model, frames, render_size)
        times.append(time.perf_counter() - start)
        cpu.append(cpu_seconds() - start_cpu)
    load_after = os.getloadavg()
    median = statistics.median(times)
    return {
        "frame_size": f"{width}x{height}", "frames": len(frames), "sources": sources,
        "repeats": SPEED_REPEATS, "seconds": [round(t, 3) for t in times],
        "fps_median": len(frames) / median, "fps_best": len(frames) / min(times),
        "ms_per_frame_median": 1000.0 * median / len(frames),
        "cpu_seconds_per_wall_second": float(np.sum(cpu) / np.sum(times)),
        "loadavg_before": list(load_before), "loadavg_after": list(load_after),
        "peak_rss_mib_after_speed": peak_rss_mib(),
    }


def speed_in_child(args: argparse.Namespace, extra_env: dict[str, str]) -> dict[str, Any]:
    """measure_speed in a fresh process (the worker's situation: one model, one chunk in memory).

    A child process also gets OpenMP settings from its environment, which are read only
    when torch is first imported, and its peak RSS is the worker's, not the benchmark's.
    """
    env = {**ORIGINAL_ENV, **extra_env, "_BENCH_SPEED_CHILD": "1"}
    cmd = [sys.executable, "-m", "bench.colorize", "--speed-only", "--out", str(args.out),
           "--data", str(args.data), "--model", args.model, "--render-size", str(args.render_size)]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"speed run failed ({done.returncode}): {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["environment"] = {key: env.get(key) for key in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "TORCH_THREADS")}
    return result


Scored = tuple[dict[str, Any], list[dict[str, Any]], list[trust.ScaleCurve]]  # info, rows, curves


def evaluate_photos(model: Any, root: Path, render_size: int, seed: int, fraction: float,
                    limit: int | None) -> tuple[Scored, list[Path]]:
    split = train.split_images(root, seed, fraction)
    paths = split.val[:limit] if limit else split.val
    rows, curves = [], []
    for path in paths:
        truth = read_rgb(path)
        grey = grey_of(truth)
        out = colorize_frames(model, [grey], render_size)[0]
        rows.append({"image": path.relative_to(root).as_posix(), "source": train.source_of(path, root),
                     "size": f"{truth.shape[1]}x{truth.shape[0]}", **score(out, grey, truth)})
        curves.append(trust.scale_curve(out, truth))
    info = {"root": str(root), "seed": seed, "fraction": fraction, "validation_images": len(split.val),
            "train_images": len(split.train), "evaluated": len(rows)}
    return (info, rows, curves), paths


def evaluate_clips(model: Any, root: Path, render_size: int, step: int, limit: int | None) -> Scored:
    rows, curves = [], []
    per_sequence = {}
    for seq in sequences(root):
        paths = frame_paths(seq)[::step]
        if limit:
            paths = paths[:limit]
        truths = [read_rgb(p) for p in paths]
        greys = [grey_of(t) for t in truths]
        outs = colorize_frames(model, greys, render_size)  # one batch stream, as a chunk task
        seq_rows = [{"sequence": seq.name, "frame": p.name, **score(o, g, t)}
                    for p, o, g, t in zip(paths, outs, greys, truths)]
        rows += seq_rows
        curves += [trust.scale_curve(o, t) for o, t in zip(outs, truths)]
        per_sequence[seq.name] = {"size": f"{truths[0].shape[1]}x{truths[0].shape[0]}", **summarise(seq_rows)}
    return {"root": str(root), "step": step, "sequences": per_sequence}, rows, curves


# ----------------------------------------------------------------------------- outputs


def _fit_height(img: np.ndarray, height: int, max_width: int) -> np.ndarray:
    h, w = img.shape[:2]
    scale = min(height / h, max_width / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    canvas = np.full((height, max_width, 3), 255, np.uint8)
    top, left = (height - size[1]) // 2, (max_width - size[0]) // 2
    canvas[top:top + size[1], left:left + size[0]] = small
    return canvas


def write_grid(path: Path, samples: Sequence[tuple[str, np.ndarray]], model: Any, model_name: str,
               render_size: int) -> list[str]:
    """Rows of input grey | tintype | ground truth, with a header; returns the sample names."""
    gap, width = 6, 320
    header = np.full((34, 3 * width + 2 * gap, 3), 255, np.uint8)
    for i, label in enumerate(("input (grey)", f"tintype ({model_name})", "ground truth")):
        cv2.putText(header, label, (i * (width + gap) + 8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (0, 0, 0), 1, cv2.LINE_AA)
    rows = [header]
    for _, truth in samples:
        grey = grey_of(truth)
        out = colorize_frames(model, [grey], render_size)[0]
        cells = [_fit_height(x, GRID_HEIGHT, width) for x in (grey, out, truth)]
        spacer = np.full((GRID_HEIGHT, gap, 3), 255, np.uint8)
        rows.append(np.concatenate([cells[0], spacer, cells[1], spacer, cells[2]], axis=1))
        rows.append(np.full((gap, header.shape[1], 3), 255, np.uint8))
    grid = np.concatenate(rows, axis=0)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    return [name for name, _ in samples]


def grid_samples(photo_paths: Sequence[Path], photo_root: Path,
                 clips_root: Path, step: int) -> list[tuple[str, np.ndarray]]:
    """A fixed sample: evenly spaced held-out photos and the middle frame of two sequences."""
    samples = []
    if photo_paths:
        picks = np.linspace(0, len(photo_paths) - 1, min(GRID_PHOTOS, len(photo_paths))).round().astype(int)
        for i in dict.fromkeys(picks.tolist()):
            samples.append((photo_paths[i].relative_to(photo_root).as_posix(), read_rgb(photo_paths[i])))
    seqs = sequences(clips_root)
    if seqs:
        picks = np.linspace(0, len(seqs) - 1, min(GRID_CLIPS, len(seqs))).round().astype(int)
        for i in dict.fromkeys(picks.tolist()):
            frames = frame_paths(seqs[i])[::step]
            frame = frames[len(frames) // 2]
            samples.append((f"clips/{seqs[i].name}/{frame.name}", read_rgb(frame)))
    return samples


def _f(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def markdown(results: dict[str, Any]) -> str:
    model = results["model"]
    photos, clips, speed = results["photos"]["summary"], results["clips"]["summary"], results["speed"]
    lines = [
        f"# Colorization benchmark: `{model}`",
        "",
        f"{results['timestamp']} · {results['machine']['cpu']} · {results['machine']['cpus']} CPUs · "
        f"torch {results['machine']['torch']} ({results['settings']['threads']} threads, "
        f"{results['settings']['device']}) · render size {results['settings']['render_size']} · "
        f"load average at start {', '.join(_f(x) for x in results['loadavg_start'])}",
        "",
        "## Quality (greyscale baseline and model measured in the same run)",
        "",
        "| data | items | output | PSNR (dB) | SSIM (RGB) | colourfulness (truth) | colourfulness / truth |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    sets = (("held-out photos", photos,
             f"colorize_train validation split (seed {results['photos']['split']['seed']}, "
             f"{results['photos']['split']['fraction']:.0%})"),
            ("video frames", clips, f"1 in {results['clips']['step']} frames of each of the "
             f"{len(results['clips']['sequences'])} sequences in clips/"))
    for name, s, _ in sets:
        if not s.get("items"):
            continue
        lines.append(f"| {name} | {s['items']} | greyscale (a = b = 0) | {_f(s['psnr_grey'])} | "
                     f"{_f(s['ssim_grey'], 4)} | 0.0 ({_f(s['colourfulness_truth'], 1)}) | 0.00 |")
        lines.append(f"| {name} | {s['items']} | **{model}** | **{_f(s['psnr'])}** "
                     f"({s['psnr_gain_db']:+.2f}) | **{_f(s['ssim'], 4)}** ({s['ssim_gain']:+.4f}) | "
                     f"{_f(s['colourfulness'], 1)} ({_f(s['colourfulness_truth'], 1)}) | "
                     f"**{_f(s['colourfulness_ratio'])}** |")
    lines += ["", *[f"* {name}: {desc}" for name, _, desc in sets],
              *[f"* {name}, diagnostic: {_f(s['psnr_true_cast'])} dB if each output's mean chroma (its colour "
                "cast) were the truth's" for name, s, _ in sets if s.get("items")], "",
              "## Per sequence", "",
              "| sequence | size | frames | PSNR grey | PSNR model | PSNR model, true cast | SSIM grey | "
              "SSIM model | colourfulness / truth |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in results["clips"]["sequences"].items():
        lines.append(f"| {name} | {s['size']} | {s['items']} | {_f(s['psnr_grey'])} | {_f(s['psnr'])} | "
                     f"{_f(s['psnr_true_cast'])} | {_f(s['ssim_grey'], 4)} | {_f(s['ssim'], 4)} | "
                     f"{_f(s['colourfulness_ratio'])} |")
    if speed:
        lines += ["", "## Speed and memory (one chunk of 854x480 frames in a fresh process, as a worker)", "",
                  "| environment | frames | batch | threads | frames/s (median of 3) | best | ms/frame | "
                  "CPU used | load average before → after | peak RSS |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
        runs = (("worker's (as run today)", speed), ("OMP_WAIT_POLICY=PASSIVE", results["speed_omp_passive"]))
        for label, run in runs:
            if not run:
                continue
            lines.append(
                f"| {label} | {run['frames']} | {run['batch_size']} | {run['threads']} | "
                f"**{_f(run['fps_median'], 1)}** | {_f(run['fps_best'], 1)} | {_f(run['ms_per_frame_median'], 1)} | "
                f"{_f(run['cpu_seconds_per_wall_second'], 2)} cores | "
                f"{_f(run['loadavg_before'][0])} → {_f(run['loadavg_after'][0])} | "
                f"{_f(run['peak_rss_mib_after_speed'], 0)} MiB |")
        lines += ["", f"Peak RSS of the whole benchmark process (quality runs): {_f(results['peak_rss_mib'], 0)} MiB."]
    lines += trust_section(results["trust"])
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for target in results["targets"]:
        lines.append(f"| {target['target']} | {target['measured']} | {'yes' if target['met'] else '**no**'} |")
    lines += ["", f"Runtime {results['runtime_s']:.0f} s. Grid: `grid.png` ({', '.join(results['grid'])}).", ""]
    return "\n".join(lines)


def trust_section(hedging: dict[str, Any]) -> list[str]:
    """Markdown for bench/trust.py's question: could a better decoding of these colours reach the targets?"""
    def gain(value: float | None) -> str:
        return "unreachable" if value is None else f"{value:+.2f} dB"

    lines = ["", "## Could better hedging reach the targets? (`trust.png`)", "",
             "The model's own colours scaled per item by 0-2x. One scale for all is what a saturation "
             "control or decoding setting can do; the oracle picks each photo's or frame's scale knowing "
             "the truth, an upper bound for any confidence-based decoding. Where the oracle misses the "
             "target, only better colours (a better network) can meet it.", "",
             "| data | model as shipped | best, one scale for all, at >= 60% colourfulness | "
             "best, oracle scale per item, at >= 60% colourfulness |", "|---|---|---|---|"]
    for name, key in (("held-out photos", "photos"), ("video frames", "clips")):
        s = hedging.get(key, {})
        if s.get("items"):
            own = s["as_output"]
            lines.append(f"| {name} | {own['psnr_gain_db']:+.2f} dB at {own['colourfulness_ratio']:.2f} | "
                         f"{gain(s['best_uniform_gain_db'])} | {gain(s['best_oracle_gain_db'])} |")
    return lines


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, key in (("held-out photos", "photos"), ("video frames", "clips")):
        s = results[key]["summary"]
        if not s.get("items"):
            continue
        out.append({"target": f"PSNR above the greyscale baseline ({name})",
                    "measured": f"{s['psnr']:.2f} vs {s['psnr_grey']:.2f} dB ({s['psnr_gain_db']:+.2f})",
                    "met": s["psnr_gain_db"] > TARGETS["psnr_gain_db"]})
        out.append({"target": f"colourfulness >= 60% of the ground truth's ({name})",
                    "measured": f"{s['colourfulness_ratio']:.0%}",
                    "met": s["colourfulness_ratio"] >= TARGETS["colourfulness_ratio"]})
    for label, run in (("", results["speed"]), (", OMP_WAIT_POLICY=PASSIVE", results["speed_omp_passive"])):
        if run:
            fps = run["fps_median"]
            out.append({"target": f">= 10 frames/s at {run['frame_size']} "
                                  f"(render size {results['settings']['render_size']}{label})",
                        "measured": f"{fps:.1f} frames/s (load average {run['loadavg_before'][0]:.2f})",
                        "met": fps >= TARGETS["fps"]})
    return out


# ----------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    settings = load_settings()
    train_defaults = train.build_parser().parse_args(["colorize", "--data", "."])
    p = argparse.ArgumentParser(prog="python -m bench.colorize", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for results.json, results.md, grid.png")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with colorize_train/ and clips/")
    p.add_argument("--model", default=settings.colorize_model, help="registered colorize model")
    p.add_argument("--limit", type=int, default=None, help="at most N photos and N frames per sequence")
    p.add_argument("--clip-step", type=int, default=4, help="use every Nth frame of each sequence")
    p.add_argument("--render-size", type=int, default=settings.render_size)
    p.add_argument("--seed", type=int, default=train_defaults.seed, help="training's split seed")
    p.add_argument("--val-fraction", type=float, default=train_defaults.val_fraction)
    p.add_argument("--skip-speed", action="store_true", help="quality only")
    p.add_argument("--speed-only", action="store_true", help=argparse.SUPPRESS)  # child process
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    load_start = os.getloadavg()
    data = args.data.expanduser().resolve()
    photos_root, clips_root = data / "colorize_train", data / "clips"
    if not photos_root.is_dir() or not clips_root.is_dir():
        print(f"bench.colorize: benchmark data not found: {data} must hold colorize_train/ and clips/ "
              "(the shared data set; pass --data DIR)", file=sys.stderr)
        return 2
    settings = load_settings()
    threads = settings.torch_threads or max(1, os.cpu_count() or 1)
    torch.set_num_threads(threads)  # as tintype.gpu_workers.worker does
    device = default_device()
    try:
        model = ModelRegistry(settings).colorizer(args.model, device)
    except ModelError as exc:
        print(f"bench.colorize: cannot load model {args.model!r}: {exc}", file=sys.stderr)
        return 1
    batch_size = inspect.signature(colorize_frames).parameters["batch_size"].default  # the worker's

    if args.speed_only:
        speed = measure_speed(model, clips_root, args.render_size)
        print(json.dumps({**speed, "threads": threads, "batch_size": batch_size}))
        return 0

    print(f"model {args.model} on {device}, {threads} threads, render size {args.render_size}")
    speed: dict[str, Any] = {}
    speed_passive: dict[str, Any] = {}
    if not args.skip_speed:
        speed = speed_in_child(args, {})
        print(f"speed (worker's environment): {speed['fps_median']:.1f} frames/s at {speed['frame_size']} "
              f"(best {speed['fps_best']:.1f}; load {speed['loadavg_before'][0]:.2f})")
        if ORIGINAL_ENV.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE":
            speed_passive = speed_in_child(args, {"OMP_WAIT_POLICY": "PASSIVE"})
            print(f"speed (OMP_WAIT_POLICY=PASSIVE): {speed_passive['fps_median']:.1f} frames/s "
                  f"(best {speed_passive['fps_best']:.1f}; load {speed_passive['loadavg_before'][0]:.2f})")
    (split_info, photo_rows, photo_curves), photo_paths = evaluate_photos(
        model, photos_root, args.render_size, args.seed, args.val_fraction, args.limit)
    photos = summarise(photo_rows)
    print(f"photos: {photos.get('items', 0)} held-out, PSNR {photos.get('psnr', 0):.2f} dB "
          f"(grey {photos.get('psnr_grey', 0):.2f})")
    clip_info, clip_rows, clip_curves = evaluate_clips(model, clips_root, args.render_size, args.clip_step,
                                                       args.limit)
    clips = summarise(clip_rows)
    print(f"clips: {clips.get('items', 0)} frames, PSNR {clips.get('psnr', 0):.2f} dB "
          f"(grey {clips.get('psnr_grey', 0):.2f})")

    args.out.mkdir(parents=True, exist_ok=True)
    samples = grid_samples(photo_paths, photos_root, clips_root, args.clip_step)
    grid = write_grid(args.out / "grid.png", samples, model, args.model, args.render_size)
    floor = TARGETS["colourfulness_ratio"]
    hedging = {"photos": trust.summary(photo_curves, floor), "clips": trust.summary(clip_curves, floor)}
    trust.plot({"held-out photos": hedging["photos"], "video frames": hedging["clips"]},
               args.out / "trust.png", args.model)

    results: dict[str, Any] = {
        "model": args.model,
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "git": git_state(),
        "machine": {"cpu": cpu_name(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "python": platform.python_version()},
        "settings": {"render_size": args.render_size, "batch_size": batch_size, "threads": threads,
                     "device": str(device), "clip_step": args.clip_step, "limit": args.limit},
        "loadavg_start": list(load_start),
        "photos": {"split": split_info, "summary": photos, "rows": photo_rows},
        "clips": {**clip_info, "summary": clips, "rows": clip_rows},
        "speed": speed,
        "speed_omp_passive": speed_passive,
        "trust": hedging,
        "grid": grid,
        "metrics": {"psnr": "RGB, dB, capped at 100", "ssim": "RGB channels averaged, Gaussian 11x11 sigma 1.5",
                    "colourfulness": "Hasler-Suesstrunk M; ratio = mean(model) / mean(truth)"},
    }
    results["loadavg_end"] = list(os.getloadavg())
    results["peak_rss_mib"] = peak_rss_mib()
    results["runtime_s"] = time.perf_counter() - started
    results["targets"] = targets(results)
    (args.out / "results.md").write_text(markdown(results))
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"wrote results.json, results.md, grid.png and trust.png under {args.out} "
          f"in {results['runtime_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
