"""The embedded folder broker is polled every BROKER_POLL_SECONDS (0.1 s), not kombu's 1 s:
each step of a job (probe -> chunks -> finalize) used to wait up to a second for it."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from tintype.queue.app import make_celery
from tintype.settings import load_settings


def _settings(tmp_path, **extra: str):
    return load_settings({"TINTYPE_DATA_DIR": str(tmp_path), **extra})


def test_the_configured_interval_reaches_the_transport_a_worker_consumes_with(tmp_path):
    app = make_celery(_settings(tmp_path, BROKER_POLL_SECONDS="0.25"))
    # A worker's consumer connects with connection_for_read(); the web and the CLI send
    # with connection_for_write().
    with app.connection_for_read() as conn:
        assert conn.transport.polling_interval == 0.25
    with app.connection_for_write() as conn:
        assert conn.transport.polling_interval == 0.25


def test_the_default_interval_is_a_tenth_of_a_second(tmp_path):
    settings = _settings(tmp_path)
    assert settings.broker_poll_seconds == 0.1
    with make_celery(settings).connection_for_read() as conn:
        assert conn.transport.polling_interval == 0.1


def test_a_poll_interval_that_is_not_positive_is_refused(tmp_path):
    with pytest.raises(ValueError, match="BROKER_POLL_SECONDS"):
        _settings(tmp_path, BROKER_POLL_SECONDS="0")


def _hop(app, delay: float) -> float:
    """Seconds from a message's publication to its delivery to a consumer that started
    waiting on the empty queue `delay` seconds earlier (so it has polled and is asleep)."""
    sent: list[float] = []
    # A queue of its own: kombu keeps the virtual transports' exchange bindings per process,
    # and an app made by an earlier test in this process may have bound "cpu" elsewhere.
    name = f"hop-{uuid.uuid4().hex}"

    def publish() -> None:
        time.sleep(delay)
        with app.connection_for_write() as conn:
            conn.SimpleQueue(name).put({"hop": 1})
            sent.append(time.monotonic())

    with app.connection_for_read() as conn:
        queue = conn.SimpleQueue(name)
        thread = threading.Thread(target=publish)
        thread.start()
        message = queue.get(timeout=10)
        received = time.monotonic()
        message.ack()
        thread.join()
    return received - sent[0]


def test_a_message_sent_while_the_consumer_sleeps_is_taken_well_under_a_second(tmp_path):
    """With kombu's 1 s interval a message published 0.3 s after an empty poll waits
    about 0.7 s for the next; at 0.1 s, under 0.1 s. The best of three hops must beat
    0.5 s: generous for a loaded machine, impossible at the old interval."""
    app = make_celery(_settings(tmp_path))
    best = min(_hop(app, 0.3) for _ in range(3))
    assert best < 0.5, f"a message waited {best:.2f} s for the consumer"
