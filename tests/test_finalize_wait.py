"""How the streaming finalize waits for its next chunk, on a real Celery app (the embedded
folder broker), SQLite and the local object store: it takes a done chunk's intermediate,
stops when the job ends, sends a chunk left held, recomputes a done chunk whose object is
gone, fails a job only when one chunk keeps it waiting FINALIZE_TIME_LIMIT, and waits
out a short outage instead of raising."""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid

import pytest
from sqlalchemy.exc import OperationalError

from tintype.jobs import state as jobstate
from tintype.queue.app import make_celery
from tintype.queue.messages import FINALIZE
from tintype.settings import Settings, load_settings
from tintype.storage import keys
from tintype.storage.db import dispose_engines, session_scope
from tintype.storage.models import Job
from tintype.storage.objects import StorageUnavailable
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


class _Outage:
    """A call that fails with `error` until `seconds` have passed since its first call,
    then answers as `then` does (by default: its argument)."""

    def __init__(self, error: Exception, seconds: float, then=lambda value: value) -> None:
        self.error, self.seconds, self.then, self.began, self.calls = error, seconds, then, None, 0

    def __call__(self, *args):
        self.calls += 1
        self.began = self.began or time.monotonic()
        if time.monotonic() - self.began < self.seconds:
            raise self.error
        return self.then(*args)


DATABASE_DOWN = OperationalError("SELECT status FROM chunks", {}, ConnectionError("server closed the connection"))


def _finalize_with_outage_limit(settings: Settings, seconds: float):
    return make_celery(dataclasses.replace(settings, stream_outage_seconds=seconds,
                                           stream_poll_seconds=0.05)).tasks[FINALIZE]


def test_a_short_outage_is_waited_out_inside_the_stream(settings, caplog):
    task = _finalize_with_outage_limit(settings, 5.0)
    for error in (DATABASE_DOWN, StorageUnavailable("S3 503 on work/chunk-000000.mkv")):
        outage = _Outage(error, 0.4)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert fin._ride_out(task, "job", outage, "answer") == "answer"
        assert outage.calls > 2
        assert "waits out an outage" in caplog.text


def test_a_long_outage_or_a_real_error_still_raises(settings):
    task = _finalize_with_outage_limit(settings, 0.3)
    began = time.monotonic()
    with pytest.raises(OperationalError):
        fin._ride_out(task, "job", _Outage(DATABASE_DOWN, 60), "answer")
    assert 0.3 <= time.monotonic() - began < 5
    broken = _Outage(ValueError("not an outage"), 60)
    with pytest.raises(ValueError):
        fin._ride_out(task, "job", broken, "answer")
    assert broken.calls == 1


def test_the_outage_setting_is_read_and_checked():
    assert load_settings({}).stream_outage_seconds == 30.0
    assert load_settings({"STREAM_OUTAGE_SECONDS": "0"}).stream_outage_seconds == 0.0
    with pytest.raises(ValueError, match="STREAM_OUTAGE_SECONDS"):
        load_settings({"STREAM_OUTAGE_SECONDS": "-1"})


def test_the_stream_waits_out_the_database_and_storage_then_takes_the_chunk(settings, tmp_path, monkeypatch):
    """The wiring: the chunk-row poll, the download and the window's release each go
    through the outage wait, so a blip neither raises nor rewinds a chunk."""
    task = _finalize_with_outage_limit(dataclasses.replace(settings, chunk_window=2), 5.0)
    job_id = _streaming_job(task.db_url)
    source = tmp_path / "c.mkv"
    source.write_bytes(b"frames")
    task.store.put_file(keys.chunk_key(job_id, 0), source)
    jobstate.chunk_done(task.db_url, job_id, 0, 0.1)
    polls = _Outage(DATABASE_DOWN, 0.3, jobstate.chunk_status)
    downloads = _Outage(StorageUnavailable("S3 503 on work/chunk-000000.mkv"), 0.3, task.store.get_file)
    monkeypatch.setattr(fin.jobstate, "chunk_status", polls)
    monkeypatch.setattr(type(task.store), "get_file", lambda store, *args: downloads(*args))
    fin._fetch_when_done(task, job_id, 0, tmp_path / "got.mkv")
    assert (tmp_path / "got.mkv").read_bytes() == b"frames"
    assert polls.calls > 1 and downloads.calls > 1
    releases = _Outage(DATABASE_DOWN, 0.3, fin.release)
    monkeypatch.setattr(fin, "release", releases)
    fin._release(task, job_id, 1)
    assert releases.calls > 1
    assert jobstate.get_chunk(task.db_url, job_id, 2).status == "pending"  # the window moved on
    assert jobstate.get_chunk(task.db_url, job_id, 0).status == "done"  # nothing rewound
    assert not jobstate.get_job(task.db_url, job_id).notes
