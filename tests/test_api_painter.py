"""The mask painter's REST routes on the embedded app (SQLite, local objects, no workers):
a job's frames, the damage and tracking previews, and inpainting again with new masks,
with the bad input each can bring."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.media_factory import (
    encode_frames,
    grey_photo,
    mask_zip,
    moving_square,
    rect_mask,
    save_picture,
    textured_frames,
)

W, H, N = 128, 96, 16
ENV_KEYS = ("DATABASE_URL", "BROKER_URL", "RESULT_BACKEND", "STORAGE_URL", "S3_ENDPOINT_URL")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from tintype.settings import load_settings
    from tintype.web.app import create_app

    environ = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    environ["TINTYPE_DATA_DIR"] = str(tmp_path_factory.mktemp("painter-data"))
    return create_app(load_settings(environ)).test_client()


@pytest.fixture(scope="module")
def film(tmp_path_factory) -> tuple[Path, list[tuple[int, int, int, int]], list[np.ndarray]]:
    frames, boxes = moving_square(textured_frames(N, W, H))
    return encode_frames(tmp_path_factory.mktemp("film") / "square.mp4", frames), boxes, frames


@pytest.fixture(scope="module")
def video_job(client, film) -> str:
    response = client.post("/api/v1/jobs", data={"file": (io.BytesIO(film[0].read_bytes()), "square.mp4"),
                                                 "operations": "colorize"})
    assert response.status_code == 202, response.json
    return response.json["id"]


@pytest.fixture(scope="module")
def photo_job(client, tmp_path_factory) -> str:
    path = save_picture(tmp_path_factory.mktemp("photo") / "print.png", grey_photo(W, H))
    response = client.post("/api/v1/jobs", data={"file": (io.BytesIO(path.read_bytes()), "print.png"),
                                                 "operations": "colorize"})
    assert response.status_code == 202, response.json
    return response.json["id"]


def test_the_frames_of_a_video_job_are_described_and_served_at_a_bounded_size(client, video_job, film):
    space = client.get(f"/api/v1/jobs/{video_job}/frames").json
    assert (space["kind"], space["width"], space["height"], space["frames"]) == ("video", W, H, N)
    response = client.get(space["frame_url"].replace("{n}", "7") + "?format=png")
    assert response.status_code == 200 and response.mimetype == "image/png"
    served = np.asarray(Image.open(io.BytesIO(response.data)).convert("RGB")).astype(int)
    error = [np.abs(served - film[2][t].astype(int)).mean() for t in (6, 7, 8)]
    assert error[1] < 2 and error[1] < 0.5 * min(error[0], error[2]), f"frame 7, not its neighbours: {error}"
    small = client.get(f"/api/v1/jobs/{video_job}/frames/0?size=64")
    assert small.mimetype == "image/jpeg" and Image.open(io.BytesIO(small.data)).size == (64, 48)


@pytest.mark.parametrize(("path", "status", "code"), [
    ("frames/16", 422, "frame_out_of_range"),
    ("frames/0?size=10", 400, "bad_query"),
    ("frames/0?size=big", 400, "bad_query"),
    ("frames/0?size=%C2%B2", 400, "bad_query"),  # "²" is a digit to str.isdigit, not to int()
    ("frames/0?format=gif", 400, "bad_query"),
    ("frames/0/damage?kinds=mould", 400, "bad_query"),
    ("frames/99/damage", 422, "frame_out_of_range"),
])
def test_bad_frame_requests_are_refused_with_json(client, video_job, path, status, code):
    response = client.get(f"/api/v1/jobs/{video_job}/{path}")
    assert response.status_code == status and response.json["error"]["code"] == code, response.json


def test_a_job_that_kept_no_masks_has_no_mask_frames(client, video_job):
    response = client.get(f"/api/v1/jobs/{video_job}/masks/frames/0")
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found", response.json
    assert "kept no masks" in response.json["error"]["message"]


def test_an_unknown_job_has_no_frames(client):
    response = client.get("/api/v1/jobs/0123456789abcdef0123456789abcdef/frames/0")
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"


def test_a_photo_job_has_one_frame_and_scratch_detection(client, photo_job):
    space = client.get(f"/api/v1/jobs/{photo_job}/frames").json
    assert (space["kind"], space["frames"], space["width"], space["height"]) == ("image", 1, W, H)
    assert client.get(f"/api/v1/jobs/{photo_job}/frames/0").status_code == 200
    assert client.get(f"/api/v1/jobs/{photo_job}/frames/1").status_code == 422
    damage = client.get(f"/api/v1/jobs/{photo_job}/frames/0/damage")
    assert damage.status_code == 200 and Image.open(io.BytesIO(damage.data)).size == (W, H)
    refused = client.post(f"/api/v1/jobs/{photo_job}/track-preview", json={"boxes": [[1, 1, 8, 8]]})
    assert refused.status_code == 422 and refused.json["error"]["code"] == "not_a_video"


def test_the_damage_preview_finds_a_line_scratch(client, tmp_path):
    frames = textured_frames(5, W, H)
    for frame in frames:
        frame[:, 61:63] = 250  # a bright vertical scratch through every frame
    source = encode_frames(tmp_path / "scratched.mp4", frames)
    job = client.post("/api/v1/jobs", data={"file": (io.BytesIO(source.read_bytes()), "scratched.mp4"),
                                            "operations": "colorize"}).json["id"]
    response = client.get(f"/api/v1/jobs/{job}/frames/2/damage?kinds=lines")
    assert response.status_code == 200 and response.mimetype == "image/png"
    mask = np.asarray(Image.open(io.BytesIO(response.data))) > 127
    assert mask[:, 60:64].mean() > 0.5, "the scratch is found"
    assert mask[:, :55].mean() < 0.01 and mask[:, 70:].mean() < 0.01, "little else is"
    assert float(response.headers["X-Damage-Share"]) == pytest.approx(mask.mean(), abs=1e-4)


def test_the_track_preview_follows_a_moving_square(client, video_job, film):
    boxes = film[1]
    x, y, w, h = boxes[0]
    still = {"x": 2, "y": 2, "w": 8, "h": 8, "first": 3}
    response = client.post(f"/api/v1/jobs/{video_job}/track-preview",
                           json={"boxes": [{"x": x, "y": y, "w": w, "h": h, "track": True}, still]})
    assert response.status_code == 200, response.json
    shown = response.json["frames"]
    assert shown and shown[-1]["frame"] == N - 1
    for item in shown:
        followed, kept = item["boxes"]
        tx, ty, tw, th = boxes[item["frame"]]
        assert abs(followed["x"] - tx) <= 3 and abs(followed["y"] - ty) <= 3, (item, boxes[item["frame"]])
        assert kept == ({k: still[k] for k in "xywh"} if item["frame"] >= 3 else None), "an unfollowed box stays"


@pytest.mark.parametrize(("body", "status", "code"), [
    ("not json", 400, "bad_boxes"),
    ({"boxes": "[]"}, 400, "bad_boxes"),
    ({"boxes": [{"x": 1, "y": 1, "w": 8, "h": 8, "track": "yes"}]}, 400, "bad_boxes"),
    ({"boxes": [{"x": 120, "y": 1, "w": 20, "h": 8}]}, 422, "bad_boxes"),
    ({"boxes": [{"x": 1, "y": 1, "w": 8, "h": 8, "first": N}]}, 422, "bad_boxes"),
])
def test_bad_track_previews_are_refused(client, video_job, body, status, code):
    response = client.post(f"/api/v1/jobs/{video_job}/track-preview", data=body if isinstance(body, str) else None,
                           json=None if isinstance(body, str) else body)
    assert response.status_code == status and response.json["error"]["code"] == code, response.json


def test_inpaint_again_makes_a_new_job_with_the_new_masks(client, video_job, tmp_path):
    masks = [np.zeros((H, W), bool) for _ in range(N)]
    masks[4][10:20, 30:40] = True
    boxes = [{"x": 5, "y": 6, "w": 10, "h": 12, "first": 2, "track": True}]
    response = client.post(f"/api/v1/jobs/{video_job}/inpaint",
                           data={"masks": (io.BytesIO(mask_zip(tmp_path / "m.zip", masks).read_bytes()), "m.zip"),
                                 "boxes": json.dumps(boxes), "mask_dilation": "1"})
    assert response.status_code == 202, response.json
    job = response.json
    assert job["id"] != video_job and job["operations"] == ["inpaint", "colorize"]
    assert job["options"]["boxes"] == [{"x": 5, "y": 6, "w": 10, "h": 12, "first": 2, "track": 1}]
    assert job["options"]["mask_dilation"] == 1
    assert job["input"]["sha256"] == client.get(f"/api/v1/jobs/{video_job}").json["input"]["sha256"]
    assert any(video_job in note for note in job["notes"])


@pytest.mark.parametrize(("data", "status", "code"), [
    ({}, 400, "mask_required"),
    ({"saturation": "1.2", "boxes": "[[1,1,4,4]]"}, 400, "not_a_mask_option"),
    ({"boxes": "[[120,1,40,4]]"}, 422, "bad_boxes"),
    ({"mask": "small"}, 422, "mask_size_mismatch"),
    ({"masks": "few"}, 422, "mask_count_mismatch"),
    ({"keyframes": "x"}, 400, "unknown_field"),
])
def test_bad_inpaint_again_requests_keep_nothing(client, video_job, tmp_path, data, status, code):
    before = client.get("/api/v1/jobs?per_page=100").json["total"]
    form = dict(data)
    if form.get("mask") == "small":
        form["mask"] = (io.BytesIO(rect_mask(tmp_path / "m.png", 64, 48, (1, 1, 9, 9)).read_bytes()), "m.png")
    if form.get("masks") == "few":
        few = [np.ones((H, W), bool) & (np.arange(W) < 9) for _ in range(3)]
        form["masks"] = (io.BytesIO(mask_zip(tmp_path / "few.zip", few).read_bytes()), "few.zip")
    if form.get("keyframes") == "x":
        form["keyframes"] = (io.BytesIO(b"x"), "0.png")
    response = client.post(f"/api/v1/jobs/{video_job}/inpaint", data=form)
    assert response.status_code == status and response.json["error"]["code"] == code, response.json
    assert client.get("/api/v1/jobs?per_page=100").json["total"] == before


def test_the_openapi_document_lists_the_painter_routes(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in ("/frames", "/frames/{n}", "/frames/{n}/damage", "/track-preview", "/inpaint"):
        assert f"/api/v1/jobs/{{job_id}}{path}" in paths
    for path in ("/frames", "/frames/{n}", "/frames/{n}/damage", "/track-preview"):
        assert f"/api/v1/uploads/{{upload_id}}{path}" in paths


def _staged(client, data: bytes, filename: str, content_type: str) -> str:
    """A completed staged upload of `data` (POST /uploads, its parts, complete)."""
    created = client.post("/api/v1/uploads", json={"filename": filename, "size": len(data),
                                                  "content_type": content_type})
    assert created.status_code == 201, created.json
    for part in created.json["part_urls"]:
        start = (part["number"] - 1) * created.json["part_size"]
        assert client.put(part["url"], data=data[start:start + part["size"]]).status_code == 204
    done = client.post(f"/api/v1/uploads/{created.json['id']}/complete")
    assert done.status_code == 200, done.json
    return created.json["id"]


def test_a_staged_video_upload_is_painted_on_before_any_job(client, film):
    upload = _staged(client, film[0].read_bytes(), "square.mp4", "video/mp4")
    space = client.get(f"/api/v1/uploads/{upload}/frames").json
    assert (space["kind"], space["width"], space["height"], space["frames"]) == ("video", W, H, N)
    served = client.get(space["frame_url"].replace("{n}", "9") + "?format=png")
    assert served.status_code == 200
    rgb = np.asarray(Image.open(io.BytesIO(served.data)).convert("RGB")).astype(int)
    assert np.abs(rgb - film[2][9].astype(int)).mean() < 2
    assert client.get(f"/api/v1/uploads/{upload}/frames/{N}").status_code == 422
    assert client.get(f"/api/v1/uploads/{upload}/frames/3/damage").status_code == 200
    x, y, w, h = film[1][0]
    preview = client.post(f"/api/v1/uploads/{upload}/track-preview",
                          json={"boxes": [{"x": x, "y": y, "w": w, "h": h, "track": True}]})
    assert preview.status_code == 200 and abs(preview.json["frames"][-1]["boxes"][0]["x"] - film[1][-1][0]) <= 3


def test_an_unknown_or_open_upload_has_no_frames(client):
    assert client.get("/api/v1/uploads/0123456789abcdef0123456789abcdef/frames").status_code == 404
    opened = client.post("/api/v1/uploads", json={"filename": "a.mp4", "size": 10, "content_type": "video/mp4"})
    response = client.get(f"/api/v1/uploads/{opened.json['id']}/frames/0")
    assert response.status_code == 404 and response.json["error"]["code"] == "upload_not_found"


def test_inpaint_again_over_the_quota_is_refused_before_the_film_is_copied(client, video_job, monkeypatch):
    import dataclasses

    app = client.application
    settings = app.extensions["tintype.settings"]
    monkeypatch.setitem(app.extensions, "tintype.settings", dataclasses.replace(settings, quota_bytes_per_day=1))
    store, copied = app.extensions["tintype.store"], []
    monkeypatch.setattr(store, "copy", lambda *args: copied.append(args))
    response = client.post(f"/api/v1/jobs/{video_job}/inpaint", data={"boxes": "[[1,1,4,4]]"})
    assert response.status_code == 429 and response.json["error"]["code"] == "quota_bytes_per_day"
    assert response.headers["Retry-After"] and copied == []


def test_the_probe_cache_survives_another_thread_evicting_a_film(monkeypatch):
    from tintype.web import painter_api

    class EvictedAfterEachLookup(dict):
        """Another request's thread evicts the entry right after this one looked it up."""

        def __contains__(self, key):
            found = super().__contains__(key)
            super().pop(key, None)
            return found

        def get(self, key, default=None):
            found = super().get(key, default)
            super().pop(key, None)
            return found

    facts = object()
    monkeypatch.setattr(painter_api, "_PROBED", EvictedAfterEachLookup({"uploads/a/object": facts}))
    assert painter_api._probed("unused", "uploads/a/object") is facts


def test_a_track_preview_lists_only_its_window_of_a_long_film():
    from types import SimpleNamespace

    from tintype.media.box_tracks import tracked_boxes

    film = SimpleNamespace(width=W, height=H, frames=500_000)  # a feature film's frames
    box = {"x": 1, "y": 2, "w": 8, "h": 8, "first": 400_000, "last": 400_009}  # not followed: nothing decoded
    per_frame, notes = tracked_boxes("unused", film, [box], track_all=False, window=range(400_000, 400_010))
    assert len(per_frame) == 10 and per_frame[9] == [{"x": 1, "y": 2, "w": 8, "h": 8}] and notes == []


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_photo_frame_is_made_small_before_it_is_converted_and_turned_upright(tmp_path, monkeypatch, suffix):
    from tintype.media import frame_at

    picture = np.zeros((1200, 1600, 3), np.uint8)
    picture[:300, :400] = 255  # a white top-left corner
    path = tmp_path / f"wide{suffix}"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored on its side: upright it is 1200 wide, 1600 high, the corner top right
    Image.fromarray(picture).save(path, exif=exif)
    converted, convert = [], Image.Image.convert
    monkeypatch.setattr(Image.Image, "convert",
                        lambda img, *a, **k: converted.append(img.size) or convert(img, *a, **k))
    source = frame_at.Source(str(path), "image", 1200, 1600, 1)
    [rgb] = frame_at.frames_at(source, 0, 1, 160)
    assert rgb.shape == (160, 120, 3) and rgb[:20, -15:].mean() > 200 and rgb[-20:, :15].mean() < 50
    assert converted and max(w * h for w, h in converted) <= 400 * 300, converted  # never at full size


def test_the_track_preview_span_is_a_setting(client, video_job, film, monkeypatch):
    import dataclasses

    app = client.application
    settings = app.extensions["tintype.settings"]
    monkeypatch.setitem(app.extensions, "tintype.settings", dataclasses.replace(settings, track_preview_frames=5))
    x, y, w, h = film[1][2]
    response = client.post(f"/api/v1/jobs/{video_job}/track-preview",
                           json={"boxes": [{"x": x, "y": y, "w": w, "h": h, "first": 2, "track": True}]})
    assert response.status_code == 200 and response.json["frames"][-1]["frame"] == 6  # frames 2..6
