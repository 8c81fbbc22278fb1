"""A colour reference photo in the keyframe pipeline: placed on the frame of the shot it
fits best, carried through that shot, and kept out of the shots that do not show it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.media_factory import decode, encode_frames, painted_pan, save_picture
from tests.test_reference_fit import _photo_of
from tintype.media.color import rgb_to_lab

pytestmark = pytest.mark.integration
WIDTH, HEIGHT, SHOT = 128, 96, 24
SHOWN = painted_pan(SHOT, WIDTH, HEIGHT, pan=4, seed=3)  # the shot the reference shows
OTHER = painted_pan(SHOT, WIDTH, HEIGHT, pan=4, seed=9)  # another scene after a cut
PHOTO_OF = 14  # the reference photographs what frame 14 shows


def _grey(rgb: np.ndarray) -> np.ndarray:
    return np.repeat(rgb_to_lab(rgb)[..., :1] * 2.55, 3, 2).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def film(tmp_path_factory) -> Path:
    return encode_frames(tmp_path_factory.mktemp("ref-film") / "film.mp4", [_grey(f) for f in SHOWN + OTHER])


def _run(stack, film: Path, tmp: Path, reference: Path | None) -> tuple[dict, np.ndarray]:
    response = stack.submit(film, reference=reference, operations="colorize")
    assert response.status_code == 202, response.text
    job = stack.wait(response.json()["id"], timeout=420)
    assert job["status"] == "succeeded", job
    return job, decode(stack.download(job, tmp / f"{job['id']}.mp4"), WIDTH, HEIGHT)


def _chroma(frames: np.ndarray, shot: range) -> np.ndarray:
    return np.stack([rgb_to_lab(frames[t])[..., 1:] for t in shot])


def test_the_reference_colours_the_shot_it_shows_and_only_that_shot(stack, film, tmp_path):
    photo = save_picture(tmp_path / "uniform.png", _photo_of(SHOWN[PHOTO_OF]))
    with_ref, coloured = _run(stack, film, tmp_path, photo)
    without, plain = _run(stack, film, tmp_path, None)

    placed = [k["frame"] for k in with_ref["keyframes"] if k["source"] == "reference"]
    assert len(placed) == 1 and abs(placed[0] - PHOTO_OF) <= 6, with_ref["keyframes"]
    # Where the photo's subject is in view (the middle of the first shot, away from the
    # edge the pan brings in), the result has the photo's colours, which the model alone
    # does not guess.
    near = range(PHOTO_OF - 4, PHOTO_OF + 5)
    truth = np.stack([rgb_to_lab(SHOWN[t])[..., 1:] for t in near])[:, 16:-16, 30:-20]
    error_with = np.hypot(*np.moveaxis(_chroma(coloured, near)[:, 16:-16, 30:-20] - truth, -1, 0)).mean()
    error_without = np.hypot(*np.moveaxis(_chroma(plain, near)[:, 16:-16, 30:-20] - truth, -1, 0)).mean()
    assert error_with < 6.0 and error_with < 0.5 * error_without, (error_with, error_without)
    # The second shot does not show the photo's subject: it is coloured as without it.
    second = range(SHOT + 2, 2 * SHOT)
    drift = np.hypot(*np.moveaxis(_chroma(coloured, second) - _chroma(plain, second), -1, 0)).mean()
    assert drift < 1.5, drift
    assert all(k["source"] == "auto" for k in with_ref["keyframes"] if k["frame"] >= SHOT)
