"""media.metrics: known values and the right direction for every measure."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from tests.test_temporal import flicker, moving, texture
from tintype.media import metrics, scenecut


def test_psnr_identical_is_infinite_and_constant_offset_is_known():
    image = texture(48, 64, 0)
    assert metrics.psnr(image, image) == math.inf
    shifted = image.astype(np.int16) + 10
    assert metrics.psnr(shifted.astype(np.uint8), image) == pytest.approx(10 * math.log10(255 ** 2 / 100))


def test_ssim_identical_is_one_and_noise_lowers_it():
    image = texture(48, 64, 1)
    assert metrics.ssim(image, image) == pytest.approx(1.0)
    noise = np.random.default_rng(0).normal(0, 20, image.shape)
    noisy = np.clip(image + noise, 0, 255).astype(np.uint8)
    assert metrics.ssim(noisy, image) < 0.9


def test_colourfulness_of_grey_and_saturated_images():
    grey = np.repeat(texture(40, 40, 2)[..., :1], 3, axis=2)
    assert metrics.colourfulness(grey) == pytest.approx(0.0, abs=1e-9)
    vivid = np.zeros((40, 40, 3), np.uint8)
    vivid[:, :20] = (255, 0, 0)
    vivid[:, 20:] = (0, 0, 255)
    assert metrics.colourfulness(vivid) > 50


def test_warping_error_is_zero_when_static_and_positive_with_flicker():
    static = [texture(64, 80, 3)] * 5
    assert metrics.warping_error(static) == pytest.approx(0.0, abs=1e-9)
    assert metrics.chroma_warping_error(static) == pytest.approx(0.0, abs=1e-9)
    clean = moving(6)
    assert metrics.warping_error(flicker(clean), flow_source=clean) > 1e-4
    assert metrics.warping_error([static[0]]) == 0.0  # one frame: no pair


def test_chroma_flicker_is_larger_for_flickering_chroma():
    clean = moving(8)
    steady = metrics.chroma_flicker(clean, flow_source=clean)
    flickering = metrics.chroma_flicker(flicker(clean, amplitude=8), flow_source=clean)
    assert flickering > steady + 1.0


def test_streaming_meters_match_the_sequence_functions():
    clean = moving(7)
    noisy = flicker(clean)
    meter = metrics.TemporalMeter()
    reference = metrics.ReferenceMeter()
    for frame, truth in zip(noisy, clean):
        meter.push(frame, truth)
        reference.push(frame, truth)
    summary = meter.summary()
    assert summary["pairs_measured"] == 6 and summary["scene_cuts"] == []
    assert summary["warping_error"] == pytest.approx(metrics.warping_error(noisy, clean))
    assert summary["chroma_warping_error"] == pytest.approx(metrics.chroma_warping_error(noisy, clean))
    assert summary["chroma_flicker"] == pytest.approx(metrics.chroma_flicker(noisy, clean))
    assert metrics.temporal_measures(noisy, clean)["warping_error"] == pytest.approx(summary["warping_error"])
    paired = reference.summary()
    assert paired["psnr"] == pytest.approx(np.mean([metrics.psnr(a, b) for a, b in zip(noisy, clean)]))
    assert 0 < paired["ssim"] < 1


def test_meters_on_identical_frames_and_scene_cuts():
    reference = metrics.ReferenceMeter()
    frame = texture(32, 32, 5)
    reference.push(frame, frame)
    assert reference.summary()["psnr"] == math.inf and reference.summary()["identical_frames"] == 1
    meter = metrics.TemporalMeter()
    dark, bright = texture(48, 48, 6, 10, 40), texture(48, 48, 7, 180, 220)
    for image in (dark, bright, bright):
        meter.push(image)
    summary = meter.summary()
    assert summary["scene_cuts"] == [1] and summary["pairs_measured"] == 1
    assert summary["warping_error"] == pytest.approx(0.0, abs=1e-9)
    lights = [cv2.cvtColor(i, cv2.COLOR_RGB2Lab)[..., 0] for i in (dark, bright)]
    assert scenecut.is_cut(*lights) and not scenecut.is_cut(lights[1], lights[1])
