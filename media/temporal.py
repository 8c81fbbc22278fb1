"""Temporal smoothing of chroma as frames stream through the reduce step.

Frame-by-frame colorization flickers: the same coat turns brown, then green. For each
frame the smoother brings the chroma of up to `radius` frames before and after onto it
along optical flow (computed on lightness), ignores occluded pixels (forward–backward
check), never blends across a scene cut, and down-weights neighbours whose colour
disagrees strongly (a real change, not flicker). Only chroma (Cb, Cr) changes; luma is
left exactly as it was. The filter is symmetric, so it adds no lag to motion, and it
holds `radius` frames of lookahead: memory is bounded by the window, not the video.

The correction is computed at a reduced width (flicker is low-frequency) and added to
the full-resolution chroma, which keeps its own detail. The same flows give the job's
no-reference quality measures at no extra cost.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from media import flow as fl
from media.metrics import colourfulness


@dataclass
class _Entry:
    index: int
    frame: np.ndarray  # full-resolution RGB
    small: np.ndarray  # reduced RGB
    light: np.ndarray  # small 8-bit lightness
    chroma: np.ndarray  # small (h, w, 2) float32 Cr, Cb
    scene: int
    forward: np.ndarray | None = None  # flow to the next frame
    backward: np.ndarray | None = None  # flow to the previous frame
    back_valid: np.ndarray | None = None  # pixels whose backward flow is consistent


@dataclass
class TemporalStats:
    """What the smoother saw: scene cuts and no-reference measures of its output."""

    frames: int = 0
    cuts: list[int] = field(default_factory=list)  # index of the first frame of each new scene
    warp_errors: list[float] = field(default_factory=list)
    chroma_warp_errors: list[float] = field(default_factory=list)
    colourfulness: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        mean = lambda xs: round(float(np.mean(xs)), 6) if xs else 0.0  # noqa: E731
        return {"frames": self.frames, "scene_cuts": self.cuts,
                "warping_error": mean(self.warp_errors),
                "chroma_warping_error": mean(self.chroma_warp_errors),
                "colourfulness": round(mean(self.colourfulness), 3)}


def _explains(backward: np.ndarray, mask: np.ndarray, light: np.ndarray, previous: np.ndarray) -> bool:
    """Whether motion explains the new frame: most pixels have consistent flow and the
    motion-compensated previous frame looks like it. Two unrelated shots with similar
    histograms fail this test."""
    if mask.mean() < 0.25:
        return False
    residual = np.abs(light.astype(np.int16) - fl.warp(previous, backward).astype(np.int16))
    return float(residual[mask].mean()) < 20.0


def _hist(light: np.ndarray) -> np.ndarray:
    hist = cv2.calcHist([light], [0], None, [32], [0, 256])
    return cv2.normalize(hist, None).flatten()


class ChromaSmoother:
    """Push frames in order; smoothed frames come out in order, `radius` frames behind."""

    def __init__(self, strength: float = 0.8, radius: int = 3, width: int = 256,
                 cut_threshold: float = 0.35, colour_tolerance: float = 24.0) -> None:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"smoothing strength must be in [0, 1], got {strength}")
        self.strength, self.radius, self.width = strength, max(0, radius), width
        self.cut_threshold, self.tolerance = cut_threshold, colour_tolerance
        self.window: deque[_Entry] = deque()
        self.next_out = 0
        self.scene = 0
        self.stats = TemporalStats()
        self._last_output: tuple[np.ndarray, int] | None = None
        sigma = max(1.0, self.radius / 1.5)
        self.weights = {d: float(np.exp(-(d * d) / (2 * sigma * sigma)))
                        for d in range(-self.radius, self.radius + 1) if d}

    def _small(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h, w = frame.shape[:2]
        width = max(8, min(self.width, w))
        height = max(8, round(h * width / w))
        small = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        light = fl.lightness_u8(small)
        chroma = cv2.cvtColor(small, cv2.COLOR_RGB2YCrCb)[..., 1:].astype(np.float32)
        return small, light, chroma

    def push(self, frame: np.ndarray) -> list[np.ndarray]:
        small, light, chroma = self._small(frame)
        entry = _Entry(self.stats.frames, frame, small, light, chroma, self.scene)
        if self.window:
            self._link(self.window[-1], entry)
        self.window.append(entry)
        self.stats.frames += 1
        out = []
        while self.window and self.window[-1].index - self.next_out >= self.radius:
            out.append(self._emit())
        return out

    def _link(self, last: _Entry, entry: _Entry) -> None:
        """Join two consecutive frames by flow, or start a new scene between them."""
        cut = cv2.compareHist(_hist(last.light), _hist(entry.light), cv2.HISTCMP_BHATTACHARYYA) > self.cut_threshold
        if not cut:
            forward, backward = fl.flow(last.light, entry.light), fl.flow(entry.light, last.light)
            valid = fl.consistent(backward, forward)
            cut = not _explains(backward, valid, entry.light, last.light)
        if cut:
            self.scene += 1
            entry.scene = self.scene
            self.stats.cuts.append(entry.index)
        else:
            last.forward, entry.backward, entry.back_valid = forward, backward, valid

    def flush(self) -> list[np.ndarray]:
        out = []
        while self.next_out < self.stats.frames:
            out.append(self._emit())
        return out

    def _entry(self, index: int) -> _Entry | None:
        offset = index - self.window[0].index
        return self.window[offset] if 0 <= offset < len(self.window) else None

    def _path(self, centre: _Entry, d: int) -> tuple[np.ndarray, np.ndarray, _Entry] | None:
        """Flows centre→neighbour and neighbour→centre through consecutive frames."""
        step = 1 if d > 0 else -1
        to_far: np.ndarray | None = None
        node = centre
        for _ in range(abs(d)):
            edge = node.forward if step > 0 else node.backward
            nxt = self._entry(node.index + step)
            if edge is None or nxt is None or nxt.scene != centre.scene:
                return None
            to_far = edge if to_far is None else fl.compose(to_far, edge)
            node = nxt
        far = node
        to_near: np.ndarray | None = None
        for _ in range(abs(d)):
            edge = node.backward if step > 0 else node.forward
            to_near = edge if to_near is None else fl.compose(to_near, edge)
            node = self._entry(node.index - step)
        return to_far, to_near, far

    def _correction(self, centre: _Entry) -> np.ndarray:
        total = centre.chroma.copy()
        weight = np.ones(centre.chroma.shape[:2], np.float32)
        for d, w in self.weights.items():
            path = self._path(centre, d)
            if path is None:
                continue
            to_far, to_near, far = path
            valid = centre.back_valid if d == -1 else fl.consistent(to_far, to_near)
            warped = fl.warp(far.chroma, to_far)
            delta = warped - centre.chroma
            agree = np.exp(-(delta[..., 0] ** 2 + delta[..., 1] ** 2) / (2 * self.tolerance ** 2))
            wmap = (w * agree * valid).astype(np.float32)
            total += warped * wmap[..., None]
            weight += wmap
        return self.strength * (total / weight[..., None] - centre.chroma)

    def _emit(self) -> np.ndarray:
        centre = self._entry(self.next_out)
        correction = self._correction(centre) if self.strength > 0 else None
        frame, small = centre.frame, centre.small
        if correction is not None and np.abs(correction).max() >= 0.5:
            frame, small = _apply(frame, correction), _apply(small, correction)
        self._measure(centre, small)
        self.next_out += 1
        while self.window and self.window[0].index < self.next_out - self.radius:
            self.window.popleft()
        return frame

    def _measure(self, centre: _Entry, small: np.ndarray) -> None:
        """No-reference measures of the output (as media.metrics defines them) at the
        small size, reusing the flows the smoothing already computed."""
        self.stats.colourfulness.append(colourfulness(small))
        previous, self._last_output = self._last_output, (small, centre.scene)
        if previous is None or previous[1] != centre.scene or centre.backward is None:
            return
        mask = centre.back_valid
        if not mask.any():
            return
        warped = fl.warp(previous[0], centre.backward)
        self.stats.warp_errors.append(_masked_error(small, warped, mask, slice(0, 3), cv2.COLOR_RGB2RGBA))
        self.stats.chroma_warp_errors.append(_masked_error(small, warped, mask, slice(1, 3), cv2.COLOR_RGB2Lab))


def _masked_error(a: np.ndarray, b: np.ndarray, mask: np.ndarray, channels: slice, space: int) -> float:
    x = cv2.cvtColor(a, space)[..., channels].astype(np.float32)
    y = cv2.cvtColor(b, space)[..., channels].astype(np.float32)
    squared = cv2.multiply(x - y, x - y).reshape(-1, x.shape[2]) @ np.ones(x.shape[2], np.float32)
    return float(squared.reshape(mask.shape)[mask].mean()) / 255.0 ** 2


def _apply(frame: np.ndarray, correction: np.ndarray) -> np.ndarray:
    """Add a small-size chroma correction to a full-size frame, luma untouched."""
    h, w = frame.shape[:2]
    luma, cr, cb = cv2.split(cv2.cvtColor(frame, cv2.COLOR_RGB2YCrCb))
    full = cv2.resize(correction, (w, h), interpolation=cv2.INTER_LINEAR)
    cr = cv2.add(cr, full[..., 0], dtype=cv2.CV_8U)  # saturating, rounded
    cb = cv2.add(cb, full[..., 1], dtype=cv2.CV_8U)
    return cv2.cvtColor(cv2.merge([luma, cr, cb]), cv2.COLOR_YCrCb2RGB)
