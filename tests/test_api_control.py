"""Listing, cancelling and the OpenAPI document, checked against the real service."""

from __future__ import annotations

import time

import jsonschema
import pytest
from openapi_spec_validator import validate

from tests.media_factory import grey_video, rect_mask
from tintype.settings import load_settings
from tintype.web.openapi import openapi_document

pytestmark = pytest.mark.integration


def _schema(name: str) -> dict:
    doc = openapi_document()
    return {**doc["components"]["schemas"][name], "components": doc["components"]}


def test_openapi_document_is_valid_and_served(stack):
    served = stack.http.get(f"{stack.base}/api/v1/openapi.json", timeout=10).json()
    validate(served)
    assert served == openapi_document(load_settings(stack.env))  # the models this server can run
    offered = served["paths"]["/api/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert "torchscript" not in offered["schema"]["properties"]["inpaint_model"]["enum"]


def test_an_unconfigured_model_is_refused_at_intake_saying_what_to_set(stack, tmp_path):
    source = grey_video(tmp_path / "clip.mp4", frames=8, audio=False)
    mask = rect_mask(tmp_path / "m.png", 96, 64, (10, 10, 30, 30))
    before = stack.db("select count(*) from jobs")[0][0]
    response = stack.submit(source, mask=mask, operations="inpaint", inpaint_model="torchscript")
    assert response.status_code == 400 and response.json()["error"]["code"] == "model_unavailable"
    assert "TORCHSCRIPT_INPAINT_PATH" in response.json()["error"]["message"]
    assert stack.db("select count(*) from jobs")[0][0] == before


def test_cancel_revokes_work_and_leaves_no_work_objects(stack, tmp_path):
    source = grey_video(tmp_path / "long.mp4", frames=160, audio=False)
    mask = rect_mask(tmp_path / "m.png", 96, 64, (10, 10, 40, 40))
    job_id = stack.submit(source, mask=mask, operations="inpaint").json()["id"]
    deadline = time.monotonic() + 60
    while stack.job(job_id)["stage"] in ("queued", "probing") and time.monotonic() < deadline:
        time.sleep(0.2)
    response = stack.http.delete(f"{stack.base}/api/v1/jobs/{job_id}", timeout=10)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    jsonschema.validate(response.json(), _schema("Job"))
    deadline = time.monotonic() + 60
    while any("/work/" in k for k in stack.objects(job_id)) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(3)  # a chunk that was running must not resurrect work objects or an output
    keys = stack.objects(job_id)
    assert not any("/work/" in k or "output" in k for k in keys), keys
    job = stack.job(job_id)
    assert job["status"] == "cancelled" and job["result"] is None
    assert stack.http.get(f"{stack.base}/api/v1/jobs/{job_id}/result", timeout=10).status_code == 409
    # DELETE again: the cancelled job has ended, so it is removed, files and row
    assert stack.http.delete(f"{stack.base}/api/v1/jobs/{job_id}", timeout=10).status_code == 204
    assert stack.objects(job_id) == [] and stack.http.get(f"{stack.base}/api/v1/jobs/{job_id}").status_code == 404


def test_list_filters_and_pages(stack, tmp_path):
    source = grey_video(tmp_path / "a.mp4", frames=8, audio=False)
    mask = rect_mask(tmp_path / "m.png", 96, 64, (10, 10, 30, 30))
    ids = [stack.submit(source, mask=mask, operations="inpaint").json()["id"] for _ in range(2)]
    for job_id in ids:
        stack.wait(job_id)
    page = stack.http.get(f"{stack.base}/api/v1/jobs", params={"status": "succeeded", "kind": "video",
                                                              "per_page": 1}, timeout=10).json()
    jsonschema.validate(page, _schema("JobList"))
    assert page["per_page"] == 1 and len(page["items"]) == 1 and page["total"] >= 2
    assert page["items"][0]["id"] == ids[-1]  # newest first
    second = stack.http.get(f"{stack.base}/api/v1/jobs", params={"status": "succeeded", "kind": "video",
                                                                "per_page": 1, "page": 2}, timeout=10).json()
    assert second["items"][0]["id"] == ids[0]
    unprocessed = stack.http.get(f"{stack.base}/api/v1/jobs", params={"status": "queued,running"}, timeout=10).json()
    assert all(j["status"] in ("queued", "running") for j in unprocessed["items"])
    images = stack.http.get(f"{stack.base}/api/v1/jobs", params={"kind": "image"}, timeout=10).json()
    assert all(j["kind"] == "image" for j in images["items"])
    bad = stack.http.get(f"{stack.base}/api/v1/jobs", params={"status": "finished"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_filter"


def test_job_page_and_unknown_job(stack, tmp_path):
    source = grey_video(tmp_path / "p.mp4", frames=8, audio=False)
    mask = rect_mask(tmp_path / "m.png", 96, 64, (10, 10, 30, 30))
    job = stack.wait(stack.submit(source, mask=mask, operations="inpaint").json()["id"])
    jsonschema.validate(job, _schema("Job"))
    page = stack.http.get(job["links"]["page"], timeout=10)
    assert page.status_code == 200 and "job-progress" in page.text and job["id"] in page.text
    poster = stack.http.get(job["preview_url"], timeout=10)
    assert poster.status_code == 200 and poster.content[:2] == b"\xff\xd8"
    missing = stack.http.get(f"{stack.base}/api/v1/jobs/{'0' * 32}", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert stack.http.get(f"{stack.base}/", timeout=10).status_code == 200
