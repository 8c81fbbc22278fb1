"""What `tintype restore` and `tintype run` refuse, and how they stop: before any work,
never over a user's file, with a message and exit 2; Ctrl-C ends a restore at once with
130 and no worker left; a busy port is reported as busy."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.media_factory import grey_photo, grey_video

ROOT = Path(__file__).resolve().parent.parent
SERVICE_VARIABLES = ("DATABASE_URL", "BROKER_URL", "RESULT_BACKEND", "STORAGE_URL", "S3_ENDPOINT_URL")


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    env.update(TINTYPE_DATA_DIR=str(data_dir), CHUNK_FRAMES="10", TORCH_THREADS="1", **extra)
    return env


def _tintype(*args: str, data_dir: Path, timeout: float = 240, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tintype.cli", *args], env=_env(data_dir, **extra), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def _refused(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr and "%" not in done.stderr  # no traceback, no progress bar: no work
    for word in words:
        assert word in done.stderr, done.stderr


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "Großmutter_日本.jpg"
    Image.fromarray(grey_photo(64, 48)).save(path)
    return path


def test_restore_never_writes_over_its_input_under_any_spelling(tmp_path, photo):
    before = _digest(photo)
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.jpg").symlink_to(photo)
    os.link(photo, tmp_path / "hard.jpg")
    spellings = [str(photo), str(tmp_path / "sub" / ".." / photo.name), str(tmp_path / "link.jpg"),
                 str(tmp_path / "hard.jpg")]
    for spelling in spellings:
        for force in ((), ("--force",)):
            done = _tintype("restore", str(photo), "-o", spelling, *force, "--data-dir", str(tmp_path / "d"),
                            data_dir=tmp_path / "d")
            _refused(done, "never writes over its input")
    assert _digest(photo) == before
    assert not (tmp_path / "d").exists()  # refused before anything was started or stored


def test_restore_refuses_an_input_named_as_keep_masks(tmp_path, photo):
    mask = Image.new("L", (64, 48), 0)
    mask.save(tmp_path / "mask.png")
    done = _tintype("restore", str(photo), "-o", str(tmp_path / "out.png"), "--inpaint-mask",
                    str(tmp_path / "mask.png"), "--keep-masks", str(tmp_path / "mask.png"), "--force",
                    data_dir=tmp_path / "d")
    _refused(done, "--keep-masks", "never writes over its input")


@pytest.mark.slow
def test_restore_replaces_an_existing_file_only_with_force(tmp_path, photo):
    out = tmp_path / "result.PNG"
    out.write_bytes(b"someone's earlier work")
    refused = _tintype("restore", str(photo), "-o", str(out), data_dir=tmp_path / "d")
    _refused(refused, "already exists", "--force")
    assert out.read_bytes() == b"someone's earlier work"
    done = _tintype("restore", str(photo), "-o", str(out), "--force", data_dir=tmp_path / "d")
    assert done.returncode == 0, done.stderr[-3000:]
    with Image.open(out) as result:
        assert result.format == "PNG" and result.size == (64, 48)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no part file left


def test_the_output_extension_must_fit_the_input(tmp_path, photo):
    clip = grey_video(tmp_path / "clip.mp4", size="64x48", frames=6, rate="24", audio=False)
    for source, output, words in ((photo, "x.mp4", ("is a photograph", ".png, .jpg or .jpeg", "not x.mp4")),
                                  (photo, "x", ("is a photograph", ".png, .jpg or .jpeg")),
                                  (clip, "x.png", ("is a video", ".mp4", "not x.png")),
                                  (clip, "x.mkv", ("is a video", ".mp4"))):
        done = _tintype("restore", str(source), "-o", str(tmp_path / output), data_dir=tmp_path / "d")
        _refused(done, *words)
        assert not (tmp_path / output).exists()


def test_an_output_format_that_contradicts_the_extension_is_refused(tmp_path, photo):
    clip = grey_video(tmp_path / "clip.mp4", size="64x48", frames=6, rate="24", audio=False)
    photo_done = _tintype("restore", str(photo), "-o", str(tmp_path / "x.png"), "--output-format", "jpeg",
                          data_dir=tmp_path / "d")
    _refused(photo_done, "names a PNG file", "--output-format asks for jpeg")
    video_done = _tintype("restore", str(clip), "-o", str(tmp_path / "x.mp4"), "--output-format", "png",
                          data_dir=tmp_path / "d")
    _refused(video_done, "--output-format is for photographs")


@pytest.mark.slow
def test_the_extension_decides_a_photographs_format(tmp_path, photo):
    out = tmp_path / "colour.JPEG"
    done = _tintype("restore", str(photo), "-o", str(out), data_dir=tmp_path / "d")
    assert done.returncode == 0, done.stderr[-3000:]
    with Image.open(out) as result:
        assert result.format == "JPEG"


def test_the_output_folder_is_checked_before_any_work(tmp_path, photo):
    (tmp_path / "a-file").write_text("not a folder")
    for output, words in ((tmp_path / "missing" / "out.png", ("the folder", "missing", "does not exist")),
                          (tmp_path / "a-file" / "out.png", ("a-file", "is not a folder")),
                          (Path("/sys/out.png"), ("cannot write in the folder /sys",)),
                          (tmp_path, ("is a folder",))):
        started = time.monotonic()
        done = _tintype("restore", str(photo), "-o", str(output), data_dir=tmp_path / "d")
        _refused(done, *words)
        assert time.monotonic() - started < 20  # a refusal, not a job (the interpreter's start is most of it)
    keep = _tintype("restore", str(photo), "-o", str(tmp_path / "o.png"), "--keep-masks",
                    str(tmp_path / "missing" / "m.png"), "--detect-damage", "scratches", data_dir=tmp_path / "d")
    _refused(keep, "--keep-masks", "does not exist")


def _job_status(database: Path) -> str | None:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as db:
            row = db.execute("select status from jobs").fetchone()
    except sqlite3.Error:  # not made yet, or locked for a moment
        return None
    return row[0] if row else None


def _session_members(session_ids: list[int]) -> list[str]:
    found = []
    for sid in session_ids:
        found += subprocess.run(["pgrep", "-s", str(sid)], capture_output=True, text=True).stdout.split()
    return found


def _wait_until_working(cli: subprocess.Popen, database: Path, timeout: float = 120) -> list[int]:
    """The worker processes (each leads its own session) once the job runs on them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and cli.poll() is None:
        if _job_status(database) == "running":
            workers = subprocess.run(["pgrep", "-P", str(cli.pid)], capture_output=True, text=True).stdout.split()
            return [int(pid) for pid in workers]
        time.sleep(0.2)
    raise AssertionError(f"the job never ran (exit {cli.poll()})")


@pytest.mark.slow
def test_ctrl_c_ends_a_restore_at_once_and_stops_its_workers(tmp_path):
    source = grey_video(tmp_path / "long.mp4", size="96x64", frames=480, rate="24", audio=False)
    data, out, errors = tmp_path / "data", tmp_path / "out.mp4", tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        cli = subprocess.Popen([sys.executable, "-m", "tintype.cli", "restore", str(source), "-o", str(out),
                                "--colorize", "--data-dir", str(data)], env=_env(data), cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        workers = _wait_until_working(cli, data / "tintype.db")
        assert len(workers) == 2 and _session_members(workers)
        time.sleep(1)
        cli.send_signal(signal.SIGINT)
        sent = time.monotonic()
        code = cli.wait(timeout=30)
        elapsed = time.monotonic() - sent
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    err = errors.read_text()
    assert code == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted" in err
    assert elapsed < 3, f"took {elapsed:.1f} s to stop"
    assert _session_members(workers) == [], "processes the restore started are still running"
    assert _job_status(data / "tintype.db") == "cancelled" and not out.exists()
    assert list(data.glob("objects/jobs/*/work/*")) == []


def test_run_on_a_busy_port_fails_at_once_naming_it(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        started = time.monotonic()
        done = _tintype("run", data_dir=tmp_path / "data", timeout=60, WEB_PORT=str(port), WEB_HOST="127.0.0.1")
        elapsed = time.monotonic() - started
    assert done.returncode != 0 and "tintype is running" not in done.stdout
    assert f"127.0.0.1:{port}" in done.stderr and "Address already in use" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and elapsed < 20
    assert not (tmp_path / "data").exists()  # nothing was started


def test_a_result_is_never_half_written_under_the_users_name(tmp_path):
    """The copy goes through a hidden part file renamed into place (and a forced replace
    of a link replaces the link, not the file it points at)."""
    from tintype.cli import write_object
    from tintype.storage.objects import LocalStore

    store = LocalStore(tmp_path / "objects")
    source = tmp_path / "made.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(source)
    store.put_file("jobs/x/output.png", source, "image/png")
    elsewhere = tmp_path / "elsewhere.png"
    elsewhere.write_bytes(b"keep me")
    (tmp_path / "out.png").symlink_to(elsewhere)
    write_object(store, "jobs/x/output.png", tmp_path / "out.png")
    assert elsewhere.read_bytes() == b"keep me" and not (tmp_path / "out.png").is_symlink()
    assert (tmp_path / "out.png").read_bytes() == source.read_bytes()
    assert not (tmp_path / ".out.png.part").exists()
