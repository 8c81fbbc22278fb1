"""Server-Sent Events: a job's state, and the caller's job list, pushed as they change.

The web server is gunicorn with a few threads per process, and a stream holds one of them
while it is open. So every stream is short and cheap:

- it ends after EVENTS_STREAM_SECONDS (30 s by default) with a `retry:` hint, and the
  browser's EventSource reconnects by itself, sending the last `id:` it saw as
  Last-Event-ID, from which the next stream carries on without repeating anything;
- it polls the database once per EVENTS_POLL_SECONDS with one small query (a job's
  version, or the owner's rows changed since a cursor), and loads more only on a change;
- a comment line every EVENTS_HEARTBEAT_SECONDS keeps proxies from closing a quiet stream;
- one web process holds at most EVENTS_MAX_STREAMS streams at once (fewer than its
  threads, so streams never take every thread); more are answered 503 with Retry-After,
  and the page polls instead;
- a client that closed its connection ends the stream at the next poll (gunicorn's
  socket is peeked for EOF), so a closed page does not hold a thread until its bound.

The workers write job state to the database, never to Redis, so the database is where
changes are seen; pub/sub would need every state transition to publish as well.
Owner rules are the job routes': someone else's job is a 404, the list is the caller's
(an operator's: everyone's, or one owner's with ?owner=).
"""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from flask import Blueprint, Response, current_app, request, stream_with_context
from sqlalchemy.exc import OperationalError

from tintype.jobs import state as jobstate
from tintype.jobs import watch
from tintype.jobs.errors import IntakeError
from tintype.storage.models import TERMINAL, Job, as_utc
from tintype.web.api import _database_down, _intake_error, _job_or_404, job_json
from tintype.web.auth import principal
from tintype.web.resources import get_app_settings, json_error

events = Blueprint("events", __name__, url_prefix="/api/v1")
events.register_error_handler(IntakeError, _intake_error)
events.register_error_handler(OperationalError, _database_down)
log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0  # the default of EVENTS_HEARTBEAT_SECONDS
RETRY_MS = 1000  # how soon EventSource reconnects after a stream ends
# Without Last-Event-ID the list stream starts this far back, covering the moment between
# the page's first GET /jobs and its stream opening (the page merges rows by id).
LIST_LOOKBACK = timedelta(seconds=5)
LIST_BATCH = 50
# A row's updated_at is taken before its transaction commits, so a change can appear after
# the cursor has passed its time: each poll also looks this far behind the cursor (at most
# LIST_LATE rows), and `seen` keeps what was already sent from being sent again.
LIST_SLACK = timedelta(seconds=5)
LIST_LATE = 200


def sse(data: Any, event: str | None = None, event_id: str | None = None) -> str:
    """One event in the text/event-stream format (data as a single JSON line)."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event:
        lines.append(f"event: {event}")
    lines.append(f"data: {json.dumps(data, separators=(',', ':'))}")
    return "\n".join(lines) + "\n\n"


def _until_database_fails(body: Iterator[str]) -> Iterator[str]:
    """End a stream quietly when the database stops answering mid-way: EventSource
    reconnects after its retry delay and is answered 503 until the database is back."""
    try:
        yield from body
    except OperationalError as exc:
        log.warning("event stream ended: the database is not answering (%s)", type(exc).__name__)


_SLOTS_LOCK = threading.Lock()


def _slots() -> threading.BoundedSemaphore:
    """This process's stream slots (one set per app, made on first use)."""
    with _SLOTS_LOCK:
        slots = current_app.extensions.get("tintype.event_slots")
        if slots is None:
            slots = current_app.extensions["tintype.event_slots"] = threading.BoundedSemaphore(
                get_app_settings().events_max_streams)
        return slots


def _busy() -> Response:
    return json_error(503, "streams_busy", "too many live streams are open on this server; poll "
                      "GET /api/v1/jobs instead, or retry shortly", {"Retry-After": "5"})


def _stream(body: Iterator[str]) -> Response:
    """The stream, holding one of this process's slots until it is closed (however it
    ends); 503 when every slot is taken (the body is then never started)."""
    slots = _slots()
    if not slots.acquire(blocking=False):
        return _busy()
    released = threading.Event()

    def release() -> None:
        if not released.is_set():
            released.set()
            slots.release()

    try:
        response = Response(stream_with_context(_until_database_fails(body)), mimetype="text/event-stream")
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
        response.call_on_close(release)
    except BaseException:
        release()
        raise
    return response


def _client_gone(sock: socket.socket | None) -> bool:
    """Whether the client has closed its connection, asked without waiting or reading: a
    closed socket is readable and peeks as EOF. gunicorn hands the socket over in the
    environ; elsewhere (or over TLS, which cannot peek) the next write finds out instead."""
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except ValueError:  # an SSL socket refuses flags: rely on the heartbeat's write
        return False
    except OSError:
        return True


class _Clock:
    """The stream's budget and heartbeat: `due()` says when a comment keeps it alive."""

    def __init__(self, seconds: float, sleep: Callable[[float], None] = time.sleep):
        self.sock = request.environ.get("gunicorn.socket")
        self.start = time.monotonic()
        self.end = self.start + seconds
        self.written = self.start
        self.sleep = sleep
        self.heartbeat = get_app_settings().events_heartbeat_seconds

    def wrote(self) -> None:
        self.written = time.monotonic()

    def heartbeat_due(self) -> bool:
        return time.monotonic() - self.written >= self.heartbeat

    def left(self) -> float:
        """Seconds this stream may still run; none once the client has gone, so a closed
        page frees its thread within a poll, not at the next heartbeat."""
        return 0.0 if _client_gone(self.sock) else self.end - time.monotonic()


def job_event(job: Job, url: str) -> dict[str, Any]:
    """The job as GET /jobs/<id> shows it, with `live`: frames done, frames/s, time left."""
    return {**job_json(job), "live": watch.pace(url, job.id).as_json()}


@events.get("/jobs/<job_id>/events")
def job_events(job_id: str) -> Response:
    _job_or_404(job_id)
    settings = get_app_settings()
    url, poll = settings.database_url, settings.events_poll_seconds
    clock = _Clock(settings.events_stream_seconds)
    last = request.headers.get("Last-Event-ID")

    def body() -> Iterator[str]:
        sent = last
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            now = watch.version(url, job_id)
            if now is None:  # deleted while watched
                yield sse({"id": job_id}, "gone")
                return
            if now.event_id != sent or now.terminal:
                job = jobstate.get_job(url, job_id)
                if job is not None:
                    yield sse(job_event(job, url), "job", now.event_id)
                    clock.wrote()
                    sent = now.event_id
                if now.terminal:
                    yield sse({"id": job_id, "status": now.status}, "end")
                    return
            elif clock.heartbeat_due():
                yield ": keep-alive\n\n"
                clock.wrote()
            left = clock.left()
            if left <= 0:
                return
            clock.sleep(min(poll, left))

    return _stream(body())


def _cursor(raw: str | None) -> datetime | None:
    """A list stream's Last-Event-ID: the updated_at (ms since the epoch) it had reached."""
    if raw is None:
        return None
    try:
        return datetime.fromtimestamp(int(raw) / 1000, timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


def _millis(moment: datetime) -> int:
    return int(as_utc(moment).timestamp() * 1000)


@events.get("/jobs/events")
def list_events() -> Response:
    who = principal()
    owner = request.args.get("owner")
    if owner and owner != who.owner and not who.operator:
        return json_error(403, "operators_only", "only an operator key may watch other owners' jobs")
    scope = None if who.operator and not owner else (owner or who.owner)
    settings = get_app_settings()
    url, poll = settings.database_url, settings.events_poll_seconds
    clock = _Clock(settings.events_stream_seconds)
    since = _cursor(request.headers.get("Last-Event-ID")) or datetime.now(timezone.utc) - LIST_LOOKBACK

    def body() -> Iterator[str]:
        cursor, after_id = since, ""  # the last row sent, as (updated_at, id): "" is before every id
        seen: dict[str, str] = {}  # job id → the version last sent on this stream
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            sent_any = False
            late = watch.changed_since(url, scope, cursor - LIST_SLACK, LIST_LATE)
            for job in late + watch.changed_since(url, scope, cursor, LIST_BATCH, after_id):
                if (as_utc(job.updated_at), job.id) > (cursor, after_id):
                    cursor, after_id = as_utc(job.updated_at), job.id
                stamp = f"{_millis(job.updated_at)}.{job.status}.{job.stage}.{job.chunks_done}"
                if seen.get(job.id) == stamp:
                    continue  # the cursor is inclusive: the row at the cursor comes back once
                seen[job.id] = stamp
                kind = "end" if job.status in TERMINAL else "job"
                yield sse({**job_json(job), "event": kind}, "job", str(_millis(cursor)))
                sent_any = True
            if sent_any:
                clock.wrote()
            elif clock.heartbeat_due():
                yield ": keep-alive\n\n"
                clock.wrote()
            left = clock.left()
            if left <= 0:
                return
            clock.sleep(min(poll, left))

    return _stream(body())


__all__ = ["events", "sse", "job_event", "HEARTBEAT_SECONDS", "RETRY_MS"]
