"""The reconciler's view into a real broker: messages waiting and delivered-unacked."""

from __future__ import annotations

import pytest
from celery import Celery
from kombu import Connection, Queue

from tests import services
from tintype.queue import fs_transport
from tintype.queue.broker_scan import held_messages


@pytest.fixture()
def redis_url(tmp_path):
    proc, port = services.start_redis(tmp_path)
    yield f"redis://127.0.0.1:{port}/0"
    services.stop(proc)


@pytest.mark.integration
def test_redis_waiting_and_unacknowledged_messages_are_seen(redis_url):
    app = Celery("scan", broker=redis_url)
    app.conf.task_routes = {"gpu.*": {"queue": "gpu"}}
    app.send_task("gpu.process_chunk", args=("job", 1))
    app.send_task("gpu.process_chunk", args=("job", 2))
    assert held_messages(redis_url, ["cpu", "gpu"], {}) == {("gpu.process_chunk", ("job", 1)),
                                                           ("gpu.process_chunk", ("job", 2))}
    with Connection(redis_url) as conn:  # a worker takes one and has not acknowledged it
        taken = conn.SimpleQueue(Queue("gpu")).get(timeout=5)
        held = held_messages(redis_url, ["cpu", "gpu"], {})
        assert held == {("gpu.process_chunk", ("job", 1)), ("gpu.process_chunk", ("job", 2))}
        taken.ack()
    assert len(held_messages(redis_url, ["cpu", "gpu"], {})) == 1


def test_embedded_folder_broker_is_read(tmp_path):
    folder = tmp_path / "queue"
    folder.mkdir()
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder),
               "control_folder": str(tmp_path / "control")}
    app = Celery("scan", broker=fs_transport.register())
    app.conf.broker_transport_options = options
    app.send_task("tasks.probe", args=("job",))
    assert held_messages("tintypefs://", ["cpu"], options) == {("tasks.probe", ("job",))}
