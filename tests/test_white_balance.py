"""Shades-of-grey white balance used on the colorizer's training photos."""

from __future__ import annotations

import numpy as np
import pytest

from tintype.media.color import rgb_to_lab
from tintype.media.white_balance import LUMINANCE, SRGB_TO_LINEAR, illuminant, linear_to_srgb8, neutralise


def _scene(seed: int = 0) -> np.ndarray:
    """A neutral-on-average scene: grey ramps plus patches of opposite colours."""
    rng = np.random.default_rng(seed)
    img = np.repeat(np.linspace(40, 220, 96, dtype=np.float32)[None, :, None], 64, axis=0).repeat(3, 2)
    img[8:24, 8:40] = (200, 60, 60)
    img[8:24, 56:88] = (60, 200, 200)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _cast(rgb: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    """The same scene under a coloured light (a von Kries change in linear RGB)."""
    return linear_to_srgb8(SRGB_TO_LINEAR[rgb] * np.array(gains))


def _mean_chroma(rgb: np.ndarray) -> np.ndarray:
    return rgb_to_lab(rgb)[..., 1:].reshape(-1, 2).mean(axis=0)


def test_a_warm_cast_is_removed_and_strength_scales_it() -> None:
    scene = _scene()
    warm = _cast(scene, (1.0, 0.85, 0.6))
    assert _mean_chroma(warm)[1] > 10  # clearly yellow
    half, full = neutralise(warm, 0.5), neutralise(warm, 1.0)
    b_warm, b_half, b_full = (abs(_mean_chroma(x)[1]) for x in (warm, half, full))
    assert b_full < 0.25 * b_warm
    assert b_full < b_half < b_warm
    # the neutralised warm photo has the neutral original's colours, not just less colour
    ab_full, ab_scene = rgb_to_lab(full)[..., 1:], rgb_to_lab(neutralise(scene))[..., 1:]
    assert np.abs(ab_full - ab_scene).mean() < 2.0
    assert np.abs(rgb_to_lab(warm)[..., 1:] - ab_scene).mean() > 3 * np.abs(ab_full - ab_scene).mean()


def test_the_estimated_light_follows_the_cast() -> None:
    light = illuminant(_cast(_scene(1), (0.6, 0.8, 1.0)))  # a blue light
    assert light[2] > light[1] > light[0]
    assert light.mean() == pytest.approx(1.0)


def test_grey_keeps_its_luminance_and_strength_zero_is_identity() -> None:
    scene = _cast(_scene(2), (1.0, 0.9, 0.7))
    scene[40:56, 8:40] = 128  # a neutral grey patch in a warm photo
    assert neutralise(scene, 0.0) is scene
    out = neutralise(scene)
    y_in = SRGB_TO_LINEAR[scene[40:56, 8:40]] @ LUMINANCE
    y_out = SRGB_TO_LINEAR[out[40:56, 8:40]] @ LUMINANCE
    assert abs(y_in.mean() - y_out.mean()) < 0.002  # gains without the normalisation: ~4% off
    assert not np.array_equal(out[40:56, 8:40], scene[40:56, 8:40])  # its colour did change


def test_black_and_bad_input() -> None:
    black = np.zeros((8, 8, 3), np.uint8)
    assert np.array_equal(neutralise(black), black)
    with pytest.raises(ValueError):
        illuminant(np.zeros((8, 8), np.uint8))
