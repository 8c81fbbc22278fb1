"""media.metrics.cdc: the TCVC / NTIRE 2023 colour distribution consistency."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tintype.media import metrics


def _frame(value: tuple[int, int, int], height: int = 8, width: int = 8) -> np.ndarray:
    return np.full((height, width, 3), value, np.uint8)


def test_identical_frames_score_zero():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert metrics.cdc([frame] * 6) == 0.0


def test_disjoint_histograms_score_one_bit_on_the_changing_channel():
    # Frames alternate the red channel between 10 and 200: JS = 1 bit for odd steps, 0 for
    # even ones; only one of three channels changes. d = 1 -> 1, d = 2, 4 -> 0.
    frames = [_frame((10 if t % 2 == 0 else 200, 50, 50)) for t in range(6)]
    assert metrics.cdc(frames) == pytest.approx((1.0 / 3) / 3)


def test_half_shifted_histogram_has_the_known_divergence():
    # Half of the pixels move to a new bin: p = (1, 0), q = (1/2, 1/2);
    # JS = 1/2 KL(p||m) + 1/2 KL(q||m) with m = (3/4, 1/4).
    first = _frame((0, 0, 0))
    second = first.copy()
    second[:4, :, 0] = 255
    expected_js = 0.5 * math.log2(1 / 0.75) + 0.5 * (0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25))
    assert metrics.cdc([first, second], steps=(1,)) == pytest.approx(expected_js / 3)
    assert metrics.cdc([first, second]) > 0


def test_symmetric_and_order_free():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 128, (12, 12, 3), dtype=np.uint8)
    b = rng.integers(64, 256, (12, 12, 3), dtype=np.uint8)
    p, q = metrics.channel_histograms(a), metrics.channel_histograms(b)
    assert np.allclose(metrics.js_divergence(p, q), metrics.js_divergence(q, p))
    assert metrics.cdc([a, b]) == pytest.approx(metrics.cdc([b, a]))
    assert 0 < metrics.cdc([a, b]) <= 1


def test_short_videos():
    assert metrics.cdc([]) == 0.0
    assert metrics.cdc([_frame((1, 2, 3))]) == 0.0
