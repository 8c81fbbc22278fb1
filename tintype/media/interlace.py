"""Is a video interlaced, and which field comes first: the stream's flag, checked against
what ffmpeg's `idet` filter sees in the pictures.

An interlaced flag is checked: transfers are often flagged interlaced while holding
progressive film frames, and some muxers write `tb`/`bt` where they mean `tt`/`bb`. Where
idet gives a clear verdict on such a stream it decides; where it cannot tell (still or
flat pictures), the flag does. A stream flagged progressive stays progressive: idet calls
fine detail (small test patterns, line-art, halftone scans) woven fields often enough
that deinterlacing on its word would soften good progressive film; what it saw is
reported, and its field order offered, for a user who asks for deinterlace=frame or
field. A stream with no flag (unknown) is decided by idet. `idet` is run on a bounded
sample (at most `IDET_FRAMES` frames from a few places), so detecting costs the same for
a long film as for a short one.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from tintype.media.ffmpeg import FFMPEG, input_options, run_tool
from tintype.media.probe import VideoFacts

# ffprobe's field_order -> the field shown first. ffmpeg documents tb as "top coded first,
# bottom displayed first" and bt the other way round.
STREAM_PARITY = {"tt": "tff", "bt": "tff", "bb": "bff", "tb": "bff"}
IDET_FRAMES = 200  # frames idet looks at, at most, split between IDET_PLACES places
IDET_PLACES = 3
MIN_DETERMINED = 10  # frames idet must classify before its verdict counts
CLEAR_SHARE = 0.8  # share of the classified frames a verdict needs
_CLASS_KEY = "lavfi.idet.multiple.current_frame"
_CLASS_LINE = re.compile(r"^lavfi\.idet\.multiple\.current_frame=(\w+)", re.MULTILINE)


@dataclass(frozen=True)
class IdetCounts:
    """idet's multi-frame classification of the sampled frames."""

    tff: int = 0
    bff: int = 0
    progressive: int = 0
    undetermined: int = 0

    def __add__(self, other: "IdetCounts") -> "IdetCounts":
        return IdetCounts(self.tff + other.tff, self.bff + other.bff, self.progressive + other.progressive,
                          self.undetermined + other.undetermined)

    def verdict(self) -> str | None:
        """tff, bff or progressive when at least MIN_DETERMINED frames were classified and
        one class holds CLEAR_SHARE of them; "interlaced" when woven fields clearly
        dominate but neither order does; None when idet cannot tell."""
        determined = self.tff + self.bff + self.progressive
        if determined < MIN_DETERMINED:
            return None
        for name, count in (("tff", self.tff), ("bff", self.bff), ("progressive", self.progressive)):
            if count >= CLEAR_SHARE * determined:
                return name
        return "interlaced" if self.tff + self.bff >= CLEAR_SHARE * determined else None


@dataclass(frozen=True)
class Interlacing:
    """What detection found: the stream's flag, idet's counts, and the decision."""

    stream: str  # ffprobe's field_order: tt, bb, tb, bt, progressive or unknown
    idet: IdetCounts
    interlaced: bool
    field_order: str | None  # tff or bff; None when progressive or when it cannot be told
    basis: str  # why, in words, for the job page

    def to_json(self) -> dict[str, Any]:
        return {"stream_field_order": self.stream, "idet": asdict(self.idet), "interlaced": self.interlaced,
                "field_order": self.field_order, "basis": self.basis}


def decide(stream: str, counts: IdetCounts) -> Interlacing:
    """The decision from the flag and idet's counts (see the module's docstring)."""
    flagged = STREAM_PARITY.get(stream)
    verdict = counts.verdict()
    if stream == "progressive":
        order = verdict if verdict in ("tff", "bff") else None
        seen = f"; idet sees {verdict} fields (deinterlace=frame or field would use them)" if verdict not in (
            None, "progressive") else ""
        return Interlacing(stream, counts, False, order, f"the stream is flagged progressive{seen}")
    if verdict == "progressive":
        basis = "idet sees progressive frames" + (f" although the stream is flagged {stream}" if flagged else "")
        return Interlacing(stream, counts, False, None, basis)
    if verdict in ("tff", "bff"):
        agree = "agrees with" if verdict == flagged else "overrides"
        basis = f"idet sees {verdict} fields; it {agree} the stream's flag ({stream})"
        return Interlacing(stream, counts, True, verdict, basis)
    if verdict == "interlaced":
        if flagged:
            return Interlacing(stream, counts, True, flagged, f"idet sees woven fields; the order is the "
                               f"stream's flag ({stream})")
        return Interlacing(stream, counts, True, None, "idet sees woven fields but not which comes first, "
                           f"and the stream's flag ({stream}) does not say")
    if flagged:
        return Interlacing(stream, counts, True, flagged, f"idet cannot tell; the stream is flagged {stream}")
    return Interlacing(stream, counts, False, None, f"idet cannot tell; the stream is flagged {stream}")


def sample_starts(facts: VideoFacts, frames: int = IDET_FRAMES, places: int = IDET_PLACES) -> list[tuple[float, int]]:
    """(seconds from the start, frame count) of each sampled run: the whole film when it is
    short, else `places` runs spread over it (the first at the start)."""
    if facts.frames <= frames:
        return [(0.0, facts.frames)]
    run = frames // places
    stamps = facts.timestamps
    starts = [round(i * (facts.frames - run) / max(1, places - 1)) for i in range(places)]
    return [(stamps[s] if stamps else s * float(1 / facts.fps), run) for s in starts]


def idet_counts(source: str, facts: VideoFacts, timeout: float = 120) -> IdetCounts:
    """idet's counts over the sampled runs, each decoded from a fast seek."""
    total = IdetCounts()
    for start, count in sample_starts(facts):
        total = total + _idet_run(source, facts.start_time + start if start > 0 else None, count, timeout)
    return total


def _idet_run(source: str, seek: float | None, count: int, timeout: float) -> IdetCounts:
    """idet's multi-frame class of each of `count` frames, which ffmpeg's metadata filter
    prints to stdout one frame at a time."""
    args = [FFMPEG, "-nostdin", "-v", "error"]
    if seek is not None:
        args += ["-ss", f"{seek:.6f}"]
    args += [*input_options(source), "-i", source, "-map", "0:v:0", "-vf",
             f"idet,metadata=mode=print:key={_CLASS_KEY}:file=-", "-frames:v", str(count), "-f", "null", "-"]
    classes = _CLASS_LINE.findall(run_tool(args, timeout).decode("utf-8", "replace"))
    return IdetCounts(*(classes.count(name) for name in ("tff", "bff", "progressive", "undetermined")))


def detect_interlacing(source: str, facts: VideoFacts, timeout: float = 120) -> Interlacing:
    """The flag from the probe, checked with idet."""
    return decide(facts.field_order, idet_counts(source, facts, timeout))
