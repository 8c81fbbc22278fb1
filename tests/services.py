"""Real services for the integration tests, started here when the machine has none running.

Redis and the S3 server (moto's standalone server) run as private subprocesses on free
loopback ports; PostgreSQL is the machine's cluster (started with pg_ctlcluster if it
is down), with a fresh database per test session.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from contextlib import closing
from pathlib import Path

import psycopg2


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, what: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {port}")
        with closing(socket.socket()) as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s")


def start_redis(workdir: Path) -> tuple[subprocess.Popen, int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for_port(port, "redis-server", proc=proc)
    return proc, port


def start_moto(log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_port(port, "moto S3 server", proc=proc)
    return proc, port


def _try_connect(**kwargs) -> bool:
    try:
        psycopg2.connect(connect_timeout=3, **kwargs).close()
        return True
    except psycopg2.OperationalError:
        return False


def _start_cluster() -> None:
    """Start the Debian cluster and give the current OS user a superuser role."""
    if shutil.which("pg_ctlcluster") is None:
        raise RuntimeError("PostgreSQL is not running and not installed (apt-get install postgresql)")
    versions = sorted(Path(p).name for p in glob.glob("/etc/postgresql/*"))
    if not versions:
        raise RuntimeError("PostgreSQL is installed but has no cluster in /etc/postgresql")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
                   check=False, capture_output=True)
    user = os.environ.get("USER") or "root"
    sql = f"DO $$BEGIN CREATE ROLE \"{user}\" SUPERUSER LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$;"
    for _ in range(50):
        done = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-qc", sql], capture_output=True)
        if done.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"could not create a PostgreSQL role for {user}: {done.stderr.decode()[-300:]}")


def postgres_admin() -> dict[str, str]:
    """Connection arguments of a PostgreSQL superuser, starting the cluster if needed."""
    explicit = os.environ.get("TEST_POSTGRES_HOST")
    candidates = [{"host": explicit, "user": os.environ.get("TEST_POSTGRES_USER", "postgres")}] if explicit else []
    user = os.environ.get("USER") or "root"
    candidates += [{"host": "127.0.0.1", "user": "postgres"}, {"host": "/var/run/postgresql", "user": user}]
    for args in candidates:
        if _try_connect(dbname="postgres", **args):
            return args
    _start_cluster()
    args = {"host": "/var/run/postgresql", "user": user}
    for _ in range(50):
        if _try_connect(dbname="postgres", **args):
            return args
        time.sleep(0.2)
    raise RuntimeError("PostgreSQL did not accept connections after starting the cluster")


def create_database(admin: dict[str, str]) -> tuple[str, str]:
    """A fresh database; returns (name, SQLAlchemy URL)."""
    name = f"tintype_test_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(dbname="postgres", **admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    host = admin["host"]
    if host.startswith("/"):
        url = f"postgresql+psycopg2://{admin['user']}@/{name}?host={host}"
    else:
        url = f"postgresql+psycopg2://{admin['user']}@{host}:5432/{name}"
    return name, url


def drop_database(admin: dict[str, str], name: str) -> None:
    conn = psycopg2.connect(dbname="postgres", **admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, 15)
            proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, 9)
            proc.wait()
