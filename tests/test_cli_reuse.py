"""`tintype run` leaves a record in its data folder (run.json); `tintype restore` on that
folder submits to it and starts no workers; a stale record (process gone, web silent) is
ignored; a second `tintype run` on the same folder is refused."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.media_factory import grey_photo
from tests.services import free_port
from tintype import instance
from tintype.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
SERVICE_VARIABLES = ("DATABASE_URL", "BROKER_URL", "RESULT_BACKEND", "STORAGE_URL", "S3_ENDPOINT_URL")


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    env.update(TINTYPE_DATA_DIR=str(data_dir), TORCH_THREADS="1", **extra)
    return env


@pytest.fixture()
def running(tmp_path):
    """`tintype run` on a free port, once its record says it serves."""
    data, port = tmp_path / "data", free_port()
    run = subprocess.Popen([sys.executable, "-m", "tintype.cli", "run"], env=_env(data, WEB_PORT=str(port)),
                           cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while run.poll() is None and time.monotonic() < deadline and instance.find_running(data) is None:
            time.sleep(0.2)
        assert instance.find_running(data) is not None, f"tintype run never served (exit {run.poll()})"
        yield data, port, run
    finally:
        run.terminate()
        try:
            run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            run.kill()
            run.wait()


def _celery_children(pid: int) -> list[str]:
    return subprocess.run(["pgrep", "-P", str(pid), "-f", "celery"], capture_output=True, text=True).stdout.split()


@pytest.mark.slow
def test_restore_submits_to_a_running_tintype_and_starts_no_workers(tmp_path, running):
    data, port, run = running
    record = json.loads((data / "run.json").read_text())
    assert record["pid"] == run.pid and record["url"] == f"http://127.0.0.1:{port}"
    photo, out = tmp_path / "scan.png", tmp_path / "colour.png"
    Image.fromarray(grey_photo(64, 48)).save(photo)
    cli = subprocess.Popen([sys.executable, "-m", "tintype.cli", "restore", str(photo), "-o", str(out),
                            "--colorize", "--data-dir", str(data)], env=_env(tmp_path / "elsewhere"), cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers_seen = []
    while cli.poll() is None:  # its own workers would live as long as the job
        workers_seen += _celery_children(cli.pid)
        time.sleep(0.1)
    stdout, stderr = cli.communicate()
    assert cli.returncode == 0, stderr[-3000:]
    assert "using the running tintype" in stderr and f"pid {run.pid}" in stderr
    assert workers_seen == []
    assert out.stat().st_size > 0 and "wrote" in stdout
    with sqlite3.connect(data / "tintype.db") as db:  # the job ran in the running deployment
        assert db.execute("select status from jobs").fetchall() == [("succeeded",)]
    assert run.poll() is None and instance.find_running(data) is not None  # and it still serves
    second = subprocess.run([sys.executable, "-m", "tintype.cli", "run"], env=_env(data, WEB_PORT=str(free_port())),
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert second.returncode == 2 and "already serves" in second.stderr and str(run.pid) in second.stderr


@pytest.mark.slow
def test_the_record_is_removed_when_tintype_run_stops(running):
    data, _port, run = running
    run.terminate()
    run.wait(timeout=60)
    assert not (data / "run.json").exists()


def _record(tmp_path: Path, pid: int, url: str) -> Path:
    settings = load_settings({"TINTYPE_DATA_DIR": str(tmp_path)})
    path = instance.write_record(settings, url)
    data = json.loads(path.read_text())
    data["pid"] = pid
    path.write_text(json.dumps(data))
    return path


def test_a_record_whose_process_is_gone_is_stale(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    with socket.socket() as server:  # something answers, but the pid is dead
        server.bind(("127.0.0.1", 0))
        _record(tmp_path, gone.pid, f"http://127.0.0.1:{server.getsockname()[1]}")
        assert instance.find_running(tmp_path) is None


def test_a_record_whose_web_does_not_answer_is_stale(tmp_path):
    path = _record(tmp_path, os.getpid(), f"http://127.0.0.1:{free_port()}")  # a live pid, nothing listens
    assert instance.read_record(path).pid == os.getpid()
    assert instance.find_running(tmp_path) is None


def test_a_damaged_record_is_no_record(tmp_path):
    (tmp_path / "run.json").write_text("{not json")
    assert instance.find_running(tmp_path) is None


def test_a_run_removes_only_its_own_record(tmp_path):
    settings = load_settings({"TINTYPE_DATA_DIR": str(tmp_path)})
    path = instance.write_record(settings, "http://127.0.0.1:1")
    assert instance.read_record(path).same_services(settings)
    _record(tmp_path, os.getpid() + 1, "http://127.0.0.1:1")  # a later run replaced it
    instance.remove_record(tmp_path)
    assert path.exists()
    instance.write_record(settings, "http://127.0.0.1:1")
    instance.remove_record(tmp_path)
    assert not path.exists()
