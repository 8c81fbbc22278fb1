"""The arithmetic of `make bench-e2e`, kept pure so it is unit-tested apart from the runs:
paired ratios, how much of a run the model's forward covered, and whether intermediate
storage grows with the film's length.
"""

from __future__ import annotations

import statistics
from typing import Callable, Iterable, Sequence

Interval = tuple[float, float]
TWO_HOURS_S = 7200.0
STORAGE_BOUND_CHUNKS = 8  # the target: intermediates never exceed this many chunks


def paired_ratios(tintype_walls: Sequence[float], naive_walls: Sequence[float]) -> list[float]:
    """tintype wall / naive wall for each alternating pair: pairs cancel the slow drift of a
    shared machine's load, which a ratio of two medians would not."""
    if len(tintype_walls) != len(naive_walls):
        raise ValueError(f"{len(tintype_walls)} tintype runs but {len(naive_walls)} naive runs: "
                         "ratios need pairs")
    if any(w <= 0 for w in naive_walls):
        raise ValueError(f"a naive wall time is not positive: {list(naive_walls)}")
    return [t / n for t, n in zip(tintype_walls, naive_walls)]


def median_ratio(ratios: Sequence[float]) -> float | None:
    """The median of the paired ratios, None when there are none."""
    return statistics.median(ratios) if ratios else None


def covered_seconds(intervals: Iterable[Interval], start: float, end: float) -> float:
    """Seconds of [start, end] during which at least one interval runs (their union,
    clipped): with two model processes the forward covers the wall where either runs."""
    clipped = sorted((max(a, start), min(b, end)) for a, b in intervals if b > start and a < end)
    total, reach = 0.0, start
    for a, b in clipped:
        if b > reach:
            total += b - max(a, reach)
            reach = b
    return total


def outside_share(intervals: Iterable[Interval], start: float, end: float) -> float:
    """Share of the wall [start, end] when no model forward ran: what tintype adds to the
    model (decode, colour conversions, encode, waiting), the figure the issue targets."""
    wall = end - start
    if wall <= 0:
        raise ValueError(f"empty wall interval [{start}, {end}]")
    return 1.0 - covered_seconds(intervals, start, end) / wall


def storage_projection(short_frames: int, short_peak: float, long_frames: int, long_peak: float,
                       target_frames: int) -> float:
    """Peak intermediate bytes projected to `target_frames` by the line through the two
    measured lengths; a peak that does not grow (slope ≤ 0) stays at the larger one."""
    if long_frames <= short_frames:
        raise ValueError(f"the long run ({long_frames} frames) must be longer than the short ({short_frames})")
    slope = (long_peak - short_peak) / (long_frames - short_frames)
    if slope <= 0:
        return max(short_peak, long_peak)
    return long_peak + slope * (target_frames - long_frames)


def storage_bounded(short_peak_chunks: int, long_peak_chunks: int, long_chunks: int,
                    bound: int = STORAGE_BOUND_CHUNKS) -> bool | None:
    """Whether the peak number of chunk intermediates stays within `bound` and does not
    grow with length (one chunk of scheduling jitter allowed); None when the long run has
    too few chunks to tell (a job of at most `bound` chunks is within it whatever it keeps)."""
    if long_chunks <= bound:
        return None
    return long_peak_chunks <= bound and long_peak_chunks <= short_peak_chunks + 1


def frames_in(seconds: float, fps: float) -> int:
    """Frames of a film of `seconds` at `fps` (for the two-hour projection)."""
    return int(round(seconds * fps))


def phases(spans: list[dict], forwards: list[Interval], launched: float, submitted: float,
           ended: float, exited: float) -> dict[str, float]:
    """Where one tintype run's wall went, in seconds, from its task spans ({stage, start,
    end}) and the job's times: each phase runs from one landmark to the next, so they add
    up to the wall. A phase is negative where stages overlap (a reduce that starts before
    the last chunk ends). `forward in chunks` is the part of the chunk phase during which
    a model forward ran; the rest of it is decoding, colour conversion and writing."""
    def first(stage: str, key: str, pick: Callable[..., float]) -> float | None:
        times = [s[key] for s in spans if s["stage"] == stage]
        return pick(times) if times else None

    chunk_start, chunk_end = first("process_chunk", "start", min), first("process_chunk", "end", max)
    final_start, final_end = first("finalize", "start", min), first("finalize", "end", max)
    probe_start, probe_end = first("probe", "start", min), first("probe", "end", max)
    marks = [("start → submitted", launched), ("submitted → probe starts", submitted),
             ("probe", probe_start), ("probe → first chunk starts", probe_end),
             ("chunks (first start → last end)", chunk_start), ("last chunk → finalize starts", chunk_end),
             ("finalize", final_start), ("finalize → job ended", final_end), ("job ended → exit", ended),
             ("", exited)]
    known = [(name, t) for name, t in marks if t is not None]
    out = {name: round(nxt - t, 2) for (name, t), (_, nxt) in zip(known, known[1:])}
    if chunk_start is not None and chunk_end is not None:
        out["forward in chunks"] = round(covered_seconds(forwards, chunk_start, chunk_end), 2)
    return out
