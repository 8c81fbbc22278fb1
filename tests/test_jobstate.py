"""State transitions on a real PostgreSQL database: atomic, and progress counted once."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from tintype.jobs import state as jobstate
from tintype.storage.db import session_scope
from tintype.storage.models import Chunk, Job

pytestmark = pytest.mark.integration


def _job(url: str, chunks: int = 3) -> str:
    job_id = uuid.uuid4().hex
    with session_scope(url) as s:
        s.add(Job(id=job_id, kind="video", status="queued", stage="queued", operations=["colorize"], options={},
                  input_name="x.mp4", input_bytes=1, input_sha256="0" * 64, input_facts={}, has_mask=0,
                  chunks_total=0, chunks_done=0, notes=[], timings={}))
    jobstate.plan_chunks(url, job_id, [jobstate.ChunkPlan(i, i * 10, 10, i * 10, 10, None) for i in range(chunks)])
    return job_id


def test_redelivered_chunk_counts_progress_once(db_url):
    job_id = _job(db_url)
    assert jobstate.mark_running(db_url, job_id, "processing")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: jobstate.chunk_done(db_url, job_id, 1, 0.1), range(8)))
    assert results.count(True) == 1
    assert jobstate.get_job(db_url, job_id).chunks_done == 1
    assert jobstate.plan_chunks(db_url, job_id, []) == 3  # a re-run probe keeps the plan and progress
    assert jobstate.get_job(db_url, job_id).chunks_done == 1


def test_terminal_states_are_final_and_first_wins(db_url):
    job_id = _job(db_url)
    assert jobstate.mark_running(db_url, job_id, "processing")
    assert jobstate.cancel(db_url, job_id)
    assert not jobstate.succeed(db_url, job_id, output_key="x")
    assert not jobstate.fail(db_url, job_id, "late", "too late")
    assert not jobstate.mark_running(db_url, job_id, "finalizing")
    job = jobstate.get_job(db_url, job_id)
    assert (job.status, job.output_key, job.error_code) == ("cancelled", None, None)

    other = _job(db_url)
    jobstate.mark_running(db_url, other, "processing")
    assert jobstate.fail(db_url, other, "processing_failed", "chunk 2: decoder error")
    assert not jobstate.cancel(db_url, other)
    assert jobstate.get_job(db_url, other).error == "chunk 2: decoder error"


def test_finalize_is_claimed_once_by_the_first_chunk_done_and_leased(db_url):
    job_id = _job(db_url, chunks=2)
    jobstate.mark_running(db_url, job_id, "processing")
    assert not jobstate.claim_finalize(db_url, job_id)  # nothing to stream yet
    jobstate.chunk_done(db_url, job_id, 1, 0.1)  # any chunk: finalize starts and waits for chunk 0
    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(lambda _: jobstate.claim_finalize(db_url, job_id), range(8)))
    assert claims.count(True) == 1
    jobstate.chunk_done(db_url, job_id, 0, 0.1)
    assert not jobstate.claim_finalize(db_url, job_id)  # later chunks find it claimed
    assert jobstate.start_finalize(db_url, job_id, lease_seconds=60)
    assert not jobstate.start_finalize(db_url, job_id, lease_seconds=60)  # a duplicate delivery waits
    assert jobstate.start_finalize(db_url, job_id, lease_seconds=-1)  # the holder went silent
    jobstate.release_finalize(db_url, job_id)
    assert jobstate.get_job(db_url, job_id).stage == "finalize_queued"


def test_a_late_duplicate_probe_does_not_rewind_the_job(db_url):
    job_id = _job(db_url)
    assert jobstate.mark_running(db_url, job_id, "probing", from_stages=("queued", "probing"))
    jobstate.update_job(db_url, job_id, stage="processing")
    assert not jobstate.mark_running(db_url, job_id, "probing", from_stages=("queued", "probing"))
    assert jobstate.get_job(db_url, job_id).stage == "processing"


def test_active_jobs_lists_open_chunks_with_their_heartbeat(db_url):
    job_id = _job(db_url, chunks=3)
    jobstate.mark_running(db_url, job_id, "processing")
    jobstate.chunk_attempt(db_url, job_id, 0)
    jobstate.chunk_done(db_url, job_id, 2, 0.1)
    job = next(j for j in jobstate.active_jobs(db_url) if j.id == job_id)
    assert [(c.index, c.status) for c in job.open_chunks] == [(0, "running"), (1, "pending")]
    assert job.open_chunks[0].updated_at.tzinfo is not None
    assert (job.chunks_done, job.chunks_total) == (1, 3)


def test_reconciler_requeues_a_silent_finalize_so_the_resent_task_can_run(db_url):
    job_id = _job(db_url, chunks=1)
    jobstate.mark_running(db_url, job_id, "processing")
    jobstate.chunk_done(db_url, job_id, 0, 0.1)
    assert jobstate.requeue_finalize(db_url, job_id, lease_seconds=60)  # the last chunk died before claiming
    assert jobstate.start_finalize(db_url, job_id, lease_seconds=60)
    assert not jobstate.requeue_finalize(db_url, job_id, lease_seconds=60)  # its runner is alive
    assert jobstate.requeue_finalize(db_url, job_id, lease_seconds=-1)  # its runner went silent
    assert jobstate.start_finalize(db_url, job_id, lease_seconds=60)  # the re-sent task takes over at once


def test_an_attempt_cut_off_while_its_chunk_was_redone_has_lost_it(db_url):
    job_id = _job(db_url)
    first = jobstate.chunk_attempt(db_url, job_id, 1)
    assert not jobstate.chunk_superseded(db_url, job_id, 1, first)
    jobstate.chunks_sent(db_url, job_id, [1])  # the reconciler re-sends it after the heartbeat went silent
    second = jobstate.chunk_attempt(db_url, job_id, 1)  # another worker takes it
    assert jobstate.chunk_superseded(db_url, job_id, 1, first)
    assert not jobstate.chunk_superseded(db_url, job_id, 1, second)
    assert jobstate.chunk_done(db_url, job_id, 1, 1.0)
    assert jobstate.chunk_superseded(db_url, job_id, 1, second)  # done: nothing more to store


def _statuses(url: str, job_id: str) -> list[str]:
    with session_scope(url) as s:
        return list(s.scalars(select(Chunk.status).where(Chunk.job_id == job_id).order_by(Chunk.index)))


def test_chunks_beyond_the_window_are_held_and_released_once_each(db_url):
    job_id = _job(db_url, chunks=5)
    jobstate.chunks_sent(db_url, job_id, range(2))
    jobstate.hold_chunks(db_url, job_id, 2)
    assert _statuses(db_url, job_id) == ["pending", "pending", "held", "held", "held"]
    job = next(j for j in jobstate.active_jobs(db_url) if j.id == job_id)
    assert job.open_chunks == ()  # queued, not processing: nothing for the reconciler yet
    jobstate.mark_running(db_url, job_id, "finalizing")
    job = next(j for j in jobstate.active_jobs(db_url) if j.id == job_id)
    assert [c.index for c in job.open_chunks] == [0, 1]  # judged while finalize streams; held ones never
    with ThreadPoolExecutor(8) as pool:
        released = list(pool.map(lambda _: jobstate.release_chunks(db_url, job_id, 4), range(8)))
    assert sorted(i for r in released for i in r) == [2, 3]  # each released (and so sent) by one caller
    assert _statuses(db_url, job_id) == ["pending", "pending", "pending", "pending", "held"]


def test_chunk_status_is_none_once_the_job_ended(db_url):
    job_id = _job(db_url, chunks=2)
    jobstate.mark_running(db_url, job_id, "finalizing")
    assert jobstate.chunk_status(db_url, job_id, 0) == "pending"
    jobstate.chunk_done(db_url, job_id, 0, 0.1)
    assert jobstate.chunk_status(db_url, job_id, 0) == "done"
    jobstate.cancel(db_url, job_id)
    assert jobstate.chunk_status(db_url, job_id, 1) is None


def test_chunks_a_dead_finalize_assembled_are_rewound_to_be_computed_again(db_url):
    job_id = _job(db_url, chunks=3)
    jobstate.mark_running(db_url, job_id, "finalizing")
    for index in range(3):
        jobstate.chunk_attempt(db_url, job_id, index)
        jobstate.chunk_done(db_url, job_id, index, 0.1)
    assert jobstate.done_chunks(db_url, job_id) == [0, 1, 2]
    # finalize had assembled (and deleted) chunks 0 and 1 when it died
    assert jobstate.rewind_chunks(db_url, job_id, [0, 1]) == 2
    assert jobstate.rewind_chunks(db_url, job_id, [0, 1]) == 0  # a second finalize rewinds nothing twice
    assert _statuses(db_url, job_id) == ["held", "held", "done"]
    assert jobstate.get_job(db_url, job_id).chunks_done == 1
    assert jobstate.get_chunk(db_url, job_id, 0).attempts == 0  # recomputing is not a crash
    assert jobstate.release_chunks(db_url, job_id, 8) == [0, 1]
