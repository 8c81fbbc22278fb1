"""The pure parts of `make bench-e2e`: paired ratios, forward coverage, the storage
projection and verdict, the timeline's lanes, the MP4 check and the forward timer."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import e2e_stats as stats
from bench.e2e_plot import lanes
from bench.e2e_tintype import is_playable_mp4
from bench.forward_timer import read_forward_log, time_colorizer


def test_paired_ratios_and_their_median() -> None:
    ratios = stats.paired_ratios([30.0, 18.0, 20.0], [20.0, 20.0, 10.0])
    assert ratios == pytest.approx([1.5, 0.9, 2.0])
    assert stats.median_ratio(ratios) == pytest.approx(1.5)
    assert stats.median_ratio([]) is None
    with pytest.raises(ValueError, match="pairs"):
        stats.paired_ratios([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="not positive"):
        stats.paired_ratios([1.0], [0.0])


def test_covered_seconds_merges_overlaps_and_clips_to_the_wall() -> None:
    # two processes: [1, 4] and [3, 6] overlap (5 s together); [9, 12] sticks out past the wall end 10
    intervals = [(3.0, 6.0), (1.0, 4.0), (9.0, 12.0), (-2.0, 0.5)]
    assert stats.covered_seconds(intervals, 0.0, 10.0) == pytest.approx(5.0 + 1.0 + 0.5)
    assert stats.outside_share(intervals, 0.0, 10.0) == pytest.approx(1 - 6.5 / 10)
    assert stats.outside_share([], 0.0, 4.0) == 1.0
    with pytest.raises(ValueError):
        stats.outside_share([], 3.0, 3.0)


def test_storage_projection_grows_only_when_the_peak_does() -> None:
    # 1 MB per frame of growth: 100 → 200 frames adds 100 MB; 1000 frames → 1000 MB
    assert stats.storage_projection(100, 100e6, 200, 200e6, 1000) == pytest.approx(1000e6)
    # a peak that does not grow is projected as it is
    assert stats.storage_projection(100, 300e6, 200, 290e6, 10**6) == 300e6
    with pytest.raises(ValueError, match="longer"):
        stats.storage_projection(200, 1.0, 100, 2.0, 1000)
    assert stats.frames_in(stats.TWO_HOURS_S, 24) == 172800


def test_storage_bound_verdict() -> None:
    assert stats.storage_bounded(3, 4, long_chunks=20) is True
    assert stats.storage_bounded(5, 10, long_chunks=20) is False  # grew with length
    assert stats.storage_bounded(9, 9, long_chunks=20) is False  # over the bound
    assert stats.storage_bounded(2, 5, long_chunks=5) is None  # too short to tell


def test_lanes_pack_overlapping_spans_apart() -> None:
    spans = [{"stage": "probe", "start": 0, "end": 1},
             {"stage": "process_chunk", "start": 1, "end": 5}, {"stage": "process_chunk", "start": 2, "end": 4},
             {"stage": "process_chunk", "start": 5, "end": 7}, {"stage": "finalize", "start": 7, "end": 8}]
    rows = lanes(spans)
    assert [name for name, _ in rows] == ["probe", "process_chunk 1", "process_chunk 2", "finalize"]
    assert [(s["start"], s["end"]) for s in rows[1][1]] == [(1, 5), (5, 7)]
    assert [(s["start"], s["end"]) for s in rows[2][1]] == [(2, 4)]


def _box(kind: bytes, payload: bytes = b"") -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def test_playable_mp4_needs_an_index_and_media(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    path.write_bytes(_box(b"ftyp", b"isom") + _box(b"moov", b"\0" * 16) + _box(b"moof") + _box(b"mdat", b"x"))
    assert is_playable_mp4(path)
    path.write_bytes(_box(b"ftyp", b"isom") + _box(b"mdat", b"x" * 10))  # no index yet
    assert not is_playable_mp4(path)
    assert not is_playable_mp4(tmp_path / "missing.mp4")


class _Shape:
    shape = (3, 1, 8, 8)


class _Model:
    def __init__(self) -> None:
        self.calls = 0

    def predict_ab(self, light: object) -> str:
        self.calls += 1
        return "ab"


def test_forward_timer_logs_each_call_once(tmp_path: Path) -> None:
    log = tmp_path / "forward.log"
    model = _Model()
    assert time_colorizer(time_colorizer(model, str(log)), str(log)) is model  # wrapped once only
    assert model.predict_ab(_Shape()) == "ab"
    model.predict_ab(_Shape())
    rows = read_forward_log(log)
    assert model.calls == 2 and len(rows) == 2
    pid, start, end, frames = rows[0]
    assert frames == 3 and end >= start > 0 and pid > 0
    assert read_forward_log(tmp_path / "none.log") == []


def test_phases_add_up_to_the_wall() -> None:
    spans = [{"stage": "probe", "start": 3.0, "end": 4.0},
             {"stage": "process_chunk", "start": 6.0, "end": 10.0},
             {"stage": "process_chunk", "start": 10.0, "end": 14.0},
             {"stage": "finalize", "start": 14.5, "end": 17.0}]
    out = stats.phases(spans, [(7.0, 9.0), (11.0, 12.0)], launched=0.0, submitted=2.0, ended=17.2, exited=18.0)
    assert out["start → submitted"] == 2.0
    assert out["submitted → probe starts"] == 1.0
    assert out["probe → first chunk starts"] == 2.0
    assert out["chunks (first start → last end)"] == 8.0
    assert out["last chunk → finalize starts"] == 0.5
    assert out["job ended → exit"] == 0.8
    assert out["forward in chunks"] == 3.0
    assert sum(v for k, v in out.items() if k != "forward in chunks") == pytest.approx(18.0)
