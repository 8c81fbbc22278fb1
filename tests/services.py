"""Real services for the integration tests, started here when the machine has none running.

Redis and the S3 server (moto's standalone server) run as private subprocesses on free
loopback ports; PostgreSQL is the machine's cluster (started with pg_ctlcluster if it
is down), with a fresh database per test session.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg2

# Servers listen on loopback unless a test gives them another address of this machine
# (tests/netns.py: a bridge that workers in their own network namespaces reach).
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, what: str, timeout: float = 30.0, proc: subprocess.Popen | None = None,
                  host: str = LOOPBACK) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {port}")
        with closing(socket.socket()) as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {host}:{port} within {timeout} s")


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


def start_moto(log: Path, host: str = LOOPBACK) -> tuple[subprocess.Popen, int]:
    """moto's S3 server; its log has one line per request, with the client's address."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_port(port, "moto S3 server", proc=proc, host=host)
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


def start_redis_durable(workdir: Path, port: int | None = None, host: str = LOOPBACK) -> tuple[subprocess.Popen, int]:
    """Redis that keeps every write on disk (AOF, fsync always), for kill-and-restart tests.

    Start it again with the same workdir and port after a SIGKILL and queued messages are
    still there, as with a production broker that crashed; noeviction so nothing is dropped.
    On an address other than loopback, protected mode is off (it refuses remote clients
    of a server without a password).
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    protected = "yes" if host == LOOPBACK else "no"
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", host, "--protected-mode", protected,
                             "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                             "--maxmemory-policy", "noeviction", "--dir", str(workdir)],
                            stdout=open(workdir / f"redis-{port}.log", "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    wait_for_port(port, "redis-server", proc=proc, host=host)
    return proc, port


def _postgres_bin() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian layout)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parent.parent.name))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql "
                           "(apt-get install postgresql)")
    return Path(found[-1]).parent


class PrivatePostgres:
    """A PostgreSQL server of the test's own, so it can be stopped, crashed and restarted.

    The machine's cluster is shared by every test; this one lives in its own data directory
    on its own loopback port. As root, PostgreSQL refuses to run, so its files then live in a
    fresh /tmp directory owned by `postgres` (pytest's tmp dirs are private to root) and every
    command runs through `runuser -u postgres --`. The postmaster is our (or runuser's) child,
    so after a SIGKILL it is reaped at once and its stale postmaster.pid does not block a
    restart even where PID 1 does not reap orphans.
    """

    def __init__(self, workdir: Path, host: str = LOOPBACK) -> None:
        self.workdir = workdir
        self.host = host
        self.bin = _postgres_bin()
        self.as_root = os.geteuid() == 0
        self.base = Path(tempfile.mkdtemp(prefix="tintype-pg-")) if self.as_root else workdir / "postgres"
        self.data = self.base / "data"
        self.sockets = self.base / "sockets"
        self.log_path = workdir / "postgres.log"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def _cmd(self, *args: str) -> list[str]:
        return (["runuser", "-u", "postgres", "--"] if self.as_root else []) + list(args)

    def init(self) -> None:
        """initdb with trust auth, then settings for a throwaway server on loopback (and on
        `host`'s /24 when it is another address, trusted like loopback)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.base.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        if self.as_root:
            shutil.chown(self.base, "postgres", "postgres")
            shutil.chown(self.sockets, "postgres", "postgres")
        done = subprocess.run(self._cmd(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust",
                                        "-U", "postgres", "-E", "UTF8", "--no-sync"),
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr[-2000:]}")
        listen = LOOPBACK if self.host == LOOPBACK else f"{LOOPBACK},{self.host}"
        settings = {"listen_addresses": f"'{listen}'", "port": str(self.port),
                    "unix_socket_directories": f"'{self.sockets}'", "fsync": "off",
                    "full_page_writes": "off", "max_connections": "50", "shared_buffers": "32MB"}
        conf = "".join(f"{key} = {value}\n" for key, value in settings.items())
        done = subprocess.run(self._cmd("sh", "-c", f"cat >> '{self.data}/postgresql.conf'"),
                              input=conf, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"could not write postgresql.conf: {done.stderr}")
        if self.host != LOOPBACK:
            network = self.host.rsplit(".", 1)[0] + ".0/24"
            done = subprocess.run(self._cmd("sh", "-c", f"cat >> '{self.data}/pg_hba.conf'"),
                                  input=f"host all all {network} trust\n", capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"could not write pg_hba.conf: {done.stderr}")

    def start(self, timeout: float = 30.0) -> None:
        """Run the postmaster (same data dir and port as before) and wait until it accepts logins."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("private PostgreSQL is already running")
        self.proc = subprocess.Popen(self._cmd(str(self.bin / "postgres"), "-D", str(self.data)),
                                     stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited {self.proc.returncode}:\n{self._log_tail()}")
            if _try_connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL not ready in {timeout} s:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def postmaster_pid(self) -> int | None:
        """The postmaster's pid from postmaster.pid (not runuser's), or None when not running."""
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def stop(self, mode: str = "fast", timeout: float = 30.0) -> None:
        """Shut down like pg_ctl -m smart|fast|immediate, by the matching signal to the postmaster."""
        signum = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        if self.proc is None or self.proc.poll() is not None:
            return
        pid = self.postmaster_pid()
        try:
            os.kill(pid, signum) if pid else self.proc.send_signal(signum)
            self.proc.wait(timeout)
        except ProcessLookupError:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the postmaster (a crash), then its orphaned backends, so start() works again."""
        if self.proc is None or self.proc.poll() is not None:
            return
        pid = self.postmaster_pid()
        try:
            os.kill(pid, signal.SIGKILL) if pid else self.proc.kill()
        except ProcessLookupError:
            pass
        self.proc.wait(15)
        try:  # backends left behind still hold the shared memory a new postmaster needs
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def restart(self, mode: str = "immediate") -> None:
        """Stop (immediate: like a crash, recovery runs at start) and start again."""
        self.stop(mode)
        self.start()

    def url(self, dbname: str) -> str:
        """SQLAlchemy URL of a database on this server, at the address it was given."""
        return f"postgresql+psycopg2://postgres@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres") -> Any:
        """A psycopg2 connection as the superuser."""
        return psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=dbname,
                                connect_timeout=5)

    def create_database(self, name: str) -> str:
        """Create a database and return its SQLAlchemy URL."""
        conn = self.connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.url(name)

    def close(self) -> None:
        """Stop the server (killing it if it will not stop) and delete its files."""
        try:
            self.stop("immediate", timeout=10)
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def start_private_postgres(workdir: Path, host: str = LOOPBACK) -> PrivatePostgres:
    """A fresh, running private PostgreSQL server; call .close() when done."""
    server = PrivatePostgres(workdir, host)
    try:
        server.init()
        server.start()
    except BaseException:
        server.close()
        raise
    return server
