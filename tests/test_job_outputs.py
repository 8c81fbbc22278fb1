"""Files a job makes beside its result (tintype.jobs.outputs) are listed on the job once
it has succeeded, served by name, and removed with the job (embedded defaults)."""

from __future__ import annotations

import pytest

from tests.test_pages import app, queued_photo_job  # noqa: F401  (the app fixture)
from tintype.jobs import outputs
from tintype.jobs import state as jobstate
from tintype.storage import keys
from tintype.web.resources import get_store


def _succeed_with_master(app, job_id: str, tmp_path) -> bytes:  # noqa: F811
    """Finish the job as finalize does, with one extra output stored under its prefix."""
    body = b"\x00master bytes\xff" * 100
    made = tmp_path / "master.mkv"
    made.write_bytes(body)
    key = keys.extra_output_key(job_id, "master", "mkv")
    with app.app_context():
        get_store().put_file(key, made, "video/x-matroska")
    url = app.extensions["tintype.settings"].database_url
    assert jobstate.mark_running(url, job_id, "processing")
    extra = {"master": outputs.Output(key, "video/x-matroska", len(body), "master.mkv", "archival master (FFV1)")}
    assert jobstate.succeed(url, job_id, output_key=keys.output_key(job_id, "png"), output_content_type="image/png",
                            output_bytes=1, outputs=outputs.record(extra))
    return body


def test_outputs_are_listed_served_and_removed_with_the_job(app, tmp_path):  # noqa: F811
    job_id = queued_photo_job(app, tmp_path)
    client = app.test_client()
    assert client.get(f"/api/v1/jobs/{job_id}").json["outputs"] == {}  # queued: nothing yet
    assert client.get(f"/api/v1/jobs/{job_id}/outputs/master").status_code == 404
    body = _succeed_with_master(app, job_id, tmp_path)
    listed = client.get(f"/api/v1/jobs/{job_id}").json["outputs"]
    assert set(listed) == {"master"} and listed["master"]["bytes"] == len(body)
    assert listed["master"]["content_type"] == "video/x-matroska"
    served = client.get(f"/api/v1/jobs/{job_id}/outputs/master?download=1")
    assert served.status_code == 200 and served.data == body
    assert served.headers["Content-Disposition"].endswith("photo-master.mkv")
    missing = client.get(f"/api/v1/jobs/{job_id}/outputs/manifest")
    assert missing.status_code == 404 and "its outputs: master" in missing.json["error"]["message"]
    assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 204
    with app.app_context():
        assert list(get_store().list(f"jobs/{job_id}/")) == []


def test_output_names_are_url_and_key_safe():
    for bad in ("", "Master", "../x", "a b", "master.mkv"):
        with pytest.raises(ValueError, match="lower-case letters"):
            outputs.check_name(bad)
    assert outputs.check_name("c2pa-manifest") == "c2pa-manifest"
