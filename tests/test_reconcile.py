"""The reconciler's decisions: re-send exactly the work that is neither held by the
broker nor alive, and nothing that is merely waiting its turn."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tintype.jobs.state import ActiveJob, OpenChunk
from tintype.tasks.reconcile import CHUNK, FINALIZE, IMAGE, PLAN_COLOUR, PROBE, TRACK, plan_resends

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
OLD, FRESH = NOW - timedelta(seconds=600), NOW - timedelta(seconds=5)


def _job(stage: str = "processing", status: str = "running", updated: datetime = OLD, chunks=(), done: int = 0,
         total: int = 3, celery_id: str | None = "t", kind: str = "video") -> ActiveJob:
    return ActiveJob("j1", kind, status, stage, updated, celery_id, total, done, tuple(chunks))


def _plan(job: ActiveJob, held=frozenset()) -> list[tuple[str, tuple]]:
    return [(r.task, r.args) for r in plan_resends([job], None if held is None else set(held), NOW, 60)]


def test_queued_job_waiting_in_the_broker_is_left_alone():
    assert _plan(_job("queued", "queued"), held={(PROBE, ("j1",))}) == []


def test_queued_job_lost_by_the_broker_or_never_sent_is_sent():
    assert _plan(_job("queued", "queued")) == [(PROBE, ("j1",))]
    assert _plan(_job("queued", "queued", celery_id=None), held=None) == [(PROBE, ("j1",))]
    assert _plan(_job("queued", "queued", updated=FRESH, celery_id=None), held=None) == []  # being recorded
    assert _plan(_job("queued", "queued", updated=FRESH)) == []  # just sent: give it the lease


def test_only_missing_chunks_are_resent():
    chunks = [OpenChunk(0, "running", FRESH),  # alive
              OpenChunk(1, "running", OLD),  # worker died
              OpenChunk(2, "pending", OLD),  # still queued behind other jobs
              OpenChunk(3, "pending", OLD)]  # lost with the broker's data
    held = {(CHUNK, ("j1", 2)), (CHUNK, ("j1", 1))}
    assert _plan(_job(chunks=chunks, total=5), held) == [(CHUNK, ("j1", 1)), (CHUNK, ("j1", 3))]


def test_chunks_are_judged_while_finalize_streams_but_held_ones_never_sent():
    chunks = [OpenChunk(3, "running", OLD),  # worker died while finalize waits for it
              OpenChunk(4, "pending", OLD),  # lost with the broker's data
              OpenChunk(9, "held", OLD)]  # outside the dispatch window: finalize releases it
    alive = _job("finalizing", updated=FRESH, chunks=chunks, total=12, done=3)
    assert _plan(alive, {(FINALIZE, ("j1",))}) == [(CHUNK, ("j1", 3)), (CHUNK, ("j1", 4))]
    dead = _job("finalizing", chunks=chunks, total=12, done=3)
    assert _plan(dead, {(FINALIZE, ("j1",))}) == [(FINALIZE, ("j1",)), (CHUNK, ("j1", 3)), (CHUNK, ("j1", 4))]
    assert _plan(_job("finalize_queued", chunks=chunks[2:], total=12, done=3), {(FINALIZE, ("j1",))}) == []


def test_without_a_broker_view_only_silent_heartbeats_count():
    chunks = [OpenChunk(1, "running", OLD), OpenChunk(2, "pending", OLD)]
    assert _plan(_job(chunks=chunks), held=None) == [(CHUNK, ("j1", 1))]


def test_finalize_is_sent_when_the_first_chunk_done_died_before_sending_it():
    assert _plan(_job(done=3, total=3)) == [(FINALIZE, ("j1",))]
    assert _plan(_job(done=1, total=3)) == [(FINALIZE, ("j1",))]  # finalize streams from the first chunk
    assert _plan(_job(done=1, total=3, updated=FRESH)) == []
    assert _plan(_job(done=0, total=3)) == []


def test_started_work_that_went_silent_is_resent_even_if_its_message_is_unacknowledged():
    held = {(FINALIZE, ("j1",)), (TRACK, ("j1",)), (PROBE, ("j1",))}  # a dead worker's unacked messages
    assert _plan(_job("finalizing"), held) == [(FINALIZE, ("j1",))]
    assert _plan(_job("tracking"), held) == [(TRACK, ("j1",))]
    assert _plan(_job("probing"), held) == [(PROBE, ("j1",))]
    assert _plan(_job("finalizing", updated=FRESH)) == []


def test_handed_over_work_waiting_in_a_queue_is_left_alone():
    assert _plan(_job("finalize_queued"), held={(FINALIZE, ("j1",))}) == []
    assert _plan(_job("track_queued"), held={(TRACK, ("j1",))}) == []
    assert _plan(_job("finalize_queued")) == [(FINALIZE, ("j1",))]  # lost with the broker's data
    assert _plan(_job("track_queued")) == [(TRACK, ("j1",))]


def test_a_photograph_is_resent_as_one_task():
    assert _plan(_job("image_queued", kind="image", total=1), held={(IMAGE, ("j1",))}) == []
    assert _plan(_job("image_queued", kind="image", total=1)) == [(IMAGE, ("j1",))]
    assert _plan(_job(kind="image", total=1), held={(IMAGE, ("j1",))}) == [(IMAGE, ("j1",))]  # died running


def test_a_colour_plan_lost_or_silent_is_sent_again():
    assert _plan(_job("colour_queued"), held={(PLAN_COLOUR, ("j1",))}) == []  # waiting its turn
    assert _plan(_job("colour_queued")) == [(PLAN_COLOUR, ("j1",))]  # lost with the broker's data
    assert _plan(_job("planning_colour"), held={(PLAN_COLOUR, ("j1",))}) == [(PLAN_COLOUR, ("j1",))]  # worker died
    assert _plan(_job("planning_colour", updated=FRESH)) == []  # alive
