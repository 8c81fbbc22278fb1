"""Every file the API serves comes with its real media type, against real S3 and workers:
the input (as its bytes are, whatever its name), the result, keyframes, masks and posters."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.media_factory import encode_frames, grey_film, grey_photo, rect_mask, tinted
from tests.stack import BUCKET, PREFIX

pytestmark = pytest.mark.integration


def _type(stack, url: str) -> str:
    response = stack.http.get(url, timeout=30)  # follows the presigned redirect to S3
    assert response.status_code == 200, (url, response.text[:200])
    return response.headers["Content-Type"].split(";")[0]


def _succeeded(stack, response) -> dict:
    assert response.status_code == 202, response.text
    job = stack.wait(response.json()["id"])
    assert job["status"] == "succeeded", job
    return job


def test_a_photographs_files_are_served_as_their_types(stack, tmp_path):
    photo = tmp_path / "scan.tif"  # named TIFF, sent as PNG: the bytes decide
    Image.fromarray(grey_photo(96, 64)).save(photo, "PNG")
    mask = rect_mask(tmp_path / "mask.png", 96, 64, (20, 20, 40, 40))
    job = _succeeded(stack, stack.submit(photo, mask=mask, operations="inpaint,colorize", output_format="jpeg"))
    assert _type(stack, job["input"]["url"]) == "image/png"
    assert _type(stack, job["result"]["url"]) == job["result"]["content_type"] == "image/jpeg"
    assert _type(stack, job["masks"]["url"]) == "image/png"
    assert _type(stack, job["masks"]["poster_url"]) == "image/jpeg"


def test_a_films_files_are_served_as_their_types(stack, tmp_path):
    frames = grey_film(count=16)
    film = encode_frames(tmp_path / "reel.mp4", frames, lossless=False)
    picture = io.BytesIO()
    Image.fromarray(tinted(frames[4])).save(picture, "PNG")
    response = stack.http.post(f"{stack.base}/api/v1/jobs", timeout=120, data={"operations": "colorize"},
                               files=[("file", (film.name, film.read_bytes())),
                                      ("keyframes", ("4.png", picture.getvalue()))])
    job = _succeeded(stack, response)
    assert _type(stack, job["input"]["url"]) == "video/mp4"
    assert _type(stack, job["result"]["url"]) == "video/mp4"
    assert _type(stack, job["preview_url"]) == "image/jpeg"
    if job["compare_url"]:
        assert _type(stack, job["compare_url"]) == "image/jpeg"
    [keyframe] = stack.http.get(job["links"]["keyframes"], timeout=10).json()["items"]
    assert _type(stack, keyframe["url"]) == "image/png"
    assert _type(stack, keyframe["thumbnail_url"]) == "image/jpeg"


def test_an_input_stored_before_types_were_kept_is_still_served_as_its_type(stack, tmp_path):
    """Inputs were stored as application/octet-stream; the presigned download names the type."""
    photo = tmp_path / "old.jpg"
    Image.fromarray(grey_photo(64, 48)).save(photo, "JPEG")
    job = _succeeded(stack, stack.submit(photo, operations="colorize"))
    key = f"{PREFIX}/jobs/{job['id']}/input"
    stack.s3.copy_object(Bucket=BUCKET, Key=key, CopySource={"Bucket": BUCKET, "Key": key},
                         ContentType="application/octet-stream", MetadataDirective="REPLACE")
    assert stack.s3.head_object(Bucket=BUCKET, Key=key)["ContentType"] == "application/octet-stream"
    assert _type(stack, job["input"]["url"]) == "image/jpeg"
