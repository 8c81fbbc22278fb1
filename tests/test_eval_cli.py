"""`tintype eval` as a user runs it: a table on stdout, JSON beside the file, exit 2 on bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.media_factory import decode, ffmpeg, grey_video
from tintype.media import metrics

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"output", "reference", "kind", "frames", "size", "measured_size", "flow_source", "measures", "details"}
NO_REFERENCE = {"warping_error", "chroma_warping_error", "chroma_flicker", "colourfulness"}


def _eval(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tintype.cli", "eval", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def colour_video(path: Path, size: str = "96x64", frames: int = 24, crf: int = 12) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=24", "-frames:v", str(frames),
           "-c:v", "libx264", "-preset", "ultrafast", "-crf", str(crf), "-pix_fmt", "yuv444p", str(path))
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("eval")
    return {"grey": grey_video(tmp / "grey.mp4", frames=20, audio=False),
            "colour": colour_video(tmp / "colour.mp4"),
            "lossy": colour_video(tmp / "lossy.mp4", crf=30),
            "short": colour_video(tmp / "short.mp4", frames=12),
            "small": colour_video(tmp / "small.mp4", size="64x48"),
            "tmp": tmp}


def test_video_without_reference_reports_no_reference_measures(media):
    done = _eval(media["grey"])
    assert done.returncode == 0, done.stderr
    assert "warping error" in done.stdout and "colourfulness" in done.stdout and "PSNR" not in done.stdout
    report = json.loads((media["tmp"] / "grey.mp4.eval.json").read_text())
    assert KEYS <= set(report) and report["reference"] is None and report["flow_source"] == "output"
    assert set(report["measures"]) == NO_REFERENCE
    assert report["frames"] == 20 and report["size"] == [96, 64]
    assert report["measures"]["colourfulness"] < 2  # a greyscale video
    assert report["measures"]["warping_error"] > 0 and report["details"]["pairs_measured"] > 0
    assert "100%" in done.stderr  # the progress bar finished


def test_reference_equal_to_output_gives_infinite_psnr(media, tmp_path):
    target = tmp_path / "same.json"
    done = _eval(media["colour"], "--reference", media["colour"], "--json", target)
    assert done.returncode == 0, done.stderr
    assert "PSNR" in done.stdout and "SSIM" in done.stdout and "inf" in done.stdout
    report = json.loads(target.read_text())
    assert report["measures"]["psnr"] == "inf" and report["measures"]["ssim"] == pytest.approx(1.0)
    assert report["flow_source"] == "reference" and report["details"]["identical_frames"] == 24
    # the flow measures streamed through eval equal media.metrics' on the decoded frames
    assert report["details"]["pairs_measured"] == 23 and report["details"]["scene_cuts"] == []
    expected = metrics.temporal_measures(list(decode(media["colour"], 96, 64)))
    for key, value in expected.items():
        assert value > 0 and report["measures"][key] == pytest.approx(value), key


def test_lossy_output_against_reference(media, tmp_path):
    target = tmp_path / "lossy.json"
    done = _eval(media["lossy"], "--reference", media["colour"], "--json", target, "--max-width", "64")
    assert done.returncode == 0, done.stderr
    report = json.loads(target.read_text())
    measures = report["measures"]
    assert 25 < measures["psnr"] < 60 and 0.8 < measures["ssim"] < 1.0
    assert report["measured_size"] == [64, 43]
    assert measures["colourfulness"] > 20
    assert all(math.isfinite(measures[k]) for k in NO_REFERENCE)


def test_image_against_reference(tmp_path):
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(truth).save(tmp_path / "truth.png")
    Image.fromarray(np.clip(truth.astype(int) + 5, 0, 255).astype(np.uint8)).save(tmp_path / "out.png")
    done = _eval(tmp_path / "out.png", "--reference", tmp_path / "truth.png")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out.png.eval.json").read_text())
    assert report["kind"] == "image" and report["measures"]["psnr"] > 30
    assert report["measures"]["warping_error"] is None


@pytest.mark.parametrize("which, words", [("short", "frame"), ("small", "size")])
def test_mismatched_reference_is_bad_input(media, which, words):
    done = _eval(media["colour"], "--reference", media[which])
    assert done.returncode == 2
    assert words in done.stderr and "Traceback" not in done.stderr


def test_not_media_is_bad_input(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n")
    done = _eval(text)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "tintype:" in done.stderr
    missing = _eval(tmp_path / "missing.mp4")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
