"""Finished jobs can be removed: DELETE of a job that has ended removes every object it
stored and its row (owner rules apply), and RETENTION_DAYS removes them by age from the
reconciler, checked against a real deployment with a back-dated job."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from PIL import Image

from tests.media_factory import grey_photo, grey_video, rect_mask
from tests.stack import running_stack
from tintype.storage.models import utcnow

pytestmark = pytest.mark.integration


def _photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(grey_photo(), "L").save(path)
    return path


def _back_date(db_url: str, job_id: str, days: float) -> None:
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("update jobs set finished_at = :at where id = :id"),
                     {"at": utcnow() - timedelta(days=days), "id": job_id})
    engine.dispose()


def test_deleting_a_finished_job_removes_its_objects_and_row(stack, tmp_path):
    source = grey_video(tmp_path / "clip.mp4", frames=12, audio=False)
    mask = rect_mask(tmp_path / "m.png", 96, 64, (10, 10, 30, 30))
    job = stack.wait(stack.submit(source, mask=mask, operations="inpaint,colorize").json()["id"])
    assert job["status"] == "succeeded", job
    assert any("output" in k for k in stack.objects(job["id"])) and any("masks-used" in k
                                                                        for k in stack.objects(job["id"]))
    other = stack.client(stack.new_key("someone-else"))
    assert other.delete(f"{stack.base}/api/v1/jobs/{job['id']}", timeout=10).status_code == 404  # not theirs
    assert stack.objects(job["id"])
    response = stack.http.delete(f"{stack.base}/api/v1/jobs/{job['id']}", timeout=30)
    assert response.status_code == 204, response.text
    assert stack.objects(job["id"]) == []
    assert stack.db("select count(*) from jobs where id = :id", id=job["id"])[0][0] == 0
    assert stack.db("select count(*) from chunks where job_id = :id", id=job["id"])[0][0] == 0
    gone = stack.http.get(f"{stack.base}/api/v1/jobs/{job['id']}", timeout=10)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    assert stack.http.delete(f"{stack.base}/api/v1/jobs/{job['id']}", timeout=10).status_code == 404


@pytest.mark.slow
def test_retention_removes_finished_jobs_older_than_the_setting(tmp_path):
    env = {"RETENTION_DAYS": "2", "RECONCILE_SECONDS": "1"}
    with running_stack(tmp_path / "retention", env, cpu_concurrency=1) as stack:
        photo = _photo(tmp_path)
        old, recent = (stack.wait(stack.submit(photo, operations="colorize").json()["id"]) for _ in range(2))
        assert old["status"] == recent["status"] == "succeeded"
        assert stack.objects(old["id"]) and stack.objects(recent["id"])
        _back_date(stack.db_url, recent["id"], 1.5)  # within the setting: kept
        _back_date(stack.db_url, old["id"], 3)
        deadline = time.monotonic() + 30
        while stack.db("select count(*) from jobs where id = :id", id=old["id"])[0][0] and \
                time.monotonic() < deadline:
            time.sleep(0.5)
        assert stack.db("select count(*) from jobs where id = :id", id=old["id"])[0][0] == 0, stack.tail()
        assert stack.objects(old["id"]) == []
        time.sleep(2)  # a few more reconciler runs
        assert stack.job(recent["id"])["status"] == "succeeded" and stack.objects(recent["id"])
