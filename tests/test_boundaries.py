"""Architectural rules that keep the front door and the CPU pool light."""

from __future__ import annotations

import subprocess
import sys

from tintype.gpu_workers.models.table import ROWS, ModelSpec, catalogue_mismatch, specs
from tintype.jobs.catalogue import COLORIZE_MODELS, INPAINT_MODELS


def test_web_and_cpu_tasks_never_import_torch(tmp_path):
    code = ("import sys; import tintype.web.app, tintype.web.api, tintype.web.pages, tintype.tasks.pipeline, tintype.jobs.intake; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    done = subprocess.run([sys.executable, "-c", code], env={"TINTYPE_DATA_DIR": str(tmp_path), "PATH": ""},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr or "torch was imported"


def test_catalogue_names_exactly_the_registered_models():
    assert {s.name for s in specs("colorize")} == COLORIZE_MODELS
    assert {s.name for s in specs("inpaint")} == INPAINT_MODELS


def test_a_row_the_catalogue_lacks_is_named():
    extra = ModelSpec("new-colorizer", "colorize", lambda *_: None)
    assert catalogue_mismatch(ROWS) == []
    [problem] = catalogue_mismatch((*ROWS, extra))
    assert "new-colorizer" in problem and problem.startswith("colorize")


def test_backends_never_import_the_registry_or_the_table():
    """No registration by import: the table imports the backends, never the other way."""
    code = ("import sys; from tintype.gpu_workers.models import effnet_unet, exemplar_inpaint, onnx_colorizer, "
            "opencv_inpaint, torchscript_inpaint, zhang; "
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
