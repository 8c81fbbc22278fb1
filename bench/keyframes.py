"""Benchmark of keyframe colour (`media.propagate`) on real clips, from greyscale.

    python -m bench.keyframes --out bench-results/keyframes [--data ../shared/data] [--limit N]

For every sequence in DATA/clips (true colour JPEG frames, at most 854 wide): the
greyscale film is the frames' lightness. Methods, each giving ab that is merged with the
film's own lightness:

* grey: no colour.
* model: the shipped default colorizer at the default render size, frame by frame
  (`gpu_workers.colorize.colorize_frames`; cached per clip under OUT/cache like
  bench.temporal).
* auto keyframes: `choose_keyframes` on the lightness, those frames coloured by the same
  model at its best setting (render size 384, or the short side when smaller: +0.3 dB over
  the default 256 on 5 clips x 6 frames, larger sizes no better), propagated with the
  per-frame model as fallback.
* first / first+last: the true colour of frame 0 (and of the last frame) as keyframes,
  propagated with the per-frame model as fallback.
* naive chain: a baseline written here: the first true frame's ab carried frame to frame
  along DIS flow (resampled each frame), falling back to a direct flow to the keyframe
  where the forward–backward check fails.
* chunked first+last: as first+last, but the way the pipeline will run it: a low
  resolution whole-shot pass (`shot_chroma`) gives the chroma at each chunk's borders,
  then each chunk of `--chunk` frames propagates at working resolution on its own.

Measured over the frames that are no method's true keyframe (1 .. n-2): PSNR
(`capped_psnr` on RGB), SSIM, colourfulness, CDC (`metrics.cdc`), chroma warping error
(flow on the TRUE video's lightness, pairs across its cuts left out), with the true video's
own CDC and warping error. Speed: propagation frames/s at 854x480 (working resolution
256 short side, flow included; with and without bringing ab to full size and merging),
peak memory by tracemalloc. Writes OUT/results.json, OUT/results.md, OUT/strip.png.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
from PIL import Image, ImageDraw

from bench.report import font as report_font
from bench.report import write_results
from bench.temporal import Colorizer, clip_folders, load_truth

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data"
WORKING = 256  # short side of the working resolution
LOW = 96  # short side of the whole-shot pass
KEY_RENDER = 384  # the model's render size for keyframes
METHODS = ["grey", "model", "auto", "first", "first_last", "naive_chain", "chunked_first_last"]
STRIP = ["grey", "model", "auto", "first", "truth"]
TARGETS_DB = {"first_over_grey": 13.0, "first_over_naive": 1.5, "first_last_over_grey": 14.5}
TARGET_FPS = 15.0
CDC_RATIO = 1.2


def log(message: str) -> None:
    print(f"[bench.keyframes {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- inputs


class Clip:
    """One clip's truth in Lab, its working-resolution lightness, and the model's ab."""

    def __init__(self, name: str, truth: list[np.ndarray]) -> None:
        from tintype.media.color import rgb_to_lab
        from tintype.media.propagate import working_size

        self.name, self.truth = name, truth
        labs = [rgb_to_lab(f) for f in truth]
        self.light = [lab[..., 0] for lab in labs]
        self.ab = [np.ascontiguousarray(lab[..., 1:]) for lab in labs]
        h, w = truth[0].shape[:2]
        self.size = working_size(h, w, WORKING)
        self.small = [self.shrink(light) for light in self.light]

    def shrink(self, light: np.ndarray, short: int = WORKING) -> np.ndarray:
        from tintype.media.propagate import light_u8, working_size

        h, w = working_size(*light.shape, short)
        return light_u8(cv2.resize(light, (w, h), interpolation=cv2.INTER_AREA))

    def to_rgb(self, abs_small: list[np.ndarray]) -> list[np.ndarray]:
        from tintype.media.color import merge_lightness_chroma
        from tintype.media.propagate import refine

        return [merge_lightness_chroma(light, refine(ab, light, small))
                for light, small, ab in zip(self.light, self.small, abs_small)]


def small_ab(clip: Clip, ab: np.ndarray) -> np.ndarray:
    from tintype.media.propagate import resize_ab

    return resize_ab(ab, *clip.size)


# ---------------------------------------------------------------------------- methods


def naive_chain(clip: Clip, key_ab: np.ndarray) -> list[np.ndarray]:
    """The baseline: ab carried frame to frame (resampled every frame) along DIS flow;
    where the forward–backward check fails, a direct flow to the keyframe."""
    from tintype.media import flow as fl

    out = [key_ab]
    for t in range(1, len(clip.small)):
        pair = fl.pair_flow(clip.small[t - 1], clip.small[t])
        carried = fl.warp(out[-1], pair.to_prev)
        direct = fl.warp(key_ab, fl.flow(clip.small[t], clip.small[0]))
        out.append(np.where(pair.mask[..., None], carried, direct).astype(np.float32))
    return out


def keyframe_colour(model: Any, clip: Clip, indices: list[int]) -> dict[int, np.ndarray]:
    """The model's ab of the chosen frames at its best setting (KEY_RENDER)."""
    from tintype.gpu_workers.colorize import colorize_frames
    from tintype.media.color import rgb_to_lab

    grey = [grey_rgb(clip, t) for t in indices]
    render = min(KEY_RENDER, *clip.truth[0].shape[:2])
    rgbs = colorize_frames(model, grey, render)
    return {t: small_ab(clip, rgb_to_lab(rgb)[..., 1:]) for t, rgb in zip(indices, rgbs)}


def grey_rgb(clip: Clip, t: int) -> np.ndarray:
    from tintype.media.color import merge_lightness_chroma

    return merge_lightness_chroma(clip.light[t], np.zeros(clip.light[t].shape + (2,), np.float32))


def chunked(clip: Clip, keys: dict[int, np.ndarray], fallback: list[np.ndarray], chunk: int) -> list[np.ndarray]:
    """first+last the way chunks will run: borders from the low-resolution pass."""
    from tintype.media import propagate as pg

    low = [clip.shrink(light, LOW) for light in clip.light]
    lh, lw = low[0].shape
    n = len(low)
    starts = list(range(0, n, chunk))
    at = sorted({s for s in starts} | {min(n, s + chunk) - 1 for s in starts})
    low_keys = {t: pg.resize_ab(ab, lh, lw) for t, ab in keys.items()}
    low_fallback = [pg.resize_ab(ab, lh, lw) for ab in fallback]
    borders = dict(pg.shot_chroma(iter(low), low_keys, at, low_fallback))
    out: list[np.ndarray] = []
    for s in starts:
        e = min(n, s + chunk)
        inside = {t - s: ab for t, ab in keys.items() if s <= t < e}
        edge = {0: borders[s], e - 1 - s: borders[e - 1]}
        edge = {t: pg.refine(ab, clip.small[s + t].astype(np.float32) / 2.55, low[s + t]) for t, ab in edge.items()}
        result = pg.propagate(clip.small[s:e], inside, fallback[s:e], borders=edge)
        out += result.ab
    return out


def run_methods(clip: Clip, model_rgb: list[np.ndarray], model: Callable[[], Any], chunk: int) -> tuple[
        dict[str, list[np.ndarray]], dict[str, Any]]:
    from tintype.media import propagate as pg
    from tintype.media.color import rgb_to_lab

    n = len(clip.truth)
    fallback = [small_ab(clip, rgb_to_lab(rgb)[..., 1:]) for rgb in model_rgb]
    first = {0: small_ab(clip, clip.ab[0])}
    first_last = {**first, n - 1: small_ab(clip, clip.ab[n - 1])}
    links = pg.link(clip.small)
    info: dict[str, Any] = {"cuts": pg.shots_of(links) and [s.start for s in pg.shots_of(links)[1:]]}
    low = [clip.shrink(light, LOW) for light in clip.light]
    began = time.perf_counter()
    auto = pg.choose_keyframes(low)
    info["auto_keyframes"], info["choose_seconds"] = auto, time.perf_counter() - began
    abs_: dict[str, list[np.ndarray]] = {}
    timings = {}
    for name, keys in [("first", first), ("first_last", first_last),
                       ("auto", lambda: keyframe_colour(model(), clip, auto))]:
        keys = keys() if callable(keys) else keys
        began = time.perf_counter()
        abs_[name] = pg.propagate(clip.small, keys, fallback, links=links).ab
        timings[name] = time.perf_counter() - began
    abs_["naive_chain"] = naive_chain(clip, first[0])
    abs_["chunked_first_last"] = chunked(clip, first_last, fallback, chunk)
    info["propagate_seconds"] = timings
    videos = {"grey": [grey_rgb(clip, t) for t in range(n)], "model": model_rgb}
    videos.update({name: clip.to_rgb(ab) for name, ab in abs_.items()})
    return videos, info


# ---------------------------------------------------------------------------- measures


def measure(clip: Clip, videos: dict[str, list[np.ndarray]]) -> dict[str, dict[str, float]]:
    """Per video, over frames 1 .. n-2 (no method's true keyframe)."""
    from tintype.media import flow as fl
    from tintype.media import metrics, scenecut

    n = len(clip.truth)
    span = range(1, n - 1)
    lights = [fl.lightness_u8(f) for f in clip.truth]
    pairs = {t: scenecut.join(lights[t - 1], lights[t]) for t in range(span.start + 1, span.stop)}
    out: dict[str, dict[str, float]] = {}
    for name, frames in {"truth": clip.truth, **videos}.items():
        errors = [metrics.pair_errors(frames[t - 1], frames[t], p) for t, p in pairs.items() if p is not None]
        errors = [e for e in errors if e is not None]
        row = {"cdc": metrics.cdc(frames[t] for t in span),
               "colourfulness": float(np.mean([metrics.colourfulness(frames[t]) for t in span])),
               "chroma_warping_error": float(np.mean([e.chroma_warping_error for e in errors])) if errors else 0.0}
        if name != "truth":
            row["psnr"] = float(np.mean([metrics.capped_psnr(frames[t], clip.truth[t]) for t in span]))
            row["ssim"] = float(np.mean([metrics.ssim(frames[t], clip.truth[t]) for t in span]))
        out[name] = row
    return out


def speed(clip: Clip, repeat: int) -> dict[str, Any]:
    """Frames/s of first+last propagation on this clip (flow included), with and without
    the full-size refinement and merge, and tracemalloc's peak for one run."""
    from tintype.media import propagate as pg
    from tintype.media.color import merge_lightness_chroma

    n = len(clip.small)
    keys = {0: small_ab(clip, clip.ab[0]), n - 1: small_ab(clip, clip.ab[n - 1])}
    best_prop, best_full = float("inf"), float("inf")
    load = os.getloadavg()[0]
    for _ in range(repeat):
        began = time.perf_counter()
        result = pg.propagate(clip.small, keys)
        prop = time.perf_counter() - began
        for light, small, ab in zip(clip.light, clip.small, result.ab):
            merge_lightness_chroma(light, pg.refine(ab, light, small))
        best_prop, best_full = min(best_prop, prop), min(best_full, time.perf_counter() - began)
    tracemalloc.start()
    pg.propagate(clip.small, keys)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    h, w = clip.truth[0].shape[:2]
    return {"clip": clip.name, "size": [w, h], "working": list(clip.size[::-1]), "frames": n,
            "propagate_fps": n / best_prop, "with_refine_and_merge_fps": n / best_full,
            "tracemalloc_peak_mib": peak / 2 ** 20,
            "peak_per_frame_mib": peak / 2 ** 20 / n,
            "load_1min": round(load, 2), "cpu_count": os.cpu_count()}


# ---------------------------------------------------------------------------- report


def thumb(rgb: np.ndarray, height: int = 96) -> Image.Image:
    h, w = rgb.shape[:2]
    return Image.fromarray(rgb).resize((max(1, round(w * height / h)), height), Image.Resampling.BILINEAR)


def strip_rows(name: str, videos: dict[str, list[np.ndarray]], truth: list[np.ndarray]) -> list[Image.Image]:
    n = len(truth)
    frames = [n // 4, n // 2, (3 * n) // 4]
    all_videos = {**videos, "truth": truth}
    rows = []
    for t in frames:
        tiles = [thumb(all_videos[m][t]) for m in STRIP]
        width = sum(tile.width for tile in tiles) + 4 * (len(tiles) - 1) + 120
        row = Image.new("RGB", (width, tiles[0].height), "white")
        ImageDraw.Draw(row).text((4, 4), f"{name}\nframe {t}", fill="black", font=report_font(12))
        x = 120
        for tile in tiles:
            row.paste(tile, (x, 0))
            x += tile.width + 4
        rows.append(row)
    return rows


def write_strip(path: Path, rows: list[Image.Image]) -> None:
    header = 24
    width = max(r.width for r in rows)
    img = Image.new("RGB", (width, header + sum(r.height + 4 for r in rows)), "white")
    ImageDraw.Draw(img).text((120, 4), "   |   ".join(["grey", "per-frame model", "auto keyframes",
                                                        "first-frame keyframe", "truth"]),
                             fill="black", font=report_font(14))
    y = header
    for r in rows:
        img.paste(r, (0, y))
        y += r.height + 4
    img.save(path)


def summarise(clips: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    names = ["truth"] + METHODS
    return {m: {k: float(np.mean([c["measures"][m][k] for c in clips])) for k in clips[0]["measures"][m]}
            for m in names}


def targets_of(mean: dict[str, dict[str, float]], tp: dict[str, Any] | None) -> list[dict[str, Any]]:
    grey, first = mean["grey"]["psnr"], mean["first"]["psnr"]
    rows = [
        {"name": "first true frame as keyframe over grey", "wanted": f">= +{TARGETS_DB['first_over_grey']} dB",
         "measured": f"{first - grey:+.2f} dB", "met": first - grey >= TARGETS_DB["first_over_grey"]},
        {"name": "first true frame over the naive chain", "wanted": f">= +{TARGETS_DB['first_over_naive']} dB",
         "measured": f"{first - mean['naive_chain']['psnr']:+.2f} dB",
         "met": first - mean["naive_chain"]["psnr"] >= TARGETS_DB["first_over_naive"]},
        {"name": "first and last true frames over grey", "wanted": f">= +{TARGETS_DB['first_last_over_grey']} dB",
         "measured": f"{mean['first_last']['psnr'] - grey:+.2f} dB",
         "met": mean["first_last"]["psnr"] - grey >= TARGETS_DB["first_last_over_grey"]},
        {"name": "auto keyframes PSNR against the per-frame model", "wanted": ">= +0 dB",
         "measured": f"{mean['auto']['psnr'] - mean['model']['psnr']:+.2f} dB",
         "met": mean["auto"]["psnr"] >= mean["model"]["psnr"]},
        {"name": "auto keyframes CDC against the true video's", "wanted": f"<= {CDC_RATIO}x",
         "measured": f"{mean['auto']['cdc'] / mean['truth']['cdc']:.2f}x",
         "met": mean["auto"]["cdc"] <= CDC_RATIO * mean["truth"]["cdc"]},
    ]
    if tp:
        rows.append({"name": "propagation at 854x480 (flow included, working res)",
                     "wanted": f">= {TARGET_FPS:.0f} frames/s",
                     "measured": f"{tp['propagate_fps']:.1f} frames/s ({tp['with_refine_and_merge_fps']:.1f} "
                                 f"with full-size refine + merge; load {tp['load_1min']})",
                     "met": tp["propagate_fps"] >= TARGET_FPS})
    return rows


def markdown(report: dict[str, Any]) -> str:
    mean = report["mean"]
    lines = ["# Keyframe colour benchmark", "",
             f"Command: `{report['command']}`", "",
             f"{report['clips_measured']} clips, working resolution short side {WORKING}, model "
             f"{report['model']} at render size {report['render_size']}; measured over frames 1..n-2 of each clip "
             "(no method's true keyframe); means over clips.", "",
             "| method | PSNR dB | SSIM | colourfulness | CDC | chroma E_warp x1e-3 |",
             "|---|---:|---:|---:|---:|---:|"]
    for m in ["truth"] + METHODS:
        r = mean[m]
        psnr = f"{r['psnr']:.2f}" if "psnr" in r else "—"
        ssim = f"{r['ssim']:.4f}" if "ssim" in r else "—"
        lines.append(f"| {m} | {psnr} | {ssim} | {r['colourfulness']:.1f} | {r['cdc']:.5f} | "
                     f"{r['chroma_warping_error'] * 1e3:.3f} |")
    lines += ["", "## Per clip (PSNR dB)", "", "| clip | frames | size | auto keys | " + " | ".join(METHODS) + " |",
              "|---|---:|---|---|" + "---:|" * len(METHODS)]
    for c in report["clips"]:
        lines.append(f"| {c['clip']} | {c['frames']} | {c['width']}x{c['height']} | {c['auto_keyframes']} | "
                     + " | ".join(f"{c['measures'][m]['psnr']:.2f}" for m in METHODS) + " |")
    lines += ["", "## Targets", "", "| target | wanted | measured | met |", "|---|---|---|---|"]
    for t in report["targets"]:
        lines.append(f"| {t['name']} | {t['wanted']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |")
    tp = report.get("throughput")
    if tp:
        lines += ["", f"## Speed at {tp['size'][0]}x{tp['size'][1]} ({tp['clip']}, {tp['frames']} frames, "
                      f"working {tp['working'][0]}x{tp['working'][1]})", "",
                  f"* propagation (scene-cut test and flows included, two keyframes): {tp['propagate_fps']:.1f} "
                  "frames/s, one process",
                  f"* plus guided refinement to full size and merge with L: {tp['with_refine_and_merge_fps']:.1f} "
                  "frames/s",
                  f"* tracemalloc peak of one propagation: {tp['tracemalloc_peak_mib']:.0f} MiB "
                  f"({tp['peak_per_frame_mib']:.2f} MiB per frame of the window); process max RSS "
                  f"{report['max_rss_mib']:.0f} MiB",
                  f"* load average at the start {tp['load_1min']} on {tp['cpu_count']} cores"]
    lines += ["", f"Total {report['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.keyframes", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=0, help="first N clips (0: all)")
    parser.add_argument("--only", default="", help="comma-separated clip names")
    parser.add_argument("--frames", type=int, default=0, help="first N frames per clip (0: all)")
    parser.add_argument("--chunk", type=int, default=24, help="frames per chunk in the chunked run")
    parser.add_argument("--repeat", type=int, default=2, help="speed runs to take the best of")
    parser.add_argument("--no-speed", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    folders = clip_folders(args.data.resolve())
    if args.only:
        folders = [f for f in folders if f.name in args.only.split(",")]
    if args.limit > 0:
        folders = folders[:args.limit]
    args.out.mkdir(parents=True, exist_ok=True)
    colorize = Colorizer(args.out / "cache")

    def model() -> Any:
        if colorize.model is None:
            from tintype.gpu_workers.models.registry import ModelRegistry

            colorize.model = ModelRegistry(colorize.settings).colorizer(colorize.name)
        return colorize.model

    clips, rows, speed_clip = [], [], None
    for folder in folders:
        t0 = time.perf_counter()
        truth = load_truth(folder, args.frames)
        if len(truth) < 4:
            log(f"{folder.name}: fewer than 4 frames, skipped")
            continue
        clip = Clip(folder.name, truth)
        model_frames, cached = colorize(folder.name, truth)
        videos, info = run_methods(clip, [f.rgb() for f in model_frames], model, args.chunk)
        measures = measure(clip, videos)
        h, w = truth[0].shape[:2]
        clips.append({"clip": folder.name, "frames": len(truth), "width": w, "height": h,
                      "model_from_cache": cached, **info, "measures": measures})
        rows += strip_rows(folder.name, videos, truth)
        log(f"{folder.name}: " + ", ".join(f"{m} {measures[m]['psnr']:.2f}" for m in METHODS)
            + f" dB; auto keys {info['auto_keyframes']} [{time.perf_counter() - t0:.0f} s]")
        if (w, h) == (854, 480) and speed_clip is None:
            speed_clip = clip
    if not clips:
        raise SystemExit("bench.keyframes: no clip to measure")
    tp = None if args.no_speed else speed(speed_clip or clip, args.repeat)
    mean = summarise(clips)
    report = {"command": "python -m bench.keyframes " + " ".join(argv if argv is not None else sys.argv[1:]),
              "model": colorize.name, "render_size": colorize.render_size, "clips_measured": len(clips),
              "mean": mean, "targets": targets_of(mean, tp), "throughput": tp, "clips": clips,
              "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "seconds": time.perf_counter() - began}
    write_strip(args.out / "strip.png", rows)
    write_results(args.out, report, markdown(report), log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
