"""Live progress over Server-Sent Events on the real stack (gunicorn with threads, real
workers): a video job's stream from queued to the end, and owner rules."""

from __future__ import annotations

import json
import threading
import time
from typing import Iterator

import pytest
import requests

from tests.media_factory import grey_video

pytestmark = pytest.mark.integration

ORDER = {"queued": 0, "running": 1, "succeeded": 2, "failed": 2, "cancelled": 2}


def stream_events(session: requests.Session, url: str, last_id: str | None = None,
                  timeout: float = 60) -> Iterator[dict]:
    """One connection's events as {"event", "id", "data", "retry"}; comments are yielded
    as {"comment": ...} so heartbeats can be seen."""
    headers = {"Accept": "text/event-stream", **({"Last-Event-ID": last_id} if last_id else {})}
    with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
        response.raise_for_status()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        fields: dict = {}
        for line in response.iter_lines(decode_unicode=True):
            if line == "":
                if fields:
                    yield fields
                fields = {}
            elif line.startswith(":"):
                yield {"comment": line[1:].strip()}
            else:
                name, _, value = line.partition(": ")
                fields[name] = json.loads(value) if name == "data" else value


def follow(session: requests.Session, url: str, deadline: float) -> tuple[list[dict], int]:
    """Read like EventSource: reconnect with Last-Event-ID until an `end` event; returns the
    events and how many connections it took."""
    events, last, connections = [], None, 0
    while time.monotonic() < deadline:
        connections += 1
        for event in stream_events(session, url, last):
            if "comment" in event or "retry" in event and "data" not in event:
                continue
            events.append(event)
            last = event.get("id", last)
            if event.get("event") == "end":
                return events, connections
    raise AssertionError(f"no end event before the deadline; saw {[e.get('event') for e in events]}")


def test_a_video_jobs_stream_follows_it_to_the_end_with_its_pace(stack, tmp_path):
    source = grey_video(tmp_path / "grey.mp4", frames=64, audio=False)
    response = stack.submit(source, operations="colorize")
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    url = f"{stack.base}/api/v1/jobs/{job_id}/events"
    # Meanwhile a quiet owner's list stream: heartbeats only, and it ends within its bound.
    quiet, seen = stack.client(stack.new_key("quiet-owner")), {}

    def watch_quietly():
        start = time.monotonic()
        seen["events"] = list(stream_events(quiet, f"{stack.base}/api/v1/jobs/events"))
        seen["took"] = time.monotonic() - start

    def hold_after_the_first_chunk():
        """Four chunks of small frames can all finish between two of the stream's polls (one a
        second: a run once saw the job at no chunk done, then succeeded), so the GPU worker is
        held once one is done, for longer than two polls: the stream must see the job's pace."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not stack.db(
                "select chunks_done from jobs where id = :id", id=job_id)[0][0]:
            time.sleep(0.05)
        with stack.paused("gpu-worker"):
            time.sleep(2.5)

    watcher = threading.Thread(target=watch_quietly)
    watcher.start()
    holder = threading.Thread(target=hold_after_the_first_chunk)
    holder.start()
    events, _ = follow(stack.http, url, time.monotonic() + 240)  # the key as a Bearer header
    holder.join(timeout=10)
    jobs = [e["data"] for e in events if e.get("event") == "job"]
    assert events[-1]["event"] == "end" and jobs[-1]["status"] == "succeeded", events[-1]
    assert len({e["id"] for e in events if e.get("event") == "job"}) == len(jobs), "no event is sent twice"
    ranks = [ORDER[j["status"]] for j in jobs]
    assert ranks == sorted(ranks), "statuses move forward only"
    done = [j["progress"]["done"] for j in jobs]
    assert done == sorted(done) and done[-1] == 4, done  # 64 frames in chunks of 16
    assert jobs[-1] == {**stack.job(job_id), "live": jobs[-1]["live"]}, "the same job as GET /jobs/<id>"
    paced = [j["live"] for j in jobs if j["status"] == "running" and 0 < j["progress"]["done"]]
    assert paced, "progress was seen while the chunks ran"
    for live in paced:
        assert live["frames_total"] == 64 and live["fps"] > 0 and live["eta_seconds"] >= 0, live
    assert jobs[-1]["live"]["frames_done"] == 64

    watcher.join(timeout=60)
    assert 29 <= seen["took"] <= 40, seen  # EVENTS_STREAM_SECONDS is 30 by default
    assert {"comment": "keep-alive"} in seen["events"]
    assert seen["events"][0] == {"retry": "1000"} and not [e for e in seen["events"] if e.get("event")]


def test_a_finished_jobs_stream_says_so_and_ends_at_once(stack, tmp_path):
    source = grey_video(tmp_path / "grey.mp4", frames=8, audio=False)
    job_id = stack.submit(source, operations="colorize").json()["id"]
    stack.wait(job_id)
    url = f"{stack.base}/api/v1/jobs/{job_id}/events"
    first = list(stream_events(stack.http, url))
    assert first[0] == {"retry": "1000"}
    assert [e.get("event") for e in first[1:]] == ["job", "end"]  # a finished job: its state, then the end
    again = list(stream_events(stack.http, url, first[1]["id"]))
    assert [e.get("event") for e in again[1:]] == ["job", "end"], "a finished job always says so, then ends"


def test_someone_elses_job_stream_is_a_404_and_the_list_is_only_the_callers(stack, tmp_path):
    source = grey_video(tmp_path / "grey.mp4", frames=8, audio=False)
    job_id = stack.submit(source, operations="colorize").json()["id"]
    other = stack.client(stack.new_key("someone-else"))
    response = other.get(f"{stack.base}/api/v1/jobs/{job_id}/events", timeout=10)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert other.get(f"{stack.base}/api/v1/jobs/events", params={"owner": "x"}, timeout=10).status_code == 403
    anonymous = requests.get(f"{stack.base}/api/v1/jobs/{job_id}/events", timeout=10)
    assert anonymous.status_code == 401
