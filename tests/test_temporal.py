"""ChromaSmoother on generated frames: flicker goes, luma stays, cuts and edge cases hold."""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np
import pytest

from tintype.media import metrics
from tintype.media.temporal import ChromaSmoother
from tintype.media.yuv import Yuv420


def texture(height: int, width: int, seed: int, low: int = 40, high: int = 215) -> np.ndarray:
    """Smooth random colour texture (features of ~8 px: trackable by optical flow)."""
    rng = np.random.default_rng(seed)
    small = rng.random((max(2, height // 8), max(2, width // 8), 3)).astype(np.float32)
    big = cv2.GaussianBlur(cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC), (0, 0), 2)
    big = (big - big.min()) / (big.max() - big.min())
    return np.clip(low + (high - low) * big, 0, 255).astype(np.uint8)


def moving(count: int, height: int = 96, width: int = 128, step: int = 2, seed: int = 0,
           tint: tuple[float, float, float] | None = None) -> list[np.ndarray]:
    """A texture panning `step` px per frame; optionally tinted (multiplied per channel)."""
    canvas = texture(height + 8, width + step * count + 8, seed)
    if tint is not None:
        canvas = np.clip(canvas.astype(np.float32) * np.float32(tint), 0, 255).astype(np.uint8)
    return [np.ascontiguousarray(canvas[4:4 + height, 4 + step * t:4 + step * t + width]) for t in range(count)]


def flicker(frames: list[np.ndarray], amplitude: float = 6.0, seed: int = 1) -> list[np.ndarray]:
    """Each frame's chroma (Cr, Cb) shifted by its own random offset: colorizer flicker."""
    rng = np.random.default_rng(seed)
    out = []
    for frame in frames:
        ycc = cv2.cvtColor(frame, cv2.COLOR_RGB2YCrCb).astype(np.float32)
        ycc[..., 1:] += rng.uniform(-amplitude, amplitude, 2).astype(np.float32)
        out.append(cv2.cvtColor(np.clip(ycc + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2RGB))
    return out


STRENGTH = 0.8  # the embedded default of TEMPORAL_STRENGTH


def smooth(frames: list[np.ndarray], **options) -> tuple[list[Yuv420], ChromaSmoother]:
    """RGB frames in, as the pipeline's intermediates hold them (4:2:0); smoothed 4:2:0 out."""
    smoother = ChromaSmoother(**{"strength": STRENGTH, **options})
    out: list[Yuv420] = []
    for frame in frames:
        out += smoother.push(Yuv420.from_rgb(frame))
    return out + smoother.flush(), smoother


def same_planes(a: Yuv420, b: Yuv420) -> bool:
    return all(np.array_equal(x, y) for x, y in ((a.y, b.y), (a.cb, b.cb), (a.cr, b.cr)))


def luma(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2YCrCb)[..., 0].astype(np.int16)


def chroma_means(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2YCrCb)[..., 1:].reshape(-1, 2).mean(axis=0)


def test_flicker_is_reduced_and_luma_is_kept():
    clean = moving(24)
    noisy = flicker(clean)
    out, smoother = smooth(noisy)
    assert len(out) == len(noisy) and smoother.stats.cuts == []
    inputs = [Yuv420.from_rgb(f) for f in noisy]
    before = metrics.chroma_warping_error([f.rgb() for f in inputs], flow_source=clean)
    after = metrics.chroma_warping_error([f.rgb() for f in out], flow_source=clean)
    assert after <= 0.6 * before, (before, after)
    assert all(np.array_equal(a.y, b.y) for a, b in zip(out, inputs))  # luma exactly kept
    assert any(not np.array_equal(a.cr, b.cr) for a, b in zip(out, inputs))


def test_strength_zero_returns_the_input():
    noisy = flicker(moving(10))
    out, _ = smooth(noisy, strength=0.0)
    assert len(out) == len(noisy)
    assert all(same_planes(a, Yuv420.from_rgb(b)) for a, b in zip(out, noisy))


def test_one_frame_comes_back_unchanged():
    frame = flicker(moving(1))[0]
    out, smoother = smooth([frame])
    assert len(out) == 1 and same_planes(out[0], Yuv420.from_rgb(frame))
    assert smoother.stats.frames == 1 and smoother.stats.cuts == []


def test_a_cut_on_every_frame_blends_nothing():
    bands = [10, 130, 40, 200, 70, 170, 20, 110]  # lightness bands that never overlap from frame to frame
    frames = [texture(64, 80, seed, low, low + 30) for seed, low in enumerate(bands)]
    out, smoother = smooth(frames)
    assert len(out) == len(frames)
    assert all(same_planes(a, Yuv420.from_rgb(b)) for a, b in zip(out, frames))
    assert smoother.stats.cuts == list(range(1, len(frames)))


def test_a_static_video_is_unchanged():
    frames = [texture(72, 96, 3)] * 9
    out, smoother = smooth(frames)
    assert len(out) == len(frames) and smoother.stats.cuts == []
    assert all(same_planes(a, Yuv420.from_rgb(frames[0])) for a in out)


def test_colours_never_cross_a_cut():
    red = flicker(moving(8, seed=4, tint=(1.15, 0.35, 0.3)), amplitude=4, seed=5)
    blue = flicker(moving(8, seed=6, tint=(0.3, 0.45, 1.15)), amplitude=4, seed=7)
    frames = red + blue
    out, smoother = smooth(frames)
    assert smoother.stats.cuts == [len(red)]
    for scene, outputs in ((red, out[:len(red)]), (blue, out[len(red):])):
        means = np.array([chroma_means(f) for f in scene])
        low, high = means.min(axis=0) - 1.0, means.max(axis=0) + 1.0
        for frame in outputs:
            got = chroma_means(frame.rgb())
            assert np.all(got >= low) and np.all(got <= high), (got, low, high)
    # and the scenes really are far apart in chroma
    assert abs(chroma_means(red[0])[1] - chroma_means(blue[0])[1]) > 40


class _Watched(deque):
    """A window that records its largest size at every append (inside push)."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def append(self, item) -> None:
        super().append(item)
        self.largest = max(self.largest, len(self))


@pytest.mark.parametrize("radius", [0, 1, 2, 3])
def test_order_count_and_bounded_window(radius):
    frames = flicker(moving(11, step=3))
    smoother = ChromaSmoother(strength=STRENGTH, radius=radius)
    smoother.window = _Watched()
    out = []
    for frame in frames:
        out += smoother.push(Yuv420.from_rgb(frame))
        assert len(smoother.window) <= 2 * radius + 1
    out += smoother.flush()
    assert smoother.window.largest <= 2 * radius + 1
    assert len(out) == len(frames)
    lumas = [luma(f) for f in frames]
    for index, frame in enumerate(out):
        nearest = int(np.argmin([np.abs(luma(frame.rgb()) - y).mean() for y in lumas]))
        assert nearest == index
