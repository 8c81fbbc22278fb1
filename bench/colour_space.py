"""Colour work in RGB (the path before issue 20) against colour work in the delivery's 4:2:0.

    python -m bench.colour_space --out bench-results/colour-space [--data ../shared/data]
        [--frames 8] [--chunk 24] [--sizes 854x480,1920x1080] [--skip-quality]

**Speed.** A generated grey chunk of `--chunk` frames at each size, coloured the way a chunk
task colours it: per frame (`colorize_frames` on RGB and then `Yuv420.from_rgb`, as the
lossless writer converted it, against `colorize_yuv` on the decoded planes) and from a
keyframe (`colour_window` + `from_rgb` against `colour_window_yuv`). The model's forward
passes are timed apart (a wrapper around `predict_ab`), so the figure is the seconds per
frame of everything else: the colour conversions, resizes, guided upsampling and (for
keyframes) propagation. The RGB path is also charged the 4:2:0 → RGB conversion ffmpeg made
when decoding to rgb24 (measured here as `Yuv420.rgb`, a lower bound of ffmpeg's cost).

**Quality.** On the first `--frames` frames of each clip in `clips/`: the true frame's L as a
grey 4:2:0 input, coloured both ways per frame by the model, and from the first true frame
as the one keyframe (no model), each result as delivered (4:2:0, shown as RGB); PSNR
against the true frame, colourfulness as a fraction of the truth's, the PSNR between the
two deliveries, and how far each moved the picture's CIE lightness from the
input's (mean |ΔL|): the RGB path kept L and let luma follow the colour, the 4:2:0 path
keeps luma, so a saturated colour reads a little darker in L than the grey it came from.

Writes `results.json` and `results.md` under `--out`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from bench.colorize import DEFAULT_DATA, frame_paths, grey_of, read_rgb, sequences
from bench.metrics import colourfulness, psnr
from tintype.gpu_workers import keyframe_colour as kc
from tintype.gpu_workers.colorize import colorize_frames, colorize_yuv
from tintype.gpu_workers.models.registry import ModelRegistry
from tintype.media.color import lightness
from tintype.media.yuv import Yuv420
from tintype.settings import load_settings


class TimedModel:
    """A colorizer whose forward passes are timed, so the rest can be measured apart."""

    def __init__(self, model: Any) -> None:
        self.model, self.seconds = model, 0.0

    def predict_ab(self, light):
        began = time.perf_counter()
        try:
            return self.model.predict_ab(light)
        finally:
            self.seconds += time.perf_counter() - began


def grey_chunk(width: int, height: int, count: int, seed: int = 0) -> list[Yuv420]:
    """A panning grey texture with edges, as 4:2:0 planes of neutral chroma."""
    rng = np.random.default_rng(seed)
    canvas = cv2.resize(rng.random((height // 8 + 4, (width + 4 * count) // 8 + 4)).astype(np.float32),
                        (width + 4 * count + 32, height + 32), interpolation=cv2.INTER_CUBIC)
    canvas = (np.clip(canvas, 0, 1) * 200 + 28).astype(np.uint8)
    frames = []
    for t in range(count):
        grey = canvas[16:16 + height, 4 * t:4 * t + width]
        frames.append(Yuv420.from_rgb(np.repeat(grey[..., None], 3, 2)))
    return frames


def _timed(run: Callable[[], Any], model: TimedModel, frames: int, repeats: int) -> dict[str, float]:
    run()  # warm-up
    other = []
    for _ in range(repeats):
        model.seconds = 0.0
        began = time.perf_counter()
        run()
        other.append((time.perf_counter() - began - model.seconds) / frames)
    return {"non_model_s_per_frame": statistics.median(other), "model_s_per_frame": model.seconds / frames}


def measure_speed(model: TimedModel, size: tuple[int, int], count: int, render: int, repeats: int) -> dict:
    yuv = grey_chunk(*size, count)
    key = kc.ColourWindow(first=0, keyframes={count // 2: np.dstack([yuv[count // 2].rgb()[..., :1]] * 3)})
    fallback = kc.model_fallback(model, render, 1.0)

    def rgb_per_frame() -> None:
        rgbs = [f.rgb() for f in yuv]
        [Yuv420.from_rgb(o) for o in colorize_frames(model, rgbs, render)]

    def rgb_keyframes() -> None:
        rgbs = [f.rgb() for f in yuv]
        [Yuv420.from_rgb(o) for o in kc.colour_window(rgbs, key, fallback)]

    runs = {"per-frame rgb": rgb_per_frame, "per-frame yuv": lambda: colorize_yuv(model, yuv, render),
            "keyframes rgb": rgb_keyframes, "keyframes yuv": lambda: kc.colour_window_yuv(yuv, key, fallback)}
    return {name: _timed(run, model, count, repeats) for name, run in runs.items()}


def measure_quality(model: TimedModel, clips: Path, frames: int, render: int) -> list[dict[str, Any]]:
    rows = []
    for seq in sequences(clips):
        truths = [read_rgb(p) for p in frame_paths(seq)[:frames]]
        greys = [grey_of(t) for t in truths]
        inputs = [Yuv420.from_rgb(g) for g in greys]
        size = f"{truths[0].shape[1]}x{truths[0].shape[0]}"
        old = [Yuv420.from_rgb(o).rgb() for o in colorize_frames(model, greys, render)]
        new = [o.rgb() for o in colorize_yuv(model, inputs, render)]
        rows.append({"clip": seq.name, "size": size, "mode": "per-frame", **_scores(old, new, truths)})
        window = kc.ColourWindow(first=0, keyframes={0: truths[0]})
        old = [Yuv420.from_rgb(o).rgb() for o in kc.colour_window(greys, window)]
        new = [o.rgb() for o in kc.colour_window_yuv(inputs, window)]
        rows.append({"clip": seq.name, "size": size, "mode": "keyframe", **_scores(old, new, truths)})
    return rows


def _scores(old: Sequence[np.ndarray], new: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> dict:
    truth_colour = float(np.mean([colourfulness(t) for t in truths]))
    return {
        "psnr_rgb_path": float(np.mean([psnr(o, t) for o, t in zip(old, truths)])),
        "psnr_yuv_path": float(np.mean([psnr(n, t) for n, t in zip(new, truths)])),
        "psnr_between": float(np.mean([psnr(n, o) for n, o in zip(new, old)])),
        "colourfulness_rgb_path": float(np.mean([colourfulness(o) for o in old])) / truth_colour,
        "colourfulness_yuv_path": float(np.mean([colourfulness(n) for n in new])) / truth_colour,
        "lightness_shift_rgb_path": _lightness_shift(old, truths),
        "lightness_shift_yuv_path": _lightness_shift(new, truths),
    }


def _lightness_shift(results: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> float:
    """Mean |L(result) - L(truth)| in Lab units: the input's L is the truth's."""
    return float(np.mean([np.abs(lightness(r) - lightness(t)).mean() for r, t in zip(results, truths)]))


def markdown(result: dict[str, Any]) -> str:
    lines = ["# Colour work: RGB path against 4:2:0 path", "", "## Seconds per frame outside the model's forward",
             "", "| size | path | RGB | 4:2:0 | ratio |", "|---|---|---|---|---|"]
    for size, runs in result.get("speed", {}).items():
        for mode in ("per-frame", "keyframes"):
            old, new = (runs[f"{mode} {p}"]["non_model_s_per_frame"] for p in ("rgb", "yuv"))
            lines.append(f"| {size} | {mode} | {old * 1000:.1f} ms | {new * 1000:.1f} ms | {new / old:.2f} |")
    if result.get("quality"):
        lines += ["", "## Delivered 4:2:0 against the true colours", "",
                  "| clip | size | mode | PSNR RGB path | PSNR 4:2:0 path | PSNR between | colourfulness RGB | 4:2:0 "
                  "| \u0394L RGB | \u0394L 4:2:0 |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in result["quality"]:
            lines.append(f"| {r['clip']} | {r['size']} | {r['mode']} | {r['psnr_rgb_path']:.2f} | "
                         f"{r['psnr_yuv_path']:.2f} | "
                         f"{r['psnr_between']:.1f} | {r['colourfulness_rgb_path']:.3f} | "
                         f"{r['colourfulness_yuv_path']:.3f} | {r['lightness_shift_rgb_path']:.2f} | "
                         f"{r['lightness_shift_yuv_path']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--frames", type=int, default=8, help="frames per clip for quality")
    parser.add_argument("--chunk", type=int, default=24, help="frames of the generated speed chunk")
    parser.add_argument("--sizes", default="854x480,1920x1080")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args(argv)
    settings = load_settings()
    model = TimedModel(ModelRegistry(settings).colorizer(settings.colorize_model))
    render = settings.render_size
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    result: dict[str, Any] = {"model": settings.colorize_model, "render_size": render, "chunk": args.chunk}
    if not args.skip_speed:
        result["speed"] = {f"{w}x{h}": measure_speed(model, (w, h), args.chunk, render, args.repeats)
                           for w, h in sizes}
    if not args.skip_quality:
        result["quality"] = measure_quality(model, args.data / "clips", args.frames, render)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=2))
    (args.out / "results.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
