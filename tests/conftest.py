"""Fixtures: a whole tintype deployment on loopback for the integration tests.

The `stack` fixture runs real Redis (broker and results), a real PostgreSQL database, a
real S3-API server, gunicorn serving the Flask app, and one CPU and one GPU Celery
worker, each a separate process configured only through environment variables.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
import requests
import sqlalchemy as sa

from tests import services

ROOT = Path(__file__).resolve().parent.parent
BUCKET, PREFIX = "tintype-test", "it"
TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass
class Stack:
    base: str
    env: dict[str, str]
    db_url: str
    s3: Any
    logs: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def submit(self, path: Path, mask: Path | None = None, filename: str | None = None,
               reference: Path | None = None, masks: Path | None = None, **form: Any) -> requests.Response:
        files = {"file": (filename or path.name, path.read_bytes())}
        for name, part in (("mask", mask), ("reference", reference), ("masks", masks)):
            if part is not None:
                files[name] = (part.name, part.read_bytes())
        return requests.post(f"{self.base}/api/v1/jobs", files=files, data=form, timeout=120)

    def job(self, job_id: str) -> dict[str, Any]:
        response = requests.get(f"{self.base}/api/v1/jobs/{job_id}", timeout=30)
        response.raise_for_status()
        return response.json()

    def wait(self, job_id: str, timeout: float = 240) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["status"] in TERMINAL:
                return job
            self.check_alive()
            time.sleep(0.5)
        raise AssertionError(f"job {job_id} did not finish in {timeout} s: {self.job(job_id)}\n{self.tail()}")

    def download(self, job: dict[str, Any], path: Path) -> Path:
        response = requests.get(job["result"]["url"], timeout=60)  # follows the presigned redirect
        response.raise_for_status()
        path.write_bytes(response.content)
        return path

    def objects(self, job_id: str = "") -> list[str]:
        prefix = f"{PREFIX}/jobs/{job_id}" if job_id else f"{PREFIX}/"
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sorted(item["Key"][len(PREFIX) + 1:] for page in pages for item in page.get("Contents", []))

    def db(self, sql: str, **params: Any) -> list[Any]:
        engine = sa.create_engine(self.db_url, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            rows = conn.execute(sa.text(sql), params).fetchall()
        engine.dispose()
        return rows

    def check_alive(self) -> None:
        dead = {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}
        if dead:
            raise AssertionError(f"processes exited: {dead}\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        out = []
        for log in sorted(self.logs.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)


def _wait_ready(proc: subprocess.Popen, log: Path, marker: str, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        if log.exists() and marker in log.read_text(errors="replace"):
            return
        time.sleep(0.3)
    raise RuntimeError(f"{what} not ready in {timeout} s:\n{log.read_text(errors='replace')[-3000:]}")


def _spawn(name: str, cmd: list[str], env: dict[str, str], logs: Path) -> tuple[subprocess.Popen, Path]:
    log = logs / f"{name}.log"
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    return proc, log


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("stack")
    logs = work / "logs"
    logs.mkdir()
    redis, redis_port = services.start_redis(work)
    moto, moto_port = services.start_moto(logs / "s3.log")
    admin = services.postgres_admin()
    db_name, db_url = services.create_database(admin)
    web_port = services.free_port()
    env = {
        **os.environ,
        "TINTYPE_DATA_DIR": str(work / "data"),
        "DATABASE_URL": db_url,
        "BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "RESULT_BACKEND": f"redis://127.0.0.1:{redis_port}/1",
        "STORAGE_URL": f"s3://{BUCKET}/{PREFIX}",
        "S3_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
        "CHUNK_FRAMES": "16", "RENDER_SIZE": "128", "TORCH_THREADS": "1",
        "MAX_UPLOAD_BYTES": str(8 * 1024**2), "MAX_IMAGE_PIXELS": str(4_000_000),
        "PYTHONUNBUFFERED": "1",
    }
    s3 = boto3.client("s3", endpoint_url=env["S3_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    s3.create_bucket(Bucket=BUCKET)
    subprocess.run([sys.executable, "-m", "tintype.cli", "migrate"], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    stack = Stack(f"http://127.0.0.1:{web_port}", env, db_url, s3, logs)
    celery = [sys.executable, "-m", "celery"]
    plan = {
        "web": ([sys.executable, "-m", "gunicorn", "-w", "1", "--threads", "4", "-b", f"127.0.0.1:{web_port}",
                 "web.wsgi:app"], "Booting worker"),
        "cpu-worker": (celery + ["-A", "tasks.celery_app", "worker", "-Q", "cpu", "-c", "2", "-n", "cpu@it",
                                 "--without-gossip", "--without-mingle", "--loglevel", "INFO"], "ready."),
        "gpu-worker": (celery + ["-A", "gpu_workers.worker", "worker", "-Q", "gpu", "-c", "1", "-n", "gpu@it",
                                 "--without-gossip", "--without-mingle", "--loglevel", "INFO"], "ready."),
    }
    try:
        for name, (cmd, marker) in plan.items():
            proc, log = _spawn(name, cmd, env, logs)
            stack.procs[name] = proc
            _wait_ready(proc, log, marker, name)
        services.wait_for_port(web_port, "gunicorn")
        yield stack
    finally:
        for proc in stack.procs.values():
            services.stop(proc)
        services.stop(moto)
        services.stop(redis)
        services.drop_database(admin, db_name)
