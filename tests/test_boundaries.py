"""Architectural rules that keep the front door and the CPU pool light, and the pools apart."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tintype.gpu_workers.models.registry import specs
from tintype.jobs.catalogue import COLORIZE_MODELS, INPAINT_MODELS

ROOT = Path(__file__).resolve().parent.parent
LIGHT_MODULES = ("tintype.web.app", "tintype.web.api", "tintype.web.pages", "tintype.jobs.intake",
                 "tintype.tasks.worker", "tintype.tasks.probe", "tintype.tasks.track", "tintype.tasks.finalize",
                 "tintype.tasks.reconcile", "tintype.queue.app", "tintype.queue.task", "tintype.media.delivery")
# What the shared queue package may import from tintype, so both pools can use it.
QUEUE_MAY_IMPORT = ("tintype.queue", "tintype.jobs", "tintype.storage", "tintype.media", "tintype.settings")


def test_web_and_cpu_tasks_never_import_torch(tmp_path):
    code = (f"import sys, importlib; [importlib.import_module(m) for m in {LIGHT_MODULES!r}]; "
            "app = sys.modules['tintype.tasks.worker'].app; app.loader.import_default_modules(); "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    done = subprocess.run([sys.executable, "-c", code], env={"TINTYPE_DATA_DIR": str(tmp_path), "PATH": ""},
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr or "torch was imported"


def _tintype_imports(folder: Path) -> dict[str, set[str]]:
    """Per module file under `folder`, the tintype modules it imports (at any depth)."""
    found = {}
    for path in folder.rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[str(path.relative_to(ROOT))] = {n for n in names if n.startswith("tintype.")}
    return found


def test_gpu_code_never_imports_cpu_tasks():
    for path, names in _tintype_imports(ROOT / "tintype" / "gpu_workers").items():
        assert not [n for n in names if n.startswith("tintype.tasks")], f"{path} imports {names}"


def test_queue_package_depends_only_on_neutral_packages():
    for path, names in _tintype_imports(ROOT / "tintype" / "queue").items():
        bad = [n for n in names if not n.startswith(QUEUE_MAY_IMPORT)]
        assert not bad, f"{path} imports {bad}"


def test_catalogue_names_exactly_the_registered_models():
    assert {s.name for s in specs("colorize")} == COLORIZE_MODELS
    assert {s.name for s in specs("inpaint")} == INPAINT_MODELS
