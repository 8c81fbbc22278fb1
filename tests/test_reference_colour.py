"""Reference colours: L kept, ab moved towards the reference, region by region, deterministically."""

from __future__ import annotations

import numpy as np
import pytest

from tintype.gpu_workers.reference_colour import transfer_reference
from tintype.media.color import lab_to_rgb, rgb_to_lab


def _lab_image(regions: list[tuple[int, float, float, float]], width: int) -> np.ndarray:
    """Horizontal bands (rows, L, a, b) as uint8 RGB."""
    bands = []
    for rows, light, a, b in regions:
        lab = np.zeros((rows, width, 3), np.float32)
        lab[..., 0], lab[..., 1], lab[..., 2] = light, a, b
        bands.append(lab_to_rgb(lab))
    return np.concatenate(bands, axis=0)


def _greyish(seed: int = 0, shape: tuple[int, int] = (90, 120)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grey = np.clip(rng.normal(120, 30, (*shape, 1)), 0, 255).repeat(3, axis=2)
    tint = np.array([2, 0, -2])  # a faint cast: grey-ish, not exactly grey
    return np.clip(grey + tint, 0, 255).astype(np.uint8)


def _max_light_change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(rgb_to_lab(a)[..., 0] - rgb_to_lab(b)[..., 0]).max())


def test_red_reference_turns_a_greyish_frame_red_keeping_l() -> None:
    frame = _greyish()
    reference = _lab_image([(60, 50.0, 55.0, 35.0)], 80)
    out = transfer_reference([frame], reference)[0]
    assert out.shape == frame.shape and out.dtype == np.uint8
    lab = rgb_to_lab(out)
    assert lab[..., 1].mean() > 20.0 and lab[..., 2].mean() > 10.0
    assert _max_light_change(out, frame) < 1.0  # only the uint8 round trip


def test_two_region_reference_colours_matching_regions() -> None:
    # reference: bright blue sky over dark green ground; target: same layout, grey, other size
    reference = _lab_image([(50, 80.0, -5.0, -40.0), (70, 40.0, -40.0, 30.0)], 100)
    target = _lab_image([(100, 75.0, 0.0, 0.0), (140, 35.0, 0.0, 0.0)], 200)
    out = rgb_to_lab(transfer_reference([target], reference)[0])
    top, bottom = out[10:90], out[110:230]
    assert top[..., 2].mean() < -20.0  # blue
    assert bottom[..., 1].mean() < -20.0 and bottom[..., 2].mean() > 15.0  # green
    assert _max_light_change(lab_to_rgb(out), target) < 1.0


def test_regions_are_matched_by_lightness_not_only_position() -> None:
    # the reference has its bright blue region at the bottom: the bright target region still gets it
    reference = _lab_image([(70, 40.0, -40.0, 30.0), (50, 80.0, -5.0, -40.0)], 100)
    target = _lab_image([(100, 75.0, 0.0, 0.0), (140, 35.0, 0.0, 0.0)], 200)
    out = rgb_to_lab(transfer_reference([target], reference)[0])
    assert out[10:90, ..., 2].mean() < -15.0
    assert out[110:230, ..., 1].mean() < -15.0


def test_strength_blends_and_zero_is_identity() -> None:
    frame = _greyish(1)
    reference = _lab_image([(40, 60.0, -30.0, 50.0)], 40)
    assert np.array_equal(transfer_reference([frame], reference, strength=0.0)[0], frame)
    half = rgb_to_lab(transfer_reference([frame], reference, strength=0.5)[0])[..., 1].mean()
    full = rgb_to_lab(transfer_reference([frame], reference, strength=1.0)[0])[..., 1].mean()
    assert full < half < 0.0
    with pytest.raises(ValueError):
        transfer_reference([frame], reference, strength=1.5)


def test_frames_share_one_grade_and_output_is_deterministic() -> None:
    frames = [_greyish(seed) for seed in range(3)]
    reference = _lab_image([(30, 70.0, 20.0, 40.0), (30, 30.0, 10.0, -30.0)], 60)
    first = transfer_reference(frames, reference)
    again = transfer_reference(frames, reference)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    means = [rgb_to_lab(f)[..., 1:].mean(axis=(0, 1)) for f in first]
    assert np.abs(np.array(means) - means[0]).max() < 3.0  # similar frames, similar colour


def test_edges_do_not_tear() -> None:
    # a sharp step in L: the transferred chroma is smooth along rows within each region
    reference = _lab_image([(50, 80.0, 0.0, -45.0), (50, 30.0, 45.0, 30.0)], 64)
    target = _lab_image([(64, 80.0, 0.0, 0.0), (64, 30.0, 0.0, 0.0)], 300)
    out = rgb_to_lab(transfer_reference([target], reference)[0])
    inner = out[8:56, 8:-8, 1:]
    assert np.abs(np.diff(inner, axis=1)).max() < 1.5


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="reference"):
        transfer_reference([_greyish()], np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="frame 0"):
        transfer_reference([np.zeros((4, 4, 3), np.float32)], _greyish())
    assert transfer_reference([], _greyish()) == []
