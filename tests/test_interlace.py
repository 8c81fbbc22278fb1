"""Interlaced input: detection (flag checked with idet), the deinterlace decision, exact
chunked bwdif reads, the working facts of field-rate jobs, and the re-weave for a master.
Media is generated here (tests.media_factory); nothing needs services."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.media_factory import interlaced_video, progressive_video
from tintype.jobs.errors import IntakeError
from tintype.jobs.interlace import choose, interlace_facts, interlace_note
from tintype.jobs.options import OptionError, parse_options
from tintype.media.deinterlace import Deinterlace, field_times, reweave_args, reweave_filters, working_facts
from tintype.media.interlace import IdetCounts, decide, detect_interlacing, sample_starts
from tintype.media.probe import probe_video
from tintype.media.video import iter_yuv_frames, read_range
from tintype.settings import load_settings
from tintype.tasks.probe import plan_chunks


def _options(**form: str):
    return parse_options({"operations": "colorize", **form}, load_settings())


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("interlace")
    return {"tt": interlaced_video(tmp / "tt.mp4", "tff", frames=30),
            "bb": interlaced_video(tmp / "bb.mp4", "bff", frames=24),
            "hidden": interlaced_video(tmp / "hidden.mp4", "tff", frames=24, flag="progressive"),
            "mislabelled": interlaced_video(tmp / "mislabelled.mp4", "tff", frames=24, flag="bb"),
            "progressive": progressive_video(tmp / "progressive.mp4", frames=24)}


@pytest.mark.parametrize("name, stream, order", [("tt", "tt", "tff"), ("bb", "bb", "bff"),
                                                 ("mislabelled", "bb", "tff")])
def test_interlaced_clips_are_detected_with_their_field_order(clips, name, stream, order):
    facts = probe_video(str(clips[name]))
    found = detect_interlacing(str(clips[name]), facts)
    assert facts.field_order == stream
    assert found.interlaced and found.field_order == order, found
    woven = found.idet.tff if order == "tff" else found.idet.bff
    assert woven >= 0.8 * facts.frames, found.idet
    assert ("overrides" in found.basis) == (stream != order[0] * 2), found.basis


def test_woven_fields_in_a_stream_flagged_progressive_are_reported_not_deinterlaced(clips):
    facts = probe_video(str(clips["hidden"]))
    found = detect_interlacing(str(clips["hidden"]), facts)
    assert facts.field_order == "progressive" and found.idet.tff >= 0.8 * facts.frames, found.idet
    assert not found.interlaced and found.field_order == "tff"  # offered for deinterlace=frame or field
    assert "flagged progressive; idet sees tff fields" in found.basis
    assert choose(_options(), found) is None
    assert choose(_options(deinterlace="frame"), found).parity == "tff"


def test_a_progressive_clip_is_not_flagged(clips):
    facts = probe_video(str(clips["progressive"]))
    found = detect_interlacing(str(clips["progressive"]), facts)
    assert facts.field_order == "progressive"
    assert not found.interlaced and found.field_order is None, found
    assert found.idet.progressive >= 0.8 * facts.frames and found.idet.tff + found.idet.bff <= 2, found.idet


def test_decisions_from_flag_and_counts():
    unsure = IdetCounts(undetermined=40)
    assert decide("tt", unsure).field_order == "tff" and decide("bt", unsure).field_order == "tff"
    assert decide("tb", unsure).field_order == "bff"  # ffmpeg: top coded first, bottom shown first
    assert not decide("progressive", unsure).interlaced and not decide("unknown", unsure).interlaced
    film_in_fields = decide("tt", IdetCounts(progressive=50, tff=2))
    assert not film_in_fields.interlaced and "flagged tt" in film_in_fields.basis
    tied = decide("unknown", IdetCounts(tff=25, bff=25))
    assert tied.interlaced and tied.field_order is None
    assert decide("bb", IdetCounts(tff=25, bff=25)).field_order == "bff"
    assert IdetCounts(tff=5, progressive=3).verdict() is None  # too few frames classified


def test_idet_samples_a_bounded_number_of_frames(clips):
    facts = probe_video(str(clips["tt"]))
    assert sample_starts(facts) == [(0.0, 30)]
    facts.frames, facts.timestamps = 10_000, [i / 25 for i in range(10_000)]
    runs = sample_starts(facts)
    assert len(runs) == 3 and sum(n for _, n in runs) <= 200
    assert runs[0][0] == 0.0 and runs[-1][0] + runs[-1][1] / 25 <= 400.0 + 1e-9


def test_the_deinterlace_choice_and_its_refusals(clips):
    interlaced = decide("tt", IdetCounts(tff=30))
    progressive = decide("progressive", IdetCounts(progressive=30))
    unknown = decide("unknown", IdetCounts(tff=15, bff=15))
    assert choose(_options(), interlaced) == Deinterlace("frame", "tff")
    assert choose(_options(), progressive) is None
    assert choose(_options(deinterlace="off"), interlaced) is None
    assert choose(_options(master_interlaced="1"), interlaced) == Deinterlace("field", "tff")
    assert choose(_options(deinterlace="field", field_order="bff"), interlaced) == Deinterlace("field", "bff")
    with pytest.raises(IntakeError) as err:
        choose(_options(), unknown)
    assert err.value.code == "field_order_unknown" and "field_order=tff" in str(err.value)
    assert choose(_options(field_order="bff"), unknown) == Deinterlace("frame", "bff")
    with pytest.raises(IntakeError) as err:
        choose(_options(deinterlace="frame"), progressive)  # forced, and nothing says which field is first
    assert err.value.code == "field_order_unknown"
    with pytest.raises(IntakeError) as err:
        choose(_options(master_interlaced="1"), progressive)
    assert err.value.code == "master_interlaced_needs_fields"
    with pytest.raises(OptionError):
        _options(deinterlace="sideways")


def test_field_rate_working_facts_double_frames_and_rate_but_not_duration(clips):
    facts = probe_video(str(clips["tt"]))
    work = interlace_facts(str(clips["tt"]), facts, _options(deinterlace="field"), 60)
    assert (work.frames, work.fps, work.duration) == (60, Fraction(50), facts.duration)
    assert work.timestamps[::2] == facts.timestamps
    assert work.timestamps[1] == pytest.approx(0.02)
    assert work.timestamps[-1] == pytest.approx(facts.timestamps[-1] + 0.02)
    report = work.to_json()["interlaced"]
    assert report["deinterlace"] == {"mode": "field", "parity": "tff"}
    assert (report["source_frames"], report["source_fps"], report["stream_field_order"]) == (30, "25/1", "tt")
    assert report["idet"]["tff"] >= 24
    assert "one frame per field" in interlace_note(work) and "60 frames at 50/1" in interlace_note(work)
    assert working_facts(facts, Deinterlace("frame", "tff")) is facts
    assert field_times([0.0, 0.04, 0.1], Fraction(25)) == pytest.approx([0.0, 0.02, 0.04, 0.07, 0.1, 0.12])


@pytest.mark.parametrize("mode", ["frame", "field"])
def test_chunks_decode_the_same_bytes_as_one_whole_decode(clips, mode):
    """Each chunk seeks and deinterlaces on its own; bwdif's context frame and the decode
    running past the range make its frames those of one decode of the whole film, also
    for chunks that start on a film's second field."""
    source = str(clips["tt"])
    plan = Deinterlace(mode, "tff")
    facts = working_facts(probe_video(source), plan)
    whole = [f.tobytes() for f in iter_yuv_frames(source, facts.width, facts.height, None, filters=plan.filters(0))]
    assert len(whole) == facts.frames
    chunks = plan_chunks(facts, 7, 2, plan)
    assert len(chunks) == -(-facts.frames // 7) and any(c.decode_start % 2 for c in chunks)
    for chunk in chunks:
        part = [f.tobytes() for f in iter_yuv_frames(source, facts.width, facts.height, chunk.seek_time,
                                                     chunk.decode_count, filters=plan.filters(chunk.decode_start))]
        assert part == whole[chunk.decode_start:chunk.decode_start + chunk.decode_count], chunk


def test_reads_of_a_deinterlaced_job_give_its_working_frames(clips):
    """Poster, keyframe checks, tracking, the colour plan and the compare poster read a
    job's frames through media.video.frame_start: frame i is working frame i."""
    source = str(clips["tt"])
    facts = interlace_facts(source, probe_video(source), _options(deinterlace="field"), 60)
    whole = read_range(source, facts, 0, facts.frames)
    assert len(whole) == 60
    for index, count in ((0, 1), (1, 1), (9, 3), (59, 1)):
        part = read_range(source, facts, index, count)
        assert all(np.array_equal(a, b) for a, b in zip(part, whole[index:index + count], strict=True)), index
    assert not np.array_equal(whole[8], whole[9])  # the two fields of a frame are two pictures


def _gray(path: Path, filters: list[str]) -> np.ndarray:
    args = ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path)] + (["-vf", ",".join(filters)] if filters else [])
    raw = subprocess.run(args + ["-f", "rawvideo", "-pix_fmt", "gray", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, 120, 160).astype(np.float64)


def field_psnr(a: np.ndarray, b: np.ndarray, first_line: int) -> float:
    """PSNR (dB) of one field (every other line from `first_line`) of two frame stacks."""
    mse = float(((a[:, first_line::2] - b[:, first_line::2]) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)


@pytest.mark.parametrize("parity", ["tff", "bff"])
def test_field_rate_frames_weave_back_into_the_original_fields(clips, tmp_path, parity):
    """bwdif keeps each field's own lines, so a field-rate deinterlace woven back gives the
    decoded input's fields exactly (PSNR infinite on both fields); through an interlaced
    lossless H.264 encode with reweave_args the master is flagged with the input's order
    and idet sees it so."""
    source = clips["tt" if parity == "tff" else "bb"]
    original = _gray(source, [])
    fields = [Deinterlace("field", parity).bwdif()]
    woven = _gray(source, fields + reweave_filters(parity))
    assert woven.shape == original.shape
    assert field_psnr(original, woven, 0) == float("inf") and field_psnr(original, woven, 1) == float("inf")
    restored = tmp_path / f"fields-{parity}.mkv"  # what a field-rate job delivers, losslessly
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(source), "-vf", fields[0], "-c:v", "ffv1",
                    str(restored)], check=True)
    master = tmp_path / f"master-{parity}.mkv"
    coded = ["-c:v", "libx264", "-qp", "0", "-x264-params", "bff=1" if parity == "bff" else "tff=1"]
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(restored), *reweave_args(parity), *coded,
                    str(master)], check=True)
    facts = probe_video(str(master))
    assert facts.frames == original.shape[0] and facts.fps == Fraction(25)
    assert facts.field_order == ("tt" if parity == "tff" else "bb")
    assert detect_interlacing(str(master), facts).field_order == parity
    again = _gray(master, [])
    assert min(field_psnr(original, again, 0), field_psnr(original, again, 1)) == float("inf")
