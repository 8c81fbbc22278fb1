"""How fast a video job is going and how long it has left, from its own chunk history.

The estimate uses only what the database already records about the job's chunks: each
done chunk's frame count, the GPU seconds it took and when it was marked done. No extra
bookkeeping is written for it, so a page may ask as often as it likes. Pure functions:
the reader (tintype.jobs.watch) hands the samples in, tests hand in made-up ones.

- The job's chunk work began at the earliest "finished minus its own seconds" of its done
  chunks (so probing and queueing before the first chunk are not counted as slowness).
- Frames per second: frames done / (last completion − that beginning), i.e. throughput
  with however many workers ran chunks side by side (a chunk without recorded seconds
  that marks the beginning is not counted: its work happened before it).
- Time left: the frames left at that rate, less the time since the last completion; once
  that is overdue (a slow chunk, a stalled worker) the rate measured up to now is used
  instead, so the estimate grows while nothing finishes rather than sitting at zero.
- With no chunk done yet there is no estimate (None), as there is none for photos.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

# A span shorter than this (chunks finishing together, clock rounding) gives no rate.
MIN_SPAN_SECONDS = 0.05


@dataclass(frozen=True)
class Sample:
    """One done chunk: its output frames, the seconds its last attempt took, when it ended."""

    frames: int
    finished_at: datetime
    seconds: float | None = None


@dataclass(frozen=True)
class Pace:
    frames_done: int
    frames_total: int
    fps: float | None
    eta_seconds: float | None

    def as_json(self) -> dict[str, int | float | None]:
        return {"frames_done": self.frames_done, "frames_total": self.frames_total,
                "fps": None if self.fps is None else round(self.fps, 2),
                "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds, 1)}


def work_began(samples: Iterable[Sample]) -> datetime | None:
    """When the earliest done chunk started (its end less its seconds), None without samples."""
    starts = [s.finished_at - timedelta(seconds=s.seconds or 0.0) for s in samples]
    return min(starts) if starts else None


def estimate(samples: Iterable[Sample], frames_total: int, now: datetime) -> Pace:
    """Frames done, frames per second and seconds left for a job whose done chunks are
    `samples`, out of `frames_total` output frames, as of `now` (all datetimes aware)."""
    done = sorted(samples, key=lambda s: s.finished_at)
    frames_done = sum(s.frames for s in done)
    total = max(frames_total, frames_done)
    began = work_began(done)
    if began is None:
        return Pace(0, total, None, None)
    last = done[-1].finished_at
    span = (last - began).total_seconds()
    if span < MIN_SPAN_SECONDS or frames_done <= 0:
        return Pace(frames_done, total, None, None)
    # A chunk with no recorded seconds that marks the beginning did its work before it.
    counted = sum(s.frames for s in done if s.seconds or s.finished_at != began)
    fps = counted / span
    if fps <= 0:
        return Pace(frames_done, total, None, None)
    left = total - frames_done
    if left <= 0:
        return Pace(frames_done, total, fps, 0.0)
    since_last = max(0.0, (now - last).total_seconds())
    projected = left / fps - since_last
    if projected > 0:
        return Pace(frames_done, total, fps, projected)
    rate_now = counted / (span + since_last)  # overdue: the slower rate measured to now
    return Pace(frames_done, total, fps, left / rate_now)


__all__ = ["Sample", "Pace", "estimate", "work_began", "MIN_SPAN_SECONDS"]
