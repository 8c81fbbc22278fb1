"""Temporal smoothing of chroma as frames stream through the reduce step.

Frame-by-frame colorization flickers: the same coat turns brown, then green. For each
frame the smoother brings the chroma of up to `radius` frames before and after onto it
along optical flow (computed on luma), ignores occluded pixels (forward–backward check),
never blends across a scene cut, and down-weights neighbours whose colour disagrees
strongly (a real change, not flicker). Only the chroma planes change; the luma plane is
passed through as it is. The filter is symmetric, so it adds no lag to motion, and it
holds `radius` frames of lookahead: memory is bounded by the window, not the video.

Flow, weights and the correction are computed at a reduced width (flicker is
low-frequency); the correction is added to the 4:2:0 chroma planes, which keep their own
detail. The same flows give the job's no-reference quality measures at no extra cost:
scene cuts are `media.scenecut`'s and the measures `media.metrics`', so `tintype eval
--max-width 256` on the output reads what the job reported.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from tintype.media import flow as fl
from tintype.media import scenecut
from tintype.media.metrics import PairErrors, colourfulness, mean_errors, pair_errors
from tintype.media.yuv import Yuv420, planes_to_rgb


@dataclass
class _Entry:
    index: int
    frame: Yuv420  # full-size planes
    light: np.ndarray  # small 8-bit luma
    chroma: np.ndarray  # small (h, w, 2) float32 Cr, Cb in plane units
    scene: int
    forward: np.ndarray | None = None  # flow to the next frame
    joined: fl.PairFlow | None = None  # flows to and from the previous frame, in one scene

    @property
    def backward(self) -> np.ndarray | None:
        """Flow to the previous frame."""
        return self.joined.to_prev if self.joined is not None else None


@dataclass
class TemporalStats:
    """What the smoother saw: scene cuts and no-reference measures of its output."""

    frames: int = 0
    cuts: list[int] = field(default_factory=list)  # index of the first frame of each new scene
    errors: list[PairErrors] = field(default_factory=list)
    colourfulness: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        """The job's `quality`: means as `media.metrics` takes them, 0 when nothing was
        measured (the API promises numbers)."""
        mean = mean_errors(self.errors)
        return {"frames": self.frames, "scene_cuts": self.cuts,
                "warping_error": round(mean.warping_error, 6) if mean else 0.0,
                "chroma_warping_error": round(mean.chroma_warping_error, 6) if mean else 0.0,
                "colourfulness": round(float(np.mean(self.colourfulness)), 3) if self.colourfulness else 0.0}


class ChromaSmoother:
    """Push `Yuv420` frames in order; smoothed frames come out in order, `radius` frames
    behind, sharing their input's luma plane."""

    def __init__(self, strength: float, radius: int = 3, width: int = 256,
                 cut_threshold: float = scenecut.CUT_THRESHOLD, colour_tolerance: float = 21.0) -> None:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"smoothing strength must be in [0, 1], got {strength}")
        self.strength, self.radius, self.width = strength, max(0, radius), width
        self.cut_threshold, self.tolerance = cut_threshold, colour_tolerance
        self.window: deque[_Entry] = deque()
        self.next_out = 0
        self.scene = 0
        self.stats = TemporalStats()
        self._last_output: tuple[np.ndarray, int] | None = None
        # Flows and consistency masks between frames of the window, by (from, to): the
        # path i→i+2 serves frame i going forward and frame i+2 coming back.
        self._flows: dict[tuple[int, int], np.ndarray] = {}
        self._valid: dict[tuple[int, int], np.ndarray] = {}
        sigma = max(1.0, self.radius / 1.5)
        self.weights = {d: float(np.exp(-(d * d) / (2 * sigma * sigma)))
                        for d in range(-self.radius, self.radius + 1) if d}

    def _small(self, frame: Yuv420) -> tuple[np.ndarray, np.ndarray]:
        width = max(8, min(self.width, frame.width))
        size = (width, max(8, round(frame.height * width / frame.width)))
        light = cv2.resize(frame.y, size, interpolation=cv2.INTER_AREA)
        planes = [cv2.resize(p, size, interpolation=cv2.INTER_AREA) for p in (frame.cr, frame.cb)]
        return light, cv2.merge(planes).astype(np.float32)

    def push(self, frame: Yuv420) -> list[Yuv420]:
        light, chroma = self._small(frame)
        entry = _Entry(self.stats.frames, frame, light, chroma, self.scene)
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
        joined = scenecut.join(last.light, entry.light, self.cut_threshold)
        if joined is None:
            self.scene += 1
            entry.scene = self.scene
            self.stats.cuts.append(entry.index)
        else:
            last.forward, entry.joined = joined.to_next, joined
            self._valid[(entry.index, last.index)] = joined.mask

    def flush(self) -> list[Yuv420]:
        out = []
        while self.next_out < self.stats.frames:
            out.append(self._emit())
        return out

    def _entry(self, index: int) -> _Entry | None:
        offset = index - self.window[0].index
        return self.window[offset] if 0 <= offset < len(self.window) else None

    def _flow(self, start: int, end: int) -> np.ndarray | None:
        """Flow from frame `start` to frame `end` through the frames between, or None
        when a cut or the window's edge is in the way."""
        if (start, end) in self._flows:
            return self._flows[(start, end)]
        step = 1 if end > start else -1
        near, last = self._entry(end - step), self._entry(end)
        if near is None or last is None or near.scene != last.scene:
            return None
        edge = near.forward if step > 0 else near.backward
        if near.index == start:
            return edge
        head = self._flow(start, end - step)
        if head is None:
            return None
        self._flows[(start, end)] = fl.compose(head, edge)
        return self._flows[(start, end)]

    def _consistent(self, start: int, end: int, there: np.ndarray, back: np.ndarray) -> np.ndarray:
        if (start, end) not in self._valid:
            self._valid[(start, end)] = fl.consistent(there, back)
        return self._valid[(start, end)]

    def _correction(self, centre: _Entry) -> np.ndarray:
        total = centre.chroma.copy()
        weight = np.ones(centre.chroma.shape[:2], np.float32)
        for d, w in self.weights.items():
            far = self._entry(centre.index + d)
            there = self._flow(centre.index, centre.index + d) if far is not None else None
            back = self._flow(centre.index + d, centre.index) if there is not None else None
            if back is None:
                continue
            valid = self._consistent(centre.index, far.index, there, back)
            warped = fl.warp(far.chroma, there)
            delta = warped - centre.chroma
            agree = np.exp(-(delta[..., 0] ** 2 + delta[..., 1] ** 2) / (2 * self.tolerance ** 2))
            wmap = (w * agree * valid).astype(np.float32)
            total += warped * wmap[..., None]
            weight += wmap
        return self.strength * (total / weight[..., None] - centre.chroma)

    def _emit(self) -> Yuv420:
        centre = self._entry(self.next_out)
        correction = self._correction(centre) if self.strength > 0 else None
        out, chroma = centre.frame, centre.chroma
        if correction is not None and np.abs(correction).max() >= 0.5:
            out, chroma = out.with_chroma_shift(correction), chroma + correction
        self._measure(centre, planes_to_rgb(centre.light, chroma[..., 0], chroma[..., 1]))
        self.next_out += 1
        self._forget(self.next_out - self.radius)
        return out

    def _forget(self, first: int) -> None:
        """Drop frames, flows and masks that no later output needs."""
        while self.window and self.window[0].index < first:
            self.window.popleft()
        for cache in (self._flows, self._valid):
            for key in [k for k in cache if min(k) < first]:
                del cache[key]

    def _measure(self, centre: _Entry, small: np.ndarray) -> None:
        """No-reference measures of the output (`media.metrics.pair_errors`) at the
        small size, reusing the flows the smoothing already computed."""
        self.stats.colourfulness.append(colourfulness(small))
        previous, self._last_output = self._last_output, (small, centre.scene)
        if previous is None or previous[1] != centre.scene or centre.joined is None:
            return
        errors = pair_errors(previous[0], small, centre.joined)
        if errors is not None:
            self.stats.errors.append(errors)
