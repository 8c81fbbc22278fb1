"""Deinterlacing with bwdif before restoration, and weaving fields back for a master.

A deinterlaced job works on the frames bwdif makes, not on the input's: at frame rate one
frame per input frame, at field rate two (one per field, at twice the rate). Intake turns
the probed facts into the facts of that working stream (`working_facts`), and everything
after it (chunk plans, the delivery, its frame-count check) counts working frames: output
frame i = working frame i. The sound and the duration are the input's.

bwdif makes a frame from the previous, current and next input frames, and treats the
first and last frame of what it is given as edges. So a chunk decodes one input frame
before its range as context and drops what bwdif made from it (`Deinterlace.start`), and
its decode runs on past its range (ffmpeg stops after the frames asked for), so every
frame gets its real neighbours: chunks give byte for byte what one decode of the whole
film gives.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from tintype.media.probe import VideoFacts

MODES = ("frame", "field")
PARITIES = ("tff", "bff")


@dataclass(frozen=True)
class Deinterlace:
    """How a job deinterlaces: `mode` frame (one frame per input frame) or field (one per
    field, twice the rate), with the input's field order `parity` (tff or bff)."""

    mode: str
    parity: str

    def __post_init__(self) -> None:
        if self.mode not in MODES or self.parity not in PARITIES:
            raise ValueError(f"deinterlace mode {self.mode!r} / parity {self.parity!r}: expected "
                             f"{'|'.join(MODES)} and {'|'.join(PARITIES)}")

    @property
    def step(self) -> int:
        """Working frames per input frame."""
        return 2 if self.mode == "field" else 1

    def bwdif(self) -> str:
        """The filter, deinterlacing every frame whatever its own flag says (a stream
        flagged progressive may hold woven fields: detection decided)."""
        send = "send_field" if self.mode == "field" else "send_frame"
        return f"bwdif=mode={send}:parity={self.parity}:deint=all"

    def drop(self, index: int) -> int:
        """Frames bwdif makes before working frame `index` when decoding starts at the
        input frame before `index`'s own (its context), or at the first frame."""
        own = index // self.step
        return (self.step if own > 0 else 0) + index % self.step

    def filters(self, index: int) -> list[str]:
        """The filters after the decode's time selection, for a read that starts at
        working frame `index`."""
        drop = self.drop(index)
        return [self.bwdif()] + ([f"trim=start_frame={drop}"] if drop else [])

    def start(self, facts: VideoFacts, index: int) -> float | None:
        """The seek (seconds from the start, like media.video.seek_time) of a read that
        starts at working frame `index` of the working `facts`: between the input frames
        before the context frame and the context frame itself; None for the first."""
        context = max(0, index // self.step - 1)
        if context == 0:
            return None
        stamps = facts.timestamps
        return (stamps[(context - 1) * self.step] + stamps[context * self.step]) / 2.0

    def to_json(self) -> dict[str, str]:
        return {"mode": self.mode, "parity": self.parity}

    @classmethod
    def of_facts(cls, facts: dict[str, Any] | None) -> "Deinterlace | None":
        """A job's deinterlacing from its stored input facts (None: it does not)."""
        plan = ((facts or {}).get("interlaced") or {}).get("deinterlace")
        return cls(plan["mode"], plan["parity"]) if plan else None


def field_times(stamps: list[float], rate: Fraction) -> list[float]:
    """Two times per input frame: its own, and halfway to the next (for the last frame,
    half a frame at `rate` on), which is where bwdif's field-rate frames fall."""
    half = float(1 / rate) / 2
    out: list[float] = []
    for i, stamp in enumerate(stamps):
        after = (stamp + stamps[i + 1]) / 2 if i + 1 < len(stamps) else stamp + half
        out += [stamp, after]
    return out


def working_facts(facts: VideoFacts, deinterlace: Deinterlace | None) -> VideoFacts:
    """The facts of the stream the job works on (see the module's docstring)."""
    if deinterlace is None or deinterlace.step == 1:
        return facts
    rate = facts.fps * 2
    return replace(facts, frames=facts.frames * 2, fps_num=rate.numerator, fps_den=rate.denominator,
                   timestamps=field_times(facts.timestamps, facts.fps))


def reweave_filters(parity: str) -> list[str]:
    """The filters that weave a field-rate progressive stream back into interlaced frames
    at half its rate, `parity` first: each pair of frames gives one frame, the first's
    field lines from the first and the others from the second."""
    if parity not in PARITIES:
        raise ValueError(f"parity must be one of {', '.join(PARITIES)}, got {parity!r}")
    weave = "interleave_top" if parity == "tff" else "interleave_bottom"
    return [f"tinterlace=mode={weave}", f"setfield={parity}"]


def interlaced_encode_args(parity: str) -> list[str]:
    """Encoder flags that code the woven frames as interlaced (field DCT and motion
    estimation) and flag the stream's field order, for H.264 or MPEG-2 encoders."""
    return ["-flags", "+ilme+ildct", "-field_order", "tt" if parity == "tff" else "bb"]


def reweave_args(parity: str) -> list[str]:
    """ffmpeg output arguments for an interlaced master made from the field-rate frames of a
    job deinterlaced with `mode=field`: the filter chain and the interlaced coding flags
    (the master writer adds its codec, which must code interlaced pictures)."""
    return ["-vf", ",".join(reweave_filters(parity)), *interlaced_encode_args(parity)]
