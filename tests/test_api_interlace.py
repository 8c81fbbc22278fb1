"""Interlaced video through REST v1, real services and workers: detected at intake,
deinterlaced at field rate before colorizing, delivered progressive with twice the frames,
the same duration and the same sound; a progressive clip is left as it is; a deinterlace
nobody can give a field order for is refused with nothing left behind."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.media_factory import interlaced_video, progressive_video

pytestmark = pytest.mark.integration


def _streams(path: Path) -> dict[str, dict]:
    out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-count_frames",
                          str(path)], check=True, capture_output=True).stdout
    return {s["codec_type"]: s for s in json.loads(out)["streams"]}


def _luma(path: Path, filters: str | None = None) -> np.ndarray:
    args = ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path)] + (["-vf", filters] if filters else [])
    raw = subprocess.run(args + ["-f", "rawvideo", "-pix_fmt", "gray", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, 120, 160).astype(np.float32)


def test_interlaced_video_is_deinterlaced_at_field_rate_and_keeps_its_sound(stack, tmp_path):
    source = interlaced_video(tmp_path / "tt.mp4", "tff", frames=24, audio=True)
    response = stack.submit(source, colorize="yes", deinterlace="field")
    assert response.status_code == 202, response.text
    job = stack.wait(response.json()["id"])
    assert job["status"] == "succeeded", job
    facts = job["input"]["facts"]
    assert (facts["frames"], facts["fps"], facts["field_order"]) == (48, "50/1", "tt")
    report = facts["interlaced"]
    assert report["interlaced"] and report["field_order"] == "tff" and report["idet"]["tff"] >= 20, report
    assert report["deinterlace"] == {"mode": "field", "parity": "tff"}
    assert (report["source_frames"], report["source_fps"]) == (24, "25/1")
    assert any("deinterlaced with bwdif one frame per field" in note for note in job["notes"]), job["notes"]
    assert job["progress"]["total"] == 3  # 48 working frames in chunks of 16

    out = stack.download(job, tmp_path / "out.mp4")
    got, src = _streams(out), _streams(source)
    assert int(got["video"]["nb_read_frames"]) == 48 and Fraction(got["video"]["r_frame_rate"]) == 50
    assert got["video"].get("field_order", "progressive") == "progressive"
    assert abs(float(got["video"]["duration"]) - float(src["video"]["duration"])) <= 0.04
    assert abs(float(got["audio"]["duration"]) - float(src["audio"]["duration"])) < 0.05

    # Colorizing keeps the lightness: the output's luma is bwdif's field-rate frames of the
    # input, not its woven frames shown twice.
    delivered = _luma(out)
    fields = _luma(source, "bwdif=mode=send_field:parity=tff:deint=all")
    woven_twice = np.repeat(_luma(source), 2, axis=0)
    to_fields, to_woven = np.abs(delivered - fields).mean(), np.abs(delivered - woven_twice).mean()
    assert to_fields < 3.0 and to_woven > 2 * to_fields, (to_fields, to_woven)


def test_progressive_video_is_not_deinterlaced(stack, tmp_path):
    source = progressive_video(tmp_path / "progressive.mp4", frames=24)
    response = stack.submit(source, colorize="yes")
    assert response.status_code == 202, response.text
    job = stack.wait(response.json()["id"])
    assert job["status"] == "succeeded", job
    facts = job["input"]["facts"]
    assert (facts["frames"], facts["fps"], facts["field_order"]) == (24, "25/1", "progressive")
    assert not facts["interlaced"]["interlaced"] and facts["interlaced"]["deinterlace"] is None
    assert facts["interlaced"]["idet"]["progressive"] >= 20
    assert not any("interlaced" in note for note in job["notes"])
    video = _streams(stack.download(job, tmp_path / "out.mp4"))["video"]
    assert int(video["nb_read_frames"]) == 24 and Fraction(video["r_frame_rate"]) == 25


@pytest.mark.parametrize("form, code", [({"deinterlace": "frame"}, "field_order_unknown"),
                                        ({"master_interlaced": "1"}, "master_interlaced_needs_fields")])
def test_a_deinterlace_that_cannot_be_done_is_refused_and_leaves_nothing(stack, tmp_path, form, code):
    source = progressive_video(tmp_path / "progressive.mp4", frames=12)
    jobs_before, objects_before = stack.db("select count(*) from jobs")[0][0], stack.objects()
    response = stack.submit(source, colorize="yes", **form)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code and "deinterlace" in error["message"], error
    assert stack.db("select count(*) from jobs")[0][0] == jobs_before
    assert stack.stray_objects(objects_before) == []
