"""Intake's interlacing step: detect, decide how the job deinterlaces, and give the facts of
the stream the pipeline will work on (tintype.media.deinterlace).

The decision is stored with the facts (`input_facts["interlaced"]`), so the chunk tasks,
the planner and the API read one answer. A deinterlace whose field order cannot be told
is refused rather than guessed: the wrong order makes motion judder back and forth, and
nothing downstream could notice.
"""

from __future__ import annotations

from dataclasses import replace

from tintype.jobs.errors import IntakeError
from tintype.jobs.options import AUTO, JobOptions
from tintype.media.deinterlace import Deinterlace, working_facts
from tintype.media.interlace import Interlacing, detect_interlacing
from tintype.media.probe import VideoFacts


def choose(options: JobOptions, found: Interlacing) -> Deinterlace | None:
    """How the job deinterlaces (None: it does not), from its options and what was found.
    auto deinterlaces detected interlaced input at frame rate, or at field rate when the
    master stays interlaced (re-weaving needs one frame per field)."""
    mode = options.deinterlace
    if mode == AUTO:
        mode = ("field" if options.master_interlaced else "frame") if found.interlaced else "off"
    if options.master_interlaced and mode != "field":
        raise IntakeError("master_interlaced keeps the fields of an interlaced input: it needs deinterlace=field "
                          f"(or auto on a video detected as interlaced; this one was not: {found.basis})",
                          "master_interlaced_needs_fields")
    if mode == "off":
        return None
    parity = options.field_order if options.field_order != AUTO else found.field_order
    if parity is None:
        why = "its field order cannot be told" if found.interlaced else "it was not found to be interlaced"
        raise IntakeError(f"deinterlacing needs to know which field comes first, and for this video {why} "
                          f"({found.basis}); give field_order=tff or field_order=bff, or deinterlace=off",
                          "field_order_unknown")
    return Deinterlace(mode, parity)


def interlace_facts(source: str, facts: VideoFacts, options: JobOptions, timeout: float) -> VideoFacts:
    """The working facts of a probed video, carrying the detection report, the decision and
    the input's own frame count and rate."""
    found = detect_interlacing(source, facts, timeout)
    plan = choose(options, found)
    report = {**found.to_json(), "deinterlace": plan.to_json() if plan else None,
              "source_frames": facts.frames, "source_fps": f"{facts.fps_num}/{facts.fps_den}"}
    return replace(working_facts(facts, plan), interlaced=report)


def interlace_note(facts: VideoFacts) -> str | None:
    """The job page's line on interlacing, for a video found or made to be interlaced."""
    report = facts.interlaced or {}
    plan, idet = report.get("deinterlace"), report.get("idet") or {}
    if not report or (not report.get("interlaced") and not plan):
        return None
    counts = f"idet: {idet.get('tff', 0)} tff, {idet.get('bff', 0)} bff, {idet.get('progressive', 0)} progressive"
    found = f"interlaced, {report.get('field_order') or 'field order unknown'}" if report.get("interlaced") \
        else "progressive"
    if plan is None:
        return f"the video is {found} ({counts}); it was not deinterlaced (deinterlace=off)"
    rate = "one frame per field" if plan["mode"] == "field" else "at its frame rate"
    return (f"the video is {found} ({counts}); deinterlaced with bwdif {rate}, {plan['parity']}: "
            f"{facts.frames} frames at {facts.fps_num}/{facts.fps_den} fps")
