"""A worker must not die because the broker blinked, and `tintype run` brings back one
that did.

The first tests replay, against a real Redis, what Celery's consumer does when the
broker goes away while a task runs (tintype.queue.redis_transport explains the kombu
defect); the last ones run the embedded supervisor on a stand-in process.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.common import ignore_errors

from tests import services
from tintype import processes
from tintype.queue import redis_transport

pytestmark = pytest.mark.integration


def _lose_broker_while_a_task_runs(tmp_path: Path, transport: str | None) -> list[str]:
    """A task message delivered and not yet acknowledged, a BRPOP in flight and a
    remote-control (fanout, auto-delete) channel, as in a Celery worker; Redis is killed;
    then the consumer's clean-up (collect, close) and the running task's late ack.
    Returns what raised, as "step: error" (empty: nothing a worker would die of)."""
    proc, port = services.start_redis(tmp_path)
    conn = Connection(f"redis://127.0.0.1:{port}/0", transport=transport)
    raised: list[str] = []
    try:
        conn.connect()
        queue = Queue("cpu")
        Producer(conn.channel()).publish({"chunk": 1}, routing_key="cpu", declare=[queue])
        delivered = []
        Consumer(conn, [queue], callbacks=[lambda _body, message: delivered.append(message)],
                 accept=["json"]).consume()
        control = conn.channel()
        Consumer(control, [Queue("w.pidbox", Exchange("celery.pidbox", "fanout"), auto_delete=True)],
                 callbacks=[lambda *_: None], no_ack=True).consume()
        deadline = time.monotonic() + 10
        while not delivered and time.monotonic() < deadline:
            try:
                conn.drain_events(timeout=1)
            except TimeoutError:
                pass
        assert delivered, "the task message was not delivered"
        conn.default_channel.connection.cycle.on_poll_start()  # the next BRPOP is in flight
        assert conn.default_channel._in_poll
        os.killpg(proc.pid, signal.SIGKILL)  # as a crash would
        proc.wait()
        proc = None
        for step, action in (("collect", lambda: conn.collect(socket_timeout=5)),
                             ("close", lambda: ignore_errors(conn, conn.close)),
                             ("ack", lambda: delivered[0].ack_log_error(logging.getLogger(__name__),
                                                                        conn.connection_errors))):
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - what would reach Celery's main loop
                raised.append(f"{step}: {exc!r}")
    finally:
        if proc is not None:
            services.stop(proc)
    return raised


def test_stock_kombu_transport_still_dies_on_this_sequence(tmp_path):
    """Documents the defect tintype's transport works around: should this fail, kombu
    fixed it, and tintype.queue.redis_transport can go."""
    raised = _lose_broker_while_a_task_runs(tmp_path, None)
    assert any("'NoneType' object has no attribute 'hostname'" in r for r in raised), raised


def test_tintype_transport_survives_a_broker_lost_mid_brpop(tmp_path):
    redis_transport.register()
    assert _lose_broker_while_a_task_runs(tmp_path, redis_transport.ALIAS) == []


def test_redis_workers_use_the_safe_transport_and_never_give_up():
    from tintype.queue.app import celery_config
    from tintype.settings import load_settings

    config = celery_config(load_settings({"BROKER_URL": "redis://127.0.0.1:6379/0",
                                          "RESULT_BACKEND": "redis://127.0.0.1:6379/1"}))
    assert config["broker_transport"] == redis_transport.ALIAS
    assert config["broker_connection_max_retries"] is None


def _stand_in(tmp_path: Path, exit_code: int, runs_before_staying_up: int) -> list[str]:
    """A process that records each start, exits with `exit_code` for its first runs and
    then stays up, like a worker whose broker came back."""
    script = (f"import pathlib, time, sys; f = pathlib.Path({str(tmp_path / 'starts')!r}); "
              "n = len(f.read_text().splitlines()) if f.exists() else 0; "
              "f.open('a').write(f'{time.monotonic()}\\n'); "
              f"time.sleep(0.2); sys.exit({exit_code}) if n < {runs_before_staying_up} else time.sleep(60)")
    return [sys.executable, "-c", script]


def _starts(tmp_path: Path) -> list[float]:
    path = tmp_path / "starts"
    return [float(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_run_starts_a_worker_that_exits_again_with_backoff(tmp_path):
    said: list[str] = []
    supervisor = processes.Supervisor(dict(os.environ), tmp_path, first_delay=0.3, max_delay=1.0, say=said.append)
    supervisor.start("gpu-worker", _stand_in(tmp_path, 1, 3), restart=True)
    try:
        assert supervisor.watch(every=0.05, until=time.monotonic() + 8) is None
    finally:
        supervisor.stop(grace=2)
    starts = _starts(tmp_path)
    assert len(starts) == 4 and supervisor.restarts("gpu-worker") == 3, (starts, said)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert gaps[0] >= 0.5 and gaps[1] >= 0.8 and gaps[2] >= 1.2, gaps  # 0.2 s run + 0.3, 0.6, 1.0 s backoff
    assert said[0] == "gpu-worker exited with 1; starting it again in 0.3 s", said
    assert "gpu-worker started again (restart 3)" in said
    assert "[tintype run]" in (tmp_path / "gpu-worker.log").read_text()


def test_run_leaves_a_drained_worker_stopped_and_ends_when_the_web_exits(tmp_path):
    said: list[str] = []
    supervisor = processes.Supervisor(dict(os.environ), tmp_path, first_delay=0.1, say=said.append)
    supervisor.start("cpu-worker", _stand_in(tmp_path, 0, 1), restart=True)
    supervisor.start("web", [sys.executable, "-c", "import time; time.sleep(1.5)"])
    try:
        assert supervisor.watch(every=0.05, until=time.monotonic() + 10) == "web"
    finally:
        supervisor.stop(grace=2)
    assert len(_starts(tmp_path)) == 1 and supervisor.restarts("cpu-worker") == 0
    assert said == ["cpu-worker stopped cleanly (drained); not restarted", "web exited with 0"], said


def test_registry_lists_workers_with_their_chunk_and_takes_drain_requests(tmp_path, monkeypatch, capsys):
    from tintype import cli
    from tintype.storage import workers as registry
    from tintype.storage.db import upgrade

    url = f"sqlite:///{tmp_path / 'tintype.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TINTYPE_DATA_DIR", str(tmp_path))
    upgrade(url)
    registry.register(url, "gpu-1a2b3c@box", "box", "gpu", 41)
    registry.register(url, "cpu-4d5e6f@box", "box", "cpu", 42)
    registry.set_running(url, "gpu-1a2b3c@box", 43, {"task": "gpu.process_chunk", "job": "j1", "chunk": 2,
                                                      "since": "2026-12-03T10:00:00+00:00"})
    assert cli.main(["workers"]) == 0
    table = capsys.readouterr().out
    assert "gpu-1a2b3c@box" in table and "busy" in table and "gpu.process_chunk job j1 chunk 2" in table, table
    assert registry.beat(url, "gpu-1a2b3c@box") is False
    assert cli.main(["drain", "gpu-1a2b3c@box"]) == 0
    assert "asked gpu-1a2b3c@box to drain" in capsys.readouterr().out
    assert registry.beat(url, "gpu-1a2b3c@box") is True and registry.beat(url, "cpu-4d5e6f@box") is False
    assert cli.main(["drain", "nowhere"]) == 2
    assert cli.main(["drain", "box"]) == 0  # a host: every worker on it
    assert registry.beat(url, "cpu-4d5e6f@box") is True
    registry.set_running(url, "gpu-1a2b3c@box", 43, None)
    registry.remove(url, "cpu-4d5e6f@box")
    [row] = registry.list_workers(url)
    assert row.running == {} and row.drain_requested_at is not None
