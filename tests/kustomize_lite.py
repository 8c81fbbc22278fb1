"""Render the kustomize overlays of deploy/kubernetes/ in Python, for the tests.

The kustomize binary is not needed to run the tests, so this renders the small subset of
kustomize that the manifests use, and refuses anything else (a kustomization with another
field raises `Unsupported`, so a new feature cannot be silently ignored):

* `resources`: YAML files (one or more documents) and folders with a kustomization.yaml;
* `patches`: strategic-merge patches from a file, on the objects its `target` names
  (kind and name); maps merge, `null` deletes a field, and the lists that Kubernetes
  merges by name (containers, initContainers, env, volumes) merge by name, others are
  replaced, as Kubernetes' strategic merge does for these fields;
* `namespace`: set on every object;
* `images`: `newName` and/or `newTag` for the containers whose image has that name.

Where `kubectl kustomize` or `kustomize` is installed, tests/test_kubernetes.py checks
that this renders the same objects.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "resources", "namespace", "patches", "images"}
PATCH_FIELDS = {"path", "target"}
TARGET_FIELDS = {"kind", "name"}
IMAGE_FIELDS = {"name", "newName", "newTag"}
# Lists that a strategic merge patch merges item by item, keyed by `name`.
MERGED_BY_NAME = {"containers", "initContainers", "env", "volumes"}


class Unsupported(ValueError):
    """The kustomization uses something this renderer does not implement."""


def load_documents(path: Path) -> list[dict]:
    with path.open() as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc]


def render(directory: Path) -> list[dict]:
    """The objects `kustomize build DIRECTORY` would print, in the order of the resources."""
    spec = load_documents(directory / "kustomization.yaml")[0]
    unknown = set(spec) - KUSTOMIZATION_FIELDS
    if unknown:
        raise Unsupported(f"{directory}: kustomization fields {sorted(unknown)} are not rendered by tests")
    objects: list[dict] = []
    for entry in spec.get("resources", []):
        path = directory / entry
        objects += render(path) if path.is_dir() else load_documents(path)
    for patch in spec.get("patches", []):
        apply_patch(objects, directory, patch)
    if "namespace" in spec:
        for obj in objects:
            obj.setdefault("metadata", {})["namespace"] = spec["namespace"]
    for image in spec.get("images", []):
        set_image(objects, image)
    return objects


def apply_patch(objects: list[dict], directory: Path, patch: dict) -> None:
    if set(patch) - PATCH_FIELDS or "path" not in patch:
        raise Unsupported(f"{directory}: patch {patch} (only `path` with an optional `target`)")
    body = load_documents(directory / patch["path"])
    if len(body) != 1:
        raise Unsupported(f"{directory / patch['path']}: one strategic-merge patch per file")
    body = body[0]
    target = patch.get("target") or {"kind": body["kind"], "name": body["metadata"]["name"]}
    if set(target) - TARGET_FIELDS:
        raise Unsupported(f"{directory}: patch target {target} (only kind and name)")
    hits = [i for i, obj in enumerate(objects)
            if all((obj["kind"] if key == "kind" else obj["metadata"]["name"]) == value
                   for key, value in target.items())]
    if not hits:
        raise ValueError(f"{directory}: patch {patch['path']} matches no object ({target})")
    for i in hits:
        objects[i] = strategic_merge(objects[i], body)


def strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = strategic_merge(merged[key], value, key)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    if field in MERGED_BY_NAME and isinstance(base, list) and isinstance(patch, list):
        merged = [copy.deepcopy(item) for item in base]
        names = [item.get("name") for item in merged]
        for item in patch:
            if item.get("name") in names:
                i = names.index(item["name"])
                merged[i] = strategic_merge(merged[i], item)
            else:
                merged.append(copy.deepcopy(item))
                names.append(item.get("name"))
        return merged
    return copy.deepcopy(patch)


def image_name(image: str) -> str:
    """`registry:5000/team/tintype-gpu:1.2` → `registry:5000/team/tintype-gpu`."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name[: len(name) - len(last)] + last.split(":", 1)[0]


def set_image(objects: list[dict], rule: dict) -> None:
    if set(rule) - IMAGE_FIELDS or "name" not in rule:
        raise Unsupported(f"images entry {rule} (only name, newName, newTag)")
    for container in containers(objects):
        image = container.get("image", "")
        name = image_name(image)
        if name != rule["name"]:
            continue
        tag = image[len(name):] if not image[len(name):].startswith("@") else ""
        if "newTag" in rule:
            tag = f":{rule['newTag']}"
        container["image"] = rule.get("newName", name) + tag


def containers(node: Any) -> list[dict]:
    """Every container and init container anywhere in `node`."""
    found: list[dict] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                found += value
            else:
                found += containers(value)
    elif isinstance(node, list):
        for item in node:
            found += containers(item)
    return found
