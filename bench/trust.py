"""How far better hedging alone could take a colorizer: the oracle per-frame trust frontier.

Why: a colorizer loses PSNR to the greyscale baseline where its colours are wrong, and it
gains colourfulness by committing to them. Decoding settings (temperature, rebalancing,
a saturation control) move one model along one trade-off curve, and every "trust the
confident frames more" idea is a weaker version of this question: if we knew, for each
frame, how far to trust the model's colours (a chroma scale from 0 = grey to 2 = twice as
saturated, chosen with the truth in hand), what is the best PSNR at a given
colourfulness? Where even this oracle cannot meet a target, no decoding or
post-processing of the same colours can: only better colours (a better network) can.

The oracle works per item (a photo or a frame) because the benchmark's colourfulness is
a ratio of means: colour can be concentrated on the items the model gets right. For a
weight lambda each item takes the scale that maximises PSNR + lambda * colourfulness;
sweeping lambda traces the frontier (the upper hull of what per-item scales can reach;
between two of its points the exact optimum can lie a little higher).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bench import report
from bench.metrics import colourfulness, psnr
from tintype.media.color import merge_lightness_chroma, rgb_to_lab

SCALES = tuple(round(0.1 * i, 1) for i in range(21))  # 0 (grey) .. 2 (twice the chroma)
# Weights of colourfulness against PSNR (dB per unit of Hasler-Suesstrunk M): dense enough
# that neighbouring frontier points differ by a few hundredths of a dB.
LAMBDAS = (0.0, *np.geomspace(1e-3, 2.0, 80).round(6).tolist())
UNIFORM = SCALES.index(1.0)


@dataclass(frozen=True)
class ScaleCurve:
    """One item's PSNR and colourfulness with its chroma scaled by each of SCALES."""

    psnr: np.ndarray
    colourfulness: np.ndarray
    colourfulness_truth: float

    @property
    def psnr_grey(self) -> float:
        return float(self.psnr[0])


def scale_curve(out: np.ndarray, truth: np.ndarray) -> ScaleCurve:
    """Score `out` (uint8 RGB) against `truth` at every chroma scale; its own lightness is kept.

    Scale 0 is the greyscale baseline (tintype keeps the input's L, which is the truth's)
    and scale 1 is `out` itself, up to 8-bit rounding of the Lab round trip.
    """
    if out.shape != truth.shape:
        raise ValueError(f"images differ in shape: {out.shape} vs {truth.shape}")
    lab = rgb_to_lab(out)
    light, chroma = lab[..., 0], lab[..., 1:]
    scores = [(psnr(rgb, truth), colourfulness(rgb))
              for rgb in (merge_lightness_chroma(light, chroma * np.float32(s)) for s in SCALES)]
    values = np.array(scores, dtype=np.float64)
    return ScaleCurve(values[:, 0], values[:, 1], colourfulness(truth))


def _point(curves: Sequence[ScaleCurve], picks: np.ndarray, key: str, value: float) -> dict[str, float]:
    """Mean PSNR gain over grey and the colourfulness ratio when item i uses SCALES[picks[i]]."""
    rows = np.arange(len(curves))
    chosen_psnr = np.stack([c.psnr for c in curves])[rows, picks]
    chosen_colour = np.stack([c.colourfulness for c in curves])[rows, picks]
    truth = np.mean([c.colourfulness_truth for c in curves])
    grey = np.mean([c.psnr_grey for c in curves])
    return {key: value, "psnr_gain_db": float(chosen_psnr.mean() - grey),
            "colourfulness_ratio": float(chosen_colour.mean() / truth) if truth > 0 else math.inf,
            "mean_scale": float(np.mean([SCALES[i] for i in picks]))}


def oracle_frontier(curves: Sequence[ScaleCurve]) -> list[dict[str, float]]:
    """Per-item scales chosen with the truth, one point per lambda (PSNR + lambda * colourfulness)."""
    psnrs = np.stack([c.psnr for c in curves])
    colours = np.stack([c.colourfulness for c in curves])
    return [_point(curves, np.argmax(psnrs + lam * colours, axis=1), "lambda", lam) for lam in LAMBDAS]


def uniform_curve(curves: Sequence[ScaleCurve]) -> list[dict[str, float]]:
    """The same scale for every item: what a global saturation control reaches."""
    return [_point(curves, np.full(len(curves), i), "scale", SCALES[i]) for i in range(len(SCALES))]


def best_gain(points: Sequence[dict[str, float]], floor: float) -> float | None:
    """The best PSNR gain among points at least `floor` colourful (None if none is)."""
    gains = [p["psnr_gain_db"] for p in points if p["colourfulness_ratio"] >= floor]
    return max(gains) if gains else None


def summary(curves: Sequence[ScaleCurve], floor: float) -> dict[str, Any]:
    """The model as it is, its global-saturation curve, the oracle frontier, and the best
    PSNR gain each reaches at the colourfulness floor."""
    if not curves:
        return {"items": 0}
    uniform, oracle = uniform_curve(curves), oracle_frontier(curves)
    return {"items": len(curves), "floor": floor, "as_output": uniform[UNIFORM],
            "uniform": uniform, "oracle": oracle,
            "best_uniform_gain_db": best_gain(uniform, floor),
            "best_oracle_gain_db": best_gain(oracle, floor)}


# ----------------------------------------------------------------------------- picture

_SERIES = (("uniform", (120, 120, 120), "one saturation scale for all (0 .. 2)"),
           ("oracle", (67, 147, 195), "oracle: best scale per item, truth known"))


def plot(sets: dict[str, dict[str, Any]], path: Path, model: str) -> None:
    """PSNR gain over grey against colourfulness ratio, one panel per data set.

    The target region (gain > 0, ratio >= floor) is shaded; the model's own point is a
    red dot. A frontier that never enters the shaded region means the target needs
    better colours, not a better decoding.
    """
    panels = [(name, s) for name, s in sets.items() if s.get("items")]
    if not panels:
        return
    pw, ph = 430, 360
    img = Image.new("RGB", (pw * len(panels) + 20, ph + 120), "white")
    draw, font, small = ImageDraw.Draw(img), report.font(15), report.font(12)
    draw.text((12, 10), f"{model}: how far per-item trust in its colours could go", fill="black", font=font)
    for k, (name, s) in enumerate(panels):
        _panel(draw, small, (10 + k * pw, 40, pw - 20, ph), name, s)
    ly = ph + 70
    for i, (_, colour, label) in enumerate(_SERIES):
        x = 20 + i * 330
        draw.line([(x, ly), (x + 24, ly)], fill=colour, width=3)
        draw.text((x + 30, ly), label, fill="black", font=small, anchor="lm")
    draw.ellipse([20, ly + 18, 28, ly + 26], fill=(200, 40, 40))
    draw.text((34, ly + 22), "the model as shipped (scale 1)", fill="black", font=small, anchor="lm")
    img.save(path)


def _panel(draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont, box: tuple[int, int, int, int],
           name: str, s: dict[str, Any]) -> None:
    left, top, width, height = box
    x0, y0, x1, y1 = left + 44, top + 24, left + width, top + height - 30
    points = s["uniform"] + s["oracle"]
    gains = [p["psnr_gain_db"] for p in points]
    lo, hi = min(-1.0, math.floor(min(gains))), max(1.0, math.ceil(max(gains)))
    xmax = max(1.2, min(2.0, max(p["colourfulness_ratio"] for p in points)))
    fx = lambda r: x0 + (x1 - x0) * min(r, xmax) / xmax  # noqa: E731
    fy = lambda g: y1 - (y1 - y0) * (g - lo) / (hi - lo)  # noqa: E731
    draw.rectangle([fx(s["floor"]), fy(hi), x1, fy(0.0)], fill=(226, 242, 226))
    for g in range(int(lo), int(hi) + 1):
        draw.line([(x0, fy(g)), (x1, fy(g))], fill=(200, 200, 200) if g == 0 else (238, 238, 238))
        draw.text((x0 - 6, fy(g)), f"{g:+d}", fill="black", font=font, anchor="rm")
    for r in np.arange(0.0, xmax + 1e-9, 0.2):
        draw.text((fx(r), y1 + 6), f"{r:.1f}", fill="black", font=font, anchor="ma")
    draw.line([(x0, y0), (x0, y1), (x1, y1)], fill="black")
    draw.text((x0, top + 4), f"{name} ({s['items']} items): PSNR gain over grey, dB", fill="black", font=font)
    draw.text((x1, y1 + 20), "colourfulness / truth", fill="black", font=font, anchor="ra")
    for key, colour, _ in _SERIES:
        xy = sorted((fx(p["colourfulness_ratio"]), fy(p["psnr_gain_db"])) for p in s[key])
        draw.line(xy, fill=colour, width=3)
    own = s["as_output"]
    cx, cy = fx(own["colourfulness_ratio"]), fy(own["psnr_gain_db"])
    draw.ellipse([cx - 5, cy - 5, cx + 5, cy + 5], fill=(200, 40, 40))
