"""Frames per second and time left from a job's done chunks (tintype.jobs.pace)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tintype.jobs.pace import Sample, estimate, work_began

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_no_chunk_done_gives_no_estimate():
    pace = estimate([], 480, at(5))
    assert (pace.frames_done, pace.frames_total, pace.fps, pace.eta_seconds) == (0, 480, None, None)


def test_one_chunk_is_timed_from_its_own_seconds():
    # 48 frames done in 4 s (it began at 6 s, after probing): 12 frames/s, 432 left → 36 s
    pace = estimate([Sample(48, at(10), 4.0)], 480, at(10))
    assert pace.fps == pytest.approx(12.0)
    assert pace.eta_seconds == pytest.approx(36.0)


def test_throughput_counts_chunks_run_side_by_side():
    # Two workers: chunks of 4 s each, two at a time, began at 0: 4 chunks by 8 s
    samples = [Sample(48, at(4), 4.0), Sample(48, at(4.1), 4.0), Sample(48, at(8), 3.9), Sample(48, at(8.1), 4.0)]
    pace = estimate(samples, 480, at(8.1))
    assert work_began(samples) == at(0)
    assert pace.frames_done == 192
    assert pace.fps == pytest.approx(192 / 8.1)
    assert pace.eta_seconds == pytest.approx(288 / (192 / 8.1))


def test_time_left_counts_down_between_completions():
    samples = [Sample(48, at(4), 4.0)]
    first = estimate(samples, 480, at(4)).eta_seconds
    later = estimate(samples, 480, at(7)).eta_seconds
    assert first - later == pytest.approx(3.0)


def test_an_overdue_chunk_makes_the_estimate_grow_not_stop_at_zero():
    samples = [Sample(48, at(4), 4.0)]  # 12 frames/s: 432 left would take 36 s
    stalled = estimate(samples, 480, at(4 + 60))
    assert stalled.eta_seconds > 0
    assert stalled.eta_seconds == pytest.approx(432 / (48 / 64))
    assert estimate(samples, 480, at(4 + 90)).eta_seconds > stalled.eta_seconds


def test_all_frames_done_leaves_nothing_and_keeps_the_rate():
    samples = [Sample(24, at(2), 2.0), Sample(24, at(4), 2.0)]
    pace = estimate(samples, 48, at(30))
    assert pace.eta_seconds == 0.0 and pace.fps == pytest.approx(12.0)
    assert pace.as_json() == {"frames_done": 48, "frames_total": 48, "fps": 12.0, "eta_seconds": 0.0}


def test_chunks_without_seconds_use_the_span_between_completions():
    samples = [Sample(10, at(1)), Sample(10, at(3))]  # timed from the first completion: 10 frames in 2 s
    pace = estimate(samples, 100, at(3))
    assert pace.fps == pytest.approx(5.0) and pace.eta_seconds == pytest.approx(16.0)
    assert estimate([Sample(10, at(1))], 100, at(2)).fps is None  # one instant: no rate
