"""Staged uploads when requests overlap: cancel or expiry during a complete, two completes
at once, expiry against a claim. Each test forces the bad interleaving by running one
request's step inside the other's (embedded mode: SQLite, local objects)."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

from tests.test_uploads_embedded import _create, _photo, _send, _stored, app  # noqa: F401 (a fixture)
from tintype.jobs import uploads
from tintype.storage.db import session_scope
from tintype.storage.models import Upload, as_utc, utcnow


def _ready(app):  # noqa: F811
    """An upload with every part sent, and the row as a request read it (still open)."""
    client, data = app.test_client(), _photo()
    up = _create(client, data).json
    _send(client, up, data)
    settings = app.extensions["tintype.settings"]
    return client, up, settings, uploads.find(settings.database_url, up["id"], "local")


def _set(settings, upload_id: str, **values) -> None:
    with session_scope(settings.database_url) as s:
        s.query(Upload).filter(Upload.id == upload_id).update(values)


def test_cancel_while_completing_is_refused_and_the_complete_finishes(app, monkeypatch):  # noqa: F811
    client, up, settings, _row = _ready(app)
    join, answers = uploads._join_parts, []

    def join_then_cancel(store, upload):
        answers.append(client.delete(f"/api/v1/uploads/{up['id']}"))
        return join(store, upload)

    monkeypatch.setattr(uploads, "_join_parts", join_then_cancel)
    done = client.post(f"/api/v1/uploads/{up['id']}/complete")
    assert answers[0].status_code == 409 and answers[0].json["error"]["code"] == "upload_completing"
    assert done.status_code == 200 and done.json["status"] == "completed"
    assert _stored(app) == [f"uploads/{up['id']}/object"]
    assert client.delete(f"/api/v1/uploads/{up['id']}").status_code == 204 and _stored(app) == []


def test_a_complete_that_lost_its_row_leaves_nothing(app, monkeypatch):  # noqa: F811
    client, up, settings, _row = _ready(app)
    join = uploads._join_parts

    def join_then_expire(store, upload):
        measured = join(store, upload)
        with session_scope(settings.database_url) as s:  # removed meanwhile (expiry of a stale complete)
            s.query(Upload).filter(Upload.id == upload.id).delete()
        return measured

    monkeypatch.setattr(uploads, "_join_parts", join_then_expire)
    lost = client.post(f"/api/v1/uploads/{up['id']}/complete")
    assert lost.status_code == 404 and _stored(app) == []


def test_a_complete_cut_short_can_be_completed_again(app, monkeypatch):  # noqa: F811
    client, up, settings, _row = _ready(app)
    monkeypatch.setattr(uploads, "_join_parts", lambda store, upload: (_ for _ in ()).throw(TimeoutError()))
    try:
        client.post(f"/api/v1/uploads/{up['id']}/complete")
    except TimeoutError:
        pass
    monkeypatch.undo()
    again = client.post(f"/api/v1/uploads/{up['id']}/complete")  # the parts are all still there
    assert again.status_code == 200 and again.json["status"] == "completed"


def test_a_second_complete_answers_the_first_ones_result(app):  # noqa: F811
    client, up, settings, row = _ready(app)
    first = client.post(f"/api/v1/uploads/{up['id']}/complete")
    assert first.status_code == 200
    second = uploads.complete(settings.database_url, app.extensions["tintype.store"], row)  # read before it
    assert second.status == uploads.COMPLETED and second.sha256 == first.json["sha256"]


def test_complete_moves_the_expiry_on(app):  # noqa: F811
    client, up, settings, _row = _ready(app)
    _set(settings, up["id"], expires_at=utcnow() + timedelta(minutes=5))
    done = client.post(f"/api/v1/uploads/{up['id']}/complete")
    with session_scope(settings.database_url) as s:
        expires = as_utc(s.get(Upload, up["id"]).expires_at)
    assert done.status_code == 200 and expires > utcnow() + timedelta(hours=settings.upload_expiry_hours - 1)


def test_complete_refuses_a_body_that_is_not_json(app):  # noqa: F811
    client, up, _settings, _row = _ready(app)
    bad = client.post(f"/api/v1/uploads/{up['id']}/complete", data="parts=1", content_type="text/plain")
    assert bad.status_code == 400 and bad.json["error"]["code"] == "bad_json"


def test_expiry_keeps_an_upload_that_changed_after_it_was_read(app, monkeypatch):  # noqa: F811
    client, up, settings, _row = _ready(app)
    _set(settings, up["id"], expires_at=utcnow() - timedelta(minutes=1))
    real, calls = uploads.session_scope, []

    @contextmanager
    def scope(url):
        with real(url) as s:
            yield s
        calls.append(url)
        if len(calls) == 1:  # between expire's read and its delete, a complete finished the upload
            _set(settings, up["id"], status=uploads.COMPLETED, expires_at=utcnow() + timedelta(hours=1))

    monkeypatch.setattr(uploads, "session_scope", scope)
    assert uploads.expire(settings.database_url, app.extensions["tintype.store"], utcnow()) == []
    monkeypatch.undo()
    assert client.get(f"/api/v1/uploads/{up['id']}").status_code == 200
    assert len([k for k in _stored(app) if k.startswith(f"uploads/{up['id']}/")]) == up["parts"]


def test_an_expired_upload_cannot_be_claimed(app):  # noqa: F811
    client, up, settings, _row = _ready(app)
    assert client.post(f"/api/v1/uploads/{up['id']}/complete").status_code == 200
    _set(settings, up["id"], expires_at=utcnow() - timedelta(minutes=1))
    refused = client.post("/api/v1/jobs", data={"upload": up["id"], "output_format": "png"})
    assert refused.status_code == 404 and uploads.expire(settings.database_url, app.extensions["tintype.store"],
                                                         utcnow()) == [up["id"]]
    assert _stored(app) == []


def test_a_used_upload_whose_job_was_not_recorded_is_removed_later(app):  # noqa: F811
    client, up, settings, _row = _ready(app)
    assert client.post(f"/api/v1/uploads/{up['id']}/complete").status_code == 200
    store = app.extensions["tintype.store"]
    _set(settings, up["id"], status=uploads.USED, expires_at=utcnow() - timedelta(minutes=1))
    assert uploads.expire(settings.database_url, store, utcnow()) == []  # a job may still be being made
    assert _stored(app) == [f"uploads/{up['id']}/object"]
    _set(settings, up["id"], expires_at=utcnow() - uploads.USED_GRACE - timedelta(minutes=1))
    assert uploads.expire(settings.database_url, store, utcnow()) == [up["id"]] and _stored(app) == []


def test_language_switch_and_login_go_only_to_this_site(app):  # noqa: F811
    client = app.test_client()
    for target in ("/%09/evil.com", "/%0a/evil.com", "/%20/evil.com", "//evil.com", "/\\evil.com", "https://evil.com"):
        answer = client.get(f"/lang/zh?next={target}")
        assert answer.status_code == 302 and answer.headers["Location"] == "/", target
    assert client.get("/lang/zh?next=/jobs%3Fpage%3D2").headers["Location"] == "/jobs?page=2"


def test_operators_see_any_upload_and_owners_may_name_themselves(tmp_path, monkeypatch):
    from tintype.settings import load_settings
    from tintype.storage import apikeys
    from tintype.storage.db import upgrade
    from tintype.web.app import create_app

    monkeypatch.setenv("TINTYPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AUTH_REQUIRED", "true")
    monkeypatch.setenv("SECRET_KEY", "a-test-secret-that-is-long-enough-0123456789")
    monkeypatch.setenv("UPLOAD_PART_BYTES", "4096")
    monkeypatch.setenv("EVENTS_STREAM_SECONDS", "0.2")
    settings = load_settings()
    upgrade(settings.database_url)
    secured = create_app(settings)
    client, data = secured.test_client(), _photo()

    def bearer(owner: str, operator: bool = False) -> dict:
        token = apikeys.create_key(settings.database_url, owner, operator)
        return {"Authorization": f"Bearer {token[1]}"}

    alice, operator, bob = bearer("alice"), bearer("ops", True), bearer("bob")
    up = client.post("/api/v1/uploads", json={"filename": "photo.bmp", "size": len(data), "content_type": "image/bmp"},
                     headers=alice).json
    for part in up["part_urls"]:
        start = (part["number"] - 1) * up["part_size"]
        assert client.put(part["url"], data=data[start:start + part["size"]], headers=alice).status_code == 204
    assert client.post(f"/api/v1/uploads/{up['id']}/complete", headers=alice).status_code == 200
    assert client.get(f"/api/v1/uploads/{up['id']}/frames", headers=operator).status_code == 200
    assert client.get(f"/api/v1/uploads/{up['id']}/frames", headers=bob).status_code == 404
    assert client.get("/api/v1/jobs/events?owner=alice", headers=alice).status_code == 200
    assert client.get("/api/v1/jobs/events?owner=bob", headers=alice).status_code == 403


def test_the_openapi_document_names_the_new_refusals(app):  # noqa: F811
    paths = app.test_client().get("/api/v1/openapi.json").json["paths"]
    assert "UPLOADS_MAX_OPEN" in paths["/api/v1/uploads"]["post"]["responses"]["429"]["description"]
    assert "upload_completing" in paths["/api/v1/uploads/{upload_id}"]["delete"]["responses"]["409"]["description"]
    assert "CSRF" in paths["/api/v1/uploads/{upload_id}/complete"]["post"]["responses"]["403"]["description"]
    for path in ("/api/v1/jobs/events", "/api/v1/jobs/{job_id}/events"):
        assert "EVENTS_MAX_STREAMS" in paths[path]["get"]["responses"]["503"]["description"]


def test_the_open_uploads_limit_is_a_setting(tmp_path, monkeypatch):
    from tintype.settings import load_settings
    from tintype.storage.db import upgrade
    from tintype.web.app import create_app

    monkeypatch.setenv("TINTYPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("UPLOADS_MAX_OPEN", "2")
    settings = load_settings()
    upgrade(settings.database_url)
    client = create_app(settings).test_client()
    assert [_create(client, b"x" * 10).status_code for _ in range(2)] == [201, 201]
    refused = _create(client, b"x" * 10)
    assert refused.status_code == 429 and refused.json["error"]["code"] == "too_many_uploads"
    with session_scope(settings.database_url) as s:
        assert s.query(Upload).count() == 2
