"""How the streaming finalize waits for its next chunk, on a real Celery app (the embedded
folder broker), SQLite and the local object store: it takes a done chunk's intermediate,
stops when the job ends, sends a chunk left held, recomputes a done chunk whose object is
gone, and fails a job only when one chunk keeps it waiting FINALIZE_TIME_LIMIT."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from tintype.jobs import state as jobstate
from tintype.queue.app import make_celery
from tintype.queue.messages import FINALIZE
from tintype.settings import Settings
from tintype.storage import keys
from tintype.storage.db import dispose_engines, session_scope
from tintype.storage.models import Job
from tintype.tasks import finalize as fin


@pytest.fixture()
def task(settings: Settings):
    """The finalize task bound to an app whose FINALIZE_TIME_LIMIT is one second."""
    app = make_celery(dataclasses.replace(settings, finalize_time_limit=1, stream_poll_seconds=0.05,
                                          chunk_window=2))
    yield app.tasks[FINALIZE]
    dispose_engines()


def _streaming_job(url: str, chunks: int = 4) -> str:
    job_id = uuid.uuid4().hex
    with session_scope(url) as s:
        s.add(Job(id=job_id, kind="video", status="queued", stage="queued", operations=["colorize"], options={},
                  input_name="x.mp4", input_bytes=1, input_sha256="0" * 64, input_facts={}, has_mask=0,
                  chunks_total=0, chunks_done=0, notes=[], timings={}))
    jobstate.plan_chunks(url, job_id, [jobstate.ChunkPlan(i, i * 8, 8, i * 8, 8, None) for i in range(chunks)])
    jobstate.chunks_sent(url, job_id, range(2))
    jobstate.hold_chunks(url, job_id, 2)
    assert jobstate.mark_running(url, job_id, "finalizing")
    return job_id


def _sent(task) -> list[str]:
    """The chunk messages waiting in the folder broker."""
    folder = task.settings.data_dir / "broker" / "queue"
    return sorted(p.read_text() for p in folder.iterdir())


def test_a_done_chunk_is_downloaded(task, tmp_path):
    job_id = _streaming_job(task.db_url)
    source = tmp_path / "c.mkv"
    source.write_bytes(b"frames")
    task.store.put_file(keys.chunk_key(job_id, 0), source)
    jobstate.chunk_done(task.db_url, job_id, 0, 0.1)
    fin._fetch_when_done(task, job_id, 0, tmp_path / "got.mkv")
    assert (tmp_path / "got.mkv").read_bytes() == b"frames"


def test_waiting_stops_when_the_job_is_cancelled(task, tmp_path):
    job_id = _streaming_job(task.db_url)
    jobstate.cancel(task.db_url, job_id)
    with pytest.raises(fin._Cancelled):
        fin._fetch_when_done(task, job_id, 0, tmp_path / "got.mkv")


def test_a_chunk_that_never_comes_fails_the_job_as_stalled_and_a_held_one_is_sent(task, tmp_path):
    job_id = _streaming_job(task.db_url)
    with pytest.raises(fin._Cancelled):
        fin._fetch_when_done(task, job_id, 2, tmp_path / "got.mkv")  # held: a release was lost
    job = jobstate.get_job(task.db_url, job_id)
    assert (job.status, job.error_code) == ("failed", "stalled")
    assert "chunk 2" in job.error and "FINALIZE_TIME_LIMIT" in job.error
    assert jobstate.get_chunk(task.db_url, job_id, 2).status == "pending"  # released while it waited
    assert jobstate.get_chunk(task.db_url, job_id, 3).status == "pending"  # the window moved with it
    assert sum("gpu.process_chunk" in m for m in _sent(task)) == 2


def test_a_done_chunk_whose_intermediate_is_gone_is_computed_again(task, tmp_path):
    job_id = _streaming_job(task.db_url)
    jobstate.chunk_done(task.db_url, job_id, 0, 0.1)  # done, but an earlier finalize deleted its object
    with pytest.raises(fin._Cancelled):
        fin._fetch_when_done(task, job_id, 0, tmp_path / "got.mkv")  # ends as stalled: no GPU worker here
    chunk, job = jobstate.get_chunk(task.db_url, job_id, 0), jobstate.get_job(task.db_url, job_id)
    assert chunk.status == "pending" and chunk.attempts == 0
    assert job.chunks_done == 0
    assert any("computed again" in note for note in job.notes), job.notes
    assert any("gpu.process_chunk" in m for m in _sent(task))


def test_chunks_a_dead_finalize_assembled_are_rewound_at_start(task, tmp_path):
    job_id = _streaming_job(task.db_url)
    source = tmp_path / "c.mkv"
    source.write_bytes(b"frames")
    for index in (0, 1):
        jobstate.chunk_done(task.db_url, job_id, index, 0.1)
    task.store.put_file(keys.chunk_key(job_id, 1), source)  # chunk 0 was assembled and deleted
    fin._recompute_assembled(task, job_id)
    assert [jobstate.get_chunk(task.db_url, job_id, i).status for i in range(4)] == ["pending", "done", "held",
                                                                                       "held"]
    assert jobstate.get_job(task.db_url, job_id).chunks_done == 1
