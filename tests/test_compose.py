"""compose.yaml describes a deployment that can start: every service is there, every image
is built from a Dockerfile that exists, and every command names code that really imports.

No Docker here: the file is parsed with PyYAML and each entry point is imported in a
fresh interpreter (so torch, pulled in by the GPU worker, stays out of this process).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"

REQUIRED = {"postgres", "redis", "minio", "minio-init", "migrate", "web", "cpu-worker", "beat",
            "gpu-worker", "flower"}
# What each application service must run: (program, queue for workers).
EXPECTED_PROGRAM = {"migrate": "tintype", "web": "gunicorn", "cpu-worker": "celery", "beat": "celery",
                    "gpu-worker": "celery", "flower": "celery"}
# Tasks each worker pool must have registered: the ones routed to its queue.
POOL_TASKS = {
    "cpu": {"tasks.probe", "tasks.track", "tasks.finalize", "tasks.reconcile"},
    "gpu": {"gpu.process_chunk", "gpu.process_image", "gpu.plan_colour"},
}
_INTERPOLATION = re.compile(r"\$\$|\$\{(\w+)(?::?-([^}]*))?\}")
_MODULE_ATTR = re.compile(r"^([A-Za-z_][\w.]*):([A-Za-z_]\w*)$")

# Runs in a fresh interpreter: import MODULE, fetch ATTR, describe what it found.
_PROBE = r"""
import importlib, json, sys
module, attr = sys.argv[1], sys.argv[2]
obj = getattr(importlib.import_module(module), attr)
facts = {"type": type(obj).__module__ + "." + type(obj).__name__}
if hasattr(obj, "tasks") and hasattr(obj, "conf"):  # a Celery app
    obj.loader.import_default_modules()  # what a worker does at start: conf.include
    facts["tasks"] = sorted(obj.tasks.keys())
    facts["queues"] = sorted(q.name for q in (obj.conf.task_queues or []))
if hasattr(obj, "url_map"):  # a Flask app
    facts["rules"] = sorted(r.rule for r in obj.url_map.iter_rules())
print("FACTS " + json.dumps(facts))
"""


def _interpolate(value):
    """Compose's ${VAR:-default} with the defaults (the environment of this test is not the host's)."""
    if isinstance(value, str):
        return _INTERPOLATION.sub(lambda m: "$" if m.group(0) == "$$" else (m.group(2) or ""), value)
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    return value


def load_compose(path: Path = COMPOSE) -> dict:
    with path.open() as fh:
        return _interpolate(yaml.safe_load(fh))


def command_tokens(service: dict) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def entry_point(tokens: list[str]) -> tuple[str, str, str] | None:
    """("module", MODULE, ATTR) for celery/gunicorn, ("cli", SUBCOMMAND, "") for tintype."""
    if not tokens:
        return None
    program = Path(tokens[0]).name
    if program == "celery":
        for i, tok in enumerate(tokens):
            if tok in ("-A", "--app") and i + 1 < len(tokens):
                target = tokens[i + 1]
                break
            if tok.startswith("--app="):
                target = tok.split("=", 1)[1]
                break
        else:
            raise AssertionError(f"celery command without -A: {tokens}")
        module, _, attr = target.partition(":")
        return "module", module, attr or "app"
    if program == "gunicorn":
        targets = [m for m in map(_MODULE_ATTR.match, tokens[1:]) if m]
        assert len(targets) == 1, f"gunicorn command must name one MODULE:ATTR, got {tokens}"
        return "module", targets[0].group(1), targets[0].group(2)
    if program == "tintype":
        assert len(tokens) > 1, "tintype command without a subcommand"
        return "cli", tokens[1], ""
    return None


def option(tokens: list[str], *names: str) -> str | None:
    for i, tok in enumerate(tokens):
        if tok in names and i + 1 < len(tokens):
            return tokens[i + 1]
        for name in names:
            if name.startswith("--") and tok.startswith(name + "="):
                return tok.split("=", 1)[1]
    return None


def probe_module(module: str, attr: str, data_dir: Path) -> dict:
    """Import MODULE and get ATTR in a fresh interpreter on embedded defaults; raises if either fails."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "BROKER_URL", "RESULT_BACKEND", "STORAGE_URL", "S3_ENDPOINT_URL")}
    env["TINTYPE_DATA_DIR"] = str(data_dir)
    result = subprocess.run([sys.executable, "-c", _PROBE, module, attr], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"{module}:{attr} does not import:\n{result.stderr[-3000:]}")
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("FACTS "))
    return json.loads(line[len("FACTS "):])


def check_cli(subcommand: str) -> None:
    result = subprocess.run([sys.executable, "-m", "tintype.cli", subcommand, "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"`tintype {subcommand}` is not a subcommand:\n{result.stderr[-2000:]}"


def check_build(name: str, service: dict, root: Path = ROOT) -> None:
    build = service["build"]
    build = {"context": build} if isinstance(build, str) else build
    context = (root / build.get("context", ".")).resolve()
    assert context == root, f"{name}: build context must be the repository root, got {context}"
    dockerfile = (context / build.get("dockerfile", "Dockerfile")).resolve()
    assert dockerfile.parent == root / "deploy", f"{name}: Dockerfile {dockerfile} is not in deploy/"
    assert dockerfile.is_file(), f"{name}: Dockerfile {dockerfile} does not exist"


# --------------------------------------------------------------------------- structure

@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def test_every_required_service_exists(services):
    missing = REQUIRED - set(services)
    assert not missing, f"compose.yaml lacks {sorted(missing)}"


def test_gpu_worker_reserves_an_nvidia_gpu(services):
    devices = services["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", [])
               and str(d.get("count")) in ("1", "all") for d in devices), devices
    for name, service in services.items():
        if name != "gpu-worker":
            assert "devices" not in str(service.get("deploy", {})), f"{name} should not reserve a GPU"


def test_built_services_use_a_dockerfile_in_deploy(services):
    built = {name: s for name, s in services.items() if "build" in s}
    assert set(EXPECTED_PROGRAM) <= set(built), "every tintype service is built from this repository"
    for name, service in built.items():
        check_build(name, service)
    assert services["gpu-worker"]["build"]["dockerfile"].endswith("Dockerfile.gpu")
    for name in set(EXPECTED_PROGRAM) - {"gpu-worker"}:
        assert services[name]["build"]["dockerfile"].endswith("Dockerfile.cpu"), name


def test_check_build_rejects_a_missing_dockerfile():
    bogus = {"build": {"context": ".", "dockerfile": "deploy/Dockerfile.nope"}}
    with pytest.raises(AssertionError, match="does not exist"):
        check_build("bogus", bogus)
    with pytest.raises(AssertionError, match="not in deploy"):
        check_build("bogus", {"build": {"context": ".", "dockerfile": "pyproject.toml"}})


def test_shared_environment_points_at_the_compose_services(compose, services):
    env = compose["x-tintype-env"]
    assert env["DATABASE_URL"] == "postgresql+psycopg2://tintype:tintype@postgres:5432/tintype"
    assert env["BROKER_URL"] == "redis://redis:6379/0"
    assert env["RESULT_BACKEND"] == "redis://redis:6379/1"
    assert env["S3_ENDPOINT_URL"] == "http://minio:9000"
    assert env["SECRET_KEY"] == "change-me"  # ${TINTYPE_SECRET_KEY:-change-me}
    minio = services["minio"]["environment"]
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == \
        (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"])
    db = urlparse(env["DATABASE_URL"])
    pg = services["postgres"]["environment"]
    assert (db.username, db.password, db.path.lstrip("/")) == \
        (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"])
    bucket = urlparse(env["STORAGE_URL"])
    assert bucket.scheme == "s3" and bucket.netloc
    init = " ".join(command_tokens(services["minio-init"]))
    assert "mc mb" in init and f"/{bucket.netloc}" in init, "minio-init must create the STORAGE_URL bucket"
    for name in EXPECTED_PROGRAM:
        assert services[name]["environment"] == env, f"{name} must use the x-tintype-env settings"


def test_redis_persists_every_write(services):
    tokens = command_tokens(services["redis"])
    assert option(tokens, "--appendonly") == "yes" and option(tokens, "--appendfsync") == "always"


def test_startup_order(services):
    def conditions(name):
        return {dep: spec.get("condition") for dep, spec in services[name]["depends_on"].items()}

    assert conditions("migrate") == {"postgres": "service_healthy"}
    assert conditions("minio-init") == {"minio": "service_healthy"}
    for name in ("web", "cpu-worker", "beat", "gpu-worker"):
        deps = conditions(name)
        assert deps.get("migrate") == "service_completed_successfully", name
        assert deps.get("minio-init") == "service_completed_successfully", name
        assert deps.get("redis") == "service_healthy", name
    for name in ("postgres", "redis", "minio", "web"):
        assert "healthcheck" in services[name], f"{name} needs a healthcheck for depends_on"
    assert "/api/v1/health" in " ".join(services["web"]["healthcheck"]["test"])


def test_worker_queues(services):
    cpu, gpu = command_tokens(services["cpu-worker"]), command_tokens(services["gpu-worker"])
    assert "worker" in cpu and option(cpu, "-Q", "--queues") == "cpu"
    assert "worker" in gpu and option(gpu, "-Q", "--queues") == "gpu"
    assert option(gpu, "-c", "--concurrency") == "1", "one GPU worker process per GPU"
    assert "beat" in command_tokens(services["beat"])
    assert "flower" in command_tokens(services["flower"])


# --------------------------------------------------------------------------- entry points

def test_every_command_names_code_that_imports(services, tmp_path):
    seen: dict[tuple[str, str], dict] = {}
    for name, program in EXPECTED_PROGRAM.items():
        tokens = command_tokens(services[name])
        assert tokens and Path(tokens[0]).name == program, f"{name} must run {program}: {tokens}"
        kind, target, attr = entry_point(tokens)
        if kind == "cli":
            check_cli(target)
            continue
        if (target, attr) not in seen:
            seen[(target, attr)] = probe_module(target, attr, tmp_path / target)
        facts = seen[(target, attr)]
        if program == "celery":
            assert facts["type"] == "celery.app.base.Celery", f"{name}: {target}.{attr} is {facts['type']}"
            queue = option(tokens, "-Q", "--queues")
            if queue:
                assert queue in facts["queues"], f"{name}: queue {queue} is not declared by the app"
                missing = POOL_TASKS[queue] - set(facts["tasks"])
                assert not missing, f"{name}: {target} does not register {sorted(missing)}"
        if program == "gunicorn":
            assert facts["type"] == "flask.app.Flask", f"{name}: {target}:{attr} is {facts['type']}"
            assert "/api/v1/health" in facts["rules"], "the web healthcheck URL is not routed"


def test_entry_point_parsing():
    assert entry_point(["celery", "-A", "tintype.tasks.worker", "worker"]) == ("module", "tintype.tasks.worker", "app")
    assert entry_point(["celery", "--app=x.y:z", "beat"]) == ("module", "x.y", "z")
    assert entry_point(shlex.split("gunicorn -w 4 -b 0.0.0.0:8000 tintype.web.wsgi:app")) == \
        ("module", "tintype.web.wsgi", "app")
    assert entry_point(["tintype", "migrate"]) == ("cli", "migrate", "")


def test_checks_reject_wrong_names(tmp_path):
    """The checks above would catch a typo: a wrong module, attribute or subcommand fails."""
    with pytest.raises(AssertionError, match="does not import"):
        probe_module("tasks.celery_ap", "app", tmp_path)
    with pytest.raises(AssertionError, match="does not import"):
        probe_module("tintype.settings", "app", tmp_path)
    with pytest.raises(AssertionError, match="not a subcommand"):
        check_cli("migrat")
