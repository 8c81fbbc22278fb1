"""Keyframes and recolouring through REST v1, against real Redis, PostgreSQL, S3 and workers."""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from tests.media_factory import encode_frames, grey_film, rect_mask, save_picture, tinted
from tintype.jobs.keyframes import MAX_KEYFRAMES

pytestmark = pytest.mark.integration
FILM = grey_film()


@pytest.fixture(scope="module")
def film(tmp_path_factory) -> Path:
    return encode_frames(tmp_path_factory.mktemp("film") / "film.mp4", FILM, lossless=False)


def _picture(frame_index: int, fmt: str = "PNG", size: tuple[int, int] | None = None) -> bytes:
    image = Image.fromarray(tinted(FILM[frame_index]))
    if size:
        image = image.resize(size)
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def _post(stack, path: Path, keyframes: list[tuple[str, bytes]], client=None, **form):
    files = [("file", (path.name, path.read_bytes()))] + [("keyframes", (name, data)) for name, data in keyframes]
    return (client or stack.http).post(f"{stack.base}/api/v1/jobs", files=files,
                                       data={"operations": "colorize", **form}, timeout=120)


def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def _greyscale() -> bytes:
    out = io.BytesIO()
    Image.fromarray(FILM[5]).save(out, "PNG")
    return out.getvalue()


REFUSALS = {
    "past the end": ([("24.png", _picture(5))], {}, 422, "keyframe_out_of_range", "keyframe 24"),
    "two for one frame": ([("5.png", _picture(5)), ("0005.jpg", _picture(5, "JPEG"))], {}, 400,
                          "duplicate_keyframe", "frame 5"),
    "not an image": ([("5.png", b"a note, not a picture")], {}, 415, "keyframe_not_image", "keyframe 5"),
    "greyscale": ([("5.png", _greyscale())], {}, 422, "keyframe_greyscale", "keyframe 5"),
    "another frame's picture": ([("5.png", _picture(9))], {}, 422, "keyframe_mismatch", "keyframe 5"),
    "without colorize": ([("5.png", _picture(5))], {"operations": "inpaint", "detect_damage": "dust"}, 400,
                         "keyframes_without_colorize", "colorize"),
    "too many": ([("many.zip", _zip({f"{n}.png": b"x" for n in range(MAX_KEYFRAMES + 1)}))], {}, 400,
                 "too_many_keyframes", str(MAX_KEYFRAMES)),
    "badly named": ([("frame5.png", _picture(5))], {}, 400, "bad_keyframe_name", "frame5.png"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_bad_keyframes_are_refused_and_nothing_is_stored(stack, film, case):
    keyframes, form, status, code, words = REFUSALS[case]
    jobs_before, objects_before = stack.db("select count(*) from jobs")[0][0], stack.objects()
    response = _post(stack, film, keyframes, **form)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and words in error["message"]
    assert stack.db("select count(*) from jobs")[0][0] == jobs_before
    assert stack.stray_objects(objects_before) == []


def test_keyframes_on_a_photograph_are_refused(stack, tmp_path):
    photo = save_picture(tmp_path / "photo.png", FILM[0])
    before = stack.objects()
    response = _post(stack, photo, [("0.png", _picture(0))])
    assert response.status_code == 400 and response.json()["error"]["code"] == "keyframes_for_image"
    assert "reference" in response.json()["error"]["message"] and stack.stray_objects(before) == []


def _succeeded(stack, response, client=None) -> dict:
    """Wait for the job as its owner sees it."""
    assert response.status_code == 202, response.text
    deadline, job = time.monotonic() + 240, response.json()
    while job["status"] not in ("succeeded", "failed", "cancelled") and time.monotonic() < deadline:
        time.sleep(0.5)
        stack.check_alive()
        job = (client or stack.http).get(job["links"]["self"], timeout=30).json()
    assert job["status"] == "succeeded", (job, stack.tail())
    return job


def test_keyframes_are_stored_listed_served_and_hidden_from_others(stack, film):
    response = _post(stack, film, [("000012.jpg", _picture(12, "JPEG", size=(48, 32))), ("3.png", _picture(3))])
    job = _succeeded(stack, response)  # the pipeline does not use keyframes yet; they must not break it
    job_id = job["id"]
    assert job["keyframes"] == [{"frame": 3, "source": "user"}, {"frame": 12, "source": "user"}]
    assert job["recolour_of"] is None and [n for n in job["notes"] if "provenance" not in n] == []
    stored = stack.objects(job_id)
    for name in ("keyframes/000003.png", "keyframes/000003.jpg", "keyframes/000012.png", "keyframes/000012.jpg",
                 "timestamps.json"):
        assert f"jobs/{job_id}/{name}" in stored
    listed = stack.http.get(job["links"]["keyframes"], timeout=10).json()["items"]
    assert [(k["frame"], k["source"]) for k in listed] == [(3, "user"), (12, "user")]
    png = stack.http.get(listed[1]["url"], timeout=10)
    assert png.status_code == 200
    with Image.open(io.BytesIO(png.content)) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGB", (96, 64))  # scaled to the frame
    for url in (listed[1]["thumbnail_url"], listed[1]["url"] + "?thumbnail=1"):
        with Image.open(io.BytesIO(stack.http.get(url, timeout=10).content)) as thumb:
            assert thumb.format == "JPEG"
    missing = stack.http.get(f"{stack.base}/api/v1/jobs/{job_id}/keyframes/7", timeout=10)
    assert missing.status_code == 404 and "no keyframe at frame 7" in missing.json()["error"]["message"]

    other = stack.client(stack.new_key("kf-other"))
    api = f"{stack.base}/api/v1/jobs/{job_id}"
    for url in (f"{api}/keyframes", f"{api}/keyframes/12", f"{api}/keyframes/12/thumbnail"):
        assert other.get(url, timeout=10, allow_redirects=False).status_code == 404, url
    assert other.post(f"{api}/recolour", timeout=10).status_code == 404
    assert stack.db("select count(*) from jobs where owner = 'kf-other'")[0][0] == 0


def test_a_loose_match_is_accepted_with_a_note(stack, film):
    response = _post(stack, film, [("20.png", _picture(21))])  # the next frame's picture: one frame off
    assert response.status_code == 202, response.text
    [note] = response.json()["notes"]
    assert note.startswith("keyframe 20 matches its frame only loosely")


def test_recolour_reuses_the_input_and_only_colorizes(stack, film):
    parent = _succeeded(stack, _post(stack, film, [], saturation="0.5", temporal_strength="0.3"))
    response = stack.http.post(f"{parent['links']['self']}/recolour", files=[("keyframes", ("6.png", _picture(6)))],
                               data={"saturation": "1.5"}, timeout=120)
    assert response.status_code == 202, response.text
    assert response.headers["Location"].endswith(f"/api/v1/jobs/{response.json()['id']}")
    child = stack.wait(response.json()["id"])
    assert child["status"] == "succeeded", (child, stack.tail())
    assert child["operations"] == ["colorize"] and child["recolour_of"] == parent["id"]
    assert child["options"]["saturation"] == 1.5 and child["options"]["temporal_strength"] == 0.3  # others kept
    assert child["keyframes"] == [{"frame": 6, "source": "user"}]
    assert child["input"]["sha256"] == parent["input"]["sha256"] and child["input"]["facts"] == parent["input"]["facts"]
    assert {f"jobs/{child['id']}/input", f"jobs/{child['id']}/timestamps.json",
            f"jobs/{child['id']}/keyframes/000006.png"} <= set(stack.objects(child["id"]))

    refused = stack.http.post(f"{parent['links']['self']}/recolour", data={"inpaint_model": "telea"}, timeout=30)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "not_a_colour_option"
    bad = stack.http.post(f"{parent['links']['self']}/recolour", files=[("keyframes", ("6.png", _picture(12)))],
                          timeout=60)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "keyframe_mismatch"


def test_recolour_of_an_inpainted_job_colours_its_result(stack, film, tmp_path):
    mask = rect_mask(tmp_path / "mask.png", 96, 64, (40, 20, 52, 30))
    parent = _succeeded(stack, stack.submit(film, mask=mask, operations="inpaint"))
    result = stack.download(parent, tmp_path / "inpainted.mp4")
    response = stack.http.post(f"{parent['links']['self']}/recolour", timeout=120)
    child = _succeeded(stack, response)
    assert child["operations"] == ["colorize"] and child["recolour_of"] == parent["id"]
    assert child["input"]["sha256"] == hashlib.sha256(result.read_bytes()).hexdigest()  # the inpainted film
    assert child["input"]["facts"]["frames"] == 24 and not child["input"]["has_mask"]


def test_recolour_needs_a_succeeded_parent_and_counts_against_quotas(stack, film):
    running = _post(stack, film, [])
    assert running.status_code == 202
    cancelled = stack.http.delete(running.json()["links"]["self"], timeout=10)
    if cancelled.status_code == 200:  # the cancel won the race, as it nearly always does (a finished job: 204)
        ended = cancelled.json()
        refused = stack.http.post(f"{ended['links']['self']}/recolour", timeout=30)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "parent_not_succeeded"

    size = film.stat().st_size
    frugal = stack.client(stack.new_key("kf-frugal", "--bytes-per-day", str(size + size // 2)))
    parent = _succeeded(stack, _post(stack, film, [], client=frugal), frugal)
    over = frugal.post(f"{parent['links']['self']}/recolour", timeout=30)
    assert over.status_code == 429 and over.json()["error"]["code"] == "quota_bytes_per_day"
    assert stack.db("select count(*) from jobs where owner = 'kf-frugal'")[0][0] == 1


def test_recolour_keeps_the_parents_keyframes_unless_replaced_or_dropped(stack, film):
    parent = _succeeded(stack, _post(stack, film, [("3.png", _picture(3)), ("12.png", _picture(12))]))
    recolour = f"{parent['links']['self']}/recolour"
    added = _succeeded(stack, stack.http.post(recolour, files=[("keyframes", ("6.png", _picture(6)))], timeout=120))
    assert [k["frame"] for k in added["keyframes"]] == [3, 6, 12]
    assert {f"jobs/{added['id']}/keyframes/{name}" for name in ("000003.png", "000003.jpg", "000012.png")} \
        <= set(stack.objects(added["id"]))

    replaced = _succeeded(stack, stack.http.post(recolour, files=[("keyframes", ("12.png", _picture(12)))],
                                                 data={"drop_keyframes": "3"}, timeout=120))
    assert replaced["keyframes"] == [{"frame": 12, "source": "user"}]

    jobs_before, objects_before = stack.db("select count(*) from jobs")[0][0], stack.objects()
    for drop in ("7", "3,x"):
        refused = stack.http.post(recolour, data={"drop_keyframes": drop}, timeout=30)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "bad_drop_keyframes", refused.text
    assert "not keyframes of job" in stack.http.post(recolour, data={"drop_keyframes": "7"}, timeout=30).text
    assert stack.db("select count(*) from jobs")[0][0] == jobs_before
    assert stack.stray_objects(objects_before, parent["id"], added["id"], replaced["id"]) == []
