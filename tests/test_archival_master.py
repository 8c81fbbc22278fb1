"""Archival masters (tintype.media.master): the input's depth, sound, timecode and colour
tags kept beside the MP4; refused before anything is stored when the format cannot hold
the input."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.media_factory import archival_clip, deep_grey_frames
from tests.test_cli import _cli
from tests.test_intake_rules import _objects, _post, _refused_cleanly
from tests.test_pages import app  # noqa: F401  (the app fixture)
from tintype.media.master import FILL_MARGIN, MasterUnfit, compose, plan_master
from tintype.media.picture import chroma_of, colour_tags, depth_of
from tintype.media.probe import probe_video
from tintype.media.yuv import Yuv420
from tintype.restore_paths import PathRefused, result_format


def _luma10(path: Path, width: int = 160, height: int = 120) -> np.ndarray:
    """The luma plane's own 10-bit samples (a 4:2:2 decode, which neither of these files
    needs converting to; gray10le would stretch limited range to full)."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "rawvideo",
                          "-pix_fmt", "yuv422p10le", "-"], capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, "<u2").reshape(-1, 2 * height * width)
    return frames[:, :height * width].reshape(-1, height, width)


def _pcm_sha256(path: Path) -> str:
    """The decoded samples of the first audio stream (what a listener gets, bit for bit)."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "s32le", "-"],
                         capture_output=True, check=True).stdout
    assert raw
    return hashlib.sha256(raw).hexdigest()


def test_pixel_formats_name_their_depth_and_chroma():
    cases = {"yuv420p": (8, "4:2:0"), "yuv422p10le": (10, "4:2:2"), "yuv444p12le": (12, "4:4:4"),
             "p010le": (10, "4:2:0"), "v210": (10, "4:2:2"), "gray10le": (10, "4:0:0"), "rgb48le": (16, "4:4:4"),
             "yuvj420p": (8, "4:2:0")}
    assert {f: (depth_of(f), chroma_of(f)) for f in cases} == cases
    assert depth_of("yuv420p", "10") == 10  # the decoder's own figure wins


def test_probe_reports_depth_chroma_tags_and_timecode(tmp_path):
    facts = probe_video(str(archival_clip(tmp_path / "in.mov", deep_grey_frames(3))))
    assert (facts.pix_fmt, facts.bit_depth, facts.chroma) == ("yuv422p10le", 10, "4:2:2")
    assert (facts.color_primaries, facts.color_transfer, facts.color_space, facts.color_range) == \
        ("smpte170m", "smpte170m", "smpte170m", "tv")
    assert facts.timecode == "10:00:00:00" and facts.to_json()["timecode"] == "10:00:00:00"


def test_a_master_format_is_refused_for_what_it_cannot_hold(tmp_path):
    facts = probe_video(str(archival_clip(tmp_path / "in.mov", deep_grey_frames(2))))
    deep = dataclasses.replace(facts, pix_fmt="yuv444p12le", bit_depth=12, chroma="4:4:4")
    with pytest.raises(MasterUnfit, match="12-bit.*choose master=ffv1"):
        plan_master(deep, "prores")
    with pytest.raises(MasterUnfit, match="4:4:4"):
        plan_master(dataclasses.replace(facts, pix_fmt="yuv444p10le", chroma="4:4:4"), "prores")
    vorbis = [dataclasses.replace(facts.audio[0], codec="vorbis")]
    with pytest.raises(MasterUnfit, match=r"audio \(vorbis\).*prores.*master=ffv1"):
        plan_master(dataclasses.replace(facts, audio=vorbis), "prores")
    assert plan_master(dataclasses.replace(facts, audio=vorbis), "ffv1").format.name == "ffv1"
    with pytest.raises(MasterUnfit, match="constant-frame-rate"):
        plan_master(dataclasses.replace(facts, constant_rate=False), "ffv1")
    assert (plan_master(deep, "ffv1").pix_fmt, plan_master(facts, "prores").pix_fmt) == ("yuv444p12le", "yuv422p10le")
    eight = plan_master(dataclasses.replace(facts, pix_fmt="yuv420p", bit_depth=8, chroma="4:2:0"), "ffv1")
    assert (eight.pix_fmt, eight.shift) == ("yuv420p10le", 2)


def test_compose_keeps_the_inputs_luma_except_where_the_job_filled(tmp_path):
    facts = probe_video(str(archival_clip(tmp_path / "in.mov", deep_grey_frames(2))))
    plan = plan_master(facts, "prores")
    native = deep_grey_frames(1)[0]
    processed_y = ((native.astype(np.int32) + 2) >> 2).astype(np.uint8) - 3  # an 8-bit path's drift
    processed_y[10:20, 10:20] = 200  # a filled patch
    filled = np.zeros((120, 160), bool)
    filled[12:18, 12:18] = True  # its mask; FILL_MARGIN pixels around it take the fill too
    grown = np.zeros_like(filled)
    grown[12 - FILL_MARGIN:18 + FILL_MARGIN, 12 - FILL_MARGIN:18 + FILL_MARGIN] = True
    cb = np.full((60, 80), 100, np.uint8)
    frame = Yuv420(processed_y, cb, cb.copy(), 160, 120)
    size = 160 * 120
    for mask, expect in ((None, native), (filled, np.where(grown, 200 << 2, native))):
        out = np.frombuffer(compose(frame, native, plan, mask), "<u2")
        assert out.size == size * 2  # 4:2:2: two half-width chroma planes of full height
        assert np.array_equal(out[:size].reshape(120, 160), expect)
        assert (out[size:] == 400).all()  # 8-bit chroma 100 at 10 bits


def test_a_full_range_masters_filled_pixels_take_its_range(tmp_path):
    """The processed frames are limited range; a full-range master's fill spreads them over
    all its codes, as the input's own luma around the fill is (else the patch looks grey)."""
    facts = probe_video(str(archival_clip(tmp_path / "in.mov", deep_grey_frames(2))))
    plan = dataclasses.replace(plan_master(facts, "ffv1"), full_range=True)
    native = np.full((120, 160), 700, np.uint16)
    processed_y = np.full((120, 160), 16, np.uint8)
    processed_y[:, 80:] = 235
    cb = np.full((60, 80), 128, np.uint8)
    out = np.frombuffer(compose(Yuv420(processed_y, cb, cb.copy(), 160, 120), native, plan,
                                np.ones((120, 160), bool)), "<u2")[:160 * 120].reshape(120, 160)
    top = (1 << plan.depth) - 1
    assert (out[:, :80] == 0).all() and (out[:, 80:] == top).all()


def test_a_video_output_named_like_a_master_points_to_the_master_flag(tmp_path):
    for name, flag in (("x.mov", "--master prores"), ("x.mkv", "--master ffv1")):
        with pytest.raises(PathRefused, match=f"name the output .mp4, not {name}.*{flag}.*x.master"):
            result_format("video", tmp_path / "in.mov", tmp_path / name, None)


def test_a_master_the_input_cannot_fill_is_refused_and_nothing_is_stored(app, tmp_path):  # noqa: F811
    deep = archival_clip(tmp_path / "deep.mkv", deep_grey_frames(3) * 4, codec=("-c:v", "ffv1"),
                         pix_fmt="yuv444p12le")
    response = _post(app, deep.read_bytes(), deep.name, colorize="yes", master="prores")
    message = _refused_cleanly(app, response, 422, "master_unfit")
    assert "12-bit" in message and "ffv1" in message
    assert _objects(app) == []
    photo = tmp_path / "p.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=32x24", "-frames:v", "1", str(photo)],
                   check=True)
    refused = _post(app, photo.read_bytes(), photo.name, colorize="yes", master="ffv1")
    _refused_cleanly(app, refused, 400, "master_for_image")
    assert _objects(app) == []


@pytest.mark.slow
@pytest.mark.parametrize("master", ["ffv1", "prores"])
def test_restore_writes_a_master_at_the_inputs_depth(tmp_path, master):
    source = archival_clip(tmp_path / "film.mov", deep_grey_frames(24))
    before = _luma10(source)
    assert (before & 3).any()  # the input really has ten bits, so an 8-bit path would show
    out = tmp_path / "out.mp4"
    done = _cli("restore", str(source), "-o", str(out), "--colorize", "--master", master,
                data_dir=tmp_path / "data")
    assert done.returncode == 0, done.stderr[-3000:]
    extension = {"ffv1": "mkv", "prores": "mov"}[master]
    made = tmp_path / f"out-master.{extension}"
    assert "wrote the archival master (" in done.stdout and f" to {made}\n" in done.stdout
    beside = tmp_path / "out-c2pa-unsigned.json"  # no key: the delivery's sidecar, written next to it
    assert f"wrote the C2PA manifest (unsigned sidecar) to {beside}\n" in done.stdout and beside.is_file()
    facts, delivery = probe_video(str(made)), probe_video(str(out))
    assert (facts.video_codec, facts.bit_depth, facts.chroma) == ({"ffv1": "ffv1", "prores": "prores"}[master], 10,
                                                                  "4:2:2")
    assert (facts.frames, facts.fps_num, facts.fps_den) == (24, 24000, 1001)
    assert facts.timecode == "10:00:00:00"
    assert [a.codec for a in facts.audio] == ["pcm_s24le"] and _pcm_sha256(made) == _pcm_sha256(source)
    assert (facts.color_primaries, facts.color_space, facts.color_range) == ("smpte170m", "smpte170m", "tv")
    after = _luma10(made)
    if master == "ffv1":  # lossless: the film's luminance is the input's own, all ten bits
        assert np.array_equal(after, before)
    else:  # ProRes is lossy, but at ten bits: far below the 8-bit step of 4 codes
        assert np.abs(after.astype(int) - before).mean() < 1.0
    cb = subprocess.run(["ffmpeg", "-v", "error", "-i", str(made), "-vf", "extractplanes=u", "-f", "rawvideo",
                         "-pix_fmt", "gray10le", "-"], capture_output=True, check=True).stdout
    assert np.frombuffer(cb, "<u2").std() > 4  # the colorized chroma is in the master
    assert (delivery.video_codec, delivery.pix_fmt, delivery.frames) == ("h264", "yuv420p", 24)
    assert (delivery.color_primaries, delivery.color_transfer, delivery.color_space) == ("smpte170m",) * 3


@pytest.mark.integration
def test_an_inpainted_film_keeps_the_inputs_luma_outside_what_was_filled(stack, tmp_path):
    """Through the API on S3: the master is listed and served as the job's output `master`,
    its luma is the input's own (10 bits, FFV1) except inside the filled box."""
    luma = deep_grey_frames(12)
    luma[:, 40:70, 60:100] = 900  # a bright card the box removes
    source = archival_clip(tmp_path / "card.mov", luma)
    box = {"x": 56, "y": 36, "w": 48, "h": 38}
    response = stack.submit(source, operations="inpaint", boxes=json.dumps([box]), master="ffv1")
    assert response.status_code == 202, response.text
    job = stack.wait(response.json()["id"])
    assert job["status"] == "succeeded", job
    listed = job["outputs"]["master"]
    assert listed["content_type"] == "video/x-matroska" and "10-bit" in listed["label"]
    assert job["input"]["facts"]["bit_depth"] == 10 and job["input"]["facts"]["timecode"] == "10:00:00:00"
    master = tmp_path / "card-master.mkv"
    served = stack.http.get(listed["url"], timeout=60)  # follows the presigned redirect
    served.raise_for_status()
    master.write_bytes(served.content)
    assert len(served.content) == listed["bytes"]
    sidecar = stack.http.get(job["outputs"]["master-manifest"]["url"], timeout=30).json()  # no key: unsigned
    assert sidecar["signed"] is False and sidecar["result_sha256"] == hashlib.sha256(served.content).hexdigest()
    before, after = _luma10(source), _luma10(master)
    inside = np.zeros(before.shape[1:], bool)
    inside[box["y"] - 12:box["y"] + box["h"] + 12, box["x"] - 12:box["x"] + box["w"] + 12] = True
    assert np.array_equal(after[:, ~inside], before[:, ~inside])  # untouched: the input's ten bits
    card = (slice(None), slice(42, 68), slice(62, 98))
    assert np.abs(after[card].astype(int) - before[card]).mean() > 100  # the card was filled
    assert f"jobs/{job['id']}/master.mkv" in stack.objects(job["id"])


def _field_order(path: Path) -> str:
    shown = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=field_order", "-of", "csv=p=0", str(path)], capture_output=True, text=True)
    return shown.stdout.strip()


@pytest.mark.slow
def test_a_master_can_stay_interlaced_with_the_inputs_own_fields(tmp_path):
    """Deinterlaced at field rate for the restoration, woven back for the master: bwdif keeps
    each field's own lines, so the master's luma is the interlaced input's, all ten bits."""
    luma = deep_grey_frames(12)
    luma[:, 1::2] = np.roll(luma[:, 1::2], 5, axis=2)  # the second field moved: real interlaced content
    source = archival_clip(tmp_path / "tape.mov", luma, rate="25",
                           codec=("-c:v", "prores_ks", "-profile:v", "3", "-flags", "+ildct+ilme",
                                  "-field_order", "tt"))
    out = tmp_path / "out.mp4"
    done = _cli("restore", str(source), "-o", str(out), "--colorize", "--master", "ffv1", "--deinterlace", "field",
                "--field-order", "tff", "--master-interlaced", data_dir=tmp_path / "data")
    assert done.returncode == 0, done.stderr[-3000:]
    master, delivery = probe_video(str(tmp_path / "out-master.mkv")), probe_video(str(out))
    assert (delivery.frames, delivery.fps_num) == (24, 50)  # one progressive frame per field
    assert (master.frames, master.fps_num, master.bit_depth) == (12, 25, 10)
    assert _field_order(tmp_path / "out-master.mkv") == "tt" and master.timecode == "10:00:00:00"
    assert np.array_equal(_luma10(tmp_path / "out-master.mkv"), _luma10(source))


def test_an_rgb_input_is_tagged_with_the_matrix_its_yuv_was_made_with(tmp_path):
    """An RGB sequence (matrix "gbr") reaches the encoders as swscale's BT.601 YUV: tagging
    it "gbr" made libx264 refuse to start."""
    facts = dataclasses.replace(probe_video(str(archival_clip(tmp_path / "in.mov", deep_grey_frames(2)))),
                                color_space="gbr", color_primaries="bt709", color_transfer="iec61966-2-1")
    chain, options = colour_tags(facts)
    assert "colorspace=smpte170m" in chain and options[options.index("-colorspace") + 1] == "smpte170m"
    assert "color_primaries=bt709" in chain  # the rest is the input's own
