"""Video jobs through REST v1 against real Redis, PostgreSQL, S3 and Celery workers."""

from __future__ import annotations

import io
import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.media_factory import decode, grey_video, rect_mask, two_track_mkv, variable_rate_video
from tintype.media.probe import probe_video

pytestmark = pytest.mark.integration


def ffprobe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format",
                          "-count_frames", str(path)], check=True, capture_output=True).stdout
    return json.loads(out)


def video_stream(info: dict) -> dict:
    return next(s for s in info["streams"] if s["codec_type"] == "video")


def audio_streams(info: dict) -> list[dict]:
    return [s for s in info["streams"] if s["codec_type"] == "audio"]


def test_colorized_video_keeps_frames_rate_and_sound(stack, tmp_path):
    source = grey_video(tmp_path / "grey.mp4", frames=48, rate="30000/1001")
    response = stack.submit(source, operations="colorize")
    assert response.status_code == 202, response.text
    job = stack.wait(response.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["progress"] == {"done": 3, "total": 3, "fraction": 1.0}
    # Coloured from keyframes (the default): the plan coloured automatic ones and listed them.
    assert set(job["timings"]) == {"probe", "colour plan", "process", "finalize"} and job["timings"]["process"] > 0
    auto = [k["frame"] for k in job["keyframes"]]
    assert auto and all(k["source"] == "auto" for k in job["keyframes"])
    assert job["input"]["facts"]["frames"] == 48 and job["input"]["facts"]["fps"] == "30000/1001"

    out = stack.download(job, tmp_path / "out.mp4")
    info, src = ffprobe(out), ffprobe(source)
    video = video_stream(info)
    assert info["format"]["format_name"].startswith("mov,mp4")
    assert (video["codec_name"], video["pix_fmt"]) == ("h264", "yuv420p")
    assert int(video["nb_read_frames"]) == 48
    assert Fraction(video["r_frame_rate"]) == Fraction(30000, 1001)
    frame = 1001 / 30000
    assert abs(float(video["duration"]) - float(video_stream(src)["duration"])) <= frame
    [audio], [src_audio] = audio_streams(info), audio_streams(src)
    assert abs(float(audio["duration"]) - float(src_audio["duration"])) < 0.05
    with out.open("rb") as fh:  # +faststart: the index comes before the media data
        head = fh.read(4096)
    assert head.find(b"moov") != -1 and (head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat"))

    frames_in = decode(source, 96, 64).astype(np.float32)
    frames_out = decode(out, 96, 64).astype(np.float32)
    chroma_out = np.abs(frames_out - frames_out.mean(axis=3, keepdims=True)).mean()
    chroma_in = np.abs(frames_in - frames_in.mean(axis=3, keepdims=True)).mean()
    assert chroma_in < 1.5 and chroma_out > chroma_in + 0.5, (chroma_in, chroma_out)
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    assert np.abs(frames_out @ luma - frames_in @ luma).mean() < 4.0  # lightness is the input's

    rows = stack.db("select status, chunks_done, chunks_total, output_key from jobs where id = :id", id=job["id"])
    assert rows == [("succeeded", 3, 3, f"jobs/{job['id']}/output.mp4")]
    chunks = stack.db("select status, attempts from chunks where job_id = :id order by index", id=job["id"])
    assert chunks == [("done", 1)] * 3
    keyframes = [f"keyframes/{t:06d}.{ext}" for t in auto for ext in ("jpg", "png")]
    assert stack.objects(job["id"]) == [f"jobs/{job['id']}/{name}"
                                        for name in ("compare.jpg", "input", *keyframes, "manifest.json", "output.mp4",
                                                     "preview.jpg", "timestamps.json")]
    quality = job["quality"]
    assert quality["frames"] == 48 and quality["scene_cuts"] == [] and quality["temporal_strength"] == 0.8
    assert quality["warping_error"] > 0 and quality["colourfulness"] > 0
    poster = stack.http.get(job["compare_url"], timeout=10)
    assert poster.status_code == 200
    assert Image.open(io.BytesIO(poster.content)).size == (2 * 96, 64)  # input | result


def test_inpainting_changes_only_masked_pixels_and_keeps_every_audio_track(stack, tmp_path):
    source = two_track_mkv(tmp_path / "odd.mkv", size="161x121", frames=36)
    box = (60, 40, 100, 80)
    mask = rect_mask(tmp_path / "mask.png", 161, 121, box)
    # Telea blurs the hole, which makes "only the masked pixels changed" easy to see; the
    # default flow-guided method is measured in test_api_inpaint.py.
    response = stack.submit(source, mask=mask, operations="inpaint", inpaint_model="telea")
    assert response.status_code == 202, response.text
    job = stack.wait(response.json()["id"])
    assert job["status"] == "succeeded", job
    out = stack.download(job, tmp_path / "out.mp4")
    info = ffprobe(out)
    video = video_stream(info)
    assert (int(video["width"]), int(video["height"])) == (162, 122)  # even for yuv420p
    assert int(video["nb_read_frames"]) == 36
    assert [a["codec_name"] for a in audio_streams(info)] == ["aac", "aac"]  # FLAC re-encoded, AAC copied

    luma = np.array([0.299, 0.587, 0.114], np.float32)  # 4:2:0 delivery blurs chroma, not luma
    before = decode(source, 161, 121).astype(np.float32) @ luma
    after = decode(out, 162, 122)[:, :121, :161].astype(np.float32) @ luma
    inside = np.zeros((121, 161), bool)
    inside[box[1] + 3:box[3] - 2, box[0] + 3:box[2] - 2] = True
    outside = np.ones((121, 161), bool)
    outside[box[1] - 4:box[3] + 5, box[0] - 4:box[2] + 5] = False
    assert np.abs(after - before)[:, outside].mean() < 3.0
    assert np.abs(after - before)[:, inside].mean() > 12.0


def test_variable_frame_rate_source_keeps_every_frame_time(stack, tmp_path):
    source = variable_rate_video(tmp_path / "vfr.mkv", frames=30)
    mask = rect_mask(tmp_path / "m.png", 64, 48, (20, 10, 40, 30))
    job = stack.wait(stack.submit(source, mask=mask, operations="inpaint").json()["id"])
    assert job["status"] == "succeeded", job
    assert job["input"]["facts"]["constant_rate"] is False
    out = stack.download(job, tmp_path / "out.mp4")
    source_facts, result = probe_video(str(source)), probe_video(str(out))
    assert result.frames == 30
    assert np.allclose(result.timestamps, source_facts.timestamps, atol=0.002)


def test_scene_cuts_are_detected_and_recorded(stack, tmp_path):
    first = grey_video(tmp_path / "a.mp4", frames=12, rate="24", audio=False)
    second = tmp_path / "b.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "mandelbrot=size=96x64:rate=24",
                    "-frames:v", "12", "-vf", "hue=s=0,format=yuv420p", "-c:v", "libx264", str(second)], check=True)
    joined = tmp_path / "cut.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(first), "-i", str(second), "-filter_complex",
                    "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]", "-c:v", "libx264", str(joined)], check=True)
    job = stack.wait(stack.submit(joined, operations="colorize", temporal_strength="1").json()["id"])
    assert job["status"] == "succeeded", job
    assert job["quality"]["scene_cuts"] == [12] and job["quality"]["temporal_strength"] == 1.0


def _edge_video(kind: str, path: Path) -> Path:
    run = lambda *a: subprocess.run(["ffmpeg", "-v", "error", "-y", *a], check=True)  # noqa: E731
    if kind == "one frame":
        run("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=24", "-frames:v", "1", "-vf", "hue=s=0",
            "-pix_fmt", "yuv420p", "-c:v", "libx264", str(path))
    elif kind == "cut on every frame":
        run("-f", "lavfi", "-i", "nullsrc=size=96x64:rate=12", "-frames:v", "12", "-vf",
            "geq=lum='mod(N*97+X*(N+1)*7+Y*13*(N+2),256)':cb=128:cr=128", "-pix_fmt", "yuv420p",
            "-c:v", "libx264", "-qp", "0", str(path))
    elif kind == "static":
        run("-f", "lavfi", "-i", "color=c=gray:size=96x64:rate=24", "-frames:v", "24", "-vf",
            "drawbox=x=20:y=10:w=30:h=30:color=white:t=fill", "-pix_fmt", "yuv420p", "-c:v", "libx264", str(path))
    else:  # a frame-rate change half way
        variable_rate_video(path, frames=30)
    return path


@pytest.mark.parametrize("kind", ["one frame", "cut on every frame", "static", "frame-rate change"])
def test_temporal_edge_cases_complete_cleanly(stack, tmp_path, kind):
    source = _edge_video(kind, tmp_path / ("edge.mkv" if kind == "frame-rate change" else "edge.mp4"))
    job = stack.wait(stack.submit(source, operations="colorize").json()["id"])
    assert job["status"] == "succeeded", job
    facts = probe_video(str(source))
    out = probe_video(str(stack.download(job, tmp_path / "out.mp4")))
    assert out.frames == facts.frames == job["quality"]["frames"]
    if kind == "cut on every frame":
        assert job["quality"]["scene_cuts"] == list(range(1, facts.frames))
    if kind == "static":  # smoothing adds no drift to a still scene beyond H.264's own
        unsmoothed = stack.wait(stack.submit(source, operations="colorize", temporal_strength="0").json()["id"])
        drift = {}
        for name, result in (("on", job), ("off", unsmoothed)):
            frames = decode(stack.download(result, tmp_path / f"{name}.mp4"), 96, 64).astype(np.int16)
            drift[name] = np.abs(frames[1:] - frames[:1]).mean()
        assert drift["on"] <= drift["off"] + 0.1, drift
