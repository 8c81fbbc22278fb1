"""Metrics, the scaling signal and JSON logs (docs/metrics.md).

The first tests read a real database (PostgreSQL) and real brokers (Redis, the embedded
folder) directly; the rest run one job through a private deployment with LOG_FORMAT=json
and its GPU worker stopped at first, and read /metrics of the web and of both workers,
GET /api/v1/pools and the workers' logs.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import time
import uuid
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, Iterator

import pytest
from flask import Flask
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests import services
from tests.media_factory import grey_video
from tests.stack import Stack, running_stack
from tintype import telemetry as metrics
from tintype.jobs import workload
from tintype.monitoring import logs
from tintype.monitoring.pools import Snapshot
from tintype.queue.app import make_celery
from tintype.queue.broker_scan import QueueDepth, queue_depths
from tintype.queue.messages import CHUNK, PROBE, send
from tintype.settings import load_settings
from tintype.storage.db import session_scope
from tintype.storage.models import Chunk, Job, utcnow

LEASE = 90.0
TEXT_RECORD = re.compile(r"^\[\d{4}-\d\d-\d\d [^\]]*(DEBUG|INFO|WARNING|ERROR|CRITICAL)/")


# --- the database and broker readings, without workers ---------------------------------

def _job(url: str, kind: str, status: str, stage: str, silent: bool = False, chunks: dict[str, int] | None = None,
         silent_chunks: int = 0) -> str:
    """A job row (and chunk rows by status); `silent`: its heartbeat stopped long ago."""
    job_id = uuid.uuid4().hex
    old = utcnow() - timedelta(seconds=LEASE * 3)
    with session_scope(url) as s:
        s.add(Job(id=job_id, kind=kind, status=status, stage=stage, operations=["colorize"], options={},
                  input_name="x", input_bytes=1, input_sha256="0" * 64, input_facts={}, has_mask=0, notes=[],
                  timings={}, updated_at=old if silent else utcnow()))
        index = 0
        for chunk_status, count in (chunks or {}).items():
            for nth in range(count):
                stale = chunk_status == "running" and nth < silent_chunks
                s.add(Chunk(job_id=job_id, index=index, start=index * 10, count=10, decode_start=index * 10,
                            decode_count=10, status=chunk_status, attempts=1, updated_at=old if stale else utcnow()))
                index += 1
    return job_id


@pytest.mark.integration
def test_workload_counts_waiting_and_running_work_per_pool(db_url):
    # A video processing: 3 pending chunks, 2 running of which 1 went silent, 4 done.
    _job(db_url, "video", "running", "processing", chunks={"pending": 3, "running": 2, "done": 4}, silent_chunks=1)
    _job(db_url, "image", "running", "image_queued")  # gpu, waiting
    _job(db_url, "image", "running", "processing")  # gpu, running
    _job(db_url, "video", "running", "planning_colour", silent=True)  # gpu, died: waiting for a re-send
    _job(db_url, "video", "queued", "queued")  # cpu, waiting (probe)
    _job(db_url, "video", "running", "finalizing")  # cpu, running
    _job(db_url, "video", "succeeded", "done")  # counts nowhere
    work = workload.measure(db_url, utcnow(), LEASE)
    assert work.chunks == {"pending": 3, "running": 1, "stalled": 1}
    assert (work.pools["gpu"].waiting, work.pools["gpu"].running) == (3 + 1 + 1 + 1, 1 + 1)
    assert (work.pools["cpu"].waiting, work.pools["cpu"].running) == (1, 1)
    counts = workload.job_counts(db_url)
    assert counts[("video", "running")] == 3 and counts[("video", "succeeded")] == 1


def test_workers_needed_uses_the_larger_waiting_count_plus_running():
    work = workload.Workload()
    work.pools["gpu"].waiting, work.pools["gpu"].running = 2, 3
    now = utcnow()
    snap = Snapshot(now, {"gpu": QueueDepth(4, now.timestamp() - 30), "cpu": QueueDepth(0, None)}, work,
                    {"gpu": (1, 2)}, {"gpu": 2, "cpu": 4})
    gpu = snap.pools()["gpu"]
    assert (gpu.waiting, gpu.running, gpu.workers_needed) == (4, 3, 4)  # ceil(7 / 2)
    assert 29 <= gpu.oldest_waiting_seconds <= 31 and gpu.slots_alive == 2
    lost = Snapshot(now, None, work, {}, {"gpu": 2, "cpu": 4}).pools()["gpu"]  # broker unreadable
    assert (lost.waiting_in_broker, lost.waiting, lost.workers_needed) == (None, 2, 3)


def test_folder_broker_depth_and_age_come_from_the_stamped_send_time(tmp_path):
    settings = load_settings({"TINTYPE_DATA_DIR": str(tmp_path)})
    app = make_celery(settings)
    send(app, CHUNK, "job", 0)
    time.sleep(0.2)
    send(app, CHUNK, "job", 1)
    send(app, PROBE, "job")
    depths = queue_depths(app.conf.broker_url, ["cpu", "gpu"], app.conf.broker_transport_options)
    assert (depths["gpu"].waiting, depths["cpu"].waiting) == (2, 1)
    assert 0.2 <= depths["gpu"].age(time.time()) < 30


@pytest.mark.integration
def test_redis_depth_and_age_see_the_oldest_message(tmp_path):
    proc, port = services.start_redis(tmp_path)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        app = make_celery(load_settings({"TINTYPE_DATA_DIR": str(tmp_path), "BROKER_URL": url}))
        send(app, CHUNK, "job", 0)
        time.sleep(0.3)
        send(app, CHUNK, "job", 1)
        depths = queue_depths(url, ["cpu", "gpu"], {})
        assert (depths["gpu"].waiting, depths["cpu"].waiting) == (2, 0)
        assert depths["gpu"].age(time.time()) >= 0.3 and depths["cpu"].oldest_sent_at is None
    finally:
        services.stop(proc)


def test_failure_reasons_are_a_bounded_set():
    assert metrics.failure_reason("timeout") == "timeout"
    assert metrics.failure_reason("anything a future error invents") == "other"
    assert metrics.upload_part("keyframe-17.png") == "other"


def test_json_lines_carry_the_bound_task_context():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logs.use_json(handler)
    logger = logging.getLogger("tintype.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        token = logs.bind(job_id="j1", chunk=3, stage="process_chunk", worker="gpu@h")
        try:
            raise ValueError("boom\nwith a second line")
        except ValueError:
            logger.exception("chunk failed", extra={"duration_s": 1.5})
        logs.reset(token)
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert first["job_id"] == "j1" and first["chunk"] == 3 and first["duration_s"] == 1.5
    assert first["level"] == "ERROR" and "ValueError" in first["exc_info"]
    assert "job_id" not in second and second["message"] == "outside"


def test_web_records_carry_the_route_rule_and_job_of_the_request():
    app = Flask(__name__)
    app.add_url_rule("/api/v1/jobs/<job_id>", "job", lambda job_id: job_id)
    record = logging.LogRecord("tintype.web", logging.INFO, __file__, 1, "served", None, None)
    with app.test_request_context("/api/v1/jobs/abc123"):
        logs.ContextFilter().filter(record)
    line = json.loads(logs.JsonFormatter().format(record))
    assert (line["route"], line["job_id"], line["method"]) == ("/api/v1/jobs/<job_id>", "abc123", "GET")


def test_gpu_gauges_are_absent_without_cuda_and_labelled_by_device_with_it(monkeypatch):
    def gpu_samples() -> list:
        return [s for f in REGISTRY.collect() if f.name.startswith("tintype_gpu") for s in f.samples]

    import torch

    if not torch.cuda.is_available():  # a CPU host reports no GPU
        before = gpu_samples()
        metrics.record_gpu()
        assert gpu_samples() == before
    cuda = SimpleNamespace(is_available=lambda: True, is_initialized=lambda: True, device_count=lambda: 1,
                           memory_allocated=lambda i: 100, memory_reserved=lambda i: 200,
                           get_device_properties=lambda i: SimpleNamespace(total_memory=1000),
                           utilization=lambda i: 50)
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=cuda))  # the one stand-in: no GPU here
    metrics.record_gpu()
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in gpu_samples()}
    assert values[("tintype_gpu_memory_bytes", (("device", "0"), ("kind", "reserved")))] == 200
    assert values[("tintype_gpu_utilization_ratio", (("device", "0"),))] == 0.5


# --- one job through a private deployment ------------------------------------------------

def _parse(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by name: [(labels, value)]."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def _value(samples: dict, name: str, **labels: str) -> float:
    return sum(v for found, v in samples.get(name, []) if all(found.get(k) == w for k, w in labels.items()))


def _scrape(stack: Stack, name: str) -> str:
    response = stack.http.get(stack.metrics_url(name), timeout=30)
    response.raise_for_status()
    return response.text


def _settled(stack: Stack, name: str, metric: str, minimum: float, timeout: float = 30) -> dict:
    """The process's samples once `metric` reaches `minimum`: a worker counts a task's end
    just after the database shows it, so a scrape right after the job ends may be early."""
    deadline = time.monotonic() + timeout
    while True:
        samples = _parse(_scrape(stack, name))
        if _value(samples, metric) >= minimum or time.monotonic() > deadline:
            return samples
        time.sleep(0.5)


def _poll_pools(stack: Stack, operator, until, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pools = operator.get(f"{stack.base}/api/v1/pools", timeout=10).json()["pools"]
        if until(pools["gpu"]):
            return pools
        time.sleep(0.1)
    raise AssertionError(f"pools never matched in {timeout} s: {pools}\n{stack.tail()}")


@pytest.fixture(scope="module")
def observed(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """A colorized video submitted while the GPU worker is stopped, then run to the end:
    the pools while its work waits, while it runs, and the stack afterwards."""
    work = tmp_path_factory.mktemp("monitoring")
    with running_stack(work, extra_env={"LOG_FORMAT": "json"}) as stack:
        operator = stack.client(stack.new_key("ops", "--operator"))
        stack.kill("gpu-worker")
        source = grey_video(work / "film.mp4", size="320x240", frames=96)
        response = stack.submit(source, operations="colorize")
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        # The database lists the colour plan as handed over a moment before its message is sent.
        waiting = _poll_pools(stack, operator, lambda gpu: (gpu["waiting_in_broker"] or 0) >= 1, 120)
        web_while_waiting = _scrape(stack, "web")
        stack.start("gpu-worker")
        running = _poll_pools(stack, operator, lambda gpu: gpu["running"] >= 1, 120)
        job = stack.wait(job_id)
        yield {"stack": stack, "job": job, "waiting": waiting, "running": running, "operator": operator,
               "web_while_waiting": web_while_waiting}


@pytest.mark.integration
@pytest.mark.slow
def test_pools_report_waiting_work_with_no_gpu_worker_then_running_work(observed):
    gpu = observed["waiting"]["gpu"]
    assert gpu["waiting"] >= 1 and gpu["waiting_in_broker"] >= 1 and gpu["workers_needed"] >= 1, gpu
    assert gpu["running"] == 0, gpu  # the only GPU worker is stopped (its heartbeat row ages out)
    assert gpu["oldest_waiting_seconds"] is not None
    assert observed["running"]["gpu"]["running"] >= 1 and observed["running"]["gpu"]["workers_needed"] >= 1
    assert observed["running"]["gpu"]["workers_alive"] == 1
    assert observed["job"]["status"] == "succeeded", observed["job"]
    samples = _parse(observed["web_while_waiting"])
    assert _value(samples, "tintype_queue_messages", queue="gpu") >= 1
    assert _value(samples, "tintype_pool_workers_needed", pool="gpu") >= 1


@pytest.mark.integration
@pytest.mark.slow
def test_pools_are_for_operators_only(observed):
    stack = observed["stack"]
    assert stack.http.get(f"{stack.base}/api/v1/pools", timeout=10).status_code == 403


@pytest.mark.integration
@pytest.mark.slow
def test_metrics_of_web_and_workers_count_the_job(observed):
    stack, job = observed["stack"], observed["job"]
    chunks, frames = job["progress"]["total"], job["input"]["facts"]["frames"]
    web = _parse(_scrape(stack, "web"))
    cpu = _settled(stack, "cpu-worker", "tintype_finalize_duration_seconds_count", 1)
    gpu = _settled(stack, "gpu-worker", "tintype_tasks_total", chunks + 1)
    assert _value(web, "tintype_jobs", kind="video", status="succeeded") >= 1
    assert _value(web, "tintype_source_up", source="broker") == 1 and "tintype_queue_messages" in web
    assert "tintype_queue_oldest_message_age_seconds" in web
    assert _value(web, "tintype_http_request_duration_seconds_count", route="/api/v1/jobs/<job_id>") >= 1
    assert _value(web, "tintype_upload_bytes_total", part="upload") >= job["input"]["bytes"]
    assert _value(gpu, "tintype_chunk_duration_seconds_count") == chunks > 1
    assert _value(gpu, "tintype_frames_processed_total") == frames
    assert _value(gpu, "tintype_model_load_seconds_count") >= 1
    assert _value(gpu, "tintype_tasks_total", task="gpu.process_chunk", outcome="success") >= chunks
    assert _value(cpu, "tintype_finalize_duration_seconds_count") >= 1
    assert _value(cpu, "tintype_jobs_finished_total", kind="video", status="succeeded") >= 1
    assert _value(cpu, "tintype_job_duration_seconds_count", kind="video", status="succeeded") >= 1


@pytest.mark.integration
@pytest.mark.slow
def test_no_label_carries_a_job_id(observed):
    stack = observed["stack"]
    job_ids = {row[0] for row in stack.db("SELECT id FROM jobs")}
    for name in ("web", "cpu-worker", "gpu-worker"):
        text = _scrape(stack, name)
        values = {v for samples in _parse(text).values() for labels, _ in samples for v in labels.values()}
        assert not {v for v in values if any(job_id in v for job_id in job_ids)}, name
        assert len(text.splitlines()) < 3000, f"{name} exposes {len(text.splitlines())} lines"


def _log_records(stack: Stack, name: str) -> list[dict[str, Any]]:
    """Every log line of a process parsed; only Celery's start-up banner (printed, not
    logged) may be plain text, never a text log record."""
    lines = (stack.logs / f"{name}.log").read_text().splitlines()
    text_records = [line for line in lines if TEXT_RECORD.match(line)]
    assert not text_records, f"{name}.log has plain-text log records: {text_records[:3]}"
    return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.mark.integration
@pytest.mark.slow
def test_worker_logs_are_json_lines_with_the_job_and_chunk(observed):
    job_id = observed["job"]["id"]
    gpu, cpu = (_log_records(observed["stack"], name) for name in ("gpu-worker", "cpu-worker"))
    ends = [r for r in gpu + cpu if r.get("job_id") == job_id and r["message"] == "task finished"]
    assert {r["stage"] for r in ends} >= {"probe", "plan_colour", "process_chunk", "finalize"}, ends
    assert all({"worker", "duration_s", "outcome", "time", "level", "pool"} <= set(r) for r in ends)
    chunks = {r["chunk"] for r in ends if r["stage"] == "process_chunk"}
    assert chunks == set(range(observed["job"]["progress"]["total"]))
