"""The streaming reduce on a real stack: finalize assembles chunks as they finish, deletes
each intermediate once read, and the dispatch window (CHUNK_WINDOW) keeps the chunk
intermediates in storage bounded whatever the film's length; a cancel mid-stream leaves
nothing behind.

The object store is listed in a loop while the job runs, so the bound is observed on
what S3 really held, not computed from the code's intent.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.media_factory import grey_video
from tests.stack import BUCKET, Stack, running_stack
from tintype.queue.messages import PROBE

pytestmark = pytest.mark.integration
WINDOW = 2
ENV = {"CHUNK_WINDOW": str(WINDOW), "CHUNK_FRAMES": "8", "HEARTBEAT_SECONDS": "1", "LEASE_SECONDS": "6",
       "RECONCILE_SECONDS": "2", "COLOUR_MODE": "per-frame"}


@pytest.fixture(scope="module")
def stream_stack(tmp_path_factory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stream"), ENV) as stack:
        yield stack


@pytest.fixture(scope="module")
def film(tmp_path_factory) -> Path:
    """Twelve chunks of eight frames: six times the window."""
    return grey_video(tmp_path_factory.mktemp("film") / "film.mp4", size="160x120", frames=96, audio=True)


class StoreWatch:
    """Lists a job's chunk intermediates in a loop; keeps the largest count seen and
    whether chunk 0 was already gone (assembled) while later chunks were still missing."""

    def __init__(self, stack: Stack, job_id: str) -> None:
        self.stack, self.job_id = stack, job_id
        self.most, self.listings, self.streamed_early, self.most_held = 0, 0, False, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _chunks(self) -> set[str]:
        return {k for k in self.stack.objects(self.job_id) if "/work/chunk-" in k}

    def _run(self) -> None:
        while not self.stop.is_set():
            chunks = self._chunks()
            self.most, self.listings = max(self.most, len(chunks)), self.listings + 1
            done, total = self.stack.db("SELECT chunks_done, chunks_total FROM jobs WHERE id = :j",
                                        j=self.job_id)[0]
            first = self.stack.db("SELECT status FROM chunks WHERE job_id = :j AND index = 0", j=self.job_id)
            assembled = bool(first) and first[0][0] == "done" and not any(k.endswith("chunk-000000.mkv")
                                                                          for k in chunks)
            self.streamed_early |= assembled and done < total
            held = self.stack.db("SELECT count(*) FROM chunks WHERE job_id = :j AND status = 'held'", j=self.job_id)
            self.most_held = max(self.most_held, held[0][0])
            time.sleep(0.1)

    def __enter__(self) -> "StoreWatch":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def _wait_for(what: str, condition: Callable[[], bool], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _probes_done(stack: Stack) -> int:
    """Probe tasks the CPU worker has finished. The stage says "processing" a moment before
    the probe sends the window's chunk messages (the row is the outbox), so a test that
    kills the CPU worker must wait for the task to return: with the worker (and the
    reconciler it hosts) gone, nothing would send them."""
    log = (stack.logs / "cpu-worker.log").read_text(errors="replace")
    return len(re.findall(rf"Task {re.escape(PROBE)}\[[^\]]+\] succeeded in", log))


def _chunk_objects(stack: Stack, job_id: str) -> list[str]:
    return [k for k in stack.objects(job_id) if "/work/chunk-" in k]


def test_intermediates_stay_within_the_window_and_finalize_streams(stream_stack, film):
    probes = _probes_done(stream_stack)
    job_id = stream_stack.submit(film, operations="colorize").json()["id"]
    with StoreWatch(stream_stack, job_id) as watch:
        # No reducer at all (the CPU worker is down): the GPU pool makes the window's
        # chunks and then waits, however long the film; intermediates do not pile up.
        _wait_for("the fan-out", lambda: stream_stack.job(job_id)["stage"] == "processing"
                  and _probes_done(stream_stack) > probes)
        stream_stack.kill("cpu-worker")
        try:
            _wait_for("the window's chunks", lambda: stream_stack.job(job_id)["progress"]["done"] >= WINDOW)
            time.sleep(4)  # time for several more chunks, were any sent
            assert len(_chunk_objects(stream_stack, job_id)) == WINDOW
            assert stream_stack.db("SELECT count(*) FROM chunks WHERE job_id = :j AND status IN "
                                   "('pending', 'running')", j=job_id)[0][0] == 0  # nothing to do: the rest is held
        finally:
            stream_stack.start("cpu-worker")  # the next test needs it, whatever happened here
        job = stream_stack.wait(job_id, timeout=300)
    assert job["status"] == "succeeded", stream_stack.tail()
    assert job["progress"]["total"] == 12 and job["progress"]["done"] == 12
    assert watch.listings > 10, watch.listings  # the store was really watched while the job ran
    # chunks k+1..k+WINDOW are sent while chunk k is assembled; the one being read counts too
    assert WINDOW <= watch.most <= WINDOW + 1, watch.most
    assert watch.most_held == 12 - WINDOW, watch.most_held  # the rest waited for the window to move
    assert watch.streamed_early, "chunk 0 was never assembled before the last chunk was done"
    assert not any("/work/" in k for k in stream_stack.objects(job_id))
    assert stream_stack.db("SELECT count(*) FROM chunks WHERE job_id = :j AND status <> 'done'", j=job_id)[0][0] == 0
    out = stream_stack.s3.head_object(Bucket=BUCKET, Key=f"it/jobs/{job_id}/output.mp4")
    assert out["ContentLength"] == job["result"]["bytes"]
    print(f"\nchunk intermediates at most {watch.most} at once (window {WINDOW}, 12 chunks), "
          f"{watch.listings} listings; chunks held back at most {watch.most_held}")


def test_a_cancel_while_finalize_streams_leaves_nothing(stream_stack, film):
    job_id = stream_stack.submit(film, operations="colorize").json()["id"]
    held = "SELECT count(*) FROM chunks WHERE job_id = :j AND status = 'held'"
    _wait_for("finalize to stream with chunks still held back",
              lambda: stream_stack.db("SELECT stage FROM jobs WHERE id = :j", j=job_id)[0][0] == "finalizing"
              and stream_stack.db(held, j=job_id)[0][0] > 0)
    response = stream_stack.http.delete(f"{stream_stack.base}/api/v1/jobs/{job_id}", timeout=10)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    _wait_for("the work objects to go", lambda: not any("/work/" in k for k in stream_stack.objects(job_id)), 60)
    time.sleep(3)  # a chunk or a finalize still running must not bring anything back
    keys = stream_stack.objects(job_id)
    assert not any("/work/" in k or "output" in k for k in keys), keys
    assert not stream_stack.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads")
    assert stream_stack.job(job_id)["status"] == "cancelled"
    assert stream_stack.db(held, j=job_id)[0][0] > 0  # the held chunks were never sent
