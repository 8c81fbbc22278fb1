"""The pages say how a job ended, unknown pages are styled (JSON under /api/), and a
finished job can be deleted (embedded defaults: SQLite, local objects, no workers)."""

from __future__ import annotations

import hashlib
import re

import pytest
from PIL import Image

from tests.media_factory import grey_photo
from tintype.jobs import state as jobstate
from tintype.jobs.intake import Submission, create_job, parse_options
from tintype.settings import load_settings
from tintype.storage.db import upgrade
from tintype.web.app import create_app
from tintype.web.resources import get_store


@pytest.fixture()
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("TINTYPE_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings()
    upgrade(settings.database_url)
    return create_app(settings)


def queued_photo_job(app, tmp_path) -> str:
    """A queued photo job, recorded as the API records one (its task is never run)."""
    path = tmp_path / "photo.png"
    Image.fromarray(grey_photo(), "L").save(path)
    settings = app.extensions["tintype.settings"]
    sub = Submission(path, path.name, path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest(),
                     parse_options({"colorize": "yes"}, settings))
    with app.app_context():
        return create_job(sub, settings, get_store(), settings.database_url, lambda job_id: "task-" + job_id)


def _result_note(app, job_id: str) -> str:
    html = app.test_client().get(f"/jobs/{job_id}").get_data(as_text=True)
    return re.search(r'<p id="result-note" class="(\w+)">(.*?)</p>', html, re.S).group(0)


def test_a_cancelled_job_page_says_it_was_cancelled(app, tmp_path):
    job_id = queued_photo_job(app, tmp_path)
    assert "Not ready yet" in _result_note(app, job_id)
    assert app.test_client().delete(f"/api/v1/jobs/{job_id}").json["status"] == "cancelled"
    assert "Cancelled: the job was stopped" in _result_note(app, job_id)


def test_a_failed_job_page_says_it_failed_and_why(app, tmp_path):
    job_id = queued_photo_job(app, tmp_path)
    jobstate.fail(app.extensions["tintype.settings"].database_url, job_id, "weights_missing",
                  "the colorizer's weight file is missing")
    note = _result_note(app, job_id)
    assert 'class="error"' in note and "Failed: the colorizer&#39;s weight file is missing" in note


def test_unknown_pages_are_styled_and_api_paths_answer_json(app):
    client = app.test_client()
    for path in ("/no/such/page", "/jobs/" + "0" * 32):
        page = client.get(path)
        html = page.get_data(as_text=True)
        assert page.status_code == 404 and page.mimetype == "text/html"
        assert 'class="brand"' in html and "There is no page here" in html  # the site's layout
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.json["error"]["code"] == "not_found"


def test_deleting_a_finished_job_removes_its_files_and_row(app, tmp_path):
    job_id = queued_photo_job(app, tmp_path)
    client = app.test_client()  # an API client: no cookies, so no CSRF token is needed
    with app.app_context():
        store = get_store()
    assert list(store.list(f"jobs/{job_id}/"))
    assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 200  # queued: cancelled, kept
    assert client.get(f"/api/v1/jobs/{job_id}").json["status"] == "cancelled"
    assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 204  # ended: removed
    assert list(store.list(f"jobs/{job_id}/")) == []
    assert jobstate.get_job(app.extensions["tintype.settings"].database_url, job_id) is None
    assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 404
    assert client.get(f"/jobs/{job_id}").status_code == 404
