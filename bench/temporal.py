"""Benchmark of temporal chroma smoothing: quality on real clips and finalize throughput.

    python -m bench.temporal --out bench-results/temporal [--data ../shared/data] [--limit N]

Quality. For every sequence in DATA/clips (true colour JPEG frames): downscale to at most
854 wide (even sizes), make the greyscale input from the frames' lightness, colorize it
with the shipped registry model at the default render size (cached per clip under
OUT/cache as the pipeline's 4:2:0 intermediates, keyed by the model code and weights, so
reruns and the off/on runs reuse it), run `media.temporal.ChromaSmoother` with strength 0 (off) and the configured
strength (on), and measure with `media.metrics`, flow always on the TRUE colour video's
lightness: chroma warping error (Lab a, b) and whole-frame warping error beside the
true video's own (the floor that flow error sets), PSNR and SSIM against the truth.

Throughput. The finalize loop at 854x480 exactly as the pipeline runs it —
`iter_lossless` over HuffYUV 4:2:0 chunk intermediates (48 frames,
`media.video.LosslessWriter`) → `ChromaSmoother.push` → `DeliveryEncoder(sink=...)`, through
`tintype.media.delivery.deliver`, the loop tasks/finalize.py runs — in frames/s, beside decode-only,
smoothing-only and encode-only rates, CPU seconds per frame, and the load average (other
work on the machine slows every number here). When the loop misses the target, other
intermediate formats and encoder presets are measured too.

Writes OUT/results.json, OUT/results.md and OUT/plot.png (drawn with Pillow).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import cv2
import numpy as np
from PIL import Image, ImageDraw

from bench.report import font as report_font
from bench.report import write_results
from tintype.media.video import DeliveryOptions
from tintype.media.yuv import Yuv420

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data"
MAX_WIDTH = 854
THROUGHPUT_SIZE = (854, 480)
CHUNK_FRAMES = 48
TARGETS = {"chroma_reduction_pct": 40.0, "psnr_drop_db": 0.1, "finalize_fps": 60.0}


def log(message: str) -> None:
    print(f"[bench.temporal {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- clips


def clip_folders(data: Path) -> list[Path]:
    clips = data / "clips"
    if not clips.is_dir():
        raise SystemExit(f"bench.temporal: no clips at {clips}: the shared data is missing "
                         f"(expected DATA/clips/<sequence>/frames/*.jpg, see DATA/SOURCES.md); "
                         f"pass --data")
    found = sorted(p for p in clips.iterdir() if (p / "frames").is_dir() and any((p / "frames").glob("*.jpg")))
    if not found:
        raise SystemExit(f"bench.temporal: {clips} holds no sequences with frames/*.jpg")
    return found


def even_size(width: int, height: int, max_width: int = MAX_WIDTH) -> tuple[int, int]:
    if width > max_width:
        height, width = round(height * max_width / width), max_width
    return width - width % 2, height - height % 2


def load_truth(folder: Path, frames: int) -> list[np.ndarray]:
    """The first `frames` consecutive true colour frames, at most 854 wide, even sizes."""
    files = sorted((folder / "frames").glob("*.jpg"))
    files = files[:frames] if frames > 0 else files
    out = []
    for path in files:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"))
        size = even_size(rgb.shape[1], rgb.shape[0])
        if size != (rgb.shape[1], rgb.shape[0]):
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        out.append(np.ascontiguousarray(rgb))
    return out


def greyscale(frame: np.ndarray) -> np.ndarray:
    """The black-and-white film: the frame's CIE lightness with no chroma, as RGB."""
    from tintype.media.color import merge_lightness_chroma, rgb_to_lab

    light = rgb_to_lab(frame)[..., 0]
    return merge_lightness_chroma(light, np.zeros(light.shape + (2,), np.float32))


def model_key(model_name: str, render_size: int) -> str:
    """Changes whenever the colorization code, the model code or its weights change."""
    from tintype.gpu_workers.models import registry

    digest = hashlib.sha256(f"{model_name}:{render_size}".encode())
    package = ROOT / "tintype"
    for path in sorted([package / "gpu_workers" / "colorize.py", package / "media" / "color.py",
                        package / "media" / "guided.py",
                        *(package / "gpu_workers" / "models").glob("*.py")]):
        digest.update(path.read_bytes())
    spec = next((s for s in registry.specs("colorize") if s.name == model_name), None)
    if spec is not None and spec.weights is not None:
        digest.update(spec.weights.sha256.encode())
    return digest.hexdigest()[:12]


class Colorizer:
    """The shipped model, loaded on first use; results cached per clip as intermediates."""

    def __init__(self, cache: Path | None) -> None:
        from tintype.settings import load_settings

        self.settings = load_settings()
        self.name, self.render_size = self.settings.colorize_model, self.settings.render_size
        self.cache = cache
        self.key = model_key(self.name, self.render_size)
        self.model = None
        self.seconds, self.frames = 0.0, 0

    def __call__(self, clip: str, truth: list[np.ndarray]) -> tuple[list[Yuv420], bool]:
        """The colorized frames as the chunk intermediates hold them (4:2:0), and whether
        they came from the cache."""
        from tintype.media.video import LosslessWriter, iter_lossless

        height, width = truth[0].shape[:2]
        path = self.cache / f"{clip}-{self.key}-{len(truth)}.mkv" if self.cache else None
        if path is not None and path.is_file():
            frames = list(iter_lossless(path, width, height))
            if len(frames) == len(truth):
                return frames, True
        if self.model is None:
            from tintype.gpu_workers.models.registry import ModelRegistry

            self.model = ModelRegistry(self.settings).colorizer(self.name)
        from tintype.gpu_workers.colorize import colorize_frames

        began = time.perf_counter()
        frames = [Yuv420.from_rgb(f) for f in
                  colorize_frames(self.model, [greyscale(f) for f in truth], self.render_size)]
        self.seconds += time.perf_counter() - began
        self.frames += len(frames)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part.mkv")
            with LosslessWriter(partial, width, height) as writer:
                for frame in frames:
                    writer.write(frame)
            partial.replace(path)
        return frames, False


# ---------------------------------------------------------------------------- quality


def smoothing_options() -> dict[str, Any]:
    """The strength and radius a job gets by default (TEMPORAL_STRENGTH, TEMPORAL_RADIUS)."""
    from tintype.settings import load_settings

    settings = load_settings()
    return {"strength": settings.temporal_strength, "radius": settings.temporal_radius}


def smooth(frames: Iterable[Yuv420], strength: float, radius: int):
    from tintype.media.temporal import ChromaSmoother

    smoother = ChromaSmoother(strength=strength, radius=radius)
    out: list[Yuv420] = []
    began = time.perf_counter()
    for frame in frames:
        out += smoother.push(frame)
    out += smoother.flush()
    return out, smoother, time.perf_counter() - began


def clip_quality(truth: list[np.ndarray], videos: dict[str, list[np.ndarray]]) -> dict[str, dict[str, float]]:
    """Per video: flow measures along the truth's flow (computed once per pair, pairs
    across the truth's scene cuts left out as `tintype eval` does), and PSNR/SSIM."""
    from tintype.media import flow as fl
    from tintype.media import scenecut
    from tintype.media.metrics import ReferenceMeter, pair_errors

    sums = {name: {"warping_error": [], "chroma_warping_error": [], "chroma_flicker": []}
            for name in ("truth", *videos)}
    all_videos = {"truth": truth, **videos}
    lights = [fl.lightness_u8(f) for f in truth]
    for t in range(1, len(truth)):
        pair = scenecut.join(lights[t - 1], lights[t])
        if pair is None:
            continue
        for name, frames in all_videos.items():
            errors = pair_errors(frames[t - 1], frames[t], pair)
            if errors is not None:
                for key in sums[name]:
                    sums[name][key].append(getattr(errors, key))
    result: dict[str, dict[str, float]] = {}
    for name, values in sums.items():
        result[name] = {key: float(np.mean(v)) if v else float("nan") for key, v in values.items()}
        result[name]["pairs"] = len(values["warping_error"])
    for name, frames in videos.items():
        meter = ReferenceMeter()
        for frame, true in zip(frames, truth):
            meter.push(frame, true)
        summary = meter.summary()
        result[name].update(psnr=summary["psnr"], ssim=summary["ssim"])
    return result


def reduction(off: float, on: float) -> float:
    return 100.0 * (off - on) / off if off > 0 else 0.0


def run_quality(args: argparse.Namespace, folders: list[Path], colorize: Colorizer,
                options: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, list[np.ndarray]]]:
    clips, keep = [], {}
    for folder in folders:
        began = time.perf_counter()
        truth = load_truth(folder, args.frames)
        if len(truth) < 2:
            log(f"{folder.name}: fewer than two frames, skipped")
            continue
        colour, cached = colorize(folder.name, truth)
        off, off_smoother, off_seconds = smooth(colour, 0.0, options["radius"])
        on, on_smoother, on_seconds = smooth(colour, options["strength"], options["radius"])
        assert len(off) == len(on) == len(truth)
        measures = clip_quality(truth, {"off": [f.rgb() for f in off], "on": [f.rgb() for f in on]})
        height, width = truth[0].shape[:2]
        clips.append({
            "clip": folder.name, "frames": len(truth), "width": width, "height": height,
            "colorized_from_cache": cached,
            "scene_cuts_found": on_smoother.stats.cuts,
            "smoothing_fps": len(on) / on_seconds if on_seconds > 0 else None,
            "measures": measures,
            "chroma_warping_reduction_pct": reduction(measures["off"]["chroma_warping_error"],
                                                      measures["on"]["chroma_warping_error"]),
            "warping_reduction_pct": reduction(measures["off"]["warping_error"], measures["on"]["warping_error"]),
            "psnr_delta_db": measures["on"]["psnr"] - measures["off"]["psnr"],
            "ssim_delta": measures["on"]["ssim"] - measures["off"]["ssim"],
        })
        c = clips[-1]
        log(f"{folder.name}: {len(truth)} frames {width}x{height}{' (cached colour)' if cached else ''}: "
            f"chroma E_warp off {measures['off']['chroma_warping_error']:.6f} on "
            f"{measures['on']['chroma_warping_error']:.6f} truth {measures['truth']['chroma_warping_error']:.6f} "
            f"({c['chroma_warping_reduction_pct']:.1f}% lower), PSNR {c['psnr_delta_db']:+.3f} dB "
            f"[{time.perf_counter() - began:.1f} s]")
        if (width, height) == THROUGHPUT_SIZE and "throughput" not in keep:
            keep["throughput"] = colour
            keep["throughput_clip"] = folder.name  # type: ignore[assignment]
        if "fallback" not in keep:
            keep["fallback"] = colour
            keep["fallback_clip"] = folder.name  # type: ignore[assignment]
    overall = summarise(clips)
    return clips, overall, keep


def summarise(clips: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over clips (each clip weighs the same)."""
    if not clips:
        return {}
    mean = lambda values: float(np.mean(values))  # noqa: E731
    measures = {}
    for video in ("off", "on", "truth"):
        keys = ["warping_error", "chroma_warping_error", "chroma_flicker"]
        if video != "truth":
            keys += ["psnr", "ssim"]
        measures[video] = {k: mean([c["measures"][video][k] for c in clips]) for k in keys}
    return {
        "clips": len(clips), "frames": sum(c["frames"] for c in clips), "measures": measures,
        "chroma_warping_reduction_pct": reduction(measures["off"]["chroma_warping_error"],
                                                  measures["on"]["chroma_warping_error"]),
        "warping_reduction_pct": reduction(measures["off"]["warping_error"], measures["on"]["warping_error"]),
        "mean_of_clip_chroma_reductions_pct": mean([c["chroma_warping_reduction_pct"] for c in clips]),
        "worst_clip_chroma_reduction_pct": min(c["chroma_warping_reduction_pct"] for c in clips),
        "psnr_delta_db": measures["on"]["psnr"] - measures["off"]["psnr"],
        "worst_clip_psnr_delta_db": min(c["psnr_delta_db"] for c in clips),
        "ssim_delta": measures["on"]["ssim"] - measures["off"]["ssim"],
    }


# ---------------------------------------------------------------------------- throughput


@dataclass(frozen=True)
class Format:
    """A chunk intermediate format: ffmpeg encoder arguments (None: LosslessWriter's own)."""

    name: str
    args: tuple[str, ...] | None
    note: str


FORMATS = [
    Format("ffvhuff yuv420p (current)", None, "LosslessWriter: HuffYUV of the delivery's 4:2:0 planes"),
    Format("ffv1 yuv420p", ("-c:v", "ffv1", "-level", "3", "-g", "1", "-slices", "4"),
           "FFV1 level 3, 4 slices: smallest, slowest to decode"),
    Format("utvideo yuv420p", ("-c:v", "utvideo", "-pred", "median"), "Ut Video, median prediction"),
    Format("magicyuv yuv420p", ("-c:v", "magicyuv",), "MagicYUV"),
    Format("raw yuv420p (NUT)", ("-c:v", "rawvideo", "-f", "nut"),
           "baseline only: no decoding, 0.6 MB/frame of storage"),
]
PRESETS = ["veryfast", "superfast", "ultrafast"]


class Clock:
    """Wall time, CPU time of this process and its waited-for children, load average."""

    def __enter__(self) -> "Clock":
        self.load_before = os.getloadavg()[0]
        self.wall = time.perf_counter()
        self.cpu = self._cpu()
        return self

    @staticmethod
    def _cpu() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.wall
        self.cpu_seconds = self._cpu() - self.cpu
        self.load_after = os.getloadavg()[0]

    def rate(self, frames: int) -> dict[str, Any]:
        return {"fps": frames / self.seconds, "seconds": self.seconds, "frames": frames,
                "cpu_ms_per_frame": 1000.0 * self.cpu_seconds / frames,
                "load_1min": [round(self.load_before, 2), round(self.load_after, 2)]}


def ping_pong(frames: list[Any], count: int) -> list[Any]:
    """`count` frames going forward and back through `frames`: motion, but no cut."""
    if len(frames) == 1:
        return frames * count
    cycle = frames + frames[-2:0:-1]
    return [cycle[i % len(cycle)] for i in range(count)]


def write_chunks(frames: list[Yuv420], folder: Path, fmt: Format) -> tuple[list[Path], dict[str, Any]]:
    from tintype.media.ffmpeg import FFMPEG, finish_tool, start_tool
    from tintype.media.video import LosslessWriter

    folder.mkdir(parents=True, exist_ok=True)
    width, height = frames[0].width, frames[0].height
    paths = []
    with Clock() as clock:
        for index, begin in enumerate(range(0, len(frames), CHUNK_FRAMES)):
            path = folder / f"chunk-{index:06d}.mkv"
            part = frames[begin:begin + CHUNK_FRAMES]
            if fmt.args is None:
                with LosslessWriter(path, width, height) as writer:
                    for frame in part:
                        writer.write(frame)
            else:
                proc = start_tool([FFMPEG, "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p",
                                   "-s", f"{width}x{height}", "-framerate", "25", "-i", "-", *fmt.args,
                                   *(() if "-f" in fmt.args else ("-f", "matroska")), str(path)], stdin=True)
                for frame in part:
                    proc.stdin.write(frame.tobytes())
                proc.stdin.close()
                finish_tool(proc, f"{fmt.name} encode", 600)
            paths.append(path)
    stats = clock.rate(len(frames))
    stats["bytes_per_frame"] = sum(p.stat().st_size for p in paths) / len(frames)
    return paths, stats


def facts_for(width: int, height: int, frames: int):
    from tintype.media.probe import VideoFacts

    return VideoFacts(container="matroska", video_codec="ffvhuff", width=width, height=height, rotation=0,
                      frames=frames, fps_num=25, fps_den=1, constant_rate=True, duration=frames / 25,
                      start_time=0.0, bytes=None)


class Sink:
    def __init__(self) -> None:
        self.bytes = 0

    def __call__(self, block: bytes) -> None:
        self.bytes += len(block)


def finalize_loop(chunks: list[Path], width: int, height: int, frames: int, strength: float, radius: int,
                  preset: str = "superfast") -> dict[str, Any]:
    """Finalize's frame loop without the storage: `tintype.media.delivery.deliver`, the
    loop the pipeline runs (its reader 8 frames ahead over the chunks in order → smoother
    → encoder), here into a byte counter."""
    from tintype.media.delivery import deliver
    from tintype.media.temporal import ChromaSmoother
    from tintype.media.video import DeliveryOptions, iter_lossless

    def decoded() -> Iterator[Yuv420]:
        for part in chunks:
            yield from iter_lossless(part, width, height)

    sink = Sink()
    with Clock() as clock:
        deliver(decoded, facts_for(width, height, frames), None, sink, ChromaSmoother(strength=strength, radius=radius),
                options=DeliveryOptions(preset=preset))
    stats = clock.rate(frames)
    stats["mp4_bytes"] = sink.bytes
    return stats


def decode_only(chunks: list[Path], width: int, height: int) -> dict[str, Any]:
    from tintype.media.video import iter_lossless

    count = 0
    with Clock() as clock:
        for part in chunks:
            for _ in iter_lossless(part, width, height):
                count += 1
    return clock.rate(count)


def smoothing_only(frames: list[Yuv420], strength: float, radius: int) -> dict[str, Any]:
    with Clock() as clock:
        out, _, _ = smooth(frames, strength, radius)
    return clock.rate(len(out))


def encode_only(frames: list[Yuv420], preset: str) -> dict[str, Any]:
    from tintype.media.video import DeliveryEncoder, DeliveryOptions

    sink = Sink()
    with Clock() as clock:
        encoder = DeliveryEncoder(facts_for(frames[0].width, frames[0].height, len(frames)), None, sink=sink,
                                  options=DeliveryOptions(preset=preset))
        for frame in frames:
            encoder.write(frame)
        encoder.close()
    stats = clock.rate(len(frames))
    stats["mp4_bytes"] = sink.bytes
    return stats


def measure_format(frames: list[Yuv420], fmt: Format, work: Path, options: dict[str, Any],
                   repeat: int = 1) -> dict[str, Any]:
    """Write one format's chunks, then time decode-only and the finalize loop on them."""
    width, height = frames[0].width, frames[0].height
    folder = work / fmt.name.replace(" ", "-").replace("(", "").replace(")", "")
    try:
        paths, wrote = write_chunks(frames, folder, fmt)
        decoded = decode_only(paths, width, height)
        runs = [finalize_loop(paths, width, height, len(frames), options["strength"], options["radius"])
                for _ in range(repeat)]
    except Exception as exc:  # an encoder this ffmpeg lacks: report it and go on
        return {"format": fmt.name, "note": fmt.note, "error": str(exc)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    best = max(runs, key=lambda r: r["fps"])
    row = {"format": fmt.name, "note": fmt.note, "bytes_per_frame": wrote["bytes_per_frame"],
           "write": wrote, "decode": decoded, "finalize": {**best, "runs_fps": [r["fps"] for r in runs]}}
    rates = ", ".join(f"{r['fps']:.1f}" for r in runs)
    log(f"throughput: {fmt.name}: {wrote['bytes_per_frame'] / 1e3:.0f} kB/frame, decode {decoded['fps']:.1f}, "
        f"finalize {best['fps']:.1f} frames/s (runs {rates}), "
        f"load {os.getloadavg()[0]:.2f}")
    return row


def run_throughput(args: argparse.Namespace, colour: list[Yuv420], clip: str,
                   options: dict[str, Any], work: Path) -> dict[str, Any]:
    width, height = THROUGHPUT_SIZE
    if (colour[0].width, colour[0].height) != (width, height):
        colour = [Yuv420.from_rgb(cv2.resize(f.rgb(), (width, height), interpolation=cv2.INTER_AREA))
                  for f in colour]
        clip += f" (resized to {width}x{height})"
    frames = ping_pong(colour, args.throughput_frames)
    strength, radius = options["strength"], options["radius"]
    result: dict[str, Any] = {"clip": clip, "size": [width, height], "frames": len(frames),
                              "chunk_frames": CHUNK_FRAMES, "strength": strength, "radius": radius,
                              "cpu_count": os.cpu_count(), "load_1min_at_start": round(os.getloadavg()[0], 2)}
    log(f"throughput: {len(frames)} frames of {clip} at {width}x{height}, load {os.getloadavg()}")
    current = measure_format(frames, FORMATS[0], work, options, repeat=args.repeat)
    if "error" in current:
        raise SystemExit(f"bench.temporal: the current intermediate failed: {current['error']}")
    result["finalize"] = current["finalize"]
    result["decode_only"] = current["decode"]
    result["write_intermediate"] = current["write"]
    folder = work / "stages"
    chunks, _ = write_chunks(frames, folder, FORMATS[0])
    result["finalize_smoothing_off"] = finalize_loop(chunks, width, height, len(frames), 0.0, radius)
    shutil.rmtree(folder, ignore_errors=True)
    result["smoothing_only"] = smoothing_only(frames, strength, radius)
    result["smoothing_off_only"] = smoothing_only(frames, 0.0, radius)
    result["encode_only"] = encode_only(frames, DeliveryOptions().preset)
    log(f"throughput: finalize {current['finalize']['fps']:.1f} frames/s (decode {result['decode_only']['fps']:.1f}, "
        f"smoothing {result['smoothing_only']['fps']:.1f}, encode {result['encode_only']['fps']:.1f})")
    met = current["finalize"]["fps"] >= TARGETS["finalize_fps"]
    result["target_met"] = met
    if met and not args.alternatives:
        result["load_1min_at_end"] = round(os.getloadavg()[0], 2)
        return result
    formats = [current] + [measure_format(frames, fmt, work, options) for fmt in FORMATS[1:]]
    result["formats"] = formats
    result["presets"] = [{"preset": preset, **{k: v for k, v in encode_only(frames, preset).items()
                                               if k in ("fps", "cpu_ms_per_frame", "mp4_bytes")}}
                         for preset in PRESETS]
    result["load_1min_at_end"] = round(os.getloadavg()[0], 2)
    return result


# ---------------------------------------------------------------------------- reports


def e3(value: float) -> str:
    return f"{value * 1e3:.3f}"


def markdown(report: dict[str, Any]) -> str:
    clips, overall, targets = report["clips"], report["overall"], report["targets"]
    lines = ["# Temporal chroma smoothing: benchmark", "",
             f"Model `{report['model']}` at render size {report['render_size']}; smoothing strength "
             f"{report['smoothing']['strength']}, radius {report['smoothing']['radius']}. First "
             f"{report['frames_per_clip'] or 'all the'} frames of each clip, at most 854 wide. Flow for every "
             "warping error is computed on the true colour video's lightness. Warping errors are "
             "Lai et al.'s E_warp (mean squared difference to the flow-warped previous frame over "
             "non-occluded pixels, values scaled to [0, 1]), shown ×10⁻³. The truth's own error is the "
             "floor flow error sets; a colorized clip can fall below it when it is less colourful than the "
             "truth. \"Cuts found\" are frames where the smoother saw a new shot "
             "(each clip is one continuous excerpt).", "",
             "## Quality per clip", "",
             "| clip | frames | size | cuts found | chroma E_warp off | on | truth | reduction | E_warp off | on "
             "| truth | PSNR off | on | Δ dB | SSIM off | on |",
             "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows = [(c["clip"], c["frames"], f"{c['width']}x{c['height']}", ", ".join(map(str, c["scene_cuts_found"])) or "-",
             c["measures"], c["chroma_warping_reduction_pct"], c["psnr_delta_db"]) for c in clips]
    rows.append(("**all (mean)**", overall["frames"], "", "", overall["measures"],
                 overall["chroma_warping_reduction_pct"], overall["psnr_delta_db"]))
    for name, frames, size, cuts, m, red, delta in rows:
        lines.append(f"| {name} | {frames} | {size} | {cuts} | {e3(m['off']['chroma_warping_error'])} | "
                     f"{e3(m['on']['chroma_warping_error'])} | {e3(m['truth']['chroma_warping_error'])} | "
                     f"{red:.1f}% | {e3(m['off']['warping_error'])} | {e3(m['on']['warping_error'])} | "
                     f"{e3(m['truth']['warping_error'])} | {m['off']['psnr']:.3f} | {m['on']['psnr']:.3f} | "
                     f"{delta:+.3f} | {m['off']['ssim']:.4f} | {m['on']['ssim']:.4f} |")
    lines += ["", "## Targets", "", "| target | wanted | measured | met |", "|---|---|---|---|"]
    for t in targets:
        lines.append(f"| {t['name']} | {t['wanted']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |")
    tp = report.get("throughput")
    if tp:
        lines += ["", f"## Finalize throughput at {tp['size'][0]}x{tp['size'][1]}", "",
                  f"{tp['frames']} frames ({tp['clip']}, colorized, ping-pong), chunks of {tp['chunk_frames']}; "
                  f"{tp['cpu_count']} CPU cores; 1-minute load average {tp['load_1min_at_start']} at the start "
                  "(other work on the machine lowers every rate). CPU ms/frame adds this process and its "
                  "ffmpeg children: on 2 cores the ceiling is about 2000 / (CPU ms/frame) frames/s.", "",
                  "| stage | frames/s | CPU ms/frame | load (before, after) |", "|---|---:|---:|---|"]
        stages = [("finalize as tasks/finalize.py runs it: decode → smooth → encode", tp["finalize"]),
                  ("finalize with smoothing off (strength 0)", tp["finalize_smoothing_off"]),
                  ("decode intermediates only", tp["decode_only"]),
                  ("smoothing only (frames in memory)", tp["smoothing_only"]),
                  ("smoother at strength 0 only (cut test, flow, stats)", tp["smoothing_off_only"]),
                  ("H.264 encode only (current preset, CRF 18)", tp["encode_only"]),
                  ("writing intermediates (GPU side)", tp["write_intermediate"])]
        for name, s in stages:
            lines.append(f"| {name} | {s['fps']:.1f} | {s['cpu_ms_per_frame']:.1f} | {s['load_1min']} |")
        if len(tp["finalize"].get("runs_fps", [])) > 1:
            lines.append("")
            lines.append("Finalize runs: " + ", ".join(f"{r:.1f}" for r in tp["finalize"]["runs_fps"])
                         + " frames/s (best reported).")
        if tp.get("formats"):
            lines += ["", "### Intermediate formats", "",
                      "| format | kB/frame | write frames/s | decode frames/s | decode CPU ms/frame | "
                      "finalize frames/s | finalize CPU ms/frame |",
                      "|---|---:|---:|---:|---:|---:|---:|"]
            for f in tp["formats"]:
                if "error" in f:
                    lines.append(f"| {f['format']} | failed: {f['error'][:80]} | | | | | |")
                    continue
                lines.append(f"| {f['format']} | {f['bytes_per_frame'] / 1e3:.0f} | {f['write']['fps']:.1f} | "
                             f"{f['decode']['fps']:.1f} | {f['decode']['cpu_ms_per_frame']:.1f} | "
                             f"{f['finalize']['fps']:.1f} | "
                             f"{f['finalize']['cpu_ms_per_frame']:.1f} |")
        if tp.get("presets"):
            lines += ["", "### Delivery encoder presets (encode only, CRF 18)", "",
                      "| preset | frames/s | CPU ms/frame | MP4 kB/frame |", "|---|---:|---:|---:|"]
            for p in tp["presets"]:
                lines.append(f"| {p['preset']} | {p['fps']:.1f} | {p['cpu_ms_per_frame']:.1f} | "
                             f"{p['mp4_bytes'] / tp['frames'] / 1e3:.1f} |")
    lines += ["", f"Total run time {report['seconds']:.0f} s; colorization {report['colorize_seconds']:.0f} s "
              f"for {report['colorized_frames']} frames (the rest came from the cache)."]
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    """Per-clip bars of chroma warping error: off, on, and the true colour video."""
    clips = report["clips"] + [{"clip": "mean", "measures": report["overall"]["measures"]}]
    series = [("off", (214, 96, 77)), ("on", (67, 147, 195)), ("truth", (120, 120, 120))]
    width, height = max(820, 140 + 95 * len(clips)), 560
    left, right, top, bottom = 90, 20, 60, 110
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font, small = report_font(15), report_font(12)
    values = [c["measures"][s]["chroma_warping_error"] * 1e3 for c in clips for s, _ in series]
    peak = max(v for v in values if math.isfinite(v)) * 1.1 or 1.0
    plot_h = height - top - bottom
    y = lambda v: top + plot_h * (1 - v / peak)  # noqa: E731
    step = 10 ** math.floor(math.log10(peak / 5)) if peak > 0 else 1
    step *= next(k for k in (1, 2, 5, 10) if peak / (step * k) <= 6)
    tick = 0.0
    while tick <= peak:
        draw.line([(left, y(tick)), (width - right, y(tick))], fill=(230, 230, 230))
        draw.text((left - 8, y(tick)), f"{tick:g}", fill="black", font=small, anchor="rm")
        tick += step
    draw.line([(left, top), (left, top + plot_h), (width - right, top + plot_h)], fill="black")
    group = (width - left - right) / len(clips)
    bar = group * 0.8 / len(series)
    for i, clip in enumerate(clips):
        x0 = left + i * group + group * 0.1
        for j, (name, colour) in enumerate(series):
            v = clip["measures"][name]["chroma_warping_error"] * 1e3
            if math.isfinite(v):
                draw.rectangle([x0 + j * bar, y(v), x0 + (j + 1) * bar - 2, top + plot_h], fill=colour)
        cx = left + (i + 0.5) * group
        draw.text((cx, top + plot_h + 8), clip["clip"], fill="black", font=small, anchor="ma")
        if "chroma_warping_reduction_pct" in clip or clip["clip"] == "mean":
            red = clip.get("chroma_warping_reduction_pct", report["overall"]["chroma_warping_reduction_pct"])
            draw.text((cx, top + plot_h + 26), f"-{red:.0f}%", fill=(67, 147, 195), font=small, anchor="ma")
    draw.text((left, 18), "Chroma warping error (Lab a,b; x 1e-3): smoothing off / on / true colour video",
              fill="black", font=font)
    lx = left
    for name, colour in series:
        label = {"off": "smoothing off", "on": "smoothing on", "truth": "true colour (floor)"}[name]
        draw.rectangle([lx, height - 40, lx + 14, height - 26], fill=colour)
        draw.text((lx + 20, height - 33), label, fill="black", font=small, anchor="lm")
        lx += 40 + draw.textlength(label, font=small)
    img.save(path)


def targets_of(overall: dict[str, Any], throughput: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows = [
        {"name": "chroma warping error lower with smoothing on", "wanted": f">= {TARGETS['chroma_reduction_pct']:.0f}%",
         "measured": f"{overall['chroma_warping_reduction_pct']:.1f}% of the mean over clips (mean of the "
                     f"clips' reductions {overall['mean_of_clip_chroma_reductions_pct']:.1f}%, worst clip "
                     f"{overall['worst_clip_chroma_reduction_pct']:.1f}%)",
         "met": overall["chroma_warping_reduction_pct"] >= TARGETS["chroma_reduction_pct"]},
        {"name": "PSNR change with smoothing on", "wanted": f">= -{TARGETS['psnr_drop_db']} dB",
         "measured": f"{overall['psnr_delta_db']:+.3f} dB (worst clip {overall['worst_clip_psnr_delta_db']:+.3f} dB)",
         "met": overall["psnr_delta_db"] >= -TARGETS["psnr_drop_db"]},
    ]
    if throughput:
        fps = throughput["finalize"]["fps"]
        rows.append({"name": "finalize at 854x480 (current intermediates)",
                     "wanted": f">= {TARGETS['finalize_fps']:.0f} frames/s",
                     "measured": f"{fps:.1f} frames/s (load {throughput['load_1min_at_start']})",
                     "met": fps >= TARGETS["finalize_fps"]})
    return rows


# ---------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.temporal", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for results.json, results.md, plot.png")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"shared data folder (default {DEFAULT_DATA})")
    parser.add_argument("--limit", type=int, default=0, help="only the first N clips (0: all)")
    parser.add_argument("--frames", type=int, default=48,
                        help="first N frames of each clip (0: all); CPU colorization sets the run time")
    parser.add_argument("--throughput-frames", type=int, default=240, help="frames in the finalize timing")
    parser.add_argument("--repeat", type=int, default=2, help="finalize timings to take the best of")
    parser.add_argument("--alternatives", action="store_true",
                        help="measure other intermediate formats even when the target is met")
    parser.add_argument("--no-throughput", action="store_true", help="quality only")
    parser.add_argument("--no-cache", action="store_true", help="colorize again instead of reusing OUT/cache")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    folders = clip_folders(args.data.resolve())
    if args.limit > 0:
        folders = folders[:args.limit]
    args.out.mkdir(parents=True, exist_ok=True)
    options = smoothing_options()
    colorize = Colorizer(None if args.no_cache else args.out / "cache")
    log(f"{len(folders)} clips from {args.data}, model {colorize.name} at {colorize.render_size}, "
        f"smoothing {options}, load {os.getloadavg()}")
    clips, overall, keep = run_quality(args, folders, colorize, options)
    if not clips:
        raise SystemExit("bench.temporal: no clip had two frames to measure")
    throughput = None
    if not args.no_throughput:
        colour = keep.get("throughput") or keep["fallback"]
        clip = keep.get("throughput_clip") or keep["fallback_clip"]
        with tempfile.TemporaryDirectory(prefix="bench-temporal-") as work:
            throughput = run_throughput(args, colour, clip, options, Path(work))
    ffmpeg_version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    report = {
        "model": colorize.name, "render_size": colorize.render_size, "smoothing": options,
        "frames_per_clip": args.frames, "data": str(args.data.resolve()),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "ffmpeg": ffmpeg_version,
                    "python": platform.python_version()},
        "targets": targets_of(overall, throughput),
        "overall": overall, "clips": clips, "throughput": throughput,
        "colorize_seconds": colorize.seconds, "colorized_frames": colorize.frames,
        "seconds": time.perf_counter() - began,
    }
    plot(report, args.out / "plot.png")
    log(f"writing {args.out / 'results.json'}, results.md, plot.png ({report['seconds']:.0f} s)")
    write_results(args.out, report, markdown(report), log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
