"""Staged uploads in embedded mode (SQLite, local objects, no workers): the parts go to the
web app, a client resumes from the parts held, completing checks size and SHA-256, a job
is made of the upload without a second upload, cancel and expiry leave nothing behind."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta
from types import SimpleNamespace

import pytest
from PIL import Image

from tests.media_factory import grey_photo
from tintype.jobs import uploads
from tintype.jobs.errors import IntakeError
from tintype.settings import load_settings
from tintype.storage.db import session_scope, upgrade
from tintype.storage.models import Upload, utcnow
from tintype.tasks import reconcile
from tintype.web.app import create_app

PART = 4096


@pytest.fixture()
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("TINTYPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("UPLOAD_PART_BYTES", str(PART))
    monkeypatch.setenv("MAX_UPLOAD_BYTES", str(1024**2))
    settings = load_settings()
    upgrade(settings.database_url)
    return create_app(settings)


def _photo() -> bytes:
    out = io.BytesIO()
    Image.fromarray(grey_photo(96, 64), "L").convert("RGB").save(out, "BMP")  # uncompressed: several parts
    return out.getvalue()


def _stored(app) -> list[str]:
    root = app.extensions["tintype.store"].root
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _create(client, data: bytes, **extra):
    body = {"filename": "photo.bmp", "size": len(data), "content_type": "image/bmp", **extra}
    return client.post("/api/v1/uploads", json=body)


def _send(client, created, data: bytes, numbers=None) -> None:
    for part in created["part_urls"]:
        if numbers is None or part["number"] in numbers:
            start = (part["number"] - 1) * created["part_size"]
            sent = client.put(part["url"], data=data[start:start + part["size"]])
            assert sent.status_code == 204, sent.json


def test_parts_resume_complete_and_make_a_job(app):
    client, data = app.test_client(), _photo()
    created = _create(client, data, sha256=hashlib.sha256(data).hexdigest())
    assert created.status_code == 201, created.json
    up = created.json
    assert up["transport"] == "app" and up["part_size"] == PART and up["parts"] == -(-len(data) // PART) >= 3
    _send(client, up, data, numbers={1, 3})
    state = client.get(f"/api/v1/uploads/{up['id']}").json
    assert state["received"] == [1, 3] and 2 in state["missing"]
    early = client.post(f"/api/v1/uploads/{up['id']}/complete")
    assert early.status_code == 409 and early.json["error"]["code"] == "parts_missing"
    _send(client, state, data)  # only what is missing, as a resuming client does
    done = client.post(f"/api/v1/uploads/{up['id']}/complete")
    assert done.status_code == 200, done.json
    assert done.json["status"] == "completed" and done.json["sha256"] == hashlib.sha256(data).hexdigest()
    assert _stored(app) == [f"uploads/{up['id']}/object"]  # the parts joined, then removed
    settings = app.extensions["tintype.settings"]
    found = uploads.completed(settings.database_url, "local", up["id"])
    assert (found.key, found.size, found.filename) == (f"uploads/{up['id']}/object", len(data), "photo.bmp")
    job = client.post("/api/v1/jobs", data={"upload": up["id"], "output_format": "png"})
    assert job.status_code == 202, job.json
    assert job.json["input"]["sha256"] == found.sha256 and job.json["input"]["name"] == "photo.bmp"
    assert f"jobs/{job.json['id']}/input" in _stored(app)
    assert not any(key.startswith("uploads/") for key in _stored(app))  # the job owns the only copy
    with pytest.raises(IntakeError):
        uploads.completed(settings.database_url, "local", up["id"])
    again = client.post("/api/v1/jobs", data={"upload": up["id"]})
    assert again.status_code == 404 and again.json["error"]["code"] == "upload_not_found"


def test_bad_input_is_refused_and_leaves_nothing(app):
    client, data = app.test_client(), _photo()
    too_big = _create(client, b"", size=2 * 1024**2)
    assert too_big.status_code == 413 and too_big.json["error"]["code"] == "upload_too_large"
    for bad in ({"size": 0}, {"size": "12"}, {"filename": "../x"}, {"sha256": "nope"}, {"colour": "blue"}):
        refused = _create(client, data, **bad)
        assert refused.status_code == 400, (bad, refused.json)
    assert client.post("/api/v1/uploads", data="x", content_type="text/plain").status_code == 400
    assert _stored(app) == [] and client.get("/api/v1/uploads/nope").status_code == 404
    up = _create(client, data).json
    assert client.put(f"/api/v1/uploads/{up['id']}/parts/{up['parts'] + 1}", data=b"x").status_code == 400
    short = client.put(f"/api/v1/uploads/{up['id']}/parts/1", data=data[:PART - 1])
    assert short.status_code == 400 and short.json["error"]["code"] == "bad_part_size"
    assert _stored(app) == []
    assert client.post("/api/v1/jobs", data={"upload": up["id"]}).status_code == 404  # not completed
    lying = _create(client, data, sha256="0" * 64).json
    _send(client, lying, data)
    corrupt = client.post(f"/api/v1/uploads/{lying['id']}/complete")
    assert corrupt.status_code == 422 and corrupt.json["error"]["code"] == "upload_corrupt"
    assert client.get(f"/api/v1/uploads/{lying['id']}").status_code == 404
    _send(client, up, data, numbers={1})
    assert client.delete(f"/api/v1/uploads/{up['id']}").status_code == 204
    assert client.get(f"/api/v1/uploads/{up['id']}").status_code == 404 and _stored(app) == []


def test_unfinished_uploads_expire(app):
    client, data = app.test_client(), _photo()
    settings = app.extensions["tintype.settings"]
    old, fresh = _create(client, data).json, _create(client, data).json
    _send(client, old, data, numbers={1})
    _send(client, fresh, data, numbers={2})
    with session_scope(settings.database_url) as s:
        s.query(Upload).filter(Upload.id == old["id"]).update({"expires_at": utcnow() - timedelta(minutes=1)})
    assert uploads.expire(settings.database_url, app.extensions["tintype.store"], utcnow()) == [old["id"]]
    assert client.get(f"/api/v1/uploads/{old['id']}").status_code == 404
    assert client.get(f"/api/v1/uploads/{fresh['id']}").status_code == 200
    assert _stored(app) == [f"uploads/{fresh['id']}/parts/00002"]  # the fresh upload's part stays


def test_the_reconciler_aborts_expired_uploads(app):
    client, data = app.test_client(), _photo()
    settings, store = app.extensions["tintype.settings"], app.extensions["tintype.store"]
    up = _create(client, data).json
    _send(client, up, data, numbers={1})
    with session_scope(settings.database_url) as s:
        s.query(Upload).filter(Upload.id == up["id"]).update({"expires_at": utcnow() - timedelta(minutes=1)})
    reconcile._expire_uploads(SimpleNamespace(db_url=settings.database_url, store=store))
    assert client.get(f"/api/v1/uploads/{up['id']}").status_code == 404 and _stored(app) == []


def test_uploads_count_against_the_daily_bytes_quota(tmp_path, monkeypatch):
    monkeypatch.setenv("TINTYPE_DATA_DIR", str(tmp_path / "data"))
    data = _photo()
    monkeypatch.setenv("QUOTA_BYTES_PER_DAY", str(len(data) * 3 // 2))
    monkeypatch.setenv("QUOTA_JOBS_IN_FLIGHT", "1")
    settings = load_settings()
    upgrade(settings.database_url)
    client = create_app(settings).test_client()
    refused = _create(client, data * 2)
    assert refused.status_code == 429 and refused.json["error"]["code"] == "quota_bytes_per_day"
    assert refused.headers["Retry-After"]
    first = _create(client, data).json
    staged_too = _create(client, data)  # the first upload's bytes count, though no job was made of it yet
    assert staged_too.status_code == 429 and staged_too.json["error"]["code"] == "quota_bytes_per_day"
    _send(client, first, data)
    assert client.post(f"/api/v1/uploads/{first['id']}/complete").status_code == 200
    job = client.post("/api/v1/jobs", data={"upload": first["id"], "output_format": "png"})
    assert job.status_code == 202, job.json  # its bytes counted once, not as upload and job both
    small = _create(client, b"x" * 100)  # a job in flight (the limit is 1) does not stop staging the next file
    assert small.status_code == 201, small.json
