"""media.scenecut: one cut test, and the smoother and the metrics agree on it."""

from __future__ import annotations

import numpy as np

from tests.test_temporal import smooth, texture
from tintype.media import flow as fl
from tintype.media import metrics, scenecut


def panning(count: int, seed: int, height: int = 96, width: int = 128, step: int = 2) -> list[np.ndarray]:
    """A high-contrast texture panning `step` px per frame."""
    canvas = texture(height, width + step * count, seed, 0, 255)
    return [np.ascontiguousarray(canvas[:, step * t:step * t + width]) for t in range(count)]


def hidden_cut(count: int = 6) -> list[np.ndarray]:
    """Two shots with the same lightness histogram: the second is the first turned 180°."""
    shot = panning(count, seed=0)
    return shot + [np.ascontiguousarray(f[::-1, ::-1]) for f in shot]


def test_a_pan_is_one_shot_and_unrelated_frames_are_a_cut():
    frames = panning(2, seed=0)
    lights = [fl.lightness_u8(f) for f in frames]
    pair = scenecut.join(*lights)
    assert pair is not None and pair.mask.mean() > 0.9
    other = fl.lightness_u8(texture(96, 128, 1, 0, 255))
    assert scenecut.is_cut(lights[0], other)


def test_a_cut_the_histograms_miss_is_found_by_motion():
    frames = hidden_cut()
    before, after = fl.lightness_u8(frames[5]), fl.lightness_u8(frames[6])
    assert not scenecut.histograms_differ(before, after)
    assert scenecut.is_cut(before, after)


def test_smoother_and_meter_find_the_same_cuts():
    frames = hidden_cut()
    _, smoother = smooth(frames)
    meter = metrics.TemporalMeter()
    for frame in frames:
        meter.push(frame)
    assert smoother.stats.cuts == meter.cuts == [6]
    assert meter.summary()["pairs_measured"] == len(frames) - 2
