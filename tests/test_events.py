"""The event streams (Server-Sent Events) on the embedded defaults: bounded in time,
resumable with Last-Event-ID, and pushing a change as it happens."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import timedelta

import pytest

from tests.test_pages import queued_photo_job
from tintype.jobs import state as jobstate
from tintype.settings import load_settings
from tintype.storage.db import upgrade
from tintype.web.app import create_app

STREAM_SECONDS = 1.5


@pytest.fixture()
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("TINTYPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EVENTS_STREAM_SECONDS", str(STREAM_SECONDS))
    monkeypatch.setenv("EVENTS_POLL_SECONDS", "0.1")
    settings = load_settings()
    upgrade(settings.database_url)
    return create_app(settings)


def parse(text: str) -> list[dict]:
    """The events of a text/event-stream body: {"event", "id", "data", "retry"} each."""
    found = []
    for block in text.split("\n\n"):
        fields: dict = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = json.loads(value) if name == "data" else value
        if fields:
            found.append(fields)
    return found


def read(app, path: str, headers: dict | None = None) -> tuple[list[dict], float, str]:
    start = time.monotonic()
    response = app.test_client().get(path, headers=headers or {})
    body = response.get_data(as_text=True)
    return parse(body), time.monotonic() - start, response.content_type


def test_a_job_stream_sends_the_state_then_ends_in_bounded_time_with_a_retry_hint(app, tmp_path):
    job_id = queued_photo_job(app, tmp_path)
    events, took, content_type = read(app, f"/api/v1/jobs/{job_id}/events")
    assert content_type.startswith("text/event-stream")
    assert events[0] == {"retry": "1000"}
    [job] = [e for e in events if e.get("event") == "job"]  # a quiet job is sent once
    assert job["data"]["id"] == job_id and job["data"]["status"] == "queued"
    assert job["data"]["live"] == {"frames_done": 0, "frames_total": 0, "fps": None, "eta_seconds": None}
    assert STREAM_SECONDS - 0.2 <= took < STREAM_SECONDS + 1.5, took

    again, _, _ = read(app, f"/api/v1/jobs/{job_id}/events", {"Last-Event-ID": job["id"]})
    assert [e for e in again if e.get("event") == "job"] == [], "a reconnect is not sent what it has seen"


def test_a_change_is_pushed_and_a_terminal_state_ends_the_stream_early(app, tmp_path):
    job_id = queued_photo_job(app, tmp_path)
    url = app.extensions["tintype.settings"].database_url
    timer = threading.Timer(0.4, jobstate.cancel, (url, job_id))
    timer.start()
    try:
        events, took, _ = read(app, f"/api/v1/jobs/{job_id}/events")
    finally:
        timer.join()
    statuses = [e["data"]["status"] for e in events if e.get("event") == "job"]
    assert statuses == ["queued", "cancelled"]
    assert events[-1]["event"] == "end" and events[-1]["data"]["status"] == "cancelled"
    assert took < STREAM_SECONDS, "a job that ended ends its stream at once"


def test_an_unknown_job_is_a_json_404(app):
    response = app.test_client().get("/api/v1/jobs/0123456789abcdef/events")
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"


def test_the_list_stream_shows_a_new_job_and_resumes_from_its_cursor(app, tmp_path):
    timer = threading.Timer(0.3, queued_photo_job, (app, tmp_path))
    timer.start()
    try:
        events, _, _ = read(app, "/api/v1/jobs/events")
    finally:
        timer.join()
    jobs = [e for e in events if e.get("event") == "job"]
    assert len(jobs) == 1 and jobs[0]["data"]["status"] == "queued" and jobs[0]["data"]["event"] == "job"
    later = time.time() * 1000 + 60_000  # a cursor past every change: nothing to send
    quiet, _, _ = read(app, "/api/v1/jobs/events", {"Last-Event-ID": str(int(later))})
    assert [e for e in quiet if e.get("event") == "job"] == []


def test_a_closed_connection_is_seen_without_reading_or_waiting():
    from tintype.web.events import _client_gone

    server, client = socket.socketpair()
    try:
        assert not _client_gone(server), "an open, quiet connection"
        client.sendall(b"x")
        assert not _client_gone(server), "data waiting is not a close"
        assert server.recv(1) == b"x"
        client.close()
        assert _client_gone(server)
        assert not _client_gone(None), "no socket (not gunicorn): the heartbeat's write finds out"
    finally:
        server.close()


def test_a_database_outage_mid_stream_ends_it_quietly_for_a_reconnect(app, tmp_path, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from tintype.jobs import watch

    job_id = queued_photo_job(app, tmp_path)

    def down(*_args, **_kwargs):
        raise OperationalError("select", {}, Exception("connection refused"))

    monkeypatch.setattr(watch, "version", down)
    events, took, _ = read(app, f"/api/v1/jobs/{job_id}/events")
    assert events == [{"retry": "1000"}] and took < STREAM_SECONDS


def test_streams_beyond_the_limit_are_answered_503_and_a_closed_one_frees_its_slot(tmp_path, monkeypatch):
    monkeypatch.setenv("TINTYPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EVENTS_MAX_STREAMS", "1")
    settings = load_settings()
    upgrade(settings.database_url)
    app = create_app(settings)
    client, job_id = app.test_client(), queued_photo_job(app, tmp_path)
    first = client.get(f"/api/v1/jobs/{job_id}/events", buffered=False)
    assert first.status_code == 200
    for url in (f"/api/v1/jobs/{job_id}/events", "/api/v1/jobs/events"):
        busy = client.get(url)
        assert busy.status_code == 503 and busy.json["error"]["code"] == "streams_busy" and busy.headers["Retry-After"]
    assert client.get("/api/v1/jobs/no-such-job/events").status_code == 404  # refused before taking a slot
    first.close()
    again = client.get("/api/v1/jobs/events", buffered=False)
    assert again.status_code == 200
    again.close()


def _touch(app, job_ids, **values) -> None:
    from tintype.storage.db import session_scope
    from tintype.storage.models import Job

    with session_scope(app.extensions["tintype.settings"].database_url) as s:
        s.query(Job).filter(Job.id.in_(job_ids)).update(values, synchronize_session=False)


def test_the_list_stream_passes_a_burst_of_one_timestamp_larger_than_its_batch(app, tmp_path):
    from tintype.storage.models import utcnow

    ids = [queued_photo_job(app, tmp_path) for _ in range(55)]
    _touch(app, ids, updated_at=utcnow() - timedelta(seconds=1))  # one moment, more rows than LIST_BATCH
    events, _, _ = read(app, "/api/v1/jobs/events")
    assert {e["data"]["id"] for e in events if e.get("event") == "job"} == set(ids)


def test_the_list_stream_sends_a_change_committed_after_its_cursor_passed_its_time(app, tmp_path):
    from tintype.storage.models import utcnow

    late, now = queued_photo_job(app, tmp_path), utcnow()
    _touch(app, [late], updated_at=now - timedelta(hours=1))  # before the stream's look back
    queued_photo_job(app, tmp_path)  # changed now: the stream's cursor moves to it at once
    timer = threading.Timer(0.5, _touch, (app, [late]), {"stage": "probing", "updated_at": now - timedelta(seconds=1)})
    timer.start()
    try:
        events, _, _ = read(app, "/api/v1/jobs/events")
    finally:
        timer.join()
    assert [e["data"]["stage"] for e in events if e.get("event") == "job" and e["data"]["id"] == late] == ["probing"]
