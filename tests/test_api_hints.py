"""Colour hints previews through REST v1 (keyframes and photographs), against the real stack."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from tests.media_factory import encode_frames, grey_film, save_picture, tinted
from tintype.media.color import rgb_to_lab

pytestmark = pytest.mark.integration
FILM = grey_film()
BLUE = (40, 90, 210)


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, "PNG")
    return out.getvalue()


def _strokes(width: int, height: int) -> bytes:
    strokes = np.zeros((height, width, 4), np.uint8)
    strokes[height // 2 - 2:height // 2 + 2, width // 4:width // 2] = (*BLUE, 255)
    return _png(strokes)


def _painted_share(rgb: np.ndarray) -> float:
    """Share of the painted box (rows 30-33, columns 30-45 of 96x64) in the stroke's hue
    (within 15 degrees, chroma above 15): where the picture is too light for so saturated
    a blue the hue stays and the chroma drops, so the hue is what is compared."""
    ab = rgb_to_lab(rgb)[30:34, 30:46, 1:].reshape(-1, 2)
    want = rgb_to_lab(np.array([[BLUE]], np.uint8))[0, 0, 1:]
    cosine = ab @ want / np.maximum(np.linalg.norm(ab, axis=1), 1e-6) / np.linalg.norm(want)
    return float(((cosine > np.cos(np.radians(15))) & (np.linalg.norm(ab, axis=1) > 15)).mean())


def _finished(stack, response) -> dict:
    assert response.status_code == 202, response.text
    job = response.json()
    deadline = time.monotonic() + 240
    while job["status"] not in ("succeeded", "failed", "cancelled") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = stack.http.get(job["links"]["self"], timeout=30).json()
    assert job["status"] == "succeeded", (job, stack.tail())
    return job


@pytest.fixture(scope="module")
def film_job(stack, tmp_path_factory) -> dict:
    film = encode_frames(tmp_path_factory.mktemp("film") / "film.mp4", FILM, lossless=False)
    files = [("file", (film.name, film.read_bytes())), ("keyframes", ("5.png", _png(tinted(FILM[5]))))]
    return _finished(stack, stack.http.post(f"{stack.base}/api/v1/jobs", files=files,
                                            data={"operations": "colorize"}, timeout=120))


def test_keyframe_hints_recolour_the_painted_region_and_store_nothing(stack, film_job):
    url = f"{film_job['links']['self']}/keyframes/5/hints"
    keyframe = np.asarray(Image.open(io.BytesIO(stack.http.get(f"{film_job['links']['self']}/keyframes/5",
                                                                timeout=10).content)).convert("RGB"))
    jobs_before, objects_before = stack.db("select count(*) from jobs")[0][0], stack.objects()
    response = stack.http.post(url, files={"strokes": ("strokes.png", _strokes(48, 32))}, timeout=30)  # half size
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "image/png" and response.headers["Cache-Control"] == "no-store"
    hinted = np.asarray(Image.open(io.BytesIO(response.content)))
    assert hinted.shape == keyframe.shape == (64, 96, 3)
    assert _painted_share(hinted) > 0.9 and _painted_share(keyframe) < 0.1  # blue where painted, not before
    before, after = rgb_to_lab(keyframe), rgb_to_lab(hinted)
    assert np.abs(after[..., 0] - before[..., 0]).max() < 1.5  # the keyframe's lightness kept
    assert stack.db("select count(*) from jobs")[0][0] == jobs_before
    assert stack.stray_objects(objects_before, film_job["id"]) == []


BAD = {
    "no strokes": ({}, {}, 400, "missing_strokes"),
    "an unknown field": ({"strokes": ("s.png", _strokes(96, 64))}, {"colour": "blue"}, 400, "unknown_field"),
    "not an image": ({"strokes": ("s.png", b"a note")}, {}, 415, "strokes_not_image"),
    "no alpha": ({"strokes": ("s.png", _png(np.zeros((64, 96, 3), np.uint8)))}, {}, 422, "strokes_without_alpha"),
    "another shape": ({"strokes": ("s.png", _strokes(64, 64))}, {}, 422, "strokes_size_mismatch"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_strokes_are_refused_with_a_json_error(stack, film_job, case):
    files, data, status, code = BAD[case]
    response = stack.http.post(f"{film_job['links']['self']}/keyframes/5/hints", files=files or None, data=data,
                               timeout=30)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_hints_need_a_keyframe_the_owner_and_a_photo_for_the_result(stack, film_job):
    api = film_job["links"]["self"]
    strokes = {"strokes": ("s.png", _strokes(96, 64))}
    missing = stack.http.post(f"{api}/keyframes/7/hints", files=strokes, timeout=30)
    assert missing.status_code == 404 and "no keyframe at frame 7" in missing.json()["error"]["message"]
    other = stack.client(stack.new_key("hints-other"))
    assert other.post(f"{api}/keyframes/5/hints", files=strokes, timeout=30).status_code == 404
    film = stack.http.post(f"{api}/result/hints", files=strokes, timeout=30)
    assert film.status_code == 400 and film.json()["error"]["code"] == "hints_for_video"


def test_result_hints_recolour_a_photograph(stack, tmp_path):
    photo = save_picture(tmp_path / "photo.png", FILM[0])
    job = _finished(stack, stack.submit(photo, operations="colorize"))
    response = stack.http.post(f"{job['links']['self']}/result/hints",
                               files={"strokes": ("s.png", _strokes(96, 64))}, timeout=30)
    assert response.status_code == 200, response.text
    assert _painted_share(np.asarray(Image.open(io.BytesIO(response.content)))) > 0.9
