"""The benchmark's quality measures on simple arrays with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.metrics import PSNR_CAP, colourfulness, colourfulness_ratio, psnr, psnr_true_cast, ssim
from tintype.media.color import merge_lightness_chroma, rgb_to_lab


def _photo(seed: int = 0, shape: tuple[int, int] = (64, 80)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    base = np.stack([x * 3, y * 3, (x + y) * 1.5], axis=-1) + rng.normal(0, 5, (*shape, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


def test_psnr_known_values() -> None:
    a = np.zeros((8, 8, 3), np.uint8)
    assert psnr(a, a) == PSNR_CAP
    b = a + 1  # MSE 1
    assert psnr(b, a) == pytest.approx(20 * math.log10(255.0))
    c = np.full((8, 8, 3), 10, np.uint8)  # MSE 100
    assert psnr(c, a) == pytest.approx(20 * math.log10(255.0) - 20.0)
    assert psnr(np.full((8, 8, 3), 255, np.uint8), a) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        psnr(a, np.zeros((8, 9, 3), np.uint8))


def test_ssim_identical_is_one_and_noise_lowers_it() -> None:
    img = _photo()
    assert ssim(img, img) == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    light = np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)
    heavy = np.clip(img + rng.normal(0, 40, img.shape), 0, 255).astype(np.uint8)
    assert 1.0 > ssim(light, img) > ssim(heavy, img) > 0.0
    assert ssim(heavy, img) == pytest.approx(ssim(img, heavy))  # symmetric


def test_colourfulness_zero_for_grey_higher_for_saturated() -> None:
    grey = np.repeat(_photo()[..., :1], 3, axis=2)
    assert colourfulness(grey) == pytest.approx(0.0)
    muted = np.full((16, 16, 3), (140, 120, 110), np.uint8)
    vivid = np.full((16, 16, 3), (230, 30, 20), np.uint8)
    assert 0.0 < colourfulness(muted) < colourfulness(vivid)
    # flat red: rg = 200, yb = 110 -> M = 0.3 * hypot(200, 110)
    assert colourfulness(vivid) == pytest.approx(0.3 * math.hypot(200, 110))
    halves = np.concatenate([np.full((8, 16, 3), (200, 40, 40), np.uint8),
                             np.full((8, 16, 3), (40, 40, 200), np.uint8)])
    assert colourfulness(halves) > colourfulness(np.full((16, 16, 3), (120, 40, 120), np.uint8))


def test_colourfulness_ratio() -> None:
    assert colourfulness_ratio(20.0, 40.0) == pytest.approx(0.5)
    assert colourfulness_ratio(0.0, 0.0) == 1.0
    assert colourfulness_ratio(3.0, 0.0) == math.inf


def test_psnr_true_cast_removes_a_uniform_colour_cast_only() -> None:
    truth = _photo(3)
    lab = rgb_to_lab(truth)
    warm = merge_lightness_chroma(lab[..., 0], lab[..., 1:] + np.float32([6.0, 14.0]))
    assert psnr(warm, truth) < 30 < psnr_true_cast(warm, truth)  # the cast was all that was wrong
    hues = merge_lightness_chroma(lab[..., 0], -lab[..., 1:])  # every hue flipped: not a cast
    assert psnr_true_cast(hues, truth) < 30
