"""The README's examples, run as written on short generated clips, so the README cannot
drift from what tintype accepts: every `tintype restore` and `tintype eval` line, and every
curl line that submits a job or needs no job.

Each file an example names is made here (`KIT`); an example naming a file the kit lacks
fails, asking for it to be added."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import requests
from PIL import Image

from tests.media_factory import (
    decode,
    encode_frames,
    grey_photo,
    grey_video,
    mask_zip,
    painted_pan,
    rect_mask,
    save_picture,
    tinted,
)

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SERVICE_VARIABLES = ("DATABASE_URL", "BROKER_URL", "RESULT_BACKEND", "STORAGE_URL", "S3_ENDPOINT_URL")
SHORT = {"size": "160x120", "frames": 48, "rate": "24"}  # a short clip: two seconds
WIDE = {"size": "640x360", "frames": 24, "rate": "24"}  # the box examples' coordinates need the width
KEYFRAMES = (12, 36)


def readme_commands(program: str) -> list[str]:
    """The command lines of the README's sh blocks that start with `program`, with
    their continuation lines joined."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith(program):
                commands.append(line.strip())
    return commands


def _clip(spec: dict) -> Callable[[Path], None]:
    return lambda path: grey_video(path, **spec)


def _photo(path: Path) -> None:
    Image.fromarray(grey_photo(160, 120)).save(path)


def _sepia(path: Path) -> None:
    """A toned print: the photograph's lightness in browns."""
    grey = grey_photo(160, 120)[..., None].astype(np.float32)
    save_picture(path, (grey * np.array([1.0, 0.82, 0.6], np.float32)).astype(np.uint8))


def _colour_clip(path: Path) -> None:
    encode_frames(path, painted_pan(24, 96, 64), lossless=False)


def _frames_of(kit: Path) -> np.ndarray:
    source = kit / "reel.mp4"
    if not source.exists():
        grey_video(source, **SHORT)
    return decode(source, 160, 120)


def _paint(frame: int, path: Path, kit: Path) -> None:
    """A colour picture of frame `frame` of reel.mp4, as a colourist would paint it."""
    save_picture(path, tinted(_frames_of(kit)[frame]))


def _keyframe(frame: int) -> Callable[[Path], None]:
    return lambda path: _paint(frame, path, path.parent)


def _keyframes_zip(path: Path) -> None:
    import zipfile

    frames = _frames_of(path.parent)
    with zipfile.ZipFile(path, "w") as archive:
        for frame in KEYFRAMES:
            picture = save_picture(path.parent / f".zip-{frame}.png", tinted(frames[frame]))
            archive.write(picture, f"{frame}.png")
            picture.unlink()


def _masks_folder(path: Path) -> None:
    path.mkdir()
    for index in range(SHORT["frames"]):
        mask = np.zeros((120, 160), np.uint8)
        mask[40 + index % 8:60, 50:80] = 255
        Image.fromarray(mask).save(path / f"{index:03d}.png")


def _masks_zip(path: Path) -> None:
    masks = []
    for index in range(SHORT["frames"]):
        mask = np.zeros((120, 160), bool)
        mask[40 + index % 8:60, 50:80] = True
        masks.append(mask)
    mask_zip(path, masks)


def _painted_folder(path: Path) -> None:
    path.mkdir()
    for frame, suffix in zip(KEYFRAMES, (".png", ".jpg")):
        _paint(frame, path / f"{frame:06d}{suffix}", path.parent)


# Every file the README's examples read, made small: videos of two seconds, pictures of
# 160x120 (masks and keyframes to fit them); news.mp4 and walk.mp4 are wide for their boxes.
KIT: dict[str, Callable[[Path], None]] = {
    **{name: _clip(SHORT) for name in ("old-film.mp4", "reel.mp4", "film.mp4", "parade.mp4", "clip.mp4",
                                       "reel.mkv")},
    **{name: _clip(WIDE) for name in ("news.mp4", "walk.mp4")},
    **{name: _photo for name in ("scan.tif", "photo.jpg", "print.jpg")},
    **{name: (lambda path: rect_mask(path, 160, 120, (40, 30, 70, 50))) for name in ("scratches.png", "mask.png")},
    "uniform.jpg": lambda path: save_picture(path, tinted(np.repeat(grey_photo(160, 120)[..., None], 3, 2))),
    "sepia.jpg": _sepia,
    "masks": _masks_folder, "masks.zip": _masks_zip, "painted": _painted_folder, "keyframes.zip": _keyframes_zip,
    "frame12.png": _keyframe(12), "f36.jpg": _keyframe(36), "12.png": _keyframe(12), "000036.jpg": _keyframe(36),
    **{name: _colour_clip for name in ("parade-colour.mp4", "result.mp4", "true-colour.mp4")},
}
OUTPUT_FLAGS = ("-o", "--output", "--keep-masks")


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("readme-kit")
    for name, make in KIT.items():
        if not (folder / name).exists():
            make(folder / name)
    return folder


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH"))))
    env.update(CHUNK_FRAMES="24", TORCH_THREADS="1")
    return env


def _inputs(argv: list[str]) -> list[str]:
    """The files a CLI example reads: its positional input and every flag's file."""
    names = [argv[2]]
    for previous, word in zip(argv[2:], argv[3:]):
        if previous in OUTPUT_FLAGS or not previous.startswith("-"):
            continue
        value = word.partition("=")[2] if previous == "--keyframe" else word
        if re.search(r"\.(png|jpe?g|tif|mp4|mkv|zip)$|/$", value):
            names.append(value.rstrip("/"))
    return names


CLI_EXAMPLES = readme_commands(".venv/bin/tintype restore") + readme_commands(".venv/bin/tintype eval")


def test_the_readme_has_the_examples_this_file_runs():
    assert len(readme_commands(".venv/bin/tintype restore")) >= 10 and readme_commands(".venv/bin/tintype eval")
    assert len(readme_commands("curl -s -F file=@")) >= 10
    read = {name for command in CLI_EXAMPLES for name in _inputs(shlex.split(command, comments=True))}
    read |= {name for command in _submissions() for name in re.findall(r"=@([\w.-]+)", command)}
    missing = read - set(KIT)
    assert not missing, f"README examples read files tests/test_readme_examples.py does not make: {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("command", CLI_EXAMPLES, ids=[f"{i}-{c.split()[2]}" for i, c in enumerate(CLI_EXAMPLES)])
def test_a_readme_cli_example_runs_as_written(command, kit, tmp_path):
    argv = shlex.split(command, comments=True)
    work = tmp_path / "work"
    work.mkdir()
    for name in _inputs(argv):
        source = kit / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, work / name)
    done = subprocess.run([sys.executable, "-m", "tintype.cli", *argv[1:]], cwd=work, env=_env(),
                          capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
    for flag, value in zip(argv, argv[1:]):
        if flag in OUTPUT_FLAGS:
            assert (work / value).stat().st_size > 0, f"{command}: {value} was not written"


def _submissions() -> list[str]:
    """The curl lines that submit a job, and those that need no job (list, health)."""
    lines = readme_commands("curl -s")
    return [c for c in lines if "$JOB" not in c and "$TOKEN" not in c and "Authorization" not in c]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def served(tmp_path):
    """`tintype run` on a free port, as `make run` starts it."""
    port = _free_port()
    env = {**_env(), "TINTYPE_DATA_DIR": str(tmp_path / "data"), "WEB_PORT": str(port)}
    run = subprocess.Popen([sys.executable, "-m", "tintype.cli", "run"], env=env, cwd=tmp_path,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 90
        while run.poll() is None and time.monotonic() < deadline:
            try:
                if requests.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet
                time.sleep(0.5)
        assert run.poll() is None, "tintype run stopped"
        yield api
    finally:
        run.terminate()
        try:
            run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            run.kill()
            run.wait()


@pytest.mark.slow
def test_the_readme_curl_examples_are_accepted(kit, served, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(kit, work)
    refused = []
    for command in _submissions():
        done = subprocess.run(["bash", "-c", command], cwd=work, env={**os.environ, "API": served},
                              capture_output=True, text=True, timeout=120)
        try:
            answer = json.loads(done.stdout)
        except ValueError:
            answer = {"error": {"message": done.stdout[-300:] or done.stderr[-300:]}}
        if done.returncode != 0 or not isinstance(answer, dict) or isinstance(answer.get("error"), dict):
            refused.append(f"{command}\n  -> {answer}")
    assert not refused, "README curl examples refused:\n" + "\n".join(refused)
