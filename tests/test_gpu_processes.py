"""How many model processes the GPU pool runs, and on which GPU each one works
(gpu_workers.devices): one per GPU, one single-thread one per core on a CPU-only host,
GPU_PROCESSES and TORCH_THREADS over both; the worker registry counts what runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tintype import processes
from tintype.gpu_workers.devices import pin_this_process, plan_pool, usable_cores, visible_gpus
from tintype.settings import load_settings
from tintype.storage import workers as registry

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("asked, threads, gpus, cores, expected", [
    (0, 0, (), 2, (2, 1)),            # CPU-only: one single-thread process per core
    (0, 0, (), 16, (16, 1)),
    (0, 0, ("0", "1"), 16, (2, 8)),   # one per GPU, the cores shared out
    (0, 2, (), 8, (4, 2)),            # TORCH_THREADS=2: half as many processes
    (3, 0, (), 2, (3, 1)),            # GPU_PROCESSES wins
    (1, 0, ("0", "1"), 4, (1, 4)),
    (1, 1, (), 4, (1, 1)),
])
def test_the_plan_follows_the_hardware_unless_told(asked, threads, gpus, cores, expected):
    plan = plan_pool(asked, threads, gpus, cores)
    assert (plan.processes, plan.threads) == expected and plan.gpus == gpus


def test_a_negative_count_is_refused_by_name():
    with pytest.raises(ValueError, match="GPU_PROCESSES"):
        load_settings({"GPU_PROCESSES": "-1"})
    with pytest.raises(ValueError, match="TORCH_THREADS"):
        load_settings({"TORCH_THREADS": "-2"})
    assert load_settings({}).gpu_processes == 0


@pytest.mark.parametrize("value, gpus", [("2,3", ("2", "3")), ("", ()), ("-1", ()), ("0,-1,1", ("0",)),
                                         ("GPU-4f2a", ("GPU-4f2a",))])
def test_cuda_visible_devices_decides_which_gpus_are_seen(value, gpus):
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": value}) == gpus


def _fake_nvidia_smi(folder: Path, count: int) -> str:
    """A PATH whose nvidia-smi lists `count` GPUs as the real one does."""
    folder.mkdir(exist_ok=True)
    tool = folder / "nvidia-smi"
    lines = "".join(f"GPU {i}: NVIDIA H100 (UUID: GPU-{i:08d})\\n" for i in range(count))
    tool.write_text(f"#!/bin/sh\nprintf '{lines}'\n")
    tool.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"


def test_without_cuda_visible_devices_nvidia_smi_counts_the_gpus(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", _fake_nvidia_smi(tmp_path / "bin", 3))
    assert visible_gpus() == ("0", "1", "2")
    assert plan_pool(cores=12).processes == 3
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert visible_gpus() == () and plan_pool(cores=5).processes == 5


def test_each_pool_process_takes_its_own_gpu():
    env = {"CUDA_VISIBLE_DEVICES": "4,5"}
    assert pin_this_process(1, env) == "5" and env["CUDA_VISIBLE_DEVICES"] == "5"
    env = {"CUDA_VISIBLE_DEVICES": "4,5"}
    assert pin_this_process(2, env) == "4"
    env = {"CUDA_VISIBLE_DEVICES": ""}
    assert pin_this_process(0, env) is None and env == {"CUDA_VISIBLE_DEVICES": ""}
    env = {"CUDA_VISIBLE_DEVICES": "MIG-1f0c"}  # one device: left as the runtime named it
    assert pin_this_process(3, env) == "MIG-1f0c" and env == {"CUDA_VISIBLE_DEVICES": "MIG-1f0c"}


def test_the_worker_environment_carries_the_plan():
    env = processes.gpu_env(plan_pool(0, 0, ("0", "1"), 8), {"PATH": "/bin"})
    assert env == {"PATH": "/bin", "TORCH_THREADS": "4", "GPU_WORKER_SLOTS": "2", "CUDA_VISIBLE_DEVICES": "0,1"}
    kept = processes.gpu_env(plan_pool(0, 0, (), 2), {"GPU_WORKER_SLOTS": "5"})
    assert kept["GPU_WORKER_SLOTS"] == "5" and "CUDA_VISIBLE_DEVICES" not in kept
    assert processes.gpu_plan(load_settings({"GPU_PROCESSES": "3", "TORCH_THREADS": "1"})).processes == 3
    assert processes.gpu_plan(load_settings({}), 2).processes == 2  # tintype worker gpu -c 2


def _pool_children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.integration
def test_tintype_worker_gpu_runs_one_model_process_per_gpu_and_registers_as_many_slots(tmp_path):
    """A real `tintype worker gpu` on a host whose nvidia-smi lists two GPUs (this
    machine's torch has no CUDA, so the models load on the CPU): two pool processes, each
    pinned to its own GPU before torch starts, and a registry row of two task slots."""
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "GPU_PROCESSES",
                                                            "TORCH_THREADS", "GPU_WORKER_SLOTS")}
    env.update(TINTYPE_DATA_DIR=str(tmp_path / "data"), PATH=_fake_nvidia_smi(tmp_path / "bin", 2),
               PYTHONPATH=str(ROOT))
    settings = load_settings(env)
    subprocess.run([sys.executable, "-m", "tintype.cli", "migrate"], env=env, check=True, capture_output=True)
    log = tmp_path / "gpu-worker.log"
    worker = processes.start([sys.executable, "-m", "tintype.cli", "worker", "gpu"], env, log)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and worker.poll() is None:
            text = log.read_text(errors="replace")
            if "pool process 1" in text and "pool process 0" in text and "ready." in text:
                break
            time.sleep(0.5)
        text = log.read_text(errors="replace")
        assert "pool process 0 " in text and "pool process 1 " in text, text[-3000:]
        threads = max(1, usable_cores() // 2)
        assert f"GPU 0, {threads} torch thread(s)" in text and f"GPU 1, {threads} torch thread(s)" in text, \
            text[-3000:]
        children = _pool_children(worker.pid)
        assert len(children) == 2, children
        print("RSS MiB: main", round(_rss_mib(worker.pid)), "pool", [round(_rss_mib(c)) for c in children])
        since = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=5)
        assert registry.alive(settings.database_url, since).get("gpu") == (1, 2)
    finally:
        processes.kill([worker])
