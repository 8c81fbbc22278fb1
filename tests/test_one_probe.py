"""One probe per job: `tintype restore` of a video runs ffprobe on its input once (intake's
probe_video: the streams, then the packets), and nothing after intake probes it again.
Counted with ffprobe and ffmpeg on PATH replaced by shims that log every call, in the CLI
and in the workers it starts (they inherit PATH). Finalize's check of the OUTPUT is not a
probe of the input and is left out of the count."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.media_factory import grey_video

ROOT = Path(__file__).resolve().parent.parent
SERVICE_VARIABLES = ("DATABASE_URL", "BROKER_URL", "RESULT_BACKEND", "STORAGE_URL", "S3_ENDPOINT_URL")


def _shims(folder: Path, log: Path) -> Path:
    folder.mkdir()
    for tool in ("ffprobe", "ffmpeg"):
        real = shutil.which(tool)
        assert real, f"{tool} is not installed"
        shim = folder / tool
        shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "{tool} $*" >> "{log}"\nexec "{real}" "$@"\n')
        shim.chmod(0o755)
    return folder


def _kind(line: str) -> str:
    if "stream=codec_type" in line:
        return "kind check"
    if "-show_streams" in line:
        return "streams"
    if "packet=pts_time" in line:
        return "packets"
    return "other"


@pytest.mark.slow
def test_a_video_job_probes_its_input_once(tmp_path):
    source = grey_video(tmp_path / "source-film.mp4", size="64x48", frames=12, rate="24", audio=False)
    log = tmp_path / "tools.log"
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    env.update(PATH=f"{_shims(tmp_path / 'shims', log)}{os.pathsep}{env['PATH']}", TINTYPE_DATA_DIR=str(tmp_path / "d"),
               CHUNK_FRAMES="6", TORCH_THREADS="1", MODEL_CACHE_DIR="off")
    done = subprocess.run([sys.executable, "-m", "tintype.cli", "restore", str(source), "-o", str(tmp_path / "o.mp4"),
                           "--colorize", "--data-dir", str(tmp_path / "data")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    probes = [line for line in log.read_text().splitlines() if line.startswith("ffprobe ")]
    on_input = sorted(_kind(line) for line in probes if line.endswith(str(source)))
    assert on_input == ["packets", "streams"], probes
    others = [line for line in probes if not line.endswith(str(source)) and not line.endswith("output.mp4")]
    assert others == [], "something probed a stored copy of the input after intake"
    assert any(line.endswith("output.mp4") for line in probes)  # the shims did see the workers' calls
