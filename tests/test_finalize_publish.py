"""Publishing a finished video: the answer is what the job's row says, so a job cancelled
while finalize encoded answers "cancelled" and keeps none of what was made."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tintype.jobs import state as jobstate
from tintype.queue.task import ended_answer
from tintype.storage.db import dispose_engines, session_scope, upgrade
from tintype.storage.models import Job
from tintype.storage.objects import LocalStore
from tintype.tasks.finalize import publish


@pytest.fixture()
def db_url(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    upgrade(url)
    yield url
    dispose_engines()


def _running_job(url: str) -> str:
    job_id = uuid.uuid4().hex
    with session_scope(url) as s:
        s.add(Job(id=job_id, kind="video", status="queued", stage="queued", operations=["colorize"], options={},
                  input_name="x.mp4", input_bytes=1, input_sha256="0" * 64, input_facts={}, has_mask=0,
                  chunks_total=1, chunks_done=1, notes=[], timings={}))
    assert jobstate.mark_running(url, job_id, "finalizing")
    return job_id


def _made(store: LocalStore, job_id: str, tmp_path: Path) -> list[str]:
    source = tmp_path / "made.bin"
    source.write_bytes(b"x")
    made = [f"jobs/{job_id}/output.mp4", f"jobs/{job_id}/compare.jpg"]
    for key in made:
        store.put_file(key, source)
    return made


def test_a_job_cancelled_while_encoding_answers_cancelled_and_keeps_nothing(db_url, tmp_path):
    store = LocalStore(tmp_path / "objects")
    job_id = _running_job(db_url)
    made = _made(store, job_id, tmp_path)
    assert jobstate.cancel(db_url, job_id)  # the user cancels while finalize encodes
    assert publish(db_url, store, job_id, made, output_key=made[0]) == "cancelled"
    assert not any(store.exists(key) for key in made)
    job = jobstate.get_job(db_url, job_id)
    assert (job.status, job.output_key) == ("cancelled", None)


def test_a_running_job_is_published(db_url, tmp_path):
    store = LocalStore(tmp_path / "objects")
    job_id = _running_job(db_url)
    made = _made(store, job_id, tmp_path)
    assert publish(db_url, store, job_id, made, output_key=made[0]) == "succeeded"
    assert all(store.exists(key) for key in made)
    assert jobstate.get_job(db_url, job_id).status == "succeeded"
    # A duplicate run publishing the same keys keeps them and says so too.
    assert publish(db_url, store, job_id, made, output_key=made[0]) == "succeeded"
    assert all(store.exists(key) for key in made)


def test_a_job_failed_elsewhere_answers_inactive(db_url, tmp_path):
    job_id = _running_job(db_url)
    assert jobstate.fail(db_url, job_id, "boom", "failed elsewhere")
    assert ended_answer(db_url, job_id) == "inactive"
    assert publish(db_url, LocalStore(tmp_path / "objects"), job_id, [], output_key="x") == "inactive"
