"""REST v1 batches over the real stack: one submission of many files, one batch id,
per-item jobs, counts from the jobs; a bad item refuses the batch with nothing stored."""

from __future__ import annotations

import io

import jsonschema
import pytest
from PIL import Image

from tests.media_factory import grey_photo, grey_video
from tests.stack import BUCKET, PREFIX
from tintype.web.openapi import openapi_document

pytestmark = pytest.mark.integration


def _png(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.fromarray(grey_photo(width, height), "L").save(out, "PNG")
    return out.getvalue()


def _post(session, stack, files: list[tuple[str, bytes]], **form):
    parts = [("files", (name, data)) for name, data in files]
    return session.post(f"{stack.base}/api/v1/batches", files=parts, data=form, timeout=120)


def test_a_batch_makes_one_job_per_file_and_counts_them(stack, tmp_path):
    film = grey_video(tmp_path / "reel.mp4", size="64x48", frames=12, rate="24", audio=False).read_bytes()
    response = _post(stack.http, stack, [("one.png", _png()), ("two.png", _png(48, 40)), ("reel.mp4", film)],
                     output_format="jpeg")
    assert response.status_code == 202, response.text
    batch = response.json()
    assert batch["total"] == 3 and [i["name"] for i in batch["items"]] == ["one.png", "two.png", "reel.mp4"]
    assert response.headers["Location"].endswith(f"/api/v1/batches/{batch['id']}")
    jobs = [stack.wait(item["job_id"]) for item in batch["items"]]
    assert [job["status"] for job in jobs] == ["succeeded"] * 3
    assert [job["kind"] for job in jobs] == ["image", "image", "video"]
    assert jobs[0]["result"]["content_type"] == "image/jpeg"  # the batch's options apply to every item
    status = stack.http.get(batch["links"]["self"], timeout=30).json()
    doc = openapi_document()
    jsonschema.validate(status, {**doc["components"]["schemas"]["Batch"], "components": doc["components"]})
    assert status["finished"] is True and status["counts"]["succeeded"] == 3 and status["counts"]["queued"] == 0
    assert all(item["result_url"] for item in status["items"])
    stranger = stack.client(stack.new_key("someone-else"))
    assert stranger.get(batch["links"]["self"], timeout=30).status_code == 404


def test_a_bad_batch_is_refused_with_nothing_stored(stack):
    objects = stack.objects()
    before = stack.db("SELECT count(*) FROM jobs")[0][0], stack.db("SELECT count(*) FROM batches")
    broken = ("broken.png", b"\x89PNG\r\n\x1a\n" + b"cut short" * 4)
    refused = _post(stack.http, stack, [("good.png", _png()), broken])
    assert 400 <= refused.status_code < 500, refused.text
    assert refused.json()["error"]["message"].startswith("broken.png: ")
    unknown = _post(stack.http, stack, [("good.png", _png())], colour="blue")
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_field"
    empty = _post(stack.http, stack, [])
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "empty_batch"
    assert stack.http.post(f"{stack.base}/api/v1/batches", data={"prefix": "incoming/"},
                           timeout=30).status_code == 403  # a storage prefix is for operators
    after = stack.db("SELECT count(*) FROM jobs")[0][0], stack.db("SELECT count(*) FROM batches")
    assert after == before and stack.stray_objects(objects) == []


def test_an_operator_names_a_storage_prefix(stack):
    for name in ("box1/a.png", "box1/deeper/b.png", "box12/c.png"):
        stack.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/incoming/{name}", Body=_png())
    stack.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/incoming/box1/", Body=b"")  # a console's folder marker
    operator = stack.client(stack.new_key("ops", "--operator"))
    reserved = operator.post(f"{stack.base}/api/v1/batches", data={"prefix": "jobs/"}, timeout=30)
    assert reserved.status_code == 400 and reserved.json()["error"]["code"] == "bad_prefix"
    response = operator.post(f"{stack.base}/api/v1/batches", data={"prefix": "incoming/box1"}, timeout=120)
    assert response.status_code == 202, response.text
    batch = response.json()
    assert batch["source"] == "prefix"  # a folder: not box12/, and not the marker
    assert [i["name"] for i in batch["items"]] == ["incoming/box1/a.png", "incoming/box1/deeper/b.png"]
    reaching = operator.post(f"{stack.base}/api/v1/batches", data={"prefix": "jobs"}, timeout=30)  # jobs/ exist now
    assert reaching.status_code == 400 and reaching.json()["error"]["code"] == "bad_prefix"
    short = operator.post(f"{stack.base}/api/v1/batches", data={"prefix": "j"}, timeout=30)  # a folder j/: none
    assert short.status_code == 400 and short.json()["error"]["code"] == "empty_batch"
    for item in batch["items"]:  # the items are ordinary jobs: cancelled (or, if done already, deleted) one by one
        assert operator.delete(item["job_url"], timeout=30).status_code in (200, 204)
    status = operator.get(batch["links"]["self"], timeout=30).json()
    assert status["finished"] is True, status
    assert status["counts"]["cancelled"] + status["counts"]["removed"] == 2, status
