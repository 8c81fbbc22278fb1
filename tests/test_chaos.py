"""Faults injected into a running deployment: workers, broker, storage and database die
or misbehave mid-job, and every accepted job still finishes, exactly once in effect.

Each test starts a private stack (tests/stack.py) so it can kill its parts. Work that
stops heartbeating for LEASE_SECONDS is re-sent by the reconciler, which beat runs
every RECONCILE_SECONDS; both are shortened here so a test takes seconds, not minutes.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.media_factory import grey_video
from tests.stack import BUCKET, ROOT, Stack, running_stack

pytestmark = [pytest.mark.integration, pytest.mark.chaos]
FAST_RECOVERY = {"HEARTBEAT_SECONDS": "1", "LEASE_SECONDS": "6", "RECONCILE_SECONDS": "2",
                 "CHUNK_SOFT_TIME_LIMIT": "100", "CHUNK_TIME_LIMIT": "120", "FINALIZE_TIME_LIMIT": "240",
                 "CHUNK_FRAMES": "12"}
# what a finished colorized video keeps
EXPECTED = {"input", "output.mp4", "preview.jpg", "compare.jpg", "timestamps.json", "manifest.json"}


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A clip whose chunks each take long enough on this CPU to be hit while running."""
    return grey_video(tmp_path_factory.mktemp("chaos") / "clip.mp4", size="320x240", frames=72, audio=True)


@pytest.fixture()
def chaos_stack(tmp_path) -> Iterator[Callable[..., Stack]]:
    opened = []

    def make(**kwargs) -> Stack:
        context = running_stack(tmp_path / f"stack{len(opened)}", {**FAST_RECOVERY, **kwargs.pop("env", {})},
                                **kwargs)
        opened.append(context)
        return context.__enter__()

    yield make
    for context in reversed(opened):
        context.__exit__(None, None, None)


def _output_sha(stack: Stack, job_id: str) -> str:
    body = stack.s3.get_object(Bucket=BUCKET, Key=f"it/jobs/{job_id}/output.mp4")["Body"].read()
    return hashlib.sha256(body).hexdigest()


def _wait_for(what: str, condition: Callable[[], bool], timeout: float = 120, every: float = 0.05) -> float:
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)
    return time.monotonic() - began


def _running_chunk(stack: Stack, job_id: str, at_least: int = 1) -> int | None:
    rows = stack.db("SELECT index FROM chunks WHERE job_id = :j AND status = 'running' AND index >= :i",
                    j=job_id, i=at_least)
    return rows[0][0] if rows else None


def assert_nothing_lost(stack: Stack, job_id: str, job: dict) -> list[str]:
    """The shared oracle: one terminal success, one output with every frame, no work
    objects, no unfinished multipart upload, no chunk left open."""
    assert job["status"] == "succeeded", f"{job}\n{stack.tail()}"

    def stored() -> set[str]:
        return {k.split(f"jobs/{job_id}/", 1)[1] for k in stack.objects(job_id)}

    # finalize removes the work objects just after it records success
    _wait_for("the work objects to be removed", lambda: not any(k.startswith("work/") for k in stored()), 15, 0.2)
    # plus the keyframes the colour plan chose, each once (PNG and thumbnail); a film
    # coloured frame by frame has none
    keyframes = {f"keyframes/{k['frame']:06d}.{ext}" for k in job["keyframes"] for ext in ("png", "jpg")}
    assert bool(job["keyframes"]) == (job["options"]["colour_mode"] == "keyframes"), job["keyframes"]
    assert stored() == EXPECTED | keyframes, stored()
    assert not stack.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads")
    assert stack.db("SELECT count(*) FROM chunks WHERE job_id = :j AND status <> 'done'", j=job_id)[0][0] == 0
    assert stack.db("SELECT count(*) FROM jobs WHERE id = :j", j=job_id)[0][0] == 1
    return ["one output object with every frame, no work objects or open uploads, every chunk done once"]


def _status(stack: Stack, job_id: str) -> str:
    return stack.db("SELECT status FROM jobs WHERE id = :j", j=job_id)[0][0]


def _frames(stack: Stack, job_id: str) -> int:
    return stack.job(job_id)["input"]["facts"]["frames"]


def test_gpu_worker_killed_mid_chunk_gives_identical_output(chaos_stack, clip, reliability):
    reliability.injected("SIGKILL of the whole GPU worker (pool and children) in the middle of a chunk")
    stack = chaos_stack()
    calm = stack.wait(stack.submit(clip, operations="colorize").json()["id"])
    assert calm["status"] == "succeeded", stack.tail()
    reference = _output_sha(stack, calm["id"])

    job_id = stack.submit(clip, operations="colorize").json()["id"]
    _wait_for("a chunk to run", lambda: _running_chunk(stack, job_id) is not None)
    victim = _running_chunk(stack, job_id)
    stack.kill("gpu-worker")
    killed_at = time.monotonic()
    stack.start("gpu-worker")
    job = stack.wait(job_id, timeout=180)
    checked = assert_nothing_lost(stack, job_id, job)
    attempts = stack.db("SELECT attempts FROM chunks WHERE job_id = :j AND index = :i", j=job_id, i=victim)[0][0]
    assert attempts == 2, attempts
    assert _output_sha(stack, job_id) == reference
    assert any("recovered" in note for note in job["notes"]), job["notes"]
    reliability.saw(f"chunk {victim} was running when the worker died; the reconciler re-sent it once its "
                    f"heartbeat went silent; the job succeeded {time.monotonic() - killed_at:.1f} s after the kill")
    reliability.check("output SHA-256 identical to an undisturbed run of the same clip")
    reliability.check(f"chunk {victim} attempted exactly twice; " + checked[0])


def test_redis_killed_and_restarted_mid_job(chaos_stack, clip, reliability):
    reliability.injected("SIGKILL of Redis (broker, append-only file) mid-job; restarted 2 s later on its data")
    stack = chaos_stack()
    job_id = stack.submit(clip, operations="colorize").json()["id"]
    _wait_for("a chunk to run", lambda: _running_chunk(stack, job_id, 0) is not None)
    stack.restart_redis(keep_data=True, down_for=2)
    assert _status(stack, job_id) == "running"  # the outage hit the job, not its aftermath
    job = stack.wait(job_id, timeout=180)
    checked = assert_nothing_lost(stack, job_id, job)
    reliability.saw(f"workers reconnected; job succeeded with {job['progress']['done']}/{job['progress']['total']} "
                    "chunks")
    reliability.check(checked[0])


def test_redis_restarted_empty_is_reconciled(chaos_stack, clip, reliability):
    reliability.injected("SIGKILL of Redis mid-job and a restart with NO data: every queued message is lost")
    stack = chaos_stack()
    job_id = stack.submit(clip, operations="colorize").json()["id"]
    _wait_for("a chunk to run", lambda: _running_chunk(stack, job_id, 0) is not None)
    pending = stack.db("SELECT count(*) FROM chunks WHERE job_id = :j AND status = 'pending'", j=job_id)[0][0]
    stack.restart_redis(keep_data=False)
    job = stack.wait(job_id, timeout=180)
    checked = assert_nothing_lost(stack, job_id, job)
    recovered = [n for n in job["notes"] if "recovered" in n]
    assert recovered, job["notes"]
    reliability.saw(f"{pending} chunk messages were lost with the broker's data; the reconciler found them "
                    f"missing from the broker and re-sent them ({len(recovered)} recovery notes); job succeeded")
    reliability.check(checked[0])


def test_s3_errors_and_stalls_are_ridden_out(chaos_stack, clip, reliability):
    reliability.injected("S3 behind a fault proxy: every request answered 500 for 4 s, then every request "
                         "stalled 4 s (longer than the 2 s read timeout) for 6 s, while chunks run")
    stack = chaos_stack(fault_proxy=True, env={"S3_READ_TIMEOUT": "2"})
    job_id = stack.submit(clip, operations="colorize").json()["id"]
    _wait_for("a chunk to run", lambda: _running_chunk(stack, job_id, 0) is not None)
    stack.proxy.fail_for(4)
    time.sleep(4)
    stack.proxy.stall_for(6, delay=4)
    job = stack.wait(job_id, timeout=240)
    checked = assert_nothing_lost(stack, job_id, job)
    outcomes = stack.proxy.outcomes()
    errors, stalls = (sum(o.startswith(kind) for o in outcomes) for kind in ("failed", "stalled"))
    assert errors > 0 and stalls > 0, outcomes
    frames = _frames(stack, job_id)
    reliability.saw(f"{errors} storage requests answered 500 and {stalls} stalled past the read timeout, of "
                    f"{stack.proxy.requests}; boto3, ffmpeg and task retries rode them out; all {frames} frames "
                    "delivered")
    reliability.check(checked[0] + "; exactly the expected object keys (no duplicates)")


def test_postgres_restart_gives_503_then_recovers(chaos_stack, clip, reliability):
    reliability.injected("PostgreSQL stopped (immediate) for 5 s mid-job, then started again")
    stack = chaos_stack(private_postgres=True)
    job_id = stack.submit(clip, operations="colorize").json()["id"]
    _wait_for("a chunk to run", lambda: _running_chunk(stack, job_id, 0) is not None)
    stack.postgres.stop("immediate")
    statuses = []
    for _ in range(10):
        response = stack.http.get(f"{stack.base}/api/v1/jobs/{job_id}", timeout=15)
        statuses.append(response.status_code)
        time.sleep(0.5)
    stack.postgres.start()
    assert set(statuses) == {503}, statuses
    down = stack.http.get(f"{stack.base}/api/v1/health", timeout=15)
    job = stack.wait(job_id, timeout=180)
    checked = assert_nothing_lost(stack, job_id, job)
    assert down.status_code == 200
    reliability.saw(f"the API answered {len(statuses)} requests with 503 database_unavailable during the "
                    "outage; tasks retried with backoff; no process was restarted; job succeeded")
    reliability.check("503 (never 500) while down, 200 after; " + checked[0])


def test_cpu_worker_killed_mid_finalize_publishes_once(chaos_stack, clip, reliability):
    reliability.injected("SIGKILL of the CPU worker (with its embedded beat) while finalize streams: chunk 0 "
                         "already assembled and its intermediate deleted, later chunks still to come")
    stack = chaos_stack(env={"CHUNK_WINDOW": "2"})
    calm = stack.wait(stack.submit(clip, operations="colorize").json()["id"])
    reference = _output_sha(stack, calm["id"])
    job_id = stack.submit(clip, operations="colorize").json()["id"]
    _wait_for("finalize to assemble chunk 0 while later chunks run", lambda: _assembled_first(stack, job_id),
              every=0.02)
    stack.kill("cpu-worker")
    killed_at = time.monotonic()
    assert _status(stack, job_id) == "running"  # the kill interrupted finalize, it did not follow it
    stack.start("cpu-worker")
    job = stack.wait(job_id, timeout=180)
    checked = assert_nothing_lost(stack, job_id, job)
    assert _output_sha(stack, job_id) == reference
    assert any("computed again" in note for note in job["notes"]), job["notes"]
    reliability.saw(f"finalize's lease expired and the reconciler re-sent it; the new finalize found the chunks "
                    f"the dead one had assembled gone, had them computed again and streamed from chunk 0; any "
                    f"unfinished upload of the dead run was aborted; the job succeeded "
                    f"{time.monotonic() - killed_at:.1f} s after the kill")
    reliability.check("output SHA-256 identical to an undisturbed run; " + checked[0])


def _assembled_first(stack: Stack, job_id: str) -> bool:
    """Finalize streams: chunk 0 done, read and its intermediate deleted, later chunks to come."""
    stage, done, total = stack.db("SELECT stage, chunks_done, chunks_total FROM jobs WHERE id = :j", j=job_id)[0]
    first = stack.db("SELECT status FROM chunks WHERE job_id = :j AND index = 0", j=job_id)
    return (stage == "finalizing" and done < total and bool(first) and first[0][0] == "done"
            and not any(k.endswith("work/chunk-000000.mkv") for k in stack.objects(job_id)))


def test_postgres_stopped_while_finalize_streams_is_waited_out(chaos_stack, clip, reliability):
    reliability.injected("PostgreSQL stopped (immediate) for 3 s while finalize streams: chunk 0 already "
                         "assembled and its intermediate deleted, later chunks still to come")
    # A lease longer than the outage, so the reconciler has no reason to re-send finalize:
    # what is tested is that finalize itself carries on instead of raising.
    stack = chaos_stack(private_postgres=True, env={"CHUNK_WINDOW": "2", "LEASE_SECONDS": "40"})
    calm = stack.wait(stack.submit(clip, operations="colorize").json()["id"])
    reference = _output_sha(stack, calm["id"])
    job_id = stack.submit(clip, operations="colorize").json()["id"]
    _wait_for("finalize to assemble chunk 0 while later chunks run", lambda: _assembled_first(stack, job_id),
              every=0.02)
    stack.postgres.stop("immediate")
    time.sleep(3)
    stack.postgres.start()
    job = stack.wait(job_id, timeout=180)
    checked = assert_nothing_lost(stack, job_id, job)
    assert _output_sha(stack, job_id) == reference
    assert not any("computed again" in note for note in job["notes"]), job["notes"]
    log = (stack.logs / "cpu-worker.log").read_text(errors="replace")
    assert f"job {job_id}: finalize waits out an outage" in log, stack.tail()
    reliability.saw("finalize waited the outage out inside its stream (its log says so) and carried on from "
                    "where it was; no chunk it had assembled was computed again; the job succeeded")
    reliability.check("output SHA-256 identical to an undisturbed run, no recovery note; " + checked[0])


def test_a_chunk_that_keeps_killing_its_worker_fails_the_job_once(chaos_stack, clip, reliability):
    reliability.injected("a chunk whose worker dies on every attempt (SIGKILL mid-chunk), attempts capped at 1")
    stack = chaos_stack(env={"MAX_CHUNK_ATTEMPTS": "1"})
    job_id = stack.submit(clip, operations="colorize").json()["id"]
    _wait_for("a chunk to run", lambda: _running_chunk(stack, job_id) is not None)
    victim = _running_chunk(stack, job_id)
    stack.kill("gpu-worker")
    stack.start("gpu-worker")
    job = stack.wait(job_id, timeout=120)
    assert job["status"] == "failed" and job["error"]["code"] == "chunk_crashed", job
    assert f"chunk {victim}" in job["error"]["message"]
    _wait_for("the work objects to be removed",
              lambda: not [k for k in stack.objects(job_id) if "/work/" in k or "output" in k], 15, 0.2)
    healthy = stack.wait(stack.submit(clip, operations="colorize").json()["id"])
    assert healthy["status"] == "succeeded", healthy
    reliability.saw(f"chunk {victim} was re-sent once, found its attempt cap reached, and failed the job with "
                    f"chunk_crashed: {job['error']['message'][:80]}...")
    reliability.check("no work objects or output left; the same worker then ran another job to success")


def test_a_job_accepted_while_the_broker_is_down_runs_when_it_returns(chaos_stack, clip, reliability):
    reliability.injected("Redis stopped while a job is submitted; started again (same data) 3 s later")
    stack = chaos_stack()
    stack.stop_redis()
    response = stack.submit(clip, operations="colorize")
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert response.json()["status"] == "queued"
    assert stack.db("SELECT celery_id FROM jobs WHERE id = :j", j=job_id)[0][0] is None  # the row is the outbox
    time.sleep(3)
    stack.start_redis()
    job = stack.wait(job_id, timeout=180)
    checked = assert_nothing_lost(stack, job_id, job)
    reliability.saw("the API accepted the job (202, queued, no task id); once Redis was back the reconciler "
                    "sent its first task and the job succeeded")
    reliability.check(checked[0])
OUTAGES = ((1.0, 2.5), (2.0, 2.0), (0.5, 3.0), (1.5, 2.5))  # (down, up) seconds


def test_workers_outlive_repeated_broker_outages_while_acknowledging(chaos_stack, clip, reliability):
    reliability.injected(f"Redis SIGKILLed {len(OUTAGES)} times (down 0.5-2 s, up 2-3 s between) while chunks "
                         "of two jobs run and are acknowledged")
    stack = chaos_stack()
    jobs = [stack.submit(clip, operations="colorize").json()["id"] for _ in range(2)]
    _wait_for("a chunk to run", lambda: _running_chunk(stack, jobs[0], 0) is not None)
    for down, up in OUTAGES:
        stack.restart_redis(keep_data=True, down_for=down)
        time.sleep(up)
        stack.check_alive()
    finished = [stack.wait(job_id, timeout=240) for job_id in jobs]
    for job_id, job in zip(jobs, finished):
        assert_nothing_lost(stack, job_id, job)
    stack.check_alive()
    for name in ("cpu-worker", "gpu-worker"):
        log = (stack.logs / f"{name}.log").read_text(errors="replace")
        assert "Unrecoverable error" not in log and "no attribute 'hostname'" not in log, stack.tail()
    lost = {name: (stack.logs / f"{name}.log").read_text(errors="replace").count("Connection to broker lost")
            for name in ("cpu-worker", "gpu-worker")}
    assert all(count >= 2 for count in lost.values()), lost
    reliability.saw(f"both workers lost the broker ({lost}) and reconnected each time; both jobs succeeded")
    reliability.check("cpu and gpu worker processes alive throughout; for each job: " +
                      assert_nothing_lost(stack, jobs[0], finished[0])[0])


def _cli(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tintype.cli", *args], env=stack.env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def _listed(stack: Stack) -> dict[str, dict]:
    done = _cli(stack, "workers", "--json")
    assert done.returncode == 0, done.stderr
    return {row["name"]: row for row in map(json.loads, done.stdout.splitlines())}


def _chunk(stack: Stack, job_id: str, index: int) -> tuple[str, int]:
    return tuple(stack.db("SELECT status, attempts FROM chunks WHERE job_id = :j AND index = :i",
                          j=job_id, i=index)[0])


def _exit_code(stack: Stack, name: str, timeout: float) -> int:
    try:
        return stack.procs[name].wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{name} did not exit in {timeout} s\n{stack.tail()}") from None


# Neither the reconciler nor the visibility timeout can help here; chunks of 36 frames
# (two per clip, several seconds each) so a signal lands mid-chunk.
NO_LEASE_RESCUE = {"LEASE_SECONDS": "600", "CHUNK_FRAMES": "36"}


def test_drain_command_lets_the_running_chunk_finish_then_the_worker_exits(chaos_stack, clip, reliability):
    reliability.injected("`tintype drain gpu@it` while the GPU worker runs a chunk (DRAIN_SECONDS 60)")
    stack = chaos_stack(env={**NO_LEASE_RESCUE, "DRAIN_SECONDS": "60"})
    job_id = stack.submit(clip, operations="colorize").json()["id"]
    _wait_for("a chunk to run", lambda: _running_chunk(stack, job_id, 0) is not None)
    victim = _running_chunk(stack, job_id, 0)

    recorded = "SELECT running FROM workers WHERE name = 'gpu@it'"
    _wait_for("the registry to show the chunk", lambda: f'"chunk": {victim}' in json.dumps(
        stack.db(recorded)[0][0] if stack.db(recorded) else {}), timeout=10, every=0.1)
    table = _cli(stack, "workers").stdout
    assert "gpu@it" in table and f"gpu.process_chunk job {job_id} chunk" in table, table
    listed = _listed(stack)
    assert listed["gpu@it"]["pool"] == "gpu" and listed["cpu@it"]["pool"] == "cpu", listed
    assert listed["gpu@it"]["seen_seconds_ago"] < 5, listed

    asked = _cli(stack, "drain", "gpu@it")
    assert asked.returncode == 0 and "asked gpu@it to drain" in asked.stdout, asked
    assert _exit_code(stack, "gpu-worker", 90) == 0
    assert _chunk(stack, job_id, victim) == ("done", 1)  # finished here, once, before the exit
    assert "gpu@it" not in _listed(stack)
    stack.start("gpu-worker")
    job = stack.wait(job_id, timeout=240)
    checked = assert_nothing_lost(stack, job_id, job)
    assert _chunk(stack, job_id, victim) == ("done", 1)
    assert not any("recovered" in note for note in job["notes"]), job["notes"]
    reliability.saw(f"`tintype workers` showed gpu@it running chunk {victim}; after `tintype drain` the worker "
                    "took no new chunk, finished that one and exited 0; a new worker ran the rest")
    reliability.check(f"chunk {victim} attempted once; " + checked[0])


def test_sigterm_past_drain_seconds_gives_the_chunk_back_at_once(chaos_stack, clip, reliability):
    reliability.injected("SIGTERM to the GPU worker mid-chunk with DRAIN_SECONDS 1 (the chunk cannot finish)")
    # A chunk coloured frame by frame at 512 px takes a second or two, but on a CPU with AMX
    # one ended inside the drain second and the test saw it done. So once a chunk runs, the
    # pool process running it is stopped (SIGSTOP; the worker's main process goes on and
    # handles the signal): the chunk surely cannot finish before the drain time is up.
    stack = chaos_stack(env={**NO_LEASE_RESCUE, "DRAIN_SECONDS": "1", "RENDER_SIZE": "512"})
    job_id = stack.submit(clip, operations="colorize", colour_mode="per-frame").json()["id"]
    _wait_for("a chunk to run", lambda: _running_chunk(stack, job_id, 0) is not None)
    main = stack.procs["gpu-worker"].pid
    os.killpg(main, signal.SIGSTOP)
    os.kill(main, signal.SIGCONT)
    victim = _running_chunk(stack, job_id, 0)
    assert victim is not None, "the chunk ended before its pool process was stopped"
    os.kill(main, signal.SIGTERM)
    stopped_at = time.monotonic()
    _exit_code(stack, "gpu-worker", 30)
    assert time.monotonic() - stopped_at < 15
    assert _chunk(stack, job_id, victim) == ("pending", 0), stack.tail()  # handed back, attempt not counted
    assert "giving gpu.process_chunk" in (stack.logs / "gpu-worker.log").read_text(errors="replace")
    stack.start("gpu-worker")
    job = stack.wait(job_id, timeout=240)
    took = time.monotonic() - stopped_at
    checked = assert_nothing_lost(stack, job_id, job)
    assert _chunk(stack, job_id, victim) == ("done", 1)
    assert took < 600 / 3, took  # well before the lease (600 s) or the visibility timeout could act
    assert not any("recovered" in note for note in job["notes"]), job["notes"]
    reliability.saw(f"the worker gave chunk {victim} back 1 s after SIGTERM and exited; its message was "
                    f"requeued at once and a new worker finished the job {took:.0f} s after the signal")
    reliability.check(f"chunk {victim} done once (attempts 1, the drained run not counted); " + checked[0])
