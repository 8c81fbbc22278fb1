"""End to end against the naive script: is tintype faster than ffmpeg → JPEGs → model → ffmpeg?

    python -m bench.e2e --out bench-results/e2e [--pairs 3] [--frames 240]
        [--sizes 854x480 1920x1080] [--long-minutes 4] [--quick]

The issue-20 benchmark (`make bench-e2e`). Everything runs through public entry points:
tintype is the `tintype restore` command (its own workers, the embedded folder broker,
SQLite and the local object store, as a user runs it) and the naive pipeline is
`bench/e2e_naive.py`, each as a separate process tree measured by bench/proctree.py.

* Clips are generated here with ffmpeg's lavfi (testsrc2 made grey, a sine tone as audio;
  tests/media_factory.grey_video) at each size, `--frames` frames at 29.97 fps.
* Pairs alternate which pipeline runs first; the ratio tintype wall / naive wall is taken
  per pair and the median of those ratios is reported per size. Both colour every frame
  with the same model at the same render size (tintype with `--colour-mode per-frame`,
  the like-for-like comparison; `--colour-mode keyframes` measures the default mode).
* The model's forward is timed in both the same way (bench/forward_timer.py: every
  `predict_ab` call, logged with wall-clock start and end per process); the share of the
  wall outside it is 1 − (time covered by at least one forward call) / wall.
* Cores kept busy: CPU seconds of the whole tree / wall. Peak memory: each process's
  high-water RSS. Submit → first chunk done and → first playable MP4, from the job's rows
  and the object store.
* Intermediate storage: `tintype restore` on a long grey 1080p source (`--long-fps`
  frames per second to keep it cheap, render size `--long-render-size`) at `--long-minutes`
  and half that; the job's `work/` objects are sampled during the run; the peak is
  projected to a two-hour film at `--project-fps`.
* CLI overhead: `tintype restore` on a small photo, command start → job submitted and job
  done → command exit.

Writes OUT/results.json, OUT/results.md and OUT/timeline.png (the first pair of each size).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

from bench import e2e_stats as stats
from bench.e2e_plot import timeline
from bench.e2e_tintype import TintypeRun, bench_env, run_restore
from bench.forward_timer import read_forward_log
from bench.proctree import TreeRun, run_tree
from bench.report import write_results
from tests.media_factory import grey_photo, grey_video
from tintype.settings import load_settings

RATE = "30000/1001"
PHASES = ("start → submitted", "submitted → probe starts", "probe", "probe → first chunk starts",
          "chunks (first start → last end)", "forward in chunks", "last chunk → finalize starts", "finalize",
          "finalize → job ended", "job ended → exit")
TARGETS = {"ratio": 0.5, "outside_share_1080p": 0.25, "cli_overhead_s": 3.0}


def log(message: str) -> None:
    print(f"[bench.e2e {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _since(t: float | None, origin: float | None) -> float | None:
    return None if t is None or origin is None else round(t - origin, 2)


def forward_figures(forwards: list[tuple[int, float, float, int]], tree: TreeRun) -> dict[str, Any]:
    """The forward's share of one run, from its timed calls."""
    spans = [(a, b) for _, a, b, _ in forwards]
    frames = sum(f for *_, f in forwards)
    seconds = sum(b - a for a, b in spans)
    # A fresh process's first call pays for setting the model up for its input shape.
    per_frame = [(b - a) / f for _, a, b, f in sorted(forwards, key=lambda row: row[1]) if f]
    later = statistics.median(per_frame[1:]) if len(per_frame) > 1 else None
    return {"forward_calls": len(forwards), "forward_frames": frames, "forward_s": round(seconds, 2),
            "first_call_ms_per_frame": _r(1000 * per_frame[0], 1) if per_frame else None,
            "later_calls_median_ms_per_frame": _r(1000 * later, 1) if later is not None else None,
            "forward_ms_per_frame": _r(1000 * seconds / frames, 1) if frames else None,
            "forward_processes": len({pid for pid, *_ in forwards}),
            "outside_forward_share": _r(stats.outside_share(spans, tree.launched, tree.exited), 3)
            if spans else None}


def tree_figures(tree: TreeRun) -> dict[str, Any]:
    return {"wall_s": round(tree.wall, 2), "cpu_s": round(tree.cpu_seconds, 1),
            "cores_busy": round(tree.cores_busy, 2), "peak_rss_mb": tree.peak_rss_mb,
            "leftover_processes": tree.leftovers}


def naive_run(clip: Path, work: Path, render_size: int, model: str | None) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    forward_log, stages_path = work / "forward.log", work / "stages.json"
    cmd = [sys.executable, "-m", "bench.e2e_naive", str(clip), str(work / "out.mp4"), "--render-size",
           str(render_size), "--stages", str(stages_path), *(["--model", model] if model else [])]
    tree = run_tree(cmd, bench_env(forward_log), work / "naive.log")
    if tree.returncode != 0:
        raise RuntimeError(f"naive pipeline exited {tree.returncode}: "
                           f"{(work / 'naive.log').read_text(errors='replace')[-2000:]}")
    stages = json.loads(stages_path.read_text())
    forwards = read_forward_log(forward_log)
    spans = [{"stage": s, "start": stages[s][0], "end": stages[s][1]} for s in ("decode", "colorize", "encode")]
    return {"pipeline": "naive", **tree_figures(tree), **forward_figures(forwards, tree),
            "model": stages["model"], "frames": stages["frames"],
            "steps_s": {s["stage"]: round(s["end"] - s["start"], 2) for s in spans},
            "playable_s": _since(stages["encode"][1], tree.launched),
            "_plot": {"t0": tree.launched, "t_end": tree.exited, "spans": spans,
                      "forwards": [(a, b) for _, a, b, _ in forwards],
                      "marks": {"output written": stages["encode"][1]}}}


def tintype_figures(run: TintypeRun) -> dict[str, Any]:
    job, tree, store = run.job, run.tree, run.store
    created = job["created"]
    first_chunk = job["chunks_done_at"][0] if job["chunks_done_at"] else None
    return {"pipeline": "tintype", **tree_figures(tree), **forward_figures(run.forwards, tree),
            "job": job["id"], "chunks": job["chunks_total"], "timings": job["timings"],
            "start_to_submit_s": _since(created, tree.launched),
            "submit_to_first_chunk_done_s": _since(first_chunk, created),
            "submit_to_playable_s": _since(store.first_playable, created), "playable_object": store.playable_name,
            "submit_to_job_end_s": _since(job["finished"], created),
            "job_end_to_exit_s": _since(tree.exited, job["finished"]),
            "peak_work_bytes": store.peak_bytes, "peak_work_objects": store.peak_objects,
            "peak_chunk_files": store.peak_chunks,
            "phases_s": stats.phases(run.spans, [(a, b) for _, a, b, _ in run.forwards], tree.launched, created,
                                     job["finished"], tree.exited),
            "_plot": {"t0": tree.launched, "t_end": tree.exited, "spans": run.spans,
                      "forwards": [(a, b) for _, a, b, _ in run.forwards],
                      "marks": {"submitted": created, "first chunk done": first_chunk,
                                "playable": store.first_playable, "job ended": job["finished"]}}}


def tintype_run(clip: Path, work: Path, flags: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    return tintype_figures(run_restore(clip, work, flags, env))


def compare_size(size: str, clip: Path, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Alternating pairs at one size; pair i runs the naive script first when i is even."""
    flags = ["--colorize", "--colour-mode", args.colour_mode, "--render-size", str(args.render_size),
             *(["--colorize-model", args.model] if args.model else [])]
    pairs = []
    for i in range(args.pairs):
        order = ("naive", "tintype") if i % 2 == 0 else ("tintype", "naive")
        pair: dict[str, Any] = {}
        for name in order:
            load = round(os.getloadavg()[0], 2)
            log(f"{size} pair {i + 1}/{args.pairs}: {name} (load {load})")
            folder = work / f"{size}-{i}-{name}"
            pair[name] = (naive_run(clip, folder, args.render_size, args.model) if name == "naive"
                          else tintype_run(clip, folder, flags, args.tintype_env))
            pair[name]["load_1min_before"] = load
            log(f"  {name}: {pair[name]['wall_s']} s wall, {pair[name]['cores_busy']} cores busy")
        pairs.append({"order": list(order), **pair})
    ratios = stats.paired_ratios([p["tintype"]["wall_s"] for p in pairs], [p["naive"]["wall_s"] for p in pairs])
    # CPU seconds are steadier than wall time when others load the machine: a pipeline of
    # several processes then takes a larger share of the cores than a single-process script.
    cpu_ratios = stats.paired_ratios([p["tintype"]["cpu_s"] for p in pairs], [p["naive"]["cpu_s"] for p in pairs])
    return {"size": size, "frames": args.frames, "pairs": pairs, "ratios": [round(r, 3) for r in ratios],
            "median_ratio": _r(stats.median_ratio(ratios), 3), "cpu_ratios": [round(r, 3) for r in cpu_ratios],
            "median_cpu_ratio": _r(stats.median_ratio(cpu_ratios), 3),
            "median": {name: _medians([p[name] for p in pairs]) for name in ("naive", "tintype")}}


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("wall_s", "cpu_s", "cores_busy", "forward_ms_per_frame", "outside_forward_share",
            "submit_to_first_chunk_done_s", "submit_to_playable_s", "playable_s", "start_to_submit_s",
            "job_end_to_exit_s", "peak_work_bytes")
    out = {}
    for key in keys:
        values = [r[key] for r in runs if r.get(key) is not None]
        if values:
            out[key] = round(statistics.median(values), 3)
    out["peak_rss_mb_max"] = max(max(r["peak_rss_mb"].values(), default=0) for r in runs)
    return out


def storage_runs(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Peak intermediates at two lengths of a long 1080p source, and the two-hour projection."""
    runs = []
    flags = ["--colorize", "--colour-mode", "per-frame", "--render-size", str(args.long_render_size)]
    for minutes in (args.long_minutes / 2, args.long_minutes):
        frames = stats.frames_in(60 * minutes, args.long_fps)
        clip = grey_video(work / f"long-{frames}.mp4", size=args.long_size, rate=str(args.long_fps),
                          frames=frames, audio=True)
        log(f"storage: {minutes:g} min at {args.long_fps:g} fps ({frames} frames, {args.long_size})")
        figures = tintype_run(clip, work / f"long-{frames}", flags)
        runs.append({"minutes": minutes, "frames": frames, **{k: figures[k] for k in (
            "wall_s", "chunks", "peak_work_bytes", "peak_work_objects", "peak_chunk_files", "cores_busy",
            "submit_to_first_chunk_done_s", "submit_to_playable_s", "peak_rss_mb")}})
        log(f"  peak {figures['peak_work_bytes'] / 1e6:.1f} MB in {figures['peak_chunk_files']} chunk files "
            f"of {figures['chunks']}")
    short, long = runs
    two_hours = stats.frames_in(stats.TWO_HOURS_S, args.project_fps)
    projected = stats.storage_projection(short["frames"], short["peak_work_bytes"], long["frames"],
                                         long["peak_work_bytes"], two_hours)
    return {"size": args.long_size, "source_fps": args.long_fps, "render_size": args.long_render_size,
            "runs": runs, "two_hour_frames": two_hours, "project_fps": args.project_fps,
            "projected_two_hour_bytes": round(projected),
            "bytes_per_frame_at_peak": round(long["peak_work_bytes"] / long["frames"]),
            "bounded": stats.storage_bounded(short["peak_chunk_files"], long["peak_chunk_files"], long["chunks"])}


def cli_overhead(work: Path) -> dict[str, Any]:
    """`tintype restore` on a small photo: what the command costs around the job itself."""
    photo = work / "photo.png"
    Image.fromarray(grey_photo(320, 240)).save(photo)
    log("CLI overhead: a 320x240 photo")
    figures = tintype_run(photo, work / "cli", ["--colorize"])
    start, stop = figures["start_to_submit_s"], figures["job_end_to_exit_s"]
    return {"start_to_submit_s": start, "submit_to_job_end_s": figures["submit_to_job_end_s"],
            "job_end_to_exit_s": stop, "overhead_s": _r((start or 0) + (stop or 0)), "wall_s": figures["wall_s"],
            "leftover_processes": figures["leftover_processes"]}


def targets_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for size in report["sizes"]:
        ratio = size["median_ratio"]
        rows.append({"name": f"tintype / naive wall at {size['size']}", "wanted": f"<= {TARGETS['ratio']}",
                     "measured": ratio, "met": ratio is not None and ratio <= TARGETS["ratio"]})
    big = [s for s in report["sizes"] if s["size"].endswith("1080")]
    if big:
        share = big[0]["median"]["tintype"].get("outside_forward_share")
        rows.append({"name": "share of tintype's wall outside the forward at 1080p",
                     "wanted": f"<= {TARGETS['outside_share_1080p']}", "measured": share,
                     "met": share is not None and share <= TARGETS["outside_share_1080p"]})
    if report.get("storage"):
        storage = report["storage"]
        rows.append({"name": "peak intermediate storage independent of length",
                     "wanted": f"<= {stats.STORAGE_BOUND_CHUNKS} chunks, not growing",
                     "measured": f"{[r['peak_chunk_files'] for r in storage['runs']]} chunk files at "
                                 f"{[r['frames'] for r in storage['runs']]} frames "
                                 f"({[r['chunks'] for r in storage['runs']]} chunks)",
                     "met": bool(storage["bounded"])})
    if report.get("cli"):
        overhead = report["cli"]["overhead_s"]
        rows.append({"name": "CLI overhead (start + stop)", "wanted": f"<= {TARGETS['cli_overhead_s']} s",
                     "measured": overhead, "met": overhead is not None and overhead <= TARGETS["cli_overhead_s"]})
    return rows


def _fmt(value: Any, unit: str = "", pct: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:.0%}" if pct else f"{value}{unit}"


def _rss_line(run: dict[str, Any]) -> str:
    """The processes of a run by largest peak RSS, one entry per kind of process."""
    kinds: dict[str, float] = {}
    for key, mb in run["peak_rss_mb"].items():
        kind = key.rsplit(" ", 1)[0]
        kinds[kind] = max(kinds.get(kind, 0.0), mb)
    return ", ".join(f"{k} {v:.0f}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]))


def _comparison(report: dict[str, Any]) -> list[str]:
    lines = ["| size | median tintype / naive wall | ratios | median tintype / naive CPU s | naive wall | "
             "tintype wall | outside forward (naive / tintype) | forward ms/frame (naive / tintype) | "
             "cores busy (naive / tintype) | submit → first chunk done | submit → playable |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for size in report["sizes"]:
        n, t = size["median"]["naive"], size["median"]["tintype"]
        lines.append(f"| {size['size']} | **{_fmt(size['median_ratio'])}** | {size['ratios']} | "
                     f"{_fmt(size['median_cpu_ratio'])} | "
                     f"{_fmt(n['wall_s'], ' s')} | {_fmt(t['wall_s'], ' s')} | "
                     f"{_fmt(n.get('outside_forward_share'), pct=True)} / "
                     f"{_fmt(t.get('outside_forward_share'), pct=True)} | {_fmt(n.get('forward_ms_per_frame'))} / "
                     f"{_fmt(t.get('forward_ms_per_frame'))} | {_fmt(n['cores_busy'])} / {_fmt(t['cores_busy'])} | "
                     f"{_fmt(t.get('submit_to_first_chunk_done_s'), ' s')} | "
                     f"{_fmt(t.get('submit_to_playable_s'), ' s')} |")
    lines += ["", "Where tintype's wall went (seconds, the first pair; phases run from one landmark to the "
              "next, negative where stages overlap):", "",
              "| size | " + " | ".join(PHASES) + " |", "|---|" + "---|" * len(PHASES)]
    for size in report["sizes"]:
        got = size["pairs"][0]["tintype"]["phases_s"]
        lines.append(f"| {size['size']} | " + " | ".join(_fmt(got.get(name)) for name in PHASES) + " |")
    lines += ["", "A fresh process's first forward call against the median of its later calls (ms per frame, "
              "the first pair):", ""]
    for size in report["sizes"]:
        first = size["pairs"][0]
        lines.append(f"* {size['size']}: " + ", ".join(
            f"{name} {_fmt(first[name].get('first_call_ms_per_frame'))} then "
            f"{_fmt(first[name].get('later_calls_median_ms_per_frame'))}" for name in ("naive", "tintype")))
    lines += ["", "Peak RSS per kind of process (MiB, the first pair):", ""]
    for size in report["sizes"]:
        first = size["pairs"][0]
        lines.append(f"* {size['size']} naive: {_rss_line(first['naive'])}")
        lines.append(f"* {size['size']} tintype: {_rss_line(first['tintype'])}; job timings "
                     f"{first['tintype']['timings']}; start → submit {first['tintype']['start_to_submit_s']} s, "
                     f"job end → exit {first['tintype']['job_end_to_exit_s']} s")
    return lines


def _storage(s: dict[str, Any]) -> list[str]:
    lines = ["", f"Intermediate storage, {s['size']} grey source at {s['source_fps']:g} fps, render size "
             f"{s['render_size']}:", "", "| length | frames | chunks | peak bytes | peak objects | "
             "peak chunk files | wall |", "|---|---|---|---|---|---|---|"]
    for r in s["runs"]:
        lines.append(f"| {r['minutes']:g} min | {r['frames']} | {r['chunks']} | "
                     f"{r['peak_work_bytes'] / 1e6:.1f} MB | {r['peak_work_objects']} | {r['peak_chunk_files']} | "
                     f"{r['wall_s']} s |")
    verdict = (f"Bounded (≤ {stats.STORAGE_BOUND_CHUNKS} chunk files, not growing): {s['bounded']}."
               if s["bounded"] is not None else
               f"The long run has only {s['runs'][1]['chunks']} chunks, too few to show a bound of "
               f"{stats.STORAGE_BOUND_CHUNKS}: raise --long-minutes or --long-fps.")
    lines += ["", f"Projected to two hours ({s['two_hour_frames']} frames at {s['project_fps']:g} fps): "
              f"**{s['projected_two_hour_bytes'] / 2**30:.1f} GiB** of intermediates at the peak "
              f"({s['bytes_per_frame_at_peak'] / 1e6:.2f} MB per frame of the long run at its peak). {verdict}"]
    return lines


def markdown(report: dict[str, Any]) -> str:
    lines = ["# tintype against the naive script (`make bench-e2e`)", "",
             f"{report['machine']}; load (1 min) {report['load_before']} before, {report['load_after']} after. "
             f"Model {report['model']} at render size {report['render_size']}, tintype `--colour-mode "
             f"{report['colour_mode']}`; clips generated (lavfi testsrc2, grey, sine audio), "
             f"{report['frames']} frames at 29.97 fps; {report['pairs']} alternating pair(s) per size; tintype's "
             f"traced-model cache {report.get('trace_cache', 'cold')} (`--cold-cache`: every run traces afresh).", ""]
    if report["sizes"]:
        lines += _comparison(report)
    if report.get("storage"):
        lines += _storage(report["storage"])
    if report.get("cli"):
        c = report["cli"]
        lines += ["", f"CLI overhead on a 320x240 photo: start → submitted {c['start_to_submit_s']} s, job "
                  f"{c['submit_to_job_end_s']} s, job end → exit {c['job_end_to_exit_s']} s: "
                  f"**{c['overhead_s']} s** around the job (wall {c['wall_s']} s)."]
    lines += ["", "| target | wanted | measured | met |", "|---|---|---|---|"]
    lines += [f"| {t['name']} | {t['wanted']} | {t['measured']} | {'yes' if t['met'] else 'no'} |"
              for t in report["targets"]]
    if report["sizes"]:
        lines += ["", "![stage timeline](timeline.png)"]
    return "\n".join(lines) + "\n"


def _strip_plot(value: Any) -> Any:
    """The report without the plot's raw spans (they go to the PNG, not the JSON)."""
    if isinstance(value, dict):
        return {k: _strip_plot(v) for k, v in value.items() if k != "_plot"}
    if isinstance(value, list):
        return [_strip_plot(v) for v in value]
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    settings = load_settings()
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results/e2e"))
    parser.add_argument("--sizes", nargs="*", default=["854x480", "1920x1080"], help="none: skip the comparison")
    parser.add_argument("--frames", type=int, default=240, help="frames per clip")
    parser.add_argument("--pairs", type=int, default=3, help="alternating naive/tintype pairs per size")
    parser.add_argument("--render-size", type=int, default=settings.render_size)
    parser.add_argument("--model", help="colorize model (default: the COLORIZE_MODEL setting)")
    parser.add_argument("--colour-mode", default="per-frame", choices=("per-frame", "keyframes"),
                        help="tintype's colour mode (per-frame runs the model on every frame, as the naive script)")
    parser.add_argument("--long-minutes", type=float, default=4.0, help="length of the storage run's source")
    parser.add_argument("--long-fps", type=float, default=2.0, help="its frame rate (frames are what cost time)")
    parser.add_argument("--long-size", default="1920x1080")
    parser.add_argument("--long-render-size", type=int, default=64, help="a cheap render size for the storage run")
    parser.add_argument("--project-fps", type=float, default=24.0, help="frame rate of the two-hour projection")
    parser.add_argument("--no-storage", action="store_true", help="skip the intermediate storage runs")
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI overhead run")
    parser.add_argument("--cold-cache", action="store_true",
                        help="no traced-model cache shared between tintype's runs (each traces afresh, as "
                             "on the first run on a machine); default: one untimed restore warms it first")
    parser.add_argument("--quick", action="store_true",
                        help="1 pair of 48 frames per size, storage at 1 minute (a check that it all works)")
    args = parser.parse_args(argv)
    if args.quick:
        args.pairs, args.frames, args.long_minutes = 1, 48, 1.0
    return args


def warm_cache(args: argparse.Namespace, work: Path) -> dict[str, str] | None:
    """The environment of tintype's measured runs. Each run has a fresh data folder, whose
    traced-model cache (MODEL_CACHE_DIR, by default inside it) would start empty every
    time, while a user's folder (or, for a plain restore, their user cache) keeps it from
    the second run on; so the runs share one cache, filled by an untimed restore first.
    The naive script traces afresh each run, as a script would."""
    if args.cold_cache or not args.sizes:
        return None
    env = {"MODEL_CACHE_DIR": str(work / "model-cache")}
    clip = grey_video(work / "warm-up.mp4", size=args.sizes[0], rate=RATE, frames=24, audio=False)
    flags = ["--colorize", "--colour-mode", args.colour_mode, "--render-size", str(args.render_size),
             *(["--colorize-model", args.model] if args.model else [])]
    log("warming the traced-model cache with one untimed restore")
    run_restore(clip, work / "warm-up", flags, env)
    return env


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    began, load_before = time.time(), round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="tintype-bench-e2e-") as tmp:
        work = Path(tmp)
        args.tintype_env = warm_cache(args, work)
        sizes = []
        for size in args.sizes:
            clip = grey_video(work / f"clip-{size}.mp4", size=size, rate=RATE, frames=args.frames, audio=True)
            sizes.append(compare_size(size, clip, args, work))
        storage = None if args.no_storage else storage_runs(args, work)
        cli = None if args.no_cli else cli_overhead(work)
    model = sizes[0]["pairs"][0]["naive"]["model"] if sizes else args.model or load_settings().colorize_model
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "load_before": load_before, "load_after": round(os.getloadavg()[0], 2), "model": model,
              "render_size": args.render_size, "colour_mode": args.colour_mode, "frames": args.frames,
              "trace_cache": "cold" if args.tintype_env is None else "warm",
              "pairs": args.pairs, "sizes": sizes, "storage": storage, "cli": cli,
              "seconds": round(time.time() - began, 1)}
    report["targets"] = targets_of(report)
    if sizes:
        panels = []
        for size in sizes:
            first = size["pairs"][0]
            panels += [(f"{size['size']} naive script", first["naive"]["_plot"]),
                       (f"{size['size']} tintype restore", first["tintype"]["_plot"])]
        timeline(panels, args.out / "timeline.png")
    clean = _strip_plot(report)
    write_results(args.out, clean, markdown(clean), log)
    log(f"wrote {args.out / 'results.json'}, results.md and timeline.png in {report['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
