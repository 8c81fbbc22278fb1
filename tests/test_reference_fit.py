"""A colour reference photo is placed where the film shows what it shows, and nowhere else."""

from __future__ import annotations

import cv2
import numpy as np

from tests.media_factory import painted_pan
from tintype.gpu_workers.keyframe_colour import reference_keys
from tintype.media.color import rgb_to_lab
from tintype.media.reference_fit import ReferenceMatcher, warped_chroma

SHOWN = painted_pan(48, 128, 96, pan=2, seed=3)
OTHER = painted_pan(24, 128, 96, pan=2, seed=9)


def _photo_of(frame: np.ndarray) -> np.ndarray:
    """A photo of part of a frame as someone else took it: cropped, larger, at an angle."""
    crop = cv2.resize(frame[6:90, 8:120], None, fx=2.3, fy=2.3, interpolation=cv2.INTER_CUBIC)
    h, w = crop.shape[:2]
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    tilted = np.float32([[10, 5], [w - 5, 0], [w, h - 8], [0, h]])
    return cv2.warpPerspective(crop, cv2.getPerspectiveTransform(corners, tilted), (w, h))


def test_the_reference_fits_the_frames_that_show_it_best_where_it_was_taken():
    matcher = ReferenceMatcher(_photo_of(SHOWN[30]))
    shown = {t: matcher.fit(SHOWN[t]) for t in range(0, 48, 6)}
    assert shown[30] is not None and shown[30].inliers >= 40
    assert max(shown, key=lambda t: shown[t].inliers if shown[t] else 0) in (24, 30, 36)
    assert all(matcher.fit(frame) is None for frame in OTHER[::6])  # another scene: no fit


def test_the_warped_reference_carries_its_own_colours_onto_the_frame():
    photo = _photo_of(SHOWN[30])
    fit = ReferenceMatcher(photo).fit(SHOWN[30])
    ab, weight = warped_chroma(photo, fit, 128, 96)
    covered = weight > 0.9
    assert 0.3 < covered.mean() < 0.9  # the photo shows only part of the frame
    assert weight[:3, :4].max() < 0.1  # ... and not its corner, which the crop left out
    error = np.hypot(*(ab - rgb_to_lab(SHOWN[30])[..., 1:])[covered].T).mean()
    assert error < 2.0, error  # Lab units; the colours span about ±40


def test_each_shot_that_shows_the_reference_gets_one_key_and_user_shots_keep_theirs():
    shots = [range(0, 48), range(48, 72), range(72, 100)]
    fits = {6: 30, 30: 74, 36: 71, 78: 25, 90: 22}
    assert reference_keys(shots, fits, user=[]) == {30: shots[0], 78: shots[2]}
    assert reference_keys(shots, fits, user=[80]) == {30: shots[0]}  # the user's key steers its shot
