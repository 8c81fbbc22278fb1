"""The pool's side of keyframe colour without services: which automatic keys the plan
colours, the borders object, and a chunk window indexed by video frame."""

from __future__ import annotations

import numpy as np

from tests.media_factory import painted_pan
from tintype.gpu_workers import keyframe_colour as kc
from tintype.media.color import rgb_to_lab


def test_user_keyframes_replace_the_automatic_ones_near_them_only():
    shots = [range(0, 1000), range(1000, 1100)]
    auto = [120, 360, 600, 840, 1050]
    needed = kc.automatic_keys_needed(shots, auto, user=[100])
    assert needed == [360, 600, 840, 1050]  # 120 is the user's to colour; the rest is too far from it
    assert kc.automatic_keys_needed(shots, auto, user=[]) == auto
    keys = sorted(needed + [100])
    gaps = [b - a for a, b in zip(keys, keys[1:]) if b < 1000]
    assert max(gaps) <= 2 * kc.MAX_KEY_GAP  # colour never has to travel further than one gap


def test_borders_survive_their_object_and_come_back_by_frame():
    borders = {15: np.full((12, 16, 2), 7.25, np.float32), 16: np.full((12, 16, 2), -30.0, np.float32)}
    back = kc.borders_from_bytes(kc.borders_to_bytes(borders), [16, 31])
    assert list(back) == [16] and np.allclose(back[16], -30.0)


def test_a_window_places_keyframes_and_borders_by_video_frame():
    truth = painted_pan(24, 96, 64, pan=1, seed=5)
    grey = [np.repeat((rgb_to_lab(f)[..., :1] * 2.55).clip(0, 255).astype(np.uint8), 3, 2) for f in truth]
    window = kc.ColourWindow(first=16, keyframes={20: truth[20]})
    out = kc.colour_window(grey[16:24], window)
    error = [float(np.abs(rgb_to_lab(o)[..., 1:] - rgb_to_lab(t)[..., 1:]).mean())
             for o, t in zip(out, truth[16:24])]
    assert error[4] < 2.0  # the keyframe's own frame (video frame 20, the window's fifth)
    assert max(error) < 6.0 and np.argmin(error) == 4
    shifted = kc.colour_window(grey[16:24], kc.ColourWindow(first=12, keyframes={20: truth[20]}))
    assert float(np.abs(rgb_to_lab(shifted[4])[..., 1:] - rgb_to_lab(truth[20])[..., 1:]).mean()) > error[4] + 1
