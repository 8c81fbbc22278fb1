"""`tintype restore` on the embedded defaults: filesystem broker, SQLite, local objects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.media_factory import decode, grey_video, rect_mask

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str, data_dir: Path, **extra_env: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL", "RESULT_BACKEND",
                                                           "STORAGE_URL", "S3_ENDPOINT_URL")}
    env.update(TINTYPE_DATA_DIR=str(data_dir), CHUNK_FRAMES="10", TORCH_THREADS="1", **extra_env)
    return subprocess.run([sys.executable, "-m", "tintype.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=240)


@pytest.mark.slow
def test_restore_runs_the_pipeline_embedded(tmp_path):
    source = grey_video(tmp_path / "in.mp4", size="64x48", frames=24, rate="24")
    mask = rect_mask(tmp_path / "m.png", 64, 48, (20, 10, 40, 30))
    out = tmp_path / "out.mp4"
    done = _cli("restore", str(source), "-o", str(out), "--inpaint-mask", str(mask),
                "--data-dir", str(tmp_path / "data"), data_dir=tmp_path / "data")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "wrote" in done.stdout and "100%" in done.stderr  # the progress bar reached the end
    frames = decode(out, 64, 48)
    assert frames.shape[0] == 24
    before = decode(source, 64, 48).astype(np.int16)
    assert np.abs(frames.astype(np.int16) - before)[:, 12:28, 22:38].mean() > 10
    objects = sorted(p.relative_to(tmp_path / "data" / "objects").as_posix()
                     for p in (tmp_path / "data" / "objects").rglob("*") if p.is_file())
    assert not any("/work/" in o for o in objects) and any(o.endswith("output.mp4") for o in objects)


def test_restore_refuses_bad_input_with_a_message(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    done = _cli("restore", str(bad), "-o", str(tmp_path / "o.png"), "--colorize", data_dir=tmp_path / "d")
    assert done.returncode == 2 and "neither an image nor a video" in done.stderr
    missing = _cli("restore", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "o.mp4"), data_dir=tmp_path / "d")
    assert missing.returncode == 2 and "does not exist" in missing.stderr


@pytest.mark.slow
def test_missing_weights_fail_the_job_with_an_actionable_message(tmp_path):
    from tintype.gpu_workers.models.registry import specs

    source = grey_video(tmp_path / "in.mp4", size="64x48", frames=12, rate="24", audio=False)
    empty = tmp_path / "no-weights"
    empty.mkdir()
    done = _cli("restore", str(source), "-o", str(tmp_path / "out.mp4"), "--colorize",
                "--data-dir", str(tmp_path / "data"), data_dir=tmp_path / "data", WEIGHTS_DIR=str(empty))
    [spec] = [s for s in specs("colorize") if s.name == "effnet-lite0-unet"]
    assert done.returncode == 1, done.stderr[-2000:]
    assert "job failed" in done.stderr and str(empty / spec.weights.path.name) in done.stderr
    assert spec.weights.sha256 in done.stderr
    assert not (tmp_path / "out.mp4").exists()
    work = list((tmp_path / "data" / "objects").rglob("work/*"))
    assert work == []
    # "job failed" (not "a worker exited") means the GPU worker stayed up and reported it
    assert "a worker exited" not in done.stderr
    assert "WeightsError" in (tmp_path / "data" / "logs" / "gpu-worker.log").read_text()


@pytest.mark.slow
def test_restore_takes_a_folder_of_masks_and_keeps_the_ones_it_used(tmp_path):
    from PIL import Image

    from tests.media_factory import encode_frames, moving_square, textured_frames
    from tintype.media.maskvideo import iter_masks

    background = textured_frames(16, 64, 48, pan=1)
    frames, boxes = moving_square(background, side=10, start=(4, 18), step=2)
    source = encode_frames(tmp_path / "in.mp4", frames)
    folder = tmp_path / "masks"
    folder.mkdir()
    for t, (x, y, w, h) in enumerate(boxes):
        mask = np.zeros((48, 64), np.uint8)
        mask[y:y + h, x:x + w] = 255
        Image.fromarray(mask).save(folder / f"{t:03d}.png")
    out, kept = tmp_path / "out.mp4", tmp_path / "used.mkv"
    done = _cli("restore", str(source), "-o", str(out), "--masks", str(folder), "--keep-masks", str(kept),
                "--mask-dilation", "1", data_dir=tmp_path / "data")
    assert done.returncode == 0, done.stderr[-3000:]
    used = list(iter_masks(str(kept), 64, 48))
    assert len(used) == 16
    for t, (x, y, w, h) in enumerate(boxes):
        assert used[t][y:y + h, x:x + w].all() and used[t][y - 1, x + w // 2] and used[t][y + h // 2, x + w]
        assert w * h < used[t].sum() < (w + 4) * (h + 4)  # grown by the 1 px dilation, no more
    result = decode(out, 64, 48).astype(np.int16)
    x, y, w, h = boxes[8]
    assert np.abs(result[8, y + 2:y + h - 2, x + 2:x + w - 2] - 255).mean() > 60  # the white square is gone


def test_restore_refuses_bad_boxes_with_a_message(tmp_path):
    source = grey_video(tmp_path / "in.mp4", size="64x48", frames=6, rate="24", audio=False)
    done = _cli("restore", str(source), "-o", str(tmp_path / "o.mp4"), "--boxes", '[{"x": 1', data_dir=tmp_path / "d")
    assert done.returncode == 2 and "boxes is not valid JSON" in done.stderr


@pytest.mark.slow
def test_run_stops_its_workers_and_web_server_on_sigterm(tmp_path):
    import signal
    import socket
    import time

    import requests

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL", "RESULT_BACKEND",
                                                           "STORAGE_URL", "S3_ENDPOINT_URL")}
    env.update(TINTYPE_DATA_DIR=str(tmp_path / "data"), WEB_PORT=str(port), TORCH_THREADS="1")
    run = subprocess.Popen([sys.executable, "-m", "tintype.cli", "run"], env=env, cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or still starting its workers
                pass
            time.sleep(0.5)
        else:
            raise AssertionError("tintype run did not answer on /api/v1/health")
        children = subprocess.run(["pgrep", "-f", f"{tmp_path / 'data'}|127.0.0.1:{port}"], capture_output=True,
                                  text=True).stdout.split()
        assert children, "the CPU worker (beat schedule in the data dir) and gunicorn should be running"
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=60) != 0
    finally:
        if run.poll() is None:  # the test failed early: still let it stop its children
            run.terminate()
            try:
                run.wait(timeout=30)
            except subprocess.TimeoutExpired:
                run.kill()
    time.sleep(1)
    left = subprocess.run(["pgrep", "-f", f"{tmp_path / 'data'}|127.0.0.1:{port}"], capture_output=True,
                          text=True).stdout.split()
    assert not left, f"processes left behind: {left}"


def test_restore_refuses_bad_keyframes_with_a_message(tmp_path):
    from tests.media_factory import save_picture, tinted

    source = grey_video(tmp_path / "in.mp4", size="64x48", frames=6, rate="24", audio=False)
    missing = _cli("restore", str(source), "-o", str(tmp_path / "o.mp4"), "--keyframe", "2=nope.png",
                   data_dir=tmp_path / "d")
    assert missing.returncode == 2 and "nope.png does not exist" in missing.stderr
    picture = save_picture(tmp_path / "k.png", tinted(np.full((48, 64, 3), 128, np.uint8)))
    late = _cli("restore", str(source), "-o", str(tmp_path / "o.mp4"), "--keyframe", f"6={picture}",
                data_dir=tmp_path / "d")
    assert late.returncode == 2 and "keyframe 6 is past the end of the video" in late.stderr
