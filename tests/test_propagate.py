"""media.propagate: keyframe chroma carried along flow, on media drawn here."""

from __future__ import annotations

import cv2
import numpy as np

from tests.media_factory import textured_frames
from tintype.media import flow as fl
from tintype.media import propagate as pg
from tintype.media.color import merge_lightness_chroma, rgb_to_lab

H, W = 192, 256


def ab_of(frame: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb_to_lab(frame)[..., 1:])


def patch(seed: int, side: int, tint: tuple[float, float, float]) -> np.ndarray:
    """A textured square of a strong colour: trackable, and unlike the background."""
    rng = np.random.default_rng(seed)
    grey = cv2.GaussianBlur(rng.uniform(60, 200, (side, side)).astype(np.float32), (0, 0), 1.2)[..., None]
    return np.clip(grey * np.array(tint, np.float32), 0, 255).astype(np.uint8)


def moving_object(count: int, step: int = 3, start: int = 16, pan: int = 0, side: int = 56,
                  seed: int = 0) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """A red textured square moving right `step` px per frame over a textured background
    (panning `pan` px per frame); returns the frames and the square's (x, y) per frame."""
    background = textured_frames(count, width=W, height=H, pan=pan, seed=seed)
    square = patch(seed + 7, side, (1.4, 0.45, 0.35))
    frames, where = [], []
    for t, frame in enumerate(background):
        frame = frame.copy()
        x, y = start + step * t, 60
        frame[y:y + side, x:x + side] = square
        frames.append(frame)
        where.append((x, y))
    return frames, where


def lights_of(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [fl.lightness_u8(f) for f in frames]


def chroma_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(((a - b) ** 2).sum(axis=-1)).mean())


def test_a_keyframe_colour_rides_a_moving_object():
    frames, where = moving_object(10)
    truth = [ab_of(f) for f in frames]
    result = pg.propagate(lights_of(frames), {0: truth[0]})
    x, y = where[9]
    inside = np.s_[y + 8:y + 48, x + 8:x + 48]
    carried = chroma_error(result.ab[9][inside], truth[9][inside])
    left_behind = chroma_error(truth[0][inside], truth[9][inside])  # the key's colour where it was
    assert carried < 0.3 * left_behind, (carried, left_behind)


def two_shots(count: int = 6) -> list[np.ndarray]:
    first = textured_frames(count, width=W, height=H, pan=1, seed=0)
    second = [np.ascontiguousarray(f[::-1, ::-1, ::-1]) for f in textured_frames(count, width=W, height=H,
                                                                                   pan=1, seed=5)]
    return first + second


def test_no_colour_crosses_a_scene_cut():
    frames = two_shots()
    truth = [ab_of(f) for f in frames]
    fallback = [np.full((H, W, 2), (5.0, -40.0), np.float32) for _ in frames]
    result = pg.propagate(lights_of(frames), {0: truth[0]}, fallback)
    assert result.cuts == [6]
    for t in range(6, 12):  # the second shot: no key reaches it, the fallback as it is
        assert np.array_equal(result.ab[t], fallback[t])
    # the first shot got its key's colour
    assert chroma_error(result.ab[5], truth[5]) < 0.25 * chroma_error(truth[0], truth[5])


def test_two_keyframes_both_contribute_by_distance():
    frames = textured_frames(9, width=W, height=H, pan=1)
    warm, cold = np.full((H, W, 2), (30.0, 0.0), np.float32), np.full((H, W, 2), (-30.0, 0.0), np.float32)
    result = pg.propagate(lights_of(frames), {0: warm, 8: cold})
    a = [float(np.median(ab[8:-8, 8:-8, 0])) for ab in result.ab]
    assert a[1] > 15 and a[7] < -15
    assert abs(a[4]) < 5  # halfway: both weigh the same
    assert a[1] > a[3] > a[5] > a[7]


def test_what_one_key_cannot_see_comes_from_the_other():
    # The square moves away from where it stood on frame 0: the ground it uncovers was
    # hidden on the first key and is seen on the last.
    frames, where = moving_object(16, step=6)
    truth = [ab_of(f) for f in frames]
    lights = lights_of(frames)
    x0, y0 = where[0]
    revealed = np.s_[y0 + 8:y0 + 48, x0 + 8:x0 + 40]  # under the square on frame 0, open by frame 10
    both = pg.propagate(lights, {0: truth[0], 15: truth[15]})
    first_only = pg.propagate(lights, {0: truth[0]})
    t = 12
    with_other = chroma_error(both.ab[t][revealed], truth[t][revealed])
    without = chroma_error(first_only.ab[t][revealed], truth[t][revealed])
    assert with_other < 0.25 * without, (with_other, without)
    # ... and the first key's red square is not smeared over it.
    red = truth[0][where[0][1] + 28, where[0][0] + 28]
    assert np.abs(both.ab[t][revealed] - red).sum(axis=-1).mean() > 20


def test_an_object_the_chain_lost_is_found_again_by_a_direct_flow():
    # A grey bar covers the moving square on frames 3-4: the chain loses it there, and
    # where it comes out the chain points at the ground it hid. A direct flow to the key
    # finds the square again. Anchors and the fill by lightness, which also help, are
    # off, so that only the direct flow is measured (direct_below=0 turns it off).
    import dataclasses

    frames, where = moving_object(9, step=2)
    for t in (3, 4):
        frames[t][40:140, 20:110] = patch(21, 100, (1.0, 1.0, 1.0))[:, :90]
    truth = [ab_of(f) for f in frames]
    lights = lights_of(frames)
    x, y = where[6]
    inside = np.s_[y + 8:y + 48, x + 8:x + 48]
    alone = dataclasses.replace(pg.DEFAULT_OPTIONS, anchor_every=0, fill_bands=1)
    found = pg.propagate(lights, {0: truth[0]}, options=alone)
    lost = pg.propagate(lights, {0: truth[0]}, options=dataclasses.replace(alone, direct_below=0.0))
    with_direct = chroma_error(found.ab[6][inside], truth[6][inside])
    without = chroma_error(lost.ab[6][inside], truth[6][inside])
    assert with_direct < 0.6 * without, (with_direct, without)


def test_the_fill_keeps_to_lightness():
    # A hole no key reaches straddles a bright blue area and a dark red one: filled by
    # lightness, each part takes the colour of its own kind of surface, not a blend of both.
    import dataclasses

    light = np.full((128, 192), 50, np.uint8)
    light[:64] = 200
    ab = np.where((light > 100)[..., None], np.float32((-10, -40)), np.float32((40, 20))).astype(np.float32)
    weight = np.ones((128, 192), np.float32)
    weight[48:80, 80:112] = 0.0
    hole = np.s_[48:80, 80:112]
    filled = pg.blend(ab * weight[..., None], weight, None, pg.DEFAULT_OPTIONS, light)
    assert np.abs(filled[hole] - ab[hole]).max() < 2
    by_place = pg.blend(ab * weight[..., None], weight, None, dataclasses.replace(pg.DEFAULT_OPTIONS, fill_bands=1),
                        light)
    assert np.abs(by_place[hole] - ab[hole]).max() > 20


def test_the_film_keeps_its_own_lightness():
    frames, _ = moving_object(6)
    truth = [ab_of(f) for f in frames]
    result = pg.propagate(lights_of(frames), {0: truth[0]})
    for frame, ab in zip(frames, result.ab):
        light = rgb_to_lab(frame)[..., 0]
        merged = merge_lightness_chroma(light, pg.refine(ab, light, fl.lightness_u8(frame)))
        difference = np.abs(rgb_to_lab(merged)[..., 0] - light)
        assert difference.mean() < 0.5 and np.percentile(difference, 99) < 1.5


def test_refine_brings_working_chroma_to_full_size_along_edges():
    frames, where = moving_object(1)
    light = rgb_to_lab(frames[0])[..., 0]
    big = np.kron(light, np.ones((2, 2), np.float32))
    ab = pg.refine(ab_of(frames[0]), big, light)
    assert ab.shape == (2 * H, 2 * W, 2)


def test_one_keyframe_per_shot():
    frames = two_shots(8)
    keys = pg.choose_keyframes(lights_of(frames))
    assert len(keys) == 2
    assert 0 <= keys[0] < 8 <= keys[1] < 16


def test_a_changing_shot_gets_more_keyframes():
    # A shot whose picture is replaced piece by piece (fast pan over new ground) needs
    # more keys than one where the picture stays.
    steady = pg.choose_keyframes(lights_of(textured_frames(16, width=W, height=H, pan=1)))
    changing = pg.choose_keyframes(lights_of(textured_frames(24, width=W, height=H, pan=12)))
    assert len(steady) == 1 and len(changing) > 1


def test_a_window_with_borders_agrees_with_the_whole_run():
    frames, _ = moving_object(24, step=2, start=4, pan=1)
    truth = [ab_of(f) for f in frames]
    lights = lights_of(frames)
    keys = {0: truth[0], 23: truth[23]}
    whole = pg.propagate(lights, keys)
    begin, end = 8, 16
    borders = dict(pg.shot_chroma(iter(lights), keys, [begin, end - 1]))
    for t in (begin, end - 1):  # the streaming pass is the whole run, frame for frame
        assert np.allclose(borders[t], whole.ab[t], atol=1e-3)
    window = pg.propagate(lights[begin:end], {}, borders={0: borders[begin], end - 1 - begin: borders[end - 1]})
    for t in range(begin + 2, end - 2):
        assert chroma_error(window.ab[t - begin], whole.ab[t]) < 5.0  # Lab units; the flow drifts ~1 a frame here
    # Without its borders the window has no colour at all: the borders carried it.
    bare = pg.propagate(lights[begin:end], {})
    assert chroma_error(bare.ab[4], whole.ab[begin + 4]) > 5.0
