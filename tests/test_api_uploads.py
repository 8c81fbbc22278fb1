"""Staged uploads over the real stack (S3 by moto): parts go straight to the bucket through
presigned part URLs of a multipart upload, a client resumes from the parts S3 holds, and a
job is made of the completed upload; bad input and cancel leave nothing in the bucket."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
import requests
from PIL import Image

from tests.media_factory import grey_photo
from tests.stack import BUCKET

pytestmark = pytest.mark.integration
MIB = 1024**2


def allow_browsers(stack) -> None:
    """The CORS rule docs/operations.md asks operators for: pages PUT parts straight to S3."""
    stack.s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration={"CORSRules": [{
        "AllowedOrigins": [stack.base], "AllowedMethods": ["PUT"], "AllowedHeaders": ["*"],
        "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3600}]})


def _pending(stack) -> list[str]:
    return [u["Key"] for u in stack.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]


def _create(stack, data: bytes, name: str = "reel.bin", **extra) -> requests.Response:
    body = {"filename": name, "size": len(data), "content_type": "application/octet-stream", **extra}
    return stack.http.post(f"{stack.base}/api/v1/uploads", json=body, timeout=30)


def _send(up: dict, data: bytes, only=None) -> dict[int, str]:
    etags = {}
    for part in up["part_urls"]:
        if only is None or part["number"] in only:
            start = (part["number"] - 1) * up["part_size"]
            sent = requests.put(part["url"], data=data[start:start + part["size"]], timeout=60)
            assert sent.status_code == 200, sent.text
            etags[part["number"]] = sent.headers["ETag"]
    return etags


def test_parts_go_to_s3_resume_and_complete(stack):
    allow_browsers(stack)
    data = os.urandom(6 * MIB + 123)
    created = _create(stack, data, sha256=hashlib.sha256(data).hexdigest())
    assert created.status_code == 201, created.text
    up = created.json()
    assert up["transport"] == "s3" and up["part_size"] == 5 * MIB and up["parts"] == 2
    assert up["part_urls"][0]["url"].startswith(stack.env["S3_ENDPOINT_URL"])  # straight to S3, not the app
    etags = _send(up, data, only={2})
    state = stack.http.get(up["links"]["self"], timeout=30).json()
    assert state["received"] == [2] and state["missing"] == [1] and len(state["part_urls"]) == 1
    early = stack.http.post(up["links"]["complete"], timeout=30)
    assert early.status_code == 409 and early.json()["error"]["code"] == "parts_missing"
    etags |= _send(state, data)
    done = stack.http.post(up["links"]["complete"], json={"parts": [{"number": n, "etag": e}
                                                                     for n, e in etags.items()]}, timeout=60)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed" and done.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert f"uploads/{up['id']}/object" in stack.objects() and not _pending(stack)
    stranger = stack.client(stack.new_key("someone-else"))
    assert stranger.get(up["links"]["self"], timeout=30).status_code == 404
    assert stranger.post(f"{stack.base}/api/v1/jobs", data={"upload": up["id"]}, timeout=30).status_code == 404
    assert stack.http.delete(up["links"]["self"], timeout=30).status_code == 204
    assert not [k for k in stack.objects() if k.startswith(f"uploads/{up['id']}")]


def test_a_job_is_made_of_a_completed_upload(stack):
    out = io.BytesIO()
    Image.fromarray(grey_photo(64, 48), "L").save(out, "PNG")
    data = out.getvalue()
    up = _create(stack, data, name="plate.png").json()
    _send(up, data)
    assert stack.http.post(up["links"]["complete"], timeout=60).status_code == 200
    submitted = stack.http.post(f"{stack.base}/api/v1/jobs", data={"upload": up["id"], "output_format": "jpeg"},
                                headers={"Idempotency-Key": "upload-" + up["id"]}, timeout=60)
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    assert job["input"]["name"] == "plate.png" and job["input"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert not [k for k in stack.objects() if k.startswith(f"uploads/{up['id']}")]  # the job owns the file
    retried = stack.http.post(f"{stack.base}/api/v1/jobs", data={"upload": up["id"], "output_format": "jpeg"},
                              headers={"Idempotency-Key": "upload-" + up["id"]}, timeout=60)
    assert retried.status_code == 200 and retried.json()["id"] == job["id"]
    again = stack.http.post(f"{stack.base}/api/v1/jobs", data={"upload": up["id"]}, timeout=60)
    assert again.status_code == 404
    finished = stack.wait(job["id"])
    assert finished["status"] == "succeeded" and finished["result"]["content_type"] == "image/jpeg"


def test_bad_uploads_are_refused_and_cancel_aborts(stack):
    before, pending = stack.objects(), _pending(stack)
    too_big = _create(stack, b"", size=9 * MIB)
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "upload_too_large"
    assert _create(stack, b"x", filename="a/b").status_code == 400
    assert stack.http.get(f"{stack.base}/api/v1/uploads/{'0' * 32}", timeout=30).status_code == 404
    data = os.urandom(6 * MIB)
    up = _create(stack, data).json()
    wrong = stack.http.put(f"{stack.base}/api/v1/uploads/{up['id']}/parts/1", data=b"x", timeout=30)
    assert wrong.status_code == 409 and wrong.json()["error"]["code"] == "wrong_transport"
    _send(up, data, only={1})
    assert stack.http.delete(up["links"]["self"], timeout=30).status_code == 204
    assert stack.stray_objects(before) == [] and _pending(stack) == pending
    assert stack.http.get(up["links"]["self"], timeout=30).status_code == 404
