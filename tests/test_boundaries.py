"""Architectural rules that keep the front door and the CPU pool light, and the pools apart."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tintype.gpu_workers.models.table import ROWS, ModelSpec, catalogue_mismatch, specs
from tintype.jobs.catalogue import COLORIZE_MODELS, DAMAGE_MODELS, INPAINT_MODELS

ROOT = Path(__file__).resolve().parent.parent
LIGHT_MODULES = ("tintype.web.app", "tintype.web.api", "tintype.web.pages", "tintype.jobs.intake",
                 "tintype.jobs.options",
                 "tintype.tasks.worker", "tintype.tasks.probe", "tintype.tasks.track", "tintype.tasks.finalize",
                 "tintype.tasks.reconcile", "tintype.queue.app", "tintype.queue.task", "tintype.media.delivery")


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


def test_catalogue_names_exactly_the_registered_models():
    assert {s.name for s in specs("colorize")} == COLORIZE_MODELS
    assert {s.name for s in specs("inpaint")} == INPAINT_MODELS
    assert {s.name for s in specs("damage")} == DAMAGE_MODELS


# What each part of tintype may import (besides itself and the standard library).
# Lower layers never import higher ones; web, the CPU tasks and the GPU workers never
# import each other: they meet in the jobs layer and the queue.
# `telemetry` defines the Prometheus metrics every layer counts (it imports no tintype
# part); `monitoring` serves them and reads the workload, above the queue.
ALLOWED = {
    "settings": set(),
    "telemetry": set(),
    "media": set(),
    "storage": {"settings"},
    "jobs": {"storage", "media", "settings", "telemetry"},
    "queue": {"jobs", "storage", "media", "settings", "telemetry"},
    "monitoring": {"queue", "jobs", "storage", "media", "settings", "telemetry"},
    # C2PA manifests: made from the job's facts, stored beside its results; no torch, no tasks
    "provenance": {"jobs", "storage", "media", "settings"},
    "tasks": {"monitoring", "queue", "jobs", "storage", "media", "settings", "telemetry", "provenance"},
    "gpu_workers": {"monitoring", "queue", "jobs", "storage", "media", "settings", "telemetry", "provenance"},
    "training": {"gpu_workers", "media", "settings"},
    "web": {"monitoring", "queue", "jobs", "storage", "media", "settings", "telemetry", "provenance"},
}
# the command line may use every part
TOP = ("cli", "collection", "evaluate", "instance", "keys_cli", "processes", "restore_paths", "workers_cli")
PACKAGE = Path(__file__).resolve().parent.parent / "tintype"


def _part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every tintype module a file imports, at the top or inside a function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"tintype.{a.name}" for a in node.names] if node.module == "tintype" else [node.module]
            found += [(n, node.lineno) for n in names if n.startswith("tintype.")]
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("tintype.")]
    return found


def _layer_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    return rel.parts[0] if len(rel.parts) > 1 else rel.name


def test_every_import_follows_the_layers():
    broken = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        layer = _layer_of(path)
        if layer in TOP or layer == "__init__":
            continue
        assert layer in ALLOWED, f"{path.relative_to(PACKAGE)}: place the new part {layer!r} in ALLOWED"
        for module, line in _imports(path):
            target = _part(module)
            if target and target != layer and target in ALLOWED | {t: set() for t in TOP} \
                    and target not in ALLOWED[layer]:
                broken.append(f"{path.relative_to(PACKAGE)}:{line} ({layer}) imports {module}")
    assert not broken, "imports against the layers:\n" + "\n".join(broken)


def test_web_writes_no_sql():
    """Queries and transitions are the jobs layer's; web only catches the database's errors."""
    offending = []
    for path in sorted((PACKAGE / "web").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith("sqlalchemy") and node.module != "sqlalchemy.exc":
                    offending.append(f"{path.name}: from {node.module}")
                if node.module == "tintype.storage.db" and {a.name for a in node.names} - {"upgrade"}:
                    offending.append(f"{path.name}: sessions from tintype.storage.db")
            elif isinstance(node, ast.Import) and any(a.name.startswith("sqlalchemy") for a in node.names):
                offending.append(f"{path.name}: import sqlalchemy")
    assert not offending, offending


def test_the_layer_rule_catches_an_upward_import(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    from tintype.web.app import create_app\n")
    assert ("tintype.web.app", 2) in _imports(bad) and _part("tintype.web.app") == "web"
    assert "web" not in ALLOWED["jobs"] and "tasks" not in ALLOWED["gpu_workers"]


def test_a_row_the_catalogue_lacks_is_named():
    extra = ModelSpec("new-colorizer", "colorize", lambda *_: None)
    assert catalogue_mismatch(ROWS) == []
    [problem] = catalogue_mismatch((*ROWS, extra))
    assert "new-colorizer" in problem and problem.startswith("colorize")


def test_backends_never_import_the_registry_or_the_table():
    """No registration by import: the table imports the backends, never the other way."""
    code = ("import sys; from tintype.gpu_workers.models import effnet_unet, exemplar_inpaint, onnx_colorizer, "
            "opencv_inpaint, scratch_unet, torchscript_inpaint, zhang; "
            "bad = {'tintype.gpu_workers.models.registry', 'tintype.gpu_workers.models.table'} & set(sys.modules); "
            "sys.exit(', '.join(sorted(bad)) or None)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_workers_never_import_training_code(tmp_path):
    code = ("import sys; import tintype.gpu_workers.worker, tintype.gpu_workers.processing, "
            "tintype.gpu_workers.models.registry; "
            "sys.exit(', '.join(m for m in sys.modules if m.startswith('tintype.training')) or None)")
    done = subprocess.run([sys.executable, "-c", code], env={"TINTYPE_DATA_DIR": str(tmp_path), "PATH": ""},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
