"""deploy/kubernetes/ describes a cluster deployment that can start and behave.

Every overlay is rendered (tests/kustomize_lite.py; cross-checked against kustomize where
it is installed) and every object is validated against the Kubernetes JSON schemas that
kubernetes-validate ships (offline, strict: unknown fields fail). The custom resources
(KEDA's ScaledObject) and the Prometheus files are checked against small schemas below.
Then the manifests are checked against the code: every command names a `tintype`
subcommand, Celery app or WSGI app that exists, every environment variable is a setting
(or one a library reads), the grace periods follow their formulas, the probed paths are
routed, and the alert rules and the dashboard use only metrics that tintype exports.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.kustomize_lite import image_name, load_documents, render
from tests.test_compose import POOL_TASKS, option, probe_module
from tintype.cli import build_parser
from tintype.queue.app import PROBE_TIME_LIMIT
from tintype.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "kubernetes"
OVERLAYS = {"gpu": K8S / "overlays" / "gpu", "cpu-only": K8S / "overlays" / "cpu-only"}
SECRETS_EXAMPLE = K8S / "base" / "secrets.example.yaml"
MONITORING = K8S / "monitoring"
OPERATIONS = ROOT / "docs" / "operations.md"
METRICS_DOC = ROOT / "docs" / "metrics.md"

# The oldest Kubernetes the manifests must suit (PodDisruptionBudget policy/v1, HPA
# behavior via KEDA, Ingress v1 all exist there), and the newest whose schemas are shipped.
K8S_VERSIONS = ("1.29", kubernetes_validate.utils.latest_version())

# Variables set in the manifests that tintype/settings.py does not read, and who does.
THIRD_PARTY_ENV = {
    "AWS_ACCESS_KEY_ID": "boto3's credentials",
    "AWS_SECRET_ACCESS_KEY": "boto3's credentials",
    "OMP_WAIT_POLICY": "OpenMP (torch's threads sleep instead of spinning)",
    "PYTHONUNBUFFERED": "CPython (log lines leave at once)",
}
# Settings that the metrics work (branch i21-metrics, docs/metrics.md) adds to
# tintype/settings.py. Once settings.py reads one, the test below fails until it is
# removed from here.
PENDING_SETTINGS: set[str] = set()  # all read by settings.py now
# Paths probed or scraped that the web app is to serve (/metrics with the metrics work;
# /readyz and /healthz not yet written); until the app routes them, the route check is
# skipped with this reason.
PENDING_ROUTES: set[str] = set()  # /metrics is routed now
# Routes for the cluster only: never published by the Ingress.
INTERNAL_ROUTES = {"/readyz", "/healthz", "/metrics"}

# The metrics the rules and the dashboard may use, as docs/metrics.md of the metrics work
# (branch i21-metrics) names them, until that document is on this branch; from then on
# the names are read from it.
EXPECTED_METRICS = {
    "tintype_jobs",                              # gauge {kind, status}
    "tintype_chunks",                            # gauge {state: pending, running, stalled}
    "tintype_queue_messages",                    # gauge {queue}: waiting in the broker
    "tintype_queue_oldest_message_age_seconds",  # gauge {queue}
    "tintype_pool_waiting",                      # gauge {pool}
    "tintype_pool_running",                      # gauge {pool}
    "tintype_pool_workers_alive",                # gauge {pool}
    "tintype_pool_worker_slots_alive",           # gauge {pool}
    "tintype_pool_workers_needed",               # gauge {pool}: the scaling signal
    "tintype_source_up",                         # gauge {source: database, broker}
    "tintype_http_request_duration_seconds",     # histogram {method, route, status}
    "tintype_upload_bytes_total",                # counter {part}
    "tintype_tasks_total",                       # counter {task, outcome}
    "tintype_task_duration_seconds",             # histogram {task}
    "tintype_chunk_duration_seconds",            # histogram
    "tintype_frames_processed_total",            # counter
    "tintype_finalize_duration_seconds",         # histogram
    "tintype_jobs_finished_total",               # counter {kind, status}
    "tintype_job_duration_seconds",              # histogram {kind, status}
    "tintype_job_failures_total",                # counter {reason}
    "tintype_reconciler_resends_total",          # counter {task}
    "tintype_model_load_seconds",                # histogram {model, device}
    "tintype_gpu_memory_bytes",                  # gauge {device, kind}
    "tintype_gpu_memory_total_bytes",            # gauge {device}
    "tintype_gpu_utilization_ratio",             # gauge {device}
}
PROMETHEUS_BUILTIN = {"up"}
SCALING_METRIC = "tintype_pool_workers_needed"

CRD_KINDS = {("keda.sh/v1alpha1", "ScaledObject")}


# --------------------------------------------------------------------------- loading

@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {name: render(path) for name, path in OVERLAYS.items()}


@pytest.fixture(scope="module")
def secret_example() -> dict:
    (doc,) = load_documents(SECRETS_EXAMPLE)
    return doc


def objects_of(objs: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def pod_specs(objs: list[dict]) -> dict[str, dict]:
    """name → pod spec of every Deployment and Job."""
    specs = {}
    for obj in objs:
        if obj["kind"] in ("Deployment", "Job"):
            specs[obj["metadata"]["name"]] = obj["spec"]["template"]["spec"]
    return specs


def one_container(objs: list[dict], name: str) -> dict:
    (container,) = pod_specs(objs)[name]["containers"]
    return container


def command_of(container: dict) -> list[str]:
    return [str(t) for t in container.get("command", []) + container.get("args", [])]


def setting_names() -> set[str]:
    """Every variable load_settings() reads: recorded while it reads an empty environment."""

    class Recording(dict):
        def __init__(self) -> None:
            super().__init__()
            self.seen: set[str] = set()

        def get(self, key, default=None):
            self.seen.add(key)
            return super().get(key, default)

    env = Recording()
    load_settings(env)
    return env.seen


# --------------------------------------------------------------------------- rendering

def test_overlays_render_with_the_parts_they_promise(rendered):
    for name, objs in rendered.items():
        kinds = {(o["kind"], o["metadata"]["name"]) for o in objs}
        for needed in [("ConfigMap", "tintype-config"), ("Job", "tintype-migrate"),
                       ("Deployment", "tintype-web"), ("Service", "tintype-web"), ("Ingress", "tintype-web"),
                       ("Deployment", "tintype-cpu-worker"), ("Deployment", "tintype-gpu-worker"),
                       ("Deployment", "tintype-beat"), ("PodDisruptionBudget", "tintype-web"),
                       ("PodDisruptionBudget", "tintype-cpu-worker"), ("PodDisruptionBudget", "tintype-gpu-worker")]:
            assert needed in kinds, f"overlay {name} lacks {needed}"
        assert len(kinds) == len(objs), f"overlay {name} has two objects of one kind and name"
        assert {o["metadata"].get("namespace") for o in objs} == {"tintype"}, name
        assert not any(o["kind"] == "Secret" for o in objs), "real secrets are never part of the kustomization"
    assert ("ScaledObject", "tintype-gpu-worker") in {(o["kind"], o["metadata"]["name"]) for o in rendered["gpu"]}
    assert not objects_of(rendered["cpu-only"], "ScaledObject"), "cpu-only has no autoscaler"


def _kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def test_renderer_agrees_with_kustomize(rendered):
    command = _kustomize_command()
    if command is None:
        pytest.skip("neither kustomize nor kubectl is installed: the Python renderer is not cross-checked")
    for name, path in OVERLAYS.items():
        result = subprocess.run(command + [str(path)], capture_output=True, text=True, timeout=120)
        if result.returncode != 0 and "unknown command" in result.stderr:
            pytest.skip(f"{command[0]} cannot build kustomizations here: {result.stderr.strip()[:200]}")
        assert result.returncode == 0, result.stderr
        theirs = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(result.stdout) if o}
        ours = {(o["kind"], o["metadata"]["name"]): o for o in rendered[name]}
        assert theirs.keys() == ours.keys(), name
        for key in ours:
            assert ours[key] == theirs[key], f"{name}: {key} renders differently from {command[0]}"


# --------------------------------------------------------------------------- schemas

SCALED_OBJECT_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {"type": "object", "required": ["name"], "additionalProperties": False,
                                   "properties": {"name": {"type": "string"}, "kind": {"type": "string"},
                                                  "apiVersion": {"type": "string"}}},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "advanced": {"type": "object", "additionalProperties": False, "properties": {
                    "horizontalPodAutoscalerConfig": {"type": "object", "additionalProperties": False,
                                                      "properties": {"behavior": {"$ref": "#/$defs/behavior"},
                                                                     "name": {"type": "string"}}},
                    "restoreToOriginalReplicaCount": {"type": "boolean"}}},
                "triggers": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["type", "metadata"], "additionalProperties": False,
                    "properties": {
                        "type": {"type": "string"},
                        "name": {"type": "string"},
                        "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                        # KEDA reads trigger metadata as a map of strings: 1 instead of "1" fails.
                        "metadata": {"type": "object", "additionalProperties": {"type": "string"}}}}},
            },
        },
    },
    "$defs": {
        "rules": {"type": "object", "additionalProperties": False, "properties": {
            "stabilizationWindowSeconds": {"type": "integer", "minimum": 0, "maximum": 3600},
            "selectPolicy": {"enum": ["Max", "Min", "Disabled"]},
            "policies": {"type": "array", "items": {
                "type": "object", "required": ["type", "value", "periodSeconds"], "additionalProperties": False,
                "properties": {"type": {"enum": ["Pods", "Percent"]}, "value": {"type": "integer", "minimum": 1},
                               "periodSeconds": {"type": "integer", "minimum": 1, "maximum": 1800}}}}}},
        "behavior": {"type": "object", "additionalProperties": False,
                     "properties": {"scaleUp": {"$ref": "#/$defs/rules"}, "scaleDown": {"$ref": "#/$defs/rules"}}},
    },
}
PROMETHEUS_TRIGGER_KEYS = {"serverAddress", "query", "threshold", "activationThreshold", "ignoreNullValues",
                           "namespace", "unsafeSsl", "customHeaders", "queryParameters"}

DURATION = r"^[0-9]+(ms|s|m|h|d|w|y)$"
RULES_SCHEMA = {
    "type": "object", "required": ["groups"], "additionalProperties": False,
    "properties": {"groups": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["name", "rules"], "additionalProperties": False,
        "properties": {
            "name": {"type": "string"}, "interval": {"type": "string", "pattern": DURATION},
            "rules": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["alert", "expr"], "additionalProperties": False,
                "properties": {
                    "alert": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                    "expr": {"type": "string"},
                    "for": {"type": "string", "pattern": DURATION},
                    "keep_firing_for": {"type": "string", "pattern": DURATION},
                    "labels": {"type": "object", "required": ["severity"],
                               "properties": {"severity": {"enum": ["warning", "critical"]}},
                               "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "required": ["summary"],
                                    "additionalProperties": {"type": "string"}}}}}}}}},
}
SCRAPE_SCHEMA = {
    "type": "object", "required": ["scrape_configs"], "additionalProperties": False,
    "properties": {"scrape_configs": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["job_name", "kubernetes_sd_configs"], "additionalProperties": False,
        "properties": {
            "job_name": {"type": "string"}, "metrics_path": {"type": "string", "pattern": "^/"},
            "scrape_interval": {"type": "string", "pattern": DURATION},
            "kubernetes_sd_configs": {"type": "array", "items": {
                "type": "object", "required": ["role"], "additionalProperties": False,
                "properties": {"role": {"enum": ["pod", "endpoints", "service"]},
                               "namespaces": {"type": "object", "additionalProperties": False,
                                              "properties": {"names": {"type": "array",
                                                                       "items": {"type": "string"}}}}}}},
            "relabel_configs": {"type": "array", "items": {
                "type": "object", "additionalProperties": False,
                "properties": {"source_labels": {"type": "array", "items": {"type": "string"}},
                               "regex": {"type": "string"}, "target_label": {"type": "string"},
                               "replacement": {"type": "string"},
                               "action": {"enum": ["keep", "drop", "replace", "labelmap"]}}}}}}}},
}


def validate_object(obj: dict) -> None:
    if (obj["apiVersion"], obj["kind"]) in CRD_KINDS:
        jsonschema.validate(obj, SCALED_OBJECT_SCHEMA)
        return
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(obj, version, strict=True)


def test_every_object_validates_against_the_kubernetes_schemas(rendered, secret_example):
    for name, objs in rendered.items():
        for obj in objs:
            try:
                validate_object(obj)
            except (jsonschema.ValidationError, kubernetes_validate.utils.SchemaNotFoundError) as exc:
                where = ".".join(map(str, getattr(exc, "path", [])))
                raise AssertionError(f"{name}: {obj['kind']}/{obj['metadata']['name']} at {where}: "
                                     f"{getattr(exc, 'message', exc)}") from exc
    validate_object(secret_example)


def test_validation_catches_mistakes(rendered):
    """The schema checks above are not vacuous: a misspelt field or a number where KEDA
    wants a string fails."""
    web = json.loads(json.dumps(objects_of(rendered["gpu"], "Deployment")["tintype-web"]))
    web["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {"path": "/x"}
    with pytest.raises(kubernetes_validate.utils.ValidationError):
        validate_object(web)
    scaled = json.loads(json.dumps(objects_of(rendered["gpu"], "ScaledObject")["tintype-gpu-worker"]))
    scaled["spec"]["triggers"][0]["metadata"]["threshold"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validate_object(scaled)


# --------------------------------------------------------------------------- against the code

def check_command(tokens: list[str], tmp_path: Path, seen: dict) -> None:
    program = Path(tokens[0]).name
    if program == "tintype":
        try:
            build_parser().parse_args(tokens[1:])
        except SystemExit as exc:
            raise AssertionError(f"`{' '.join(tokens)}` is not a tintype command") from exc
        return
    if program == "celery":
        target = option(tokens, "-A", "--app")
        assert target, f"celery without -A: {tokens}"
        module, _, attr = target.partition(":")
        sub = [t for t in tokens if t in ("worker", "beat")]
        assert len(sub) == 1, f"celery command must be one of worker/beat: {tokens}"
        key = (module, attr or "app")
        if key not in seen:
            seen[key] = probe_module(*key, tmp_path / module)
        facts = seen[key]
        assert facts["type"] == "celery.app.base.Celery", f"{target} is {facts['type']}"
        if sub == ["worker"]:
            queue = option(tokens, "-Q", "--queues")
            assert queue in facts["queues"], f"queue {queue} is not declared by {module}"
            missing = POOL_TASKS[queue] - set(facts["tasks"])
            assert not missing, f"{module} does not register {sorted(missing)}"
        return
    if program == "gunicorn":
        target = tokens[-1]
        module, _, attr = target.partition(":")
        key = (module, attr)
        if key not in seen:
            seen[key] = probe_module(module, attr, tmp_path / module)
        assert seen[key]["type"] == "flask.app.Flask", f"{target} is {seen[key]['type']}"
        return
    if program == "sleep":
        assert len(tokens) == 2 and tokens[1].isdigit(), tokens
        return
    raise AssertionError(f"unexpected program {tokens}")


def test_every_command_names_code_that_exists(rendered, tmp_path):
    seen: dict = {}
    for objs in rendered.values():
        for container in [c for spec in pod_specs(objs).values() for c in spec["containers"]]:
            check_command(command_of(container), tmp_path, seen)
            hook = container.get("lifecycle", {}).get("preStop", {}).get("exec")
            if hook:
                check_command(hook["command"], tmp_path, seen)


def test_command_checks_reject_wrong_names(tmp_path):
    with pytest.raises(AssertionError, match="not a tintype command"):
        check_command(["tintype", "migrat"], tmp_path, {})
    with pytest.raises(AssertionError, match="does not import"):
        check_command(["celery", "-A", "tintype.tasks.workr", "worker", "-Q", "cpu"], tmp_path, {})
    with pytest.raises(AssertionError, match="unexpected program"):
        check_command(["python", "-m", "tintype"], tmp_path, {})


def test_every_environment_variable_is_read_by_someone(rendered, secret_example):
    known = setting_names()
    assert {"DATABASE_URL", "CHUNK_TIME_LIMIT", "SECRET_KEY"} <= known, "the recorder missed settings"
    done = PENDING_SETTINGS & known
    assert not done, f"settings.py now reads {sorted(done)}: remove them from PENDING_SETTINGS"
    allowed = known | set(THIRD_PARTY_ENV) | PENDING_SETTINGS
    secret_name = secret_example["metadata"]["name"]
    for name, objs in rendered.items():
        config_maps = objects_of(objs, "ConfigMap")
        for pod, spec in pod_specs(objs).items():
            for container in spec["containers"]:
                names = {e["name"] for e in container.get("env", [])}
                for source in container.get("envFrom", []):
                    if "configMapRef" in source:
                        ref = source["configMapRef"]["name"]
                        assert ref in config_maps, f"{name}/{pod}: ConfigMap {ref} is not in the overlay"
                        names |= set(config_maps[ref]["data"])
                    else:
                        ref = source["secretRef"]["name"]
                        assert ref == secret_name, f"{name}/{pod}: Secret {ref} is not the documented one"
                        names |= set(secret_example["stringData"])
                unknown = names - allowed
                assert not unknown, f"{name}/{pod}: {sorted(unknown)} are read by nobody"
    assert {"DATABASE_URL", "BROKER_URL", "SECRET_KEY", "AWS_SECRET_ACCESS_KEY"} <= set(secret_example["stringData"])
    assert secret_example["metadata"]["namespace"] == "tintype"


def effective_settings(objs: list[dict]):
    """The settings a pod gets: the settings defaults under the ConfigMap's values."""
    return load_settings(objects_of(objs, "ConfigMap")["tintype-config"]["data"])


def test_grace_periods_follow_their_formulas(rendered):
    defaults = load_settings({})
    assert defaults.chunk_time_limit + 60 == 1960, "the manifests' comments quote 1900 + 60"
    for name, objs in rendered.items():
        specs = pod_specs(objs)
        settings = effective_settings(objs)
        # GPU pool: a chunk or photograph ends within its hard time limit; 60 s to hand it over.
        assert specs["tintype-gpu-worker"]["terminationGracePeriodSeconds"] == settings.chunk_time_limit + 60, name
        # CPU pool: a probe (hard limit PROBE_TIME_LIMIT + 60) always finishes.
        assert specs["tintype-cpu-worker"]["terminationGracePeriodSeconds"] == PROBE_TIME_LIMIT + 60 + 60, name
        # Web: the preStop pause, then gunicorn's graceful timeout, plus 20 s.
        web = one_container(objs, "tintype-web")
        pause = int(web["lifecycle"]["preStop"]["exec"]["command"][1])
        graceful = int(option(command_of(web), "--graceful-timeout"))
        assert specs["tintype-web"]["terminationGracePeriodSeconds"] == pause + graceful + 20, name
        assert graceful <= int(option(command_of(web), "--timeout")), name


def test_gpu_pool_is_one_process_per_gpu_and_scaled_by_keda(rendered):
    gpu = rendered["gpu"]
    worker = one_container(gpu, "tintype-gpu-worker")
    assert option(command_of(worker), "-Q") == "gpu" and option(command_of(worker), "-c") == "1"
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert image_name(worker["image"]) == "tintype-gpu"
    deployments = objects_of(gpu, "Deployment")
    assert "replicas" not in deployments["tintype-gpu-worker"]["spec"], "KEDA owns the GPU pool's replicas"
    for other, spec in pod_specs(gpu).items():
        if other != "tintype-gpu-worker":
            assert "nvidia.com/gpu" not in json.dumps(spec), f"{other} must not take a GPU"
            assert all(image_name(c["image"]) == "tintype-cpu" for c in spec["containers"]), other

    (scaled,) = objects_of(gpu, "ScaledObject").values()
    assert scaled["spec"]["scaleTargetRef"]["name"] in deployments
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus", "not the Redis list scaler: it does not see running chunks"
    assert set(trigger["metadata"]) <= PROMETHEUS_TRIGGER_KEYS
    assert metric_names(trigger["metadata"]["query"]) == {SCALING_METRIC}
    assert 'pool="gpu"' in trigger["metadata"]["query"], "the GPU pool scales on the GPU pool's signal"
    assert trigger["metadata"]["query"].startswith("max("), "every web pod exports the same value: max, not sum"
    assert trigger["metadata"]["ignoreNullValues"] == "false", "a missing metric must not read as zero"
    assert float(trigger["metadata"]["threshold"]) == 1.0, "one pod (one GPU, -c 1) per worker needed"
    behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300
    assert scaled["spec"]["cooldownPeriod"] >= 300

    cpu_only = rendered["cpu-only"]
    assert "nvidia.com/gpu" not in json.dumps(cpu_only)
    assert objects_of(cpu_only, "Deployment")["tintype-gpu-worker"]["spec"]["replicas"] >= 1


def test_beat_runs_exactly_once(rendered):
    for name, objs in rendered.items():
        beats = [pod for pod, spec in pod_specs(objs).items()
                 if any("beat" in command_of(c) for c in spec["containers"])]
        assert beats == ["tintype-beat"], f"{name}: beat runs in {beats}"
        beat = objects_of(objs, "Deployment")["tintype-beat"]
        assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate", name
        for pod, spec in pod_specs(objs).items():
            for c in spec["containers"]:
                assert "-B" not in command_of(c) and "--beat" not in command_of(c), f"{name}/{pod} embeds beat"
        assert "tintype-beat" not in objects_of(objs, "PodDisruptionBudget")


def test_migration_is_a_job_and_nothing_else_migrates(rendered):
    for name, objs in rendered.items():
        job = objects_of(objs, "Job")["tintype-migrate"]
        assert command_of(one_container(objs, "tintype-migrate")) == ["tintype", "migrate"]
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        assert effective_settings(objs).migrate_on_start is False, f"{name}: web pods must not migrate"
        # docs/operations.md applies `-l 'app.kubernetes.io/component in (config,migrate)'` first
        first = {(o["kind"], o["metadata"]["name"]) for o in objs
                 if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") in ("config", "migrate")}
        assert first == {("ConfigMap", "tintype-config"), ("Job", "tintype-migrate")}, name


def test_selectors_and_references_meet(rendered):
    for name, objs in rendered.items():
        deployments = objects_of(objs, "Deployment")
        for dep_name, dep in deployments.items():
            selector = dep["spec"]["selector"]["matchLabels"]
            labels = dep["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= labels.items(), f"{name}/{dep_name}: selector does not match its pods"

        def selected(selector: dict, deployments: dict = deployments) -> list[str]:
            return [d for d, dep in deployments.items()
                    if selector.items() <= dep["spec"]["template"]["metadata"]["labels"].items()]

        for pdb_name, pdb in objects_of(objs, "PodDisruptionBudget").items():
            assert selected(pdb["spec"]["selector"]["matchLabels"]) == [pdb_name], f"{name}: PDB {pdb_name}"
        services = objects_of(objs, "Service")
        for svc_name, svc in services.items():
            (target,) = selected(svc["spec"]["selector"])
            ports = {p["name"] for c in pod_specs(objs)[target]["containers"] for p in c.get("ports", [])}
            assert {p["targetPort"] for p in svc["spec"]["ports"]} <= ports, f"{name}: Service {svc_name}"
        for ingress in objects_of(objs, "Ingress").values():
            for rule in ingress["spec"]["rules"]:
                for path in rule["http"]["paths"]:
                    backend = path["backend"]["service"]
                    assert backend["name"] in services
                    assert backend["port"]["name"] in {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
        for pod, spec in pod_specs(objs).items():
            for c in spec["containers"]:
                ports = {p["name"] for p in c.get("ports", [])}
                for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                    if probe in c:
                        assert c[probe]["httpGet"]["port"] in ports, f"{name}/{pod} {probe}"
                mounts = {m["name"] for m in c.get("volumeMounts", [])}
                assert mounts <= {v["name"] for v in spec.get("volumes", [])}, f"{name}/{pod}"


# Runs in a fresh interpreter on embedded defaults plus the ConfigMap: the web app's routes
# and request size limit.
_WEB_FACTS = r"""
import json
from tintype.web.wsgi import app
print("FACTS " + json.dumps({"rules": sorted(r.rule for r in app.url_map.iter_rules()),
                             "max_content_length": app.config["MAX_CONTENT_LENGTH"]}))
"""


@pytest.fixture(scope="module")
def web_facts(rendered, tmp_path_factory) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "BROKER_URL", "RESULT_BACKEND", "STORAGE_URL", "S3_ENDPOINT_URL")}
    upload = objects_of(rendered["gpu"], "ConfigMap")["tintype-config"]["data"].get("MAX_UPLOAD_BYTES")
    if upload:
        env["MAX_UPLOAD_BYTES"] = upload
    env["TINTYPE_DATA_DIR"] = str(tmp_path_factory.mktemp("web-facts"))
    result = subprocess.run([sys.executable, "-c", _WEB_FACTS], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("FACTS "))
    return json.loads(line[len("FACTS "):])


def nginx_size(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kmg]?)", text.lower()).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]


def test_ingress_lets_the_largest_upload_reach_the_app(rendered, web_facts):
    for name, objs in rendered.items():
        annotations = objects_of(objs, "Ingress")["tintype-web"]["metadata"]["annotations"]
        body = nginx_size(annotations["nginx.ingress.kubernetes.io/proxy-body-size"])
        assert body >= web_facts["max_content_length"], f"{name}: the proxy would refuse uploads the app takes"
        assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
        timeout = int(option(command_of(one_container(objs, "tintype-web")), "--timeout"))
        assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= timeout


def ingress_covers(path: dict, route: str) -> bool:
    if path["pathType"] == "Exact":
        return route == path["path"]
    prefix = path["path"].rstrip("/")
    return route == prefix or route.startswith(prefix + "/")


def test_ingress_publishes_the_public_routes_and_nothing_internal(rendered, web_facts):
    routes = set(web_facts["rules"]) | INTERNAL_ROUTES
    for name, objs in rendered.items():
        paths = [p for rule in objects_of(objs, "Ingress")["tintype-web"]["spec"]["rules"]
                 for p in rule["http"]["paths"]]
        for route in sorted(routes):
            published = any(ingress_covers(p, route) for p in paths)
            if route in INTERNAL_ROUTES:
                assert not published, f"{name}: the Ingress publishes {route}, which is for the cluster only"
            else:
                assert published, f"{name}: the Ingress does not publish the app's route {route}"


def test_pool_slots_match_the_worker_concurrency(rendered):
    """The scaling signal divides the work by GPU_WORKER_SLOTS / CPU_WORKER_SLOTS: they
    must be the `-c` that one pod of each pool brings."""
    for name, objs in rendered.items():
        data = objects_of(objs, "ConfigMap")["tintype-config"]["data"]
        for pool, setting in (("gpu", "GPU_WORKER_SLOTS"), ("cpu", "CPU_WORKER_SLOTS")):
            concurrency = option(command_of(one_container(objs, f"tintype-{pool}-worker")), "-c")
            assert data[setting] == concurrency, \
                f"{name}: {setting}={data[setting]} but the {pool} pod runs -c {concurrency}"


def probed_paths(objs: list[dict]) -> set[str]:
    paths = set()
    for spec in pod_specs(objs).values():
        for c in spec["containers"]:
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                if probe in c:
                    paths.add(c[probe]["httpGet"]["path"])
    return paths


def test_probed_and_scraped_paths_are_served_without_a_key(rendered, web_facts):
    from tintype.web.auth import OPEN_PATHS

    scrape = yaml.safe_load((MONITORING / "prometheus-scrape.yaml").read_text())
    web_scrape = {job["metrics_path"] for job in scrape["scrape_configs"] if job["job_name"] == "tintype-web"}
    wanted = set().union(*(probed_paths(objs) for objs in rendered.values())) | web_scrape
    assert {"/readyz", "/healthz", "/metrics"} <= wanted
    routes = set(web_facts["rules"])
    missing = wanted - routes
    assert missing <= PENDING_ROUTES, f"probed or scraped but not routed: {sorted(missing - PENDING_ROUTES)}"
    closed = {p for p in wanted & routes if not p.startswith(OPEN_PATHS)}
    assert not closed, f"with AUTH_REQUIRED=1 these answer 401 to the kubelet/Prometheus: {sorted(closed)}"
    if missing:
        pytest.skip(f"the web app does not route {sorted(missing)} yet (/metrics comes with the metrics work, "
                    "/readyz and /healthz are not written); "
                    "the manifests probe them")


# --------------------------------------------------------------------------- monitoring

_PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (no parser: the grammar subset we write)."""
    assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), f"unbalanced: {expr}"
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        if text[match.end():].lstrip().startswith("(") or word.lower() in _PROMQL_KEYWORDS:
            continue
        names.add(word)
    return names


def test_metric_name_extraction():
    assert metric_names('max by (queue) (tintype_queue_depth{queue="gpu"}) > 1e3') == {"tintype_queue_depth"}
    assert metric_names("histogram_quantile(0.95, sum by (le) (rate(a_bucket[$__rate_interval])))") == {"a_bucket"}
    assert metric_names('x > 0 unless on() count(up{job="w"} == 1) > 0 or vector(0)') == {"x", "up"}
    assert metric_names("sum(increase(b_total[1h])) / sum(increase(c[1h])) offset 5m") == {"b_total", "c"}


def known_metrics() -> tuple[set[str], str]:
    if METRICS_DOC.exists():
        return set(re.findall(r"\btintype_[a-z0-9_]+", METRICS_DOC.read_text())), str(METRICS_DOC)
    return set(EXPECTED_METRICS), "EXPECTED_METRICS in this test (docs/metrics.md does not exist yet)"


def unknown_metrics(names: set[str], known: set[str]) -> set[str]:
    def base(name: str) -> str:
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[: -len(suffix)] in known:
                return name[: -len(suffix)]
        return name

    return {n for n in names if base(n) not in known | PROMETHEUS_BUILTIN}


@pytest.fixture(scope="module")
def alert_rules() -> dict:
    return yaml.safe_load((MONITORING / "alerts.yaml").read_text())


def test_alert_rules_are_well_formed_and_use_known_metrics(alert_rules):
    jsonschema.validate(alert_rules, RULES_SCHEMA)
    known, source = known_metrics()
    rules = [r for group in alert_rules["groups"] for r in group["rules"]]
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        unknown = unknown_metrics(metric_names(rule["expr"]), known)
        assert not unknown, f"{rule['alert']} reads {sorted(unknown)}, not in {source}"
    exprs = " ".join(r["expr"] for r in rules)
    for needed in ("tintype_queue_messages", "tintype_queue_oldest_message_age_seconds", SCALING_METRIC,
                   "tintype_pool_workers_alive", "tintype_jobs_finished_total"):
        assert needed in exprs, f"no alert on {needed}"


def test_scrape_config_and_the_job_names_the_rules_use(alert_rules):
    scrape = yaml.safe_load((MONITORING / "prometheus-scrape.yaml").read_text())
    jsonschema.validate(scrape, SCRAPE_SCHEMA)
    jobs = {job["job_name"] for job in scrape["scrape_configs"]}
    assert jobs == {"tintype-web", "tintype-cpu-worker", "tintype-gpu-worker"}
    dashboard = (MONITORING / "grafana-dashboard.json").read_text()
    for text in [r["expr"] for g in alert_rules["groups"] for r in g["rules"]] + [dashboard]:
        used = set(re.findall(r'job=\\?"([^"\\]+)', text))
        assert used <= jobs, f"unknown scrape jobs {sorted(used - jobs)}"
    # the worker jobs scrape the port the pods name `metrics`, which METRICS_PORT opens
    relabel = {job["job_name"]: job["relabel_configs"] for job in scrape["scrape_configs"]}
    for job, component, port in (("tintype-gpu-worker", "gpu-worker", "metrics"),
                                 ("tintype-cpu-worker", "cpu-worker", "metrics"), ("tintype-web", "web", "http")):
        regexes = {r["source_labels"][0]: r["regex"] for r in relabel[job] if r.get("action") == "keep"}
        assert regexes["__meta_kubernetes_pod_label_app_kubernetes_io_component"] == component
        assert regexes["__meta_kubernetes_pod_container_port_name"] == port


def test_worker_metrics_port_matches_the_named_port(rendered):
    for name, objs in rendered.items():
        for pod in ("tintype-cpu-worker", "tintype-gpu-worker"):
            c = one_container(objs, pod)
            env = {e["name"]: e["value"] for e in c.get("env", [])}
            (port,) = [p["containerPort"] for p in c["ports"] if p["name"] == "metrics"]
            assert int(env["METRICS_PORT"]) == port, f"{name}/{pod}"


def test_grafana_dashboard_parses_and_uses_known_metrics():
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    known, source = known_metrics()
    assert dashboard["title"] and dashboard["uid"]
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    graphs = [p for p in panels if p["type"] != "row"]
    assert len(graphs) >= 10
    used = set()
    for panel in graphs:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            unknown = unknown_metrics(names, known)
            assert not unknown, f"panel {panel['title']!r} reads {sorted(unknown)}, not in {source}"
            used |= names
    assert SCALING_METRIC in used
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert "datasource" in variables


def test_operations_doc_covers_every_alert_and_the_signal(alert_rules):
    text = OPERATIONS.read_text()
    for group in alert_rules["groups"]:
        for rule in group["rules"]:
            assert f"### {rule['alert']}" in text, f"docs/operations.md does not explain {rule['alert']}"
    for needed in (SCALING_METRIC, "tintype drain", "kubectl apply -k deploy/kubernetes/overlays/gpu",
                   "tintype-migrate", "terminationGracePeriodSeconds"):
        assert needed in text, f"docs/operations.md does not mention {needed}"
