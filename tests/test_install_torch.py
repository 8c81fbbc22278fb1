"""The PyTorch build follows the machine: CUDA only where an NVIDIA GPU answers."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "requirements" / "install-torch.sh"


def _which(tmp_path: Path, gpu: bool | None, build: str | None = None) -> subprocess.CompletedProcess:
    """Run the script's --which on a PATH that holds only `dirname` and, unless `gpu` is
    None, an `nvidia-smi` that answers (a GPU) or fails (a driver but no device)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))
    if gpu is not None:
        smi = bin_dir / "nvidia-smi"
        smi.write_text(f"#!/bin/sh\n{'echo GPU 0: H200' if gpu else 'exit 9'}\n")
        smi.chmod(0o755)
    env = {"PATH": str(bin_dir)} | ({"TORCH_BUILD": build} if build else {})
    return subprocess.run(["/bin/sh", str(SCRIPT), "python", "--which"], env=env,
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(("gpu", "build", "expected"), [
    (None, None, "cpu requirements/cpu.txt"),
    (False, None, "cpu requirements/cpu.txt"),
    (True, None, "cuda requirements/gpu.txt"),
    (True, "cpu", "cpu requirements/cpu.txt"),
    (None, "cuda", "cuda requirements/gpu.txt"),
])
def test_the_build_follows_the_gpu(tmp_path, gpu, build, expected):
    done = _which(tmp_path, gpu, build)
    assert done.returncode == 0, done.stderr
    choice, requirements = done.stdout.split()
    assert f"{choice} {Path(requirements).relative_to(SCRIPT.parent.parent)}" == expected


def test_an_unknown_build_is_refused(tmp_path):
    done = _which(tmp_path, None, "rocm")
    assert done.returncode == 2
    assert "TORCH_BUILD must be auto, cpu or cuda" in done.stderr


def test_the_cpu_pin_cannot_resolve_to_the_cuda_wheel():
    """PyPI's Linux torch wheel is the CUDA build; only a `+cpu` local version is safe."""
    pins = re.findall(r"^torch==(\S+)$", (ROOT / "requirements" / "cpu.txt").read_text(), re.M)
    assert pins and all(pin.endswith("+cpu") for pin in pins), pins
    gpu = (ROOT / "requirements" / "gpu.txt").read_text()
    assert re.search(r"^--extra-index-url https://download\.pytorch\.org/whl/cu\d+$", gpu, re.M)


def test_make_installs_torch_through_the_script():
    makefile = (ROOT / "Makefile").read_text()
    assert "sh requirements/install-torch.sh $(PY)" in makefile
    assert "-r requirements/cpu.txt" not in makefile
