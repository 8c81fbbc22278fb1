"""Synthetic print damage laid over ordinary photographs: the scratch net's training data.

The recipe follows how an old print comes to look the way it does, in that order:

1. the photograph is made grey and aged: a random tone curve (faded blacks, crushed or
   lifted highlights, gamma), lowered contrast, a sepia-like toe, soft blotches of uneven
   fading and a vignette — none of which is damage, so the net learns to leave tone alone;
2. the print is damaged, each defect drawn as a coverage layer (0..1) and composited
   with its own tone and opacity:
   * scratches — smooth thin curves, 1-3 px, mostly bright, sometimes dark;
   * cracks — jagged random walks that branch, 1-4 px, bright paper showing through,
     sometimes with a dark shadow beside; the width swells and narrows along a crack and
     its edges are often ragged, as on real prints; now and then a whole network of them;
   * hairlines — fine cracks in the emulsion that catch the light: a faint bright line
     with a shadow on one side, only a few tens of levels from the picture (the cracks
     across faces and bright cloth, which paper-white cracks do not teach);
   * faint cracks — the same fine craquelure only 5-14 levels from the picture, as over
     the smooth skin of real print d; labelled where the picture around is smooth enough
     for a person to see them;
   * creases — long soft bands, brighter or darker, with a sharp line down the middle;
   * folds — long, nearly straight lines, lit on a ramp up to a bright crest on one
     side and shadowed on the other (a fold pressed flat, seen in raking light), fading
     in and out along their length;
   * tears and paper loss — bright irregular regions at a border or corner (bright
     shaded regions inside the picture, white collars and the like, are added to the
     photograph before ageing and not labelled);
   * spots — flecks and specks, bright or dark;
3. the print is scanned: 40% of the scans crisp and lossless, as the real prints are
   (light grain at most); the rest sometimes small and scaled up, a little blur,
   sometimes a scanner's sharpening, film or paper grain, JPEG.

The label is each defect's footprint (coverage ≥ 0.4) where it visibly changed the
picture (by LABEL_MIN_CHANGE levels or more); soft stains and tone changes are not
labelled. Everything is drawn from one numpy Generator, so a seed gives the same set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

LABEL_MIN_CHANGE = 10.0  # grey levels a defect must change a pixel by to be labelled
FAINT_MIN_CHANGE = 3.0  # the same for a faint crack, where the picture around it is smooth
LABEL_MIN_COVER = 0.4  # coverage of the defect's layer a labelled pixel has, at least
# Share of scans left crisp. A net trained on softened scans alone learns that a crisp
# bright line is content (a collar's edge) and misses the cracks of sharp, lossless scans.
CRISP_SCAN_SHARE = 0.4


@dataclass(frozen=True)
class Sample:
    """One training or evaluation example: the damaged grey picture and its damage label."""

    grey: np.ndarray  # (H, W) uint8
    label: np.ndarray  # (H, W) bool, True = damaged
    clean: np.ndarray  # (H, W) uint8: the aged print before damage (for pictures and checks)


def read_grey(path: Path) -> np.ndarray:
    """A photo file as uint8 grey (H, W): the luma the detector sees. The decoder's own grey,
    which can be a level off the grey of its colour picture that a job's net sees (for the
    traced prints, where that matters, traced_prints.job_grey reads it as a job does)."""
    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise ValueError(f"cannot read image {path}")
    return grey


# ---------------------------------------------------------------------------- ageing


def age(grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Tone of an old print: curve, contrast, uneven fading and vignette (float 0..255)."""
    x = grey / 255.0
    x = x ** rng.uniform(0.6, 1.6)  # gamma
    if rng.random() < 0.5:  # a sepia-like S or toe curve
        k = rng.uniform(2.0, 8.0)
        s = 1.0 / (1.0 + np.exp(-k * (x - 0.5)))
        lo, hi = 1.0 / (1.0 + np.exp(k * 0.5)), 1.0 / (1.0 + np.exp(-k * 0.5))
        x = (s - lo) / (hi - lo)
    black, white = rng.uniform(0.0, 0.3), rng.uniform(0.7, 1.0)  # faded blacks, dull whites
    if rng.random() < 0.2:
        black, white = rng.uniform(0.0, 0.1), rng.uniform(0.9, 1.0)
    x = black + (white - black) * x
    h, w = x.shape
    if rng.random() < 0.5:  # uneven fading: soft blotches, not damage
        field = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), rng.uniform(8, 30))
        field /= max(float(np.abs(field).max()), 1e-6)
        x = x + rng.uniform(0.03, 0.12) * field
    if rng.random() < 0.4:  # vignette
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r = ((yy - h / 2) / h) ** 2 + ((xx - w / 2) / w) ** 2
        x = x * (1.0 - rng.uniform(0.1, 0.6) * r)
    return np.clip(x * 255.0, 0, 255).astype(np.float32)


def scan(grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A scan: crisp, or sometimes resampled, blurred or sharpened; grain; JPEG. float 0..255 → uint8."""
    if rng.random() < CRISP_SCAN_SHARE:
        return _crisp_scan(grey, rng)
    x = grey
    if rng.random() < 0.25:  # scanned small and scaled up: soft, resampled edges
        h, w = x.shape
        f = rng.uniform(0.5, 0.9)
        small = cv2.resize(x, (max(8, round(w * f)), max(8, round(h * f))), interpolation=cv2.INTER_AREA)
        x = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    if rng.random() < 0.6:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.3, 1.0))
    if rng.random() < 0.2:  # a scanner's sharpening
        x = x + rng.uniform(0.3, 1.0) * (x - cv2.GaussianBlur(x, (0, 0), rng.uniform(0.8, 2.0)))
    if rng.random() < 0.7:
        noise = rng.standard_normal(x.shape).astype(np.float32)
        if rng.random() < 0.5:  # clumped grain
            noise = cv2.GaussianBlur(noise, (0, 0), rng.uniform(0.5, 1.2))
            noise /= max(float(noise.std()), 1e-6)
        x = x + rng.uniform(1.0, 7.0) * noise
    out = np.clip(x, 0, 255).astype(np.uint8)
    if rng.random() < 0.6:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 95))])
        out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return out


def _crisp_scan(grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A lossless scan of a sharp print: no resampling, blur or JPEG; light grain half the time."""
    x = grey
    if rng.random() < 0.5:
        x = x + rng.uniform(0.5, 3.0) * rng.standard_normal(x.shape).astype(np.float32)
    return np.clip(x, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------- defects


def _stroke_tone(rng: np.random.Generator, bright_share: float) -> float:
    return float(rng.uniform(200, 255) if rng.random() < bright_share else rng.uniform(0, 60))


def _composite(canvas: np.ndarray, label: np.ndarray, cover: np.ndarray, tone: float | np.ndarray,
               opacity: float, labelled: bool = True, min_change: float | np.ndarray = LABEL_MIN_CHANGE) -> None:
    """Lay a defect's coverage layer over the canvas with a tone; add its visible footprint
    (where it changed the picture by `min_change` levels or more)."""
    alpha = np.clip(cover * opacity, 0.0, 1.0)
    before = canvas.copy()
    canvas += alpha * (tone - canvas)
    if labelled:
        label |= (cover >= LABEL_MIN_COVER) & (np.abs(canvas - before) >= min_change)


def _polyline(layer: np.ndarray, points: np.ndarray, width: int) -> None:
    pts = np.round(points * 16).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(layer, [pts], False, 1.0, max(1, width), cv2.LINE_AA, shift=4)


def _uneven_polyline(layer: np.ndarray, points: np.ndarray, width: int, rng: np.random.Generator) -> None:
    """A path whose width swells and narrows along it, as a real crack's does."""
    swell = np.convolve(rng.normal(0, 0.6, len(points)), np.ones(4) / 4, mode="same")
    widths = np.clip(np.round(width * np.exp(swell)), 1, 2 * width + 1).astype(int)
    pts = np.round(points * 16).astype(np.int32)
    for a, b, w in zip(pts, pts[1:], widths):
        cv2.line(layer, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 1.0, int(w), cv2.LINE_AA, shift=4)


def _ragged(layer: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rough edges: bumps where the emulsion flaked beside the crack."""
    grown = cv2.dilate(layer, np.ones((3, 3), np.uint8))
    noise = cv2.GaussianBlur(rng.random(layer.shape).astype(np.float32), (0, 0), rng.uniform(0.8, 2.5))
    return np.maximum(layer, grown * (noise > np.quantile(noise, rng.uniform(0.4, 0.8))))


def _edge_point(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A random point, on a border half of the time (damage often starts at an edge)."""
    p = rng.uniform([0, 0], [w, h])
    if rng.random() < 0.5:
        side = rng.integers(4)
        p[side % 2] = 0 if side < 2 else (w if side % 2 == 0 else h)
    return p


def scratch(canvas: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> None:
    """A smooth thin curve (quadratic Bezier), bright or dark."""
    h, w = canvas.shape
    a, b = _edge_point(h, w, rng), rng.uniform([0, 0], [w, h])
    if np.linalg.norm(b - a) < 0.3 * max(h, w):
        b = a + rng.uniform(0.3, 1.2) * max(h, w) * _unit(rng.uniform(0, np.pi * 2))
    c = (a + b) / 2 + rng.normal(0, 0.15 * max(h, w), 2)
    t = np.linspace(0, 1, 64)[:, None]
    points = (1 - t) ** 2 * a + 2 * (1 - t) * t * c + t ** 2 * b
    layer = np.zeros_like(canvas)
    _polyline(layer, points, int(rng.choice([1, 1, 1, 2, 2, 3])))
    if rng.random() < 0.3:  # broken, not continuous
        gaps = cv2.GaussianBlur(rng.random(canvas.shape).astype(np.float32), (0, 0), 6)
        layer *= gaps > np.quantile(gaps, rng.uniform(0.1, 0.4))
    _composite(canvas, label, layer, _stroke_tone(rng, 0.75), rng.uniform(0.35, 1.0))


def _unit(angle: float) -> np.ndarray:
    return np.array([np.cos(angle), np.sin(angle)])


def _walk(start: np.ndarray, angle: float, length: float, rng: np.random.Generator,
          jag: float) -> np.ndarray:
    """A jagged path: short straight steps whose heading wanders about a slowly bending course
    (the wander pulls back towards the course, so the path does not curl up)."""
    points, p, travelled = [start], start.copy(), 0.0
    bend, wander = rng.normal(0, 0.01), 0.0
    while travelled < length:
        step = rng.uniform(2.0, 7.0)
        angle += bend
        wander = 0.6 * wander + rng.normal(0, jag)
        p = p + step * _unit(angle + wander)
        points.append(p.copy())
        travelled += step
    return np.array(points)


def _crack_paths(h: int, w: int, rng: np.random.Generator, size: float) -> list[np.ndarray]:
    """A jagged trunk from an edge or inside, and its branches (three levels at most)."""
    jag = rng.uniform(0.1, 0.5)
    trunk = _walk(_edge_point(h, w, rng), rng.uniform(0, 2 * np.pi),
                  size * rng.uniform(0.3, 1.5) * max(h, w), rng, jag)
    paths, stack = [trunk], [(trunk, 1)]
    while stack:
        path, depth = stack.pop()
        for _ in range(rng.poisson(1.2 if depth == 1 else 0.6)):
            at = path[rng.integers(len(path))]
            branch = _walk(at, rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 0.5) * len(path) * 4, rng, jag)
            paths.append(branch)
            if depth < 3:
                stack.append((branch, depth + 1))
    return paths


def _moved(layer: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """The layer translated by a (dx, dy) offset, sub-pixel."""
    h, w = layer.shape
    return cv2.warpAffine(layer, np.float32([[1, 0, offset[0]], [0, 1, offset[1]]]), (w, h))


def _shifted(layer: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The layer moved 1.5 px diagonally, where it does not cover itself: a shadow beside it."""
    offset = np.array([rng.choice([-1.5, 1.5]), rng.choice([-1.5, 1.5])])
    return _moved(layer, offset) * (1 - layer)


def crack(canvas: np.ndarray, label: np.ndarray, rng: np.random.Generator, size: float = 1.0) -> None:
    """A jagged crack that branches: paper (bright) showing through, maybe a dark edge. Its
    width swells and narrows and its edges are often ragged; where the emulsion was only
    partly lost it is lighter than the picture rather than paper white."""
    h, w = canvas.shape
    layer = np.zeros_like(canvas)
    width = int(rng.choice([1, 1, 2, 2, 3, 4]))
    for i, path in enumerate(_crack_paths(h, w, rng, size)):
        branch_width = width if i == 0 else max(1, width - int(rng.integers(0, 2)))
        if rng.random() < 0.5:
            _uneven_polyline(layer, path, branch_width, rng)
        else:
            _polyline(layer, path, branch_width)
    if rng.random() < 0.4:
        layer = _ragged(layer, rng)
    if rng.random() < 0.3:
        layer = cv2.GaussianBlur(layer, (0, 0), rng.uniform(0.3, 0.8))
    if rng.random() < 0.3:  # a shadow along one side
        _composite(canvas, label, _shifted(layer, rng), rng.uniform(0, 50), rng.uniform(0.3, 0.8))
    tone = (np.clip(canvas + rng.uniform(30, 100), 0, 255) if rng.random() < 0.25
            else _stroke_tone(rng, 0.85))
    _composite(canvas, label, layer, tone, rng.uniform(0.5, 1.0))


def hairline(canvas: np.ndarray, label: np.ndarray, rng: np.random.Generator, size: float = 1.0) -> None:
    """A hairline crack in the emulsion that catches the light: a faint bright line with a
    shadow on one side, only 12-45 levels from the picture (the cracks across faces and
    bright cloth on real prints, which a paper-white crack does not teach)."""
    layer = np.zeros_like(canvas)
    for path in _crack_paths(*canvas.shape, rng, size):
        _polyline(layer, path, 1)
    amplitude = rng.uniform(15, 45)
    shadow = _shifted(layer, rng)
    _composite(canvas, label, shadow, np.clip(canvas - amplitude * rng.uniform(0.6, 1.0), 0, 255),
               rng.uniform(0.6, 1.0))
    _composite(canvas, label, layer, np.clip(canvas + amplitude, 0, 255), rng.uniform(0.8, 1.0))


def _local_spread(canvas: np.ndarray) -> np.ndarray:
    """The picture's standard deviation over 5x5 px: how busy it is around each pixel."""
    mean = cv2.blur(canvas, (5, 5))
    return np.sqrt(np.maximum(cv2.blur(canvas * canvas, (5, 5)) - mean * mean, 0.0))


def faint(canvas: np.ndarray, label: np.ndarray, rng: np.random.Generator, size: float = 1.0) -> None:
    """Craquelure only 5-14 levels from the picture, mostly lighter: the fine cracks over the
    smooth skin of real print d's neck and chest, which a hairline (15-45 levels) does not
    teach. Under LABEL_MIN_CHANGE, so labelled by its own rule: where it changed the picture by
    FAINT_MIN_CHANGE and its step is at least twice the picture's local spread, as a person
    sees it; the same line through hair or foliage is drawn but not labelled."""
    layer = np.zeros_like(canvas)
    for path in _crack_paths(*canvas.shape, rng, size):
        _polyline(layer, path, 1)
    if rng.random() < 0.5:
        layer = cv2.GaussianBlur(layer, (0, 0), rng.uniform(0.3, 0.7))
    amplitude = rng.uniform(5, 14) * (1.0 if rng.random() < 0.75 else -1.0)
    visible = np.where(_local_spread(canvas) * 2 <= abs(amplitude), FAINT_MIN_CHANGE, np.inf)
    _composite(canvas, label, layer, np.clip(canvas + amplitude, 0, 255), rng.uniform(0.8, 1.0),
               min_change=visible.astype(np.float32))


def crease(canvas: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> None:
    """A long soft band with a sharp line along its middle."""
    h, w = canvas.shape
    a = _edge_point(h, w, rng)
    points = _walk(a, rng.uniform(0, 2 * np.pi), rng.uniform(0.6, 1.5) * max(h, w), rng, 0.03)
    band = np.zeros_like(canvas)
    _polyline(band, points, int(rng.integers(3, 9)))
    band = cv2.GaussianBlur(band, (0, 0), rng.uniform(1.0, 3.0))
    band /= max(float(band.max()), 1e-6)
    tone = _stroke_tone(rng, 0.7)
    _composite(canvas, label, band, tone, rng.uniform(0.2, 0.6))
    line = np.zeros_like(canvas)
    _polyline(line, points + rng.normal(0, 0.5, 2), 1)
    _composite(canvas, label, line, _stroke_tone(rng, 0.8), rng.uniform(0.4, 1.0))


def _fading(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A smooth field in [0.2, 1]: how strongly a long defect shows, place by place."""
    h, w = shape
    field = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 0.15 * max(h, w))
    field = (field - field.min()) / max(float(np.ptp(field)), 1e-6)
    return 0.2 + 0.8 * field


def fold(canvas: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> None:
    """A fold pressed flat, seen in raking light: a long, nearly straight line (from a
    border half the time), one side lit on a ramp that rises over a few pixels to a bright
    crest, the other in a thin shadow; it fades in and out along its length. Lopsided, it
    looks locally like an edge of the picture, so `crease` (symmetric) does not teach it.
    Modelled on the creases across real print c: a crest 30-45 levels over the picture, a
    ramp of 4-6 px on one side, a shadow 15-25 levels deep on the other."""
    h, w = canvas.shape
    start, through = _edge_point(h, w, rng), rng.uniform([0.2 * w, 0.2 * h], [0.8 * w, 0.8 * h])
    direction = (through - start) / max(float(np.linalg.norm(through - start)), 1e-6)
    normal = np.array([-direction[1], direction[0]]) * rng.choice([-1.0, 1.0])
    t = np.linspace(0.0, 1.0, 48)[:, None]
    wobble = np.convolve(rng.normal(0, 1.0, t.size), np.ones(8) / 8, mode="same")[:, None]
    points = (start + t * rng.uniform(0.5, 1.5) * max(h, w) * direction
              + rng.uniform(0, 2) * wobble * normal)
    crest = np.zeros_like(canvas)
    _polyline(crest, points, 1)
    reach = rng.uniform(2.0, 7.0)
    ramp = np.zeros_like(canvas)
    for k in range(1, int(np.ceil(reach)) + 1):
        ramp = np.maximum(ramp, _moved(crest, k * normal) * max(0.0, 1 - k / (reach + 1)))
    shadow = np.maximum(_moved(crest, -normal), 0.5 * _moved(crest, -2 * normal)) * (1 - crest)
    fading = _fading(canvas.shape, rng)
    lit, dark = rng.uniform(20, 55), rng.uniform(8, 30)
    if rng.random() < 0.2:  # folded the other way: a dark crest with a lit strip beside it
        lit, dark = -lit, -dark
    _composite(canvas, label, shadow * fading, np.clip(canvas - dark, 0, 255), 1.0)
    _composite(canvas, label, ramp * fading, np.clip(canvas + lit, 0, 255), 1.0)
    _composite(canvas, label, crest * fading, np.clip(canvas + lit, 0, 255), 1.0)


def tear(canvas: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> None:
    """Paper lost at a border or corner: a bright irregular region with a ragged edge.
    Always at the border: inside the picture a bright region is content (a white collar)."""
    h, w = canvas.shape
    side = int(rng.integers(4))
    centre = rng.uniform([0, 0], [w, h])
    centre[side % 2] = 0 if side < 2 else (w if side % 2 == 0 else h)
    if rng.random() < 0.5:  # a corner
        centre = np.array([rng.choice([0, w]), rng.choice([0, h])], float)
    radius = rng.uniform(0.04, 0.25) * min(h, w)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 24))
    radii = radius * np.exp(rng.normal(0, 0.35, angles.size))
    points = centre + radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], 1)
    layer = np.zeros_like(canvas)
    cv2.fillPoly(layer, [np.round(points * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
    texture = rng.uniform(-8, 8, canvas.shape).astype(np.float32)
    tone = rng.uniform(215, 255) + cv2.GaussianBlur(texture, (0, 0), 1.0)
    _composite(canvas, label, layer, tone, rng.uniform(0.8, 1.0))


def edge_wear(canvas: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> None:
    """A ragged bright strip along one border, where the print's emulsion flaked off."""
    h, w = canvas.shape
    side = int(rng.integers(4))
    n = w if side % 2 == 0 else h
    depth = np.abs(np.cumsum(rng.normal(0, 1.0, n))) * rng.uniform(0.2, 0.8) + rng.uniform(0, 4)
    depth = np.clip(depth, 0, 0.15 * min(h, w))
    idx = np.arange(h if side % 2 == 0 else w)[:, None]
    strip = (idx < depth[None, :]).astype(np.float32)  # (depth axis, along axis)
    if side % 2 == 1:
        strip = strip.T
    if side == 2:
        strip = strip[::-1]
    if side == 3:
        strip = strip[:, ::-1]
    _composite(canvas, label, np.ascontiguousarray(strip[:h, :w]), rng.uniform(200, 255), rng.uniform(0.7, 1.0))


def spots(canvas: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> None:
    """Flecks and specks, bright or dark, a few px across."""
    h, w = canvas.shape
    layer = np.zeros_like(canvas)
    for _ in range(int(rng.integers(1, 25))):
        centre = rng.uniform([0, 0], [w, h])
        axes = rng.uniform(0.7, 3.5, 2)
        cx, cy = (int(v) for v in np.round(centre * 16))
        ax, ay = (int(v) for v in np.round(axes * 16))
        cv2.ellipse(layer, (cx, cy), (ax, ay), float(rng.uniform(0, 180)), 0, 360, 1.0, -1, cv2.LINE_AA, shift=4)
    _composite(canvas, label, layer, _stroke_tone(rng, 0.7), rng.uniform(0.6, 1.0))


def bright_content(grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A white thing in the picture (a collar, a blouse, a sunlit wall): a bright, shaded,
    sharp-edged region inside the frame. Content, not damage: the net must leave it alone."""
    h, w = grey.shape
    centre = rng.uniform([0.15 * w, 0.15 * h], [0.85 * w, 0.85 * h])
    radius = rng.uniform(0.08, 0.3) * min(h, w)
    angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 9))))
    radii = radius * rng.uniform(0.5, 1.0, angles.size)
    points = centre + radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], 1)
    layer = np.zeros((h, w), np.float32)
    cv2.fillPoly(layer, [np.round(points * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
    layer = cv2.GaussianBlur(layer, (0, 0), rng.uniform(0.4, 1.5))
    shading = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), rng.uniform(3, 10))
    tone = rng.uniform(200, 250) + 40 * shading / max(float(np.abs(shading).max()), 1e-6)
    return grey + layer * (tone - grey)


def stain(canvas: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> None:
    """A soft stain: a tonal change, left alone by the detector, so never labelled."""
    h, w = canvas.shape
    layer = np.zeros_like(canvas)
    centre = rng.uniform([0, 0], [w, h])
    r = rng.uniform(0.05, 0.3) * min(h, w)
    cv2.circle(layer, (int(centre[0]), int(centre[1])), int(r), 1.0, -1)
    layer = cv2.GaussianBlur(layer, (0, 0), r / 3 + 1)
    _composite(canvas, label, layer, _stroke_tone(rng, 0.4), rng.uniform(0.1, 0.35), labelled=False)


DEFECTS = {"scratch": scratch, "crack": crack, "hairline": hairline, "crease": crease, "fold": fold,
           "tear": tear, "edge_wear": edge_wear, "spots": spots, "faint": faint}
# how often each kind is drawn (relative); cracks and scratches are what prints show most
WEIGHT = {"scratch": 3.0, "crack": 4.0, "hairline": 2.0, "crease": 1.0, "fold": 1.5, "tear": 0.5,
          "edge_wear": 0.5, "spots": 1.5, "faint": 1.5}
# Earlier recipes: with one a seed draws exactly the damage it drew then, so bench.damage
# can still compare a net with the figures of every earlier model card.
BEFORE_FAINT = tuple(name for name in DEFECTS if name != "faint")
BEFORE_FOLDS = tuple(name for name in BEFORE_FAINT if name != "fold")


def damage(canvas: np.ndarray, rng: np.random.Generator, kinds: Sequence[str] = tuple(DEFECTS),
           weight: Mapping[str, float] = WEIGHT) -> np.ndarray:
    """Draw a random mix of defects on `canvas` (float 0..255, changed in place); the label.
    `kinds` limits the mix; stains and the craquelure networks are drawn whatever it says
    (the networks' faint cracks only when `kinds` has them). `weight`, how often each kind
    is drawn, lets a fine-tune dwell on the defect a model misses (train_damage --weight)."""
    label = np.zeros(canvas.shape, bool)
    if rng.random() < 0.3:
        stain(canvas, label, rng)
    roll = rng.random()
    if roll < 0.12:
        return label  # a clean print: the net must learn to find nothing as well
    if roll < 0.25:  # a craquelure network, as on prints that were folded and cracked all over
        kind = hairline if rng.random() < 0.4 else crack
        for _ in range(int(rng.integers(4, 12))):
            kind(canvas, label, rng, size=0.5)
        if "faint" in kinds and rng.random() < 0.5:  # its finest cracks barely show
            for _ in range(int(rng.integers(2, 10))):
                faint(canvas, label, rng, size=0.5)
        return label
    names = [name for name in DEFECTS if name in kinds]
    p = np.array([weight[n] for n in names])
    for name in rng.choice(names, size=int(rng.integers(1, 6)), p=p / p.sum()):
        DEFECTS[name](canvas, label, rng)
    return label


def make_sample(grey: np.ndarray, size: int, rng: np.random.Generator,
                kinds: Sequence[str] = tuple(DEFECTS), weight: Mapping[str, float] = WEIGHT) -> Sample:
    """A random crop of a uint8 grey photo (scaled 0.5-1x, never below `size`), aged, damaged
    (defects of `kinds`, drawn as often as `weight` says) and scanned."""
    h, w = grey.shape[:2]
    low = max(0.5, size / min(h, w))
    scale = rng.uniform(low, max(low, 1.0))
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    if (nh, nw) != (h, w):
        grey = cv2.resize(grey, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = int(rng.integers(0, nh - size + 1)), int(rng.integers(0, nw - size + 1))
    crop = grey[top:top + size, left:left + size]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    content = np.ascontiguousarray(crop).astype(np.float32)
    for _ in range(int(rng.random() < 0.35) * int(rng.integers(1, 3))):
        content = bright_content(content, rng)
    canvas = age(np.clip(content, 0, 255), rng)
    clean = canvas.copy()
    label = damage(canvas, rng, kinds, weight)
    scan_seed = int(rng.integers(2**31))
    grey = scan(canvas, np.random.default_rng(scan_seed))
    return Sample(grey=grey, label=label, clean=scan(clean, np.random.default_rng(scan_seed)))
