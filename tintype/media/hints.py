"""Colour hints: a few brush strokes recolour a picture, the colour following its own edges.

A restorer paints sparse strokes (an RGBA picture whose alpha marks them) on a keyframe
or a photograph; each stroke's chroma (Lab a, b) spreads over the region it was painted
in and stops where the picture's lightness has a strong edge. The picture's lightness is
kept (only a and b change) and whatever no stroke reaches is left exactly as it was. A
stroke's colour too saturated for the picture's lightness there is made less saturated
(its hue kept), never darker or lighter.

How, and why this way: a geodesic spread (Yatziv & Sapiro 2006, "fast image and video
colorization using chrominance blending"). Every pixel gets the edge-aware distance to
its nearest stroke, where a step costs one pixel plus `edge_cost` per unit of lightness
change above `texture` (film grain and fine texture cost almost nothing; a real edge
costs more than the spread reaches; the lightness is smoothed by 1 px first, so grain
does not count), and takes that stroke's chroma. The distance is
found by raster sweeps (left, right, down, up, repeated), each vectorised across the
other axis, so 854x480 takes tens of milliseconds with numpy alone; Levin et al.'s
optimisation would need a sparse solver (scipy), which tintype does not depend on. The
distance also gives how much of the stroke's colour a pixel takes: all of it within
`near` of a stroke, fading to none at `far` (fractions of the picture's diagonal), so
areas far from any stroke keep their colour. Pictures larger than `WORK_SIDE` are spread
at that size and the *change* of chroma is brought back to full size along the full
lightness with the guided filter (`media.guided`), so colour edges stay sharp there too.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tintype.media.color import lab_to_rgb, rgb_to_lab
from tintype.media.guided import fast_guided_upsample

WORK_SIDE = 512  # the spread's working size (long side, px)
STROKE_ALPHA = 128  # alpha at or above this marks a stroke; softer brush edges are ignored


@dataclass(frozen=True)
class HintParams:
    """How far colour spreads. Distances are fractions of the working picture's diagonal;
    `edge_cost` is the cost, in pixels, of each unit of lightness (L, 0..100) changed by
    one step beyond `texture` units: an edge of 20 L costs 20 * 12 = 240 px, more than
    `far` on any picture up to the working size, so colour stops there."""

    near: float = 0.3
    far: float = 0.5
    edge_cost: float = 12.0
    texture: float = 1.5
    rounds: int = 3


def _steps(light: np.ndarray, params: HintParams) -> tuple[np.ndarray, np.ndarray]:
    """Cost of a step between horizontal (H, W-1) and vertical (H-1, W) neighbours."""
    def cost(delta: np.ndarray) -> np.ndarray:
        return 1.0 + params.edge_cost * np.maximum(np.abs(delta) - params.texture, 0.0)
    return cost(np.diff(light, axis=1)), cost(np.diff(light, axis=0))


def _sweep(dist: np.ndarray, ab: np.ndarray, step: np.ndarray, reverse: bool) -> None:
    """One raster pass along axis 1 (columns), in place: each column takes a neighbour's
    distance plus the step where that is shorter, and its chroma with it."""
    width = dist.shape[1]
    order = range(width - 2, -1, -1) if reverse else range(1, width)
    for x in order:
        prev = x + 1 if reverse else x - 1
        candidate = dist[:, prev] + step[:, min(x, prev)]
        shorter = candidate < dist[:, x]
        if shorter.any():
            dist[shorter, x] = candidate[shorter]
            ab[shorter, x] = ab[shorter, prev]


def geodesic_spread(light: np.ndarray, seeds: np.ndarray, seed_ab: np.ndarray,
                    params: HintParams = HintParams()) -> tuple[np.ndarray, np.ndarray]:
    """Edge-aware distance to the nearest seed and that seed's chroma, for every pixel.

    `light` (H, W) float32 L in [0, 100]; `seeds` (H, W) bool; `seed_ab` (H, W, 2) float32
    chroma, read where `seeds`. Returns (distance (H, W) float32, inf where no seed
    reaches; ab (H, W, 2) float32).
    """
    if light.ndim != 2 or seeds.shape != light.shape or seed_ab.shape != (*light.shape, 2):
        raise ValueError(f"light {light.shape}, seeds {seeds.shape} and seed_ab {seed_ab.shape} must share (H, W)")
    dist = np.where(seeds, 0.0, np.inf).astype(np.float32)
    ab = np.where(seeds[..., None], seed_ab, 0.0).astype(np.float32)
    horizontal, vertical = _steps(light.astype(np.float32), params)
    # Vertical passes run on transposed copies, so every pass is a column sweep.
    dist_t, ab_t, vertical_t = dist.T.copy(), ab.transpose(1, 0, 2).copy(), vertical.T.copy()
    for _ in range(params.rounds):
        _sweep(dist, ab, horizontal, False)
        _sweep(dist, ab, horizontal, True)
        dist_t[...], ab_t[...] = dist.T, ab.transpose(1, 0, 2)
        _sweep(dist_t, ab_t, vertical_t, False)
        _sweep(dist_t, ab_t, vertical_t, True)
        dist[...], ab[...] = dist_t.T, ab_t.transpose(1, 0, 2)
    return dist, ab


def _strokes_at(strokes_rgba: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Stroke mask and stroke chroma at (width, height): nearest-neighbour, so a stroke's
    colour is never mixed with the transparent paper around it."""
    if strokes_rgba.shape[:2] != (height, width):
        strokes_rgba = cv2.resize(strokes_rgba, (width, height), interpolation=cv2.INTER_NEAREST)
    seeds = strokes_rgba[..., 3] >= STROKE_ALPHA
    return seeds, rgb_to_lab(np.ascontiguousarray(strokes_rgba[..., :3]))[..., 1:]


def _within_gamut(lab: np.ndarray, rounds: int = 12) -> np.ndarray:
    """Lab (1, N, 3) whose chroma is reduced (hue and lightness kept) until it is an sRGB
    colour: clipping RGB instead would change the lightness (a saturated blue painted on
    a light sky would darken it)."""
    lab = lab.astype(np.float32, copy=True)
    for _ in range(rounds):
        # OpenCV clips RGB to [0, 1]: a colour outside the gamut does not come back.
        back = cv2.cvtColor(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), cv2.COLOR_RGB2Lab)
        outside = np.abs(back - lab).max(axis=2) > 0.5
        if not outside.any():
            break
        lab[..., 1:][outside] *= np.float32(0.85)
    return lab


def apply_hints(rgb: np.ndarray, strokes_rgba: np.ndarray, params: HintParams = HintParams()) -> np.ndarray:
    """The picture recoloured by the strokes: uint8 RGB (H, W, 3) in, uint8 RGB out.

    `strokes_rgba` is uint8 (h, w, 4) of the picture's aspect, any size (scaled to the
    working size); alpha >= STROKE_ALPHA marks the strokes, whose colour's a and b are
    used (their lightness is not: the picture's is kept). Pixels no stroke reaches are
    returned unchanged, byte for byte; no strokes at all return the picture itself.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB (H, W, 3), got {rgb.dtype} {rgb.shape}")
    if strokes_rgba.ndim != 3 or strokes_rgba.shape[2] != 4 or strokes_rgba.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGBA strokes (h, w, 4), got {strokes_rgba.dtype} {strokes_rgba.shape}")
    if not (strokes_rgba[..., 3] >= STROKE_ALPHA).any():
        return rgb
    height, width = rgb.shape[:2]
    scale = min(1.0, WORK_SIDE / max(height, width))
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    lab = rgb_to_lab(rgb)
    small = lab if scale == 1.0 else cv2.resize(lab, (w, h), interpolation=cv2.INTER_AREA)
    seeds, seed_ab = _strokes_at(strokes_rgba, w, h)
    # Grain is smoothed away first (sigma 1 px), so only real edges cost.
    guide = cv2.GaussianBlur(small[..., 0], (0, 0), 1.0)
    dist, spread_ab = geodesic_spread(guide, seeds, seed_ab, params)
    diagonal = float(np.hypot(w, h))
    near, far = params.near * diagonal, params.far * diagonal
    weight = np.clip((far - dist) / (far - near), 0.0, 1.0)[..., None]  # inf distance: 0
    change = (weight * (spread_ab - small[..., 1:])).astype(np.float32)
    if scale != 1.0:
        change = fast_guided_upsample(change, small[..., 0], lab[..., 0], 1, 1e-3)
    touched = np.abs(change).max(axis=2) >= 0.05
    if not touched.any():
        return rgb
    lab[..., 1:] += change
    lab[touched] = _within_gamut(lab[touched][None])[0]
    out = lab_to_rgb(lab)
    out[~touched] = rgb[~touched]  # far from every stroke: the picture as it was, exactly
    return out


__all__ = ["HintParams", "STROKE_ALPHA", "WORK_SIDE", "apply_hints", "geodesic_spread"]
