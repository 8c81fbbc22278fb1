"""Quality measures, as pure functions: PSNR, SSIM, flow warping error, colourfulness, flicker,
colour distribution consistency (CDC).

Everything takes uint8 RGB frames (H, W, 3). Warping error follows Lai et al. 2018
("Learning Blind Video Temporal Consistency"): the mean squared difference between a
frame and its flow-warped predecessor over non-occluded pixels, values in [0, 1] scale,
averaged over frame pairs; flow is computed on the lightness of the video given as
`flow_source` (the input video when there is one, else the frames themselves). Pairs
across a scene cut (`media.scenecut`) are not counted: flow between shots means nothing.

This module is the one implementation: `pair_errors` measures one pair and `mean_errors`
averages pairs, for `TemporalMeter` (`tintype eval`, the sequence functions), the
smoother's job quality stats (`media.temporal`) and the benchmarks alike. The smoother
measures at its reduced width, so `tintype eval --max-width` with that width is the
comparable reading of a job's `quality`.

The sequence functions hold whole videos; `TemporalMeter` and `ReferenceMeter` build the
same measures from a stream with one previous frame in memory, for long videos.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import cv2
import numpy as np

from tintype.media import flow as fl
from tintype.media import scenecut

PSNR_CAP = 100.0  # dB: an exact match (a grey photo's greyscale baseline) keeps means finite


def psnr(result: np.ndarray, truth: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all channels; inf for identical images."""
    if result.shape != truth.shape:  # numpy would broadcast some mismatches silently
        raise ValueError(f"images differ in shape: {result.shape} vs {truth.shape}")
    mse = float(np.mean((result.astype(np.float64) - truth.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def capped_psnr(result: np.ndarray, truth: np.ndarray) -> float:
    """psnr, at most PSNR_CAP: for averages over many images and for strict JSON."""
    return min(PSNR_CAP, psnr(result, truth))


def ssim_map(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM of one channel (Wang et al. 2004: 11x11 Gaussian window, σ = 1.5):
    for means over a whole image (`ssim`) or over a region (the inpainting benchmark)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda a: cv2.GaussianBlur(a, (11, 11), 1.5)  # noqa: E731
    x, y = x.astype(np.float64), y.astype(np.float64)
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))


def ssim(result: np.ndarray, truth: np.ndarray) -> float:
    """Mean SSIM averaged over RGB channels."""
    return float(np.mean([ssim_map(result[..., c], truth[..., c]).mean() for c in range(result.shape[2])]))


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness M: 0 for grey, ~100+ for vivid images."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean()))


CDC_STEPS = (1, 2, 4)  # frame distances of the TCVC / NTIRE 2023 CDC, weighted equally


def channel_histograms(frame: np.ndarray) -> np.ndarray:
    """(3, 256) float64: each channel's 256-bin histogram divided by H*W (sums to 1)."""
    h, w = frame.shape[:2]
    return np.stack([np.bincount(frame[..., c].ravel(), minlength=256)[:256] for c in range(3)]) / float(h * w)


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen–Shannon divergence in bits (0..1) of distributions along the last axis."""
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> np.ndarray:
        ratio = np.divide(a, m, out=np.ones_like(a), where=a > 0)
        return np.sum(a * np.log2(ratio), axis=-1)

    return 0.5 * kl(p) + 0.5 * kl(q)


def cdc(frames: Iterable[np.ndarray], steps: Sequence[int] = CDC_STEPS) -> float:
    """Colour distribution consistency of a video (TCVC, Liu et al. 2021; NTIRE 2023 video
    colorization): per channel, the JS divergence of the histograms of frames t and t+d,
    averaged over t, weighted equally over d in `steps`, averaged over the channels. 0 for
    a video whose colour distribution never changes; lower is steadier. Steps longer than
    the video are left out (weights renormalised); 0 for fewer than two frames. Holds one
    histogram per frame, not the frames. (Channel order does not change the value.)"""
    hist = [channel_histograms(f) for f in frames]
    usable = [d for d in steps if d < len(hist)]
    if not usable:
        return 0.0
    hist = np.stack(hist)
    per_step = [js_divergence(hist[:-d], hist[d:]).mean(axis=0) for d in usable]  # (3,) per step
    return float(np.mean(np.mean(per_step, axis=0)))


@dataclass(frozen=True)
class PairErrors:
    """The flow-based measures of one frame pair (see the sequence functions below)."""

    warping_error: float
    chroma_warping_error: float
    chroma_flicker: float


def pair_errors(previous: np.ndarray, frame: np.ndarray, pair: fl.PairFlow) -> PairErrors | None:
    """Warping error, chroma warping error and chroma flicker of `frame` against its
    flow-warped predecessor; None when no pixel is trusted (the pair is not counted).

    Means over the trusted pixels come from cv2.mean with the mask (accumulated in double
    precision), which keeps this cheap enough for the smoother to call on every frame."""
    if not pair.mask.any():
        return None
    mask = np.ascontiguousarray(pair.mask).view(np.uint8)
    warped = fl.warp(previous, pair.to_prev)
    rgb = _masked_means(cv2.absdiff(frame, warped), mask)
    lab = cv2.absdiff(cv2.cvtColor(frame, cv2.COLOR_RGB2Lab), cv2.cvtColor(warped, cv2.COLOR_RGB2Lab))
    ab, ab_abs = _masked_means(lab, mask)[1:], cv2.mean(lab, mask)[1:3]
    return PairErrors(warping_error=float(sum(rgb)) / 255.0 ** 2,
                      chroma_warping_error=float(sum(ab)) / 255.0 ** 2,
                      chroma_flicker=float(sum(ab_abs)) / 2.0)


def _masked_means(absolute: np.ndarray, mask: np.ndarray) -> tuple[float, ...]:
    """Per channel, the mean square of an 8-bit absolute difference over the mask."""
    values = absolute.astype(np.float32)
    return cv2.mean(cv2.multiply(values, values), mask)[:absolute.shape[2]]


def mean_errors(errors: Sequence[PairErrors]) -> PairErrors | None:
    """Each measure averaged over the measured pairs; None when there are none."""
    if not errors:
        return None
    mean = lambda name: float(np.mean([getattr(e, name) for e in errors]))  # noqa: E731
    return PairErrors(mean("warping_error"), mean("chroma_warping_error"), mean("chroma_flicker"))


def temporal_measures(frames: Sequence[np.ndarray],
                      flow_source: Sequence[np.ndarray] | None = None) -> dict[str, float]:
    """warping_error, chroma_warping_error and chroma_flicker from one pass of flow
    (`TemporalMeter`); 0 each when no pair can be measured (fewer than two frames)."""
    source = flow_source if flow_source is not None else frames
    if len(source) != len(frames):
        raise ValueError(f"flow source has {len(source)} frames, result has {len(frames)}")
    meter = TemporalMeter()
    for frame, flow_frame in zip(frames, source):
        meter.push(frame, flow_frame)
    mean = mean_errors(meter.errors)
    return {name: getattr(mean, name) if mean else 0.0
            for name in ("warping_error", "chroma_warping_error", "chroma_flicker")}


def warping_error(frames: Sequence[np.ndarray], flow_source: Sequence[np.ndarray] | None = None) -> float:
    """Lai et al.'s E_warp on RGB in [0, 1]; 0 for fewer than two frames."""
    return temporal_measures(frames, flow_source)["warping_error"]


def chroma_warping_error(frames: Sequence[np.ndarray], flow_source: Sequence[np.ndarray] | None = None) -> float:
    """E_warp of the Lab chroma (a, b) only, in [0, 1] units (ab / 255): the flicker
    that smoothing can remove, unaffected by lightness changes."""
    return temporal_measures(frames, flow_source)["chroma_warping_error"]


def chroma_flicker(frames: Sequence[np.ndarray], flow_source: Sequence[np.ndarray] | None = None) -> float:
    """Mean absolute change of Lab chroma along flow between frames (8-bit Lab units)."""
    return temporal_measures(frames, flow_source)["chroma_flicker"]


@dataclass
class TemporalMeter:
    """No-reference measures of a video streamed frame by frame, in bounded memory.

    push(frame, flow_frame) with `flow_frame` the frame whose lightness drives the flow
    (the reference or input video; None: the frame itself). Holds only the previous
    frame. With `skip_cuts`, pairs across a scene cut (`scenecut.join`) are left out
    (listed in `cuts`).
    """

    skip_cuts: bool = True
    frames: int = 0
    cuts: list[int] = field(default_factory=list)
    errors: list[PairErrors] = field(default_factory=list)
    colourfulness: list[float] = field(default_factory=list)
    _previous: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def push(self, frame: np.ndarray, flow_frame: np.ndarray | None = None) -> PairErrors | None:
        source = frame if flow_frame is None else flow_frame
        if source.shape != frame.shape:
            raise ValueError(f"flow frame {source.shape} and frame {frame.shape} differ in size")
        light = fl.lightness_u8(source)
        errors = None
        if self._previous is not None:
            previous, previous_light = self._previous
            pair = scenecut.join(previous_light, light) if self.skip_cuts else fl.pair_flow(previous_light, light)
            if pair is None:
                self.cuts.append(self.frames)
            else:
                errors = pair_errors(previous, frame, pair)
                if errors is not None:
                    self.errors.append(errors)
        self.colourfulness.append(colourfulness(frame))
        self._previous = (frame, light)
        self.frames += 1
        return errors

    def summary(self) -> dict:
        """Means over measured pairs (None when no pair could be measured)."""
        mean = mean_errors(self.errors)
        return {"frames": self.frames, "pairs_measured": len(self.errors), "scene_cuts": list(self.cuts),
                "warping_error": mean.warping_error if mean else None,
                "chroma_warping_error": mean.chroma_warping_error if mean else None,
                "chroma_flicker": mean.chroma_flicker if mean else None,
                "colourfulness": float(np.mean(self.colourfulness)) if self.colourfulness else None}


@dataclass
class ReferenceMeter:
    """PSNR and SSIM of a result against its reference, frame by frame, averaged.

    The PSNR of identical frames is infinite: they are counted in `identical_frames` and
    left out of the mean, which is inf only when every frame is identical.
    """

    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    identical_frames: int = 0

    def push(self, result: np.ndarray, truth: np.ndarray) -> None:
        if result.shape != truth.shape:
            raise ValueError(f"result {result.shape} and reference {truth.shape} differ in size")
        value = psnr(result, truth)
        if math.isinf(value):
            self.identical_frames += 1
        else:
            self.psnr.append(value)
        self.ssim.append(ssim(result, truth))

    def summary(self) -> dict:
        frames = len(self.ssim)
        if not frames:
            return {"frames": 0, "psnr": None, "ssim": None, "identical_frames": 0}
        return {"frames": frames, "psnr": float(np.mean(self.psnr)) if self.psnr else math.inf,
                "ssim": float(np.mean(self.ssim)), "identical_frames": self.identical_frames}
