"""A whole tintype deployment on loopback: real Redis, PostgreSQL, an S3 server, gunicorn
and Celery workers, each a separate process configured only through environment variables.

The session-wide stack of the integration tests and the private stacks of the chaos
tests (which kill and restart their parts) are both built here. A stack can also serve
Redis, PostgreSQL and S3 on another address of this machine (`host`) and start workers
behind a command prefix (`wrap`, e.g. `ip netns exec NS`), so they run as separate
hosts that reach the services only over a network (tests/netns.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import boto3
import requests
import sqlalchemy as sa

from tests import services
from tests.faults import FaultProxy

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
    commands: dict[str, tuple[list[str], str]] = field(default_factory=dict)
    process_env: dict[str, dict[str, str]] = field(default_factory=dict)  # per process: its metrics dir and port
    http: requests.Session = field(default_factory=requests.Session)  # carries the test owner's key
    redis: tuple[subprocess.Popen, int, Path] | None = None
    proxy: FaultProxy | None = None
    postgres: services.PrivatePostgres | None = None
    host: str = services.LOOPBACK  # where Redis, PostgreSQL and S3 listen
    s3_server: subprocess.Popen | None = None

    def new_key(self, owner: str, *flags: str) -> str:
        """A token made the way operators make them: `tintype keys create`."""
        done = subprocess.run([sys.executable, "-m", "tintype.cli", "keys", "create", "--owner", owner, *flags],
                              env=self.env, cwd=ROOT, check=True, capture_output=True, text=True)
        return done.stdout.strip().splitlines()[-1]

    def client(self, token: str) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        return session

    def submit(self, path: Path, mask: Path | None = None, filename: str | None = None,
               reference: Path | None = None, masks: Path | None = None, **form: Any) -> requests.Response:
        files = {"file": (filename or path.name, path.read_bytes())}
        for name, part in (("mask", mask), ("reference", reference), ("masks", masks)):
            if part is not None:
                files[name] = (part.name, part.read_bytes())
        return self.http.post(f"{self.base}/api/v1/jobs", files=files, data=form, timeout=120)

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.http.get(f"{self.base}/api/v1/jobs/{job_id}", timeout=30)
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
        response = self.http.get(job["result"]["url"], timeout=60)  # follows the presigned redirect
        response.raise_for_status()
        path.write_bytes(response.content)
        return path

    def objects(self, job_id: str = "") -> list[str]:
        prefix = f"{PREFIX}/jobs/{job_id}" if job_id else f"{PREFIX}/"
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sorted(item["Key"][len(PREFIX) + 1:] for page in pages for item in page.get("Contents", []))

    def stray_objects(self, before: list[str], *watched: str) -> list[str]:
        """Objects added since `before` (a listing of `objects()`), and objects of the `watched`
        jobs removed since, leaving out what other jobs' workers may still do meanwhile:
        write and remove intermediates of a job an earlier test cancelled, and remove a
        finished job's intermediates (finalize publishes the job, then cleans its work/ up;
        a refused recolour's check was once failed by such a cleanup)."""
        now, then = set(self.objects()), set(before)
        busy = {key.split("/")[1] for key in then if key.startswith("jobs/")} - set(watched)
        added = [key for key in now - then if not (key.startswith("jobs/") and key.split("/")[1] in busy)]
        removed = [key for key in then - now
                   if key.startswith("jobs/") and key.split("/")[1] in watched and key.split("/")[2] != "work"]
        return sorted(added + removed)

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

    def start(self, name: str) -> None:
        """Start (or start again) one of the stack's processes and wait until it is ready."""
        cmd, marker = self.commands[name]
        log = self.logs / f"{name}.log"
        seen = len(log.read_bytes()) if log.exists() else 0
        env = {**self.env, **self.process_env.get(name, {})}
        self.procs[name] = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=open(log, "ab"),
                                            stderr=subprocess.STDOUT, start_new_session=True)
        _wait_ready(self.procs[name], log, marker, name, skip=seen)

    def kill(self, name: str) -> None:
        """SIGKILL the process and its children (pool processes, ffmpeg), as a crash would."""
        proc = self.procs[name]
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()

    @contextmanager
    def paused(self, name: str) -> Iterator[None]:
        """One of the stack's processes and its children stopped (SIGSTOP) for the block, then
        let go on: holds a job in a state it would otherwise pass through between two polls."""
        pgid = self.procs[name].pid
        os.killpg(pgid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(pgid, signal.SIGCONT)

    def stop_redis(self) -> None:
        """SIGKILL the broker, as a crash would."""
        proc = self.redis[0]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def start_redis(self, keep_data: bool = True) -> None:
        """Start the broker again on the same port, with its data or with none."""
        _, port, folder = self.redis
        if not keep_data:
            folder = folder.parent / (folder.name + "-empty")
        self.redis = (services.start_redis_durable(folder, port, self.host)[0], port, folder)

    def metrics_url(self, name: str) -> str:
        """Where process `name` serves /metrics (the web on its own port, workers on METRICS_PORT)."""
        if name == "web":
            return f"{self.base}/metrics"
        return f"http://127.0.0.1:{self.process_env[name]['METRICS_PORT']}/metrics"

    def restart_redis(self, keep_data: bool = True, down_for: float = 0.0) -> None:
        self.stop_redis()
        time.sleep(down_for)
        self.start_redis(keep_data)


def _wait_ready(proc: subprocess.Popen, log: Path, marker: str, what: str, timeout: float = 120,
                skip: int = 0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        if log.exists() and marker in log.read_bytes()[skip:].decode(errors="replace"):
            return
        time.sleep(0.3)
    raise RuntimeError(f"{what} not ready in {timeout} s:\n{log.read_text(errors='replace')[-3000:]}")


def gpu_worker_names(count: int) -> list[str]:
    """The stack's names of its GPU worker processes: gpu-worker, gpu-worker-2, ..."""
    return ["gpu-worker"] + [f"gpu-worker-{n}" for n in range(2, count + 1)]


def _commands(web_port: int, cpu_concurrency: int, data: str, gpu_workers: int = 1,
              wrap: dict[str, list[str]] | None = None) -> dict[str, tuple[list[str], str]]:
    celery = [sys.executable, "-m", "celery"]
    beat = ["-B", "-s", f"{data}/celerybeat-schedule"]
    gpu = {name: (celery + ["-A", "tintype.gpu_workers.worker", "worker", "-Q", "gpu", "-c", "1",
                            "-n", f"{name.replace('-worker', '')}@it", "--without-gossip", "--without-mingle",
                            "--loglevel", "INFO"], "ready.")
           for name in gpu_worker_names(gpu_workers)}
    commands = {
        "web": ([sys.executable, "-m", "gunicorn", "-w", "1", "--threads", "4", "-b", f"127.0.0.1:{web_port}",
                 "tintype.web.wsgi:app"], "Booting worker"),
        "cpu-worker": (celery + ["-A", "tintype.tasks.worker", "worker", "-Q", "cpu", "-c", str(cpu_concurrency),
                                 "-n", "cpu@it", "--without-gossip", "--without-mingle", "--loglevel", "INFO",
                                 *beat], "ready."),
        **gpu,
    }
    return {name: ((wrap or {}).get(name, []) + cmd, marker) for name, (cmd, marker) in commands.items()}


@contextmanager
def running_stack(work: Path, extra_env: dict[str, str] | None = None, fault_proxy: bool = False,
                  private_postgres: bool = False, cpu_concurrency: int = 2, host: str = services.LOOPBACK,
                  gpu_workers: int = 1, wrap: dict[str, list[str]] | None = None,
                  metrics: bool = True) -> Iterator[Stack]:
    """Start every service and process; stop and remove them all on exit.

    `host`: the address Redis, PostgreSQL (then a private server) and S3 listen on and every
    process is given; `wrap`: a command prefix per process name (see `gpu_worker_names`);
    `metrics=False`: no multiprocess metrics directories and no worker /metrics ports.
    """
    if host != services.LOOPBACK and (fault_proxy or not private_postgres):
        raise ValueError("a stack on another address needs private_postgres and no fault proxy")
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with ExitStack() as cleanup:
        redis_dir = work / "redis"
        redis, redis_port = services.start_redis_durable(redis_dir, host=host)
        moto, moto_port = services.start_moto(logs / "s3.log", host)
        cleanup.callback(services.stop, moto)
        s3_port, proxy = moto_port, None
        if fault_proxy:
            proxy = FaultProxy(moto_port).start()
            cleanup.callback(proxy.stop)
            s3_port = proxy.port
        db_url, postgres = _database(work, cleanup, private_postgres, host)
        web_port = services.free_port()
        env = {
            **os.environ,
            "TINTYPE_DATA_DIR": str(work / "data"),
            "DATABASE_URL": db_url,
            "BROKER_URL": f"redis://{host}:{redis_port}/0",
            "RESULT_BACKEND": f"redis://{host}:{redis_port}/1",
            "STORAGE_URL": f"s3://{BUCKET}/{PREFIX}",
            "S3_ENDPOINT_URL": f"http://{host}:{s3_port}",
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
            "CHUNK_FRAMES": "16", "RENDER_SIZE": "128", "TORCH_THREADS": "1",
            "MAX_UPLOAD_BYTES": str(8 * 1024**2), "MAX_IMAGE_PIXELS": str(4_000_000),
            "UPLOAD_PART_BYTES": str(5 * 1024**2),  # S3's smallest: a film over 5 MiB goes in parts
            "PYTHONUNBUFFERED": "1",
            # Shared-server mode: every request needs an API key.
            "AUTH_REQUIRED": "1", "SECRET_KEY": "integration-tests-" + os.urandom(8).hex(),
            **(extra_env or {}),
        }
        s3 = boto3.client("s3", endpoint_url=f"http://{host}:{moto_port}", region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
        s3.create_bucket(Bucket=BUCKET)
        (work / "data").mkdir(exist_ok=True)  # beat keeps its schedule file there
        subprocess.run([sys.executable, "-m", "tintype.cli", "migrate"], env=env, cwd=ROOT, check=True,
                       capture_output=True)
        stack = Stack(f"http://127.0.0.1:{web_port}", env, db_url, s3, logs, redis=(redis, redis_port, redis_dir),
                      proxy=proxy, postgres=postgres, host=host, s3_server=moto)
        cleanup.callback(lambda: services.stop(stack.redis[0]))
        stack.commands = _commands(web_port, cpu_concurrency, env["TINTYPE_DATA_DIR"], gpu_workers, wrap)
        stack.process_env = _metrics_env(work / "metrics", stack.commands) if metrics else {}
        cleanup.callback(lambda: [services.stop(p) for p in stack.procs.values()])
        for name in stack.commands:
            stack.start(name)
        services.wait_for_port(web_port, "gunicorn")
        stack.http = stack.client(stack.new_key("archive"))
        yield stack


def _metrics_env(folder: Path, names: Iterable[str]) -> dict[str, dict[str, str]]:
    """Each process its own prometheus_client multiprocess directory (as `tintype run` and
    the deployments do) and each worker a free port for /metrics."""
    env = {}
    for name in names:
        (folder / name).mkdir(parents=True, exist_ok=True)
        env[name] = {"PROMETHEUS_MULTIPROC_DIR": str(folder / name)}
        if name != "web":
            env[name]["METRICS_PORT"] = str(services.free_port())
    return env


def _database(work: Path, cleanup: ExitStack, private: bool,
              host: str = services.LOOPBACK) -> tuple[str, services.PrivatePostgres | None]:
    if private:
        postgres = services.start_private_postgres(work / "postgres", host)
        cleanup.callback(postgres.close)
        return postgres.create_database("tintype"), postgres
    admin = services.postgres_admin()
    name, url = services.create_database(admin)
    cleanup.callback(services.drop_database, admin, name)
    return url, None
