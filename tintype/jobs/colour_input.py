"""`colorize=auto`, decided at intake from the input's own colour.

The colorizer repaints whatever chroma it finds, so a picture that already has colour
(a sepia or toned print, a tinted photograph, colour film) is kept as it is unless the
user asks (`colorize=yes`); a black-and-white one is colorized. Workers never see
"auto": the decision is written into the job's operations, and a note on the job says
why, for the job page and the API.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from tintype.jobs.errors import IntakeError
from tintype.jobs.options import JobOptions
from tintype.media.probe import VideoFacts
from tintype.media.tone import Tone, measure_frames, measure_image
from tintype.media.video import frame_start, iter_frames

SAMPLED_FRAMES = 5  # a film's tone is the median of this many frames, spread over it
SAMPLE_SIDE = 160  # pixels: the sampled frames are decoded this small


@dataclass(frozen=True)
class Decision:
    options: JobOptions  # colorize decided: in `operations` or not
    note: str | None  # why, for a job that left it to tintype


def decide(options: JobOptions, path: Path, video: VideoFacts | None, guided: bool,
           timeout: float) -> Decision:
    """Resolve `colorize=auto`: colorize a black-and-white input, keep one with colour.
    A colour reference or keyframes (`guided`) ask for colour, so they colorize."""
    if not options.colorize_undecided:
        return Decision(options, None)
    if guided:
        return _colorize(options, "colorize auto: colorized, because a colour reference or keyframes were sent")
    tone = measure_image(path) if video is None else _film_tone(path, video, timeout)
    if not tone.has_colour:
        return _colorize(options, f"colorize auto: the input is {tone.describe()}, so it was colorized")
    if not options.operations:
        raise IntakeError(f"the input already has colour ({tone.describe()}) and nothing was asked to be "
                          "removed: send colorize=yes to recolour it, or inpaint with something to remove",
                          "no_operation", 422)
    return Decision(options, f"colorize auto: the input is {tone.describe()}; its colour was kept "
                             "(send colorize=yes to recolour it)")


def _colorize(options: JobOptions, note: str) -> Decision:
    return Decision(dataclasses.replace(options, operations=(*options.operations, "colorize")), note)


def _film_tone(path: Path, video: VideoFacts, timeout: float) -> Tone:
    """The tone of a few frames spread over the film, each decoded small after a seek."""
    scale = SAMPLE_SIDE / max(video.width, video.height)
    size = (max(2, round(video.width * scale) // 2 * 2), max(2, round(video.height * scale) // 2 * 2))
    count = min(SAMPLED_FRAMES, video.frames)
    frames = []
    for k in range(count):
        index = (2 * k + 1) * video.frames // (2 * count)
        at, filters = frame_start(video, index)
        frames += list(iter_frames(str(path), video.width, video.height, at, 1, timeout, size, filters=filters))
    return measure_frames(frames)


__all__ = ["Decision", "decide"]
