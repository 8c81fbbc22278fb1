"""Following a box through a clip, so a user marks an object once instead of every frame.

OpenCV's MIL tracker does the following (it needs no model files; the Nano, ViT and
DaSiamRPN trackers do, and we do not ship them). MIL lags behind objects with little
inner texture, so each answer is refined by matching the first box's lightness in a
window around it (and MIL restarted there when they part). MIL also rarely admits
defeat: when the object leaves or is covered it latches onto something nearby and keeps
answering. So the refined box is checked against the look of the object in the first
frame (the lesser of the SSIM and the histogram intersection of lightness: SSIM sees
structure but barely tells a flat bright patch from a flat grey one, the histogram
sees tones but not their arrangement), and tracking is declared lost at the first frame where either
MIL fails or the box no longer looks like the object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from tintype.media import flow as fl

Box = tuple[int, int, int, int]  # x, y, width, height in pixels

MIN_SIMILARITY = 0.35  # appearance agreement with the first box below which the object is lost
_TEMPLATE_SIDE = 32  # boxes are compared at this size


@dataclass
class TrackResult:
    """Per-frame boxes, where tracking was lost (None if never) and what was done about it."""

    boxes: list[Box]
    lost_at: int | None
    note: str
    similarity: list[float] = field(default_factory=list)  # per frame, against the first box


def track_boxes(frames: Sequence[np.ndarray], first_box: Box, min_similarity: float = MIN_SIMILARITY) -> TrackResult:
    """Track `first_box` (x, y, w, h on frames[0]) through uint8 RGB frames, read in order
    (a lazily decoded sequence works: each frame is asked for once, after frame 0).

    After the first lost frame the last good box is kept for the remaining frames: a
    mask that stays put is easier to check and correct than one that wanders off.
    """
    _check(frames, first_box)
    shape = frames[0].shape
    follower = _Follower(frames[0], first_box)
    boxes, scores = [first_box], [1.0]
    for t in range(1, len(frames)):
        _check_frame(frames[t], t, shape)
        box, score = follower.step(frames[t])
        if box is None or score < min_similarity:
            reason = ("the tracker failed" if box is None else
                      f"the box no longer looks like the object (similarity {score:.2f} < {min_similarity})")
            return _lost(boxes, scores + [score], t, len(frames), reason)
        boxes.append(box)
        scores.append(score)
    return TrackResult(boxes, None, f"tracked all {len(frames)} frames", scores)


class _Follower:
    """MIL plus template refinement, restarted where the two part."""

    def __init__(self, first: np.ndarray, box: Box) -> None:
        x, y, w, h = box
        self.exact = fl.lightness_u8(first)[y:y + h, x:x + w].astype(np.float32)
        self.template = _appearance(first, box)
        self.tracker = cv2.TrackerMIL_create()
        self.tracker.init(cv2.cvtColor(first, cv2.COLOR_RGB2BGR), box)

    def step(self, rgb: np.ndarray) -> tuple[Box | None, float]:
        """The object's box on the next frame (None if MIL gave up) and its similarity to the first."""
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        found, raw = self.tracker.update(bgr)
        box = _clip(tuple(round(v) for v in raw), rgb.shape) if found else None
        if box is None:
            return None, 0.0
        box = _refine(fl.lightness_u8(rgb).astype(np.float32), self.exact, box)
        if _drifted(raw, box):
            self.tracker = cv2.TrackerMIL_create()
            self.tracker.init(bgr, box)
        return box, _similarity(_appearance(rgb, box), self.template)


def boxes_to_masks(boxes: Sequence[Box], shape: tuple[int, ...], margin: int = 0) -> list[np.ndarray]:
    """One bool (H, W) mask per box, grown by `margin` pixels on each side and clipped to the frame."""
    if margin < 0:
        raise ValueError(f"margin must be 0 or more pixels, got {margin}")
    h, w = shape[:2]
    masks = []
    for x, y, bw, bh in boxes:
        mask = np.zeros((h, w), bool)
        y0, y1 = max(0, y - margin), max(0, min(h, y + bh + margin))
        x0, x1 = max(0, x - margin), max(0, min(w, x + bw + margin))
        mask[y0:y1, x0:x1] = True
        masks.append(mask)
    return masks


def _check(frames: Sequence[np.ndarray], box: Box) -> None:
    if len(frames) == 0:
        raise ValueError("track_boxes needs at least one frame")
    shape = frames[0].shape
    _check_frame(frames[0], 0, shape)
    x, y, w, h = box
    if w < 2 or h < 2 or x < 0 or y < 0 or x + w > shape[1] or y + h > shape[0]:
        raise ValueError(f"first box {box} must be at least 2x2 and lie inside the {shape[1]}x{shape[0]} frame")


def _check_frame(frame: np.ndarray, t: int, shape: tuple[int, ...]) -> None:
    """Frames are checked as they are reached, so a stream of frames is read only once."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or frame.shape != shape:
        raise ValueError(f"frame {t} is {frame.dtype} {frame.shape}; every frame must be uint8 RGB {shape}")


def _clip(box: tuple[int, ...], shape: tuple[int, ...]) -> Box | None:
    """The box cut to the frame, or None when less than half of it is left inside."""
    x, y, w, h = box
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(shape[1], x + w), min(shape[0], y + h)
    if w <= 0 or h <= 0 or (x1 - x0) * (y1 - y0) < 0.5 * w * h:
        return None
    return x0, y0, x1 - x0, y1 - y0


def _refine(light: np.ndarray, exact: np.ndarray, box: Box) -> Box:
    """Where the first box's lightness fits best (least squared difference) within half a
    box of the tracker's answer; the first box's size is kept."""
    x, y = box[:2]
    th, tw = exact.shape
    pad = max(4, max(tw, th) // 2)
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(light.shape[1], x + tw + pad), min(light.shape[0], y + th + pad)
    if x1 - x0 < tw or y1 - y0 < th:
        return box
    scores = cv2.matchTemplate(light[y0:y1, x0:x1], exact, cv2.TM_SQDIFF)
    _, _, best, _ = cv2.minMaxLoc(scores)
    return x0 + best[0], y0 + best[1], tw, th


def _drifted(raw: Sequence[float], box: Box, tolerance: float = 2.0) -> bool:
    return abs(raw[0] - box[0]) > tolerance or abs(raw[1] - box[1]) > tolerance


def _appearance(rgb: np.ndarray, box: Box | None) -> np.ndarray:
    """The box's lightness at a fixed size, lightly blurred so a sub-pixel shift does not matter."""
    if box is None:
        return np.zeros((_TEMPLATE_SIDE, _TEMPLATE_SIDE), np.float32)
    x, y, w, h = box
    patch = fl.lightness_u8(np.ascontiguousarray(rgb[y:y + h, x:x + w])).astype(np.float32)
    patch = cv2.resize(patch, (_TEMPLATE_SIDE, _TEMPLATE_SIDE), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(patch, (0, 0), 1.0)


def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Appearance agreement of two patches in [-1, 1]: min(SSIM, histogram intersection)."""
    return min(_ssim(a, b), _tone_overlap(a, b))


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two patches taken as one window (defined for flat patches, unlike correlation)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ma, mb = float(a.mean()), float(b.mean())
    va, vb = float(a.var()), float(b.var())
    cov = float(((a - ma) * (b - mb)).mean())
    return ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))


def _tone_overlap(a: np.ndarray, b: np.ndarray, bins: int = 16) -> float:
    """Intersection of the two lightness histograms, each smoothed over neighbouring bins
    so a slight change of exposure does not count as a different object."""
    def histogram(x: np.ndarray) -> np.ndarray:
        counts = np.histogram(x, bins=bins, range=(0.0, 256.0))[0].astype(np.float64)
        counts = np.convolve(counts, [0.25, 0.5, 0.25], mode="same")
        return counts / max(counts.sum(), 1e-9)
    return float(np.minimum(histogram(a), histogram(b)).sum())


def _lost(boxes: list[Box], scores: list[float], at: int, count: int, reason: str) -> TrackResult:
    """Keep the last good box for the frames from `at` on, and say so."""
    last = boxes[-1]
    kept = boxes + [last] * (count - at)
    scores = scores + [0.0] * (count - at - 1)
    note = (f"tracking lost at frame {at}: {reason}; the last good box {last} (frame {at - 1}) "
            f"is kept for frames {at}-{count - 1}")
    return TrackResult(kept, at, note, scores)
