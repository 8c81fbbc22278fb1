"""Inpainting jobs through REST v1 (real Redis, PostgreSQL, S3, Celery): every mask
source, the masks the job keeps, and the bad input each source can bring."""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.media_factory import (
    cracked_print,
    decode,
    encode_frames,
    mask_zip,
    moving_square,
    rect_mask,
    textured_frames,
)

pytestmark = pytest.mark.integration
W, H = 128, 96
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def used_masks(stack, job: dict, tmp_path: Path) -> np.ndarray:
    """The masks the job kept, as (N, H, W) bool, decoded with ffmpeg."""
    response = stack.http.get(job["masks"]["url"], timeout=30)
    assert response.status_code == 200
    path = tmp_path / "used.mkv"
    path.write_bytes(response.content)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, H, W) > 127


def inside(box: tuple[int, int, int, int], margin: int = 0) -> tuple[slice, slice]:
    x, y, w, h = box
    return slice(y + margin, y + h - margin), slice(x + margin, x + w - margin)


def test_per_frame_masks_remove_a_moving_object_and_are_kept(stack, tmp_path):
    background = textured_frames(24, W, H, pan=1)
    frames, boxes = moving_square(background)
    source = encode_frames(tmp_path / "square.mp4", frames)
    masks = []
    for box in boxes:
        mask = np.zeros((H, W), bool)
        mask[inside(box)] = True
        masks.append(mask)
    response = stack.submit(source, masks=mask_zip(tmp_path / "masks.zip", masks), operations="inpaint",
                            mask_dilation="2")
    assert response.status_code == 202, response.text
    job = stack.wait(response.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["progress"]["total"] == 2  # two chunks: the fill crosses a chunk border

    out = decode(stack.download(job, tmp_path / "out.mp4"), W, H).astype(np.float32) @ LUMA
    truth = np.stack(background).astype(np.float32) @ LUMA
    given = np.stack(frames).astype(np.float32) @ LUMA
    hole_error = np.mean([np.abs(out[t][inside(b, 2)] - truth[t][inside(b, 2)]).mean() for t, b in enumerate(boxes)])
    square_error = np.mean([np.abs(given[t][inside(b, 2)] - truth[t][inside(b, 2)]).mean()
                            for t, b in enumerate(boxes)])
    assert hole_error < 0.25 * square_error, (hole_error, square_error)  # the square is gone
    far = np.ones((H, W), bool)
    far[20:60, :] = False
    assert np.abs(out - given)[:, far].mean() < 2.5  # the rest is untouched (up to H.264)

    kept = used_masks(stack, job, tmp_path)
    assert kept.shape == (24, H, W)
    for t, box in enumerate(boxes):
        assert kept[t][inside(box)].all()  # every masked pixel, grown by the dilation
        assert kept[t].sum() < (box[2] + 6) * (box[3] + 6)
    poster = stack.http.get(job["masks"]["poster_url"], timeout=10)
    assert poster.status_code == 200 and Image.open(io.BytesIO(poster.content)).size == (W, H)
    assert f"jobs/{job['id']}/masks.mkv" in stack.objects(job["id"])
    assert not [k for k in stack.objects(job["id"]) if "/work/" in k]

    # Any frame's mask as a PNG, decoded server-side for the compare view.
    for t in (3, 20):  # the square has moved between them
        response = stack.http.get(f"{job['links']['self']}/masks/frames/{t}", timeout=30)
        assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
        assert "max-age" in response.headers["Cache-Control"]
        assert ((np.asarray(Image.open(io.BytesIO(response.content)).convert("L")) > 127) == kept[t]).all(), t
    small = stack.http.get(f"{job['links']['self']}/masks/frames/20?size=64", timeout=30)
    assert Image.open(io.BytesIO(small.content)).size == (64, 48)
    for query, status in (("24", 422), ("0?size=10", 400)):
        refused = stack.http.get(f"{job['links']['self']}/masks/frames/{query}", timeout=30)
        assert refused.status_code == status and refused.json()["error"], refused.text


def test_a_tracked_box_follows_the_object_and_the_job_says_where_it_was_lost(stack, tmp_path):
    frames, boxes = moving_square(textured_frames(30, W, H, pan=0, seed=3), step=2, until=20)
    source = encode_frames(tmp_path / "track.mp4", frames)
    x, y, w, h = boxes[0]
    response = stack.submit(source, operations="inpaint,colorize", track_boxes="1", mask_dilation="0",
                            boxes=f'[{{"x": {x - 2}, "y": {y - 2}, "w": {w + 4}, "h": {h + 4}}}]')
    assert response.status_code == 202, response.text
    job = stack.wait(response.json()["id"])
    assert job["status"] == "succeeded", job
    assert "track" in job["timings"] and job["operations"] == ["inpaint", "colorize"]
    assert job["quality"]["temporal_strength"] > 0  # colorized, then smoothed, in the same job
    [note] = [n for n in job["notes"] if "tracking was lost" in n]
    lost = int(note.split("lost at frame ")[1].split(";")[0])
    assert 19 <= lost <= 21, note
    kept = used_masks(stack, job, tmp_path)
    for t in (5, 12, 18):  # the mask moved with the square
        assert kept[t][inside(boxes[t], 1)].mean() > 0.9, t
    assert not kept[18][inside(boxes[0], 1)].any()  # and left where it started


def test_detected_dust_is_masked_and_filled(stack, tmp_path):
    frames = textured_frames(20, W, H, pan=1, seed=5)
    specks = {6: (40, 30), 11: (90, 60), 15: (20, 70)}
    dirty = [f.copy() for f in frames]
    for t, (x, y) in specks.items():
        dirty[t][y:y + 4, x:x + 4] = 10
    source = encode_frames(tmp_path / "dust.mp4", dirty)
    response = stack.submit(source, operations="inpaint", detect_damage="dust")
    assert response.status_code == 202, response.text
    job = stack.wait(response.json()["id"])
    assert job["status"] == "succeeded", job
    kept = used_masks(stack, job, tmp_path)
    out = decode(stack.download(job, tmp_path / "out.mp4"), W, H).astype(np.float32) @ LUMA
    truth = np.stack(frames).astype(np.float32) @ LUMA
    for t, (x, y) in specks.items():
        assert kept[t][y:y + 4, x:x + 4].all(), t
        assert np.abs(out[t][y:y + 4, x:x + 4] - truth[t][y:y + 4, x:x + 4]).mean() < 15, t
    assert kept.mean() < 0.01  # little else


def test_a_photo_scratch_is_found_and_the_mask_kept_as_png(stack, tmp_path):
    photo = cv2.GaussianBlur(textured_frames(1, 160, 120, seed=7)[0], (0, 0), 3)  # soft, like a print
    for i in range(100):  # a thin bright diagonal scratch
        photo[10 + i, 30 + i:32 + i] = 250
    path = tmp_path / "scratched.png"
    Image.fromarray(photo).save(path)
    response = stack.submit(path, operations="inpaint", detect_damage="scratches")
    assert response.status_code == 202, response.text
    job = stack.wait(response.json()["id"])
    assert job["status"] == "succeeded", job
    mask = np.asarray(Image.open(io.BytesIO(stack.http.get(job["masks"]["url"], timeout=10).content))) > 127
    on_line = [mask[10 + i, 30 + i] for i in range(10, 90)]
    assert np.mean(on_line) > 0.8 and mask.mean() < 0.1
    assert job["masks"]["content_type"] == "image/png"


def test_photo_scratches_are_found_by_the_scratch_net(stack, tmp_path):
    """The job's mask is the scratch net's (not the filters'), and it holds the whole crack."""
    import torch

    from tintype.gpu_workers.models.registry import ModelRegistry
    from tintype.media.inpaint.damage import photo_scratches
    from tintype.settings import load_settings

    _, cracked, crack = cracked_print(seed=3)
    path = tmp_path / "cracked.png"
    Image.fromarray(cracked).save(path)
    response = stack.submit(path, operations="inpaint", detect_damage="scratches", mask_dilation="0")
    assert response.status_code == 202, response.text
    job = stack.wait(response.json()["id"])
    assert job["status"] == "succeeded", job
    mask = np.asarray(Image.open(io.BytesIO(stack.http.get(job["masks"]["url"], timeout=10).content))) > 127
    net = ModelRegistry(load_settings()).scratch_detector("scratch-unet", torch.device("cpu")).scratches(cracked)
    agree = (mask & net).sum() / max((mask | net).sum(), 1)
    assert agree > 0.97 and mask[crack].mean() > 0.95
    filters = photo_scratches(cracked)
    assert (mask & filters).sum() / max((mask | filters).sum(), 1) < 0.9  # the fallback draws another mask


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("inpaint-bad")
    return encode_frames(tmp / "clip.mp4", textured_frames(12, W, H))


def _zip_with(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def _png(width: int, height: int, box: tuple[int, int, int, int] | None = (5, 5, 20, 20)) -> bytes:
    img = np.zeros((height, width), np.uint8)
    if box:
        img[box[1]:box[3], box[0]:box[2]] = 255
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, "PNG")
    return buffer.getvalue()


BAD = {
    "no mask at all": (dict(), 400, "mask_required"),
    "masks: one too few": (dict(masks=lambda t: _zip_with(t / "few.zip", {f"{i}.png": _png(W, H) for i in range(11)})),
                           422, "mask_count_mismatch"),
    "masks: wrong size": (dict(masks=lambda t: _zip_with(t / "size.zip", {f"{i:02d}.png": _png(64, 48)
                                                                          for i in range(12)})),
                          422, "mask_size_mismatch"),
    "masks: not images": (dict(masks=lambda t: _zip_with(t / "text.zip", {f"{i:02d}.png": b"not a png"
                                                                          for i in range(12)})),
                          415, "bad_mask"),
    "masks: all empty": (dict(masks=lambda t: _zip_with(t / "empty.zip", {f"{i:02d}.png": _png(W, H, None)
                                                                          for i in range(12)})),
                         422, "empty_mask"),
    "masks: not a video or zip": (dict(masks=lambda t: (t / "x.txt").write_bytes(b"hello") and t / "x.txt"),
                                  415, "bad_mask"),
    "boxes: not JSON": (dict(boxes="[{x: 1}"), 400, "bad_boxes"),
    "boxes: outside the picture": (dict(boxes='[{"x": 100, "y": 10, "w": 64, "h": 10}]'), 422, "bad_boxes"),
    "boxes: the whole frame": (dict(boxes=f'[{{"x": 0, "y": 0, "w": {W}, "h": {H}}}]'), 422, "mask_covers_frame"),
    "boxes: frames beyond the video": (dict(boxes='[{"x": 1, "y": 1, "w": 8, "h": 8, "first": 5, "last": 40}]'),
                                       422, "bad_boxes"),
    "track without boxes": (dict(track_boxes="1", detect_damage="dust"), 400, "bad_option"),
    "unknown damage kind": (dict(detect_damage="mould"), 400, "bad_option"),
    "dilation out of range": (dict(detect_damage="dust", mask_dilation="500"), 400, "bad_option"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_mask_input_is_refused_and_nothing_is_stored(stack, clip, tmp_path, case):
    fields, status, code = BAD[case]
    fields = {k: (v(tmp_path) if callable(v) else v) for k, v in fields.items()}
    before_jobs, before_objects = stack.db("select count(*) from jobs")[0][0], stack.objects()
    response = stack.submit(clip, operations="inpaint", **fields)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code and response.json()["error"]["message"]
    assert stack.db("select count(*) from jobs")[0][0] == before_jobs
    assert stack.stray_objects(before_objects) == []


def test_photo_only_refusals(stack, tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(textured_frames(1, W, H)[0]).save(path)
    dust = stack.submit(path, operations="inpaint", detect_damage="dust")
    assert dust.status_code == 400 and "needs a video" in dust.json()["error"]["message"]
    per_frame = stack.submit(path, operations="inpaint", masks=_zip_with(tmp_path / "m.zip", {"0.png": _png(W, H)}))
    assert per_frame.status_code == 400 and per_frame.json()["error"]["code"] == "masks_for_image"
    whole = stack.submit(path, operations="inpaint", mask=rect_mask(tmp_path / "all.png", W, H, (0, 0, W, H)))
    assert whole.status_code == 422 and whole.json()["error"]["code"] == "mask_covers_frame"
