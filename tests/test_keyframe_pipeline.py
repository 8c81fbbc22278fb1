"""Films coloured from keyframes through the real pipeline: the colour plan, chunks that
start from the plan's borders, automatic keyframes, and the per-frame mode beside it."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.media_factory import decode, encode_frames, painted_pan
from tintype.media.color import rgb_to_lab

pytestmark = pytest.mark.integration
FRAMES, WIDTH, HEIGHT = 48, 128, 96  # three chunks of 16 in the test stack
TRUTH = painted_pan(FRAMES, WIDTH, HEIGHT, pan=2, seed=3)
KEYS = (5, 40)  # in the first and the last chunk: the middle chunk has none of its own


def _grey(rgb: np.ndarray) -> np.ndarray:
    light = rgb_to_lab(rgb)[..., :1] * 2.55
    return np.repeat(light, 3, 2).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def film(tmp_path_factory) -> Path:
    return encode_frames(tmp_path_factory.mktemp("kf-film") / "film.mp4", [_grey(f) for f in TRUTH])


def _png(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "PNG")
    return out.getvalue()


def _submit(stack, film: Path, keyframes: dict[int, np.ndarray], **form) -> dict:
    files = [("file", (film.name, film.read_bytes()))]
    files += [("keyframes", (f"{t}.png", _png(rgb))) for t, rgb in keyframes.items()]
    response = stack.http.post(f"{stack.base}/api/v1/jobs", files=files,
                               data={"operations": "colorize", **form}, timeout=120)
    assert response.status_code == 202, response.text
    job = stack.wait(response.json()["id"], timeout=420)
    assert job["status"] == "succeeded", job
    return job


def _chroma_error(stack, job: dict, tmp: Path, frames: range) -> float:
    """Mean Lab chroma distance to the truth over `frames`, away from the edge where the
    pan brings in picture no keyframe showed."""
    result = decode(stack.download(job, tmp / f"{job['id']}.mp4"), WIDTH, HEIGHT)
    errors = []
    for t in frames:
        got, want = rgb_to_lab(result[t])[8:-8, 8:-24, 1:], rgb_to_lab(TRUTH[t])[8:-8, 8:-24, 1:]
        errors.append(float(np.hypot(*(got - want).transpose(2, 0, 1)).mean()))
    return float(np.mean(errors))


def _luma(path: Path) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"],
                         capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, WIDTH * HEIGHT * 3 // 2)
    return frames[:, :WIDTH * HEIGHT].reshape(-1, HEIGHT, WIDTH)


def test_keyframes_in_other_chunks_colour_the_chunk_between(stack, film, tmp_path):
    keyed = _submit(stack, film, {t: TRUTH[t] for t in KEYS})
    per_frame = _submit(stack, film, {}, colour_mode="per-frame")
    middle = range(16, 32)
    keyed_error = _chroma_error(stack, keyed, tmp_path, middle)
    # The truth's colour reached the chunk with no key of its own (the delivery's 4:2:0
    # H.264 alone costs about 1.8 Lab units on this film).
    assert keyed_error < 4.0, keyed_error
    assert keyed_error < 0.5 * _chroma_error(stack, per_frame, tmp_path, middle)
    assert keyed["keyframes"] == [{"frame": t, "source": "user"} for t in KEYS]  # no automatic key in a keyed shot
    assert "colour plan" in keyed["timings"] and "colour plan" not in per_frame["timings"]
    assert per_frame["options"]["colour_mode"] == "per-frame" and per_frame["keyframes"] == []
    delivered = stack.download(keyed, tmp_path / "light.mp4")
    # The film's own luma is kept (the chunk writes the plane it decoded; only the H.264
    # delivery changes it), and with it its lightness, less what colour takes from the
    # lightness of a non-constant-luminance 4:2:0 picture at the same luma.
    luma_error = np.abs(_luma(delivered)[20].astype(int) - _luma(film)[20]).mean()
    assert luma_error < 1.0, luma_error
    result = decode(delivered, WIDTH, HEIGHT)
    light_error = np.abs(rgb_to_lab(result[20])[..., 0] - rgb_to_lab(_grey(TRUTH[20]))[..., 0]).mean()
    assert light_error < 2.5, light_error


def test_a_film_without_keyframes_gets_automatic_ones_it_lists(stack, film):
    job = _submit(stack, film, {})
    auto = [k for k in job["keyframes"] if k["source"] == "auto"]
    assert auto and all(0 <= k["frame"] < FRAMES for k in auto), job["keyframes"]
    listed = stack.http.get(f"{stack.base}/api/v1/jobs/{job['id']}/keyframes", timeout=30).json()["items"]
    assert [k["frame"] for k in listed] == [k["frame"] for k in auto]
    picture = stack.http.get(listed[0]["url"], timeout=30)
    assert picture.status_code == 200 and Image.open(io.BytesIO(picture.content)).size == (WIDTH, HEIGHT)
