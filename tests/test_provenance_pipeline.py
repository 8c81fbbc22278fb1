"""Provenance through the real pipeline (REST, Redis, PostgreSQL, S3, workers): results
signed with an operator key and read back with c2pa's Reader, an input's own manifest
kept, the visible mark, and the unsigned sidecar + note when no key is configured."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Iterator

import c2pa
import numpy as np
import pytest
from PIL import Image

from tests.c2pa_keys import make_signing_files
from tests.media_factory import decode, grey_photo, grey_video
from tests.stack import Stack
from tintype.jobs.options import parse_options
from tintype.provenance import definition
from tintype.provenance.mark import mark_box, mark_text
from tintype.provenance.signing import Source, attach
from tintype.settings import load_settings

pytestmark = pytest.mark.integration
TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"


@pytest.fixture(scope="module")
def signing_env(tmp_path_factory) -> dict[str, str]:
    return make_signing_files(tmp_path_factory.mktemp("operator-key")).env()


@pytest.fixture(scope="module")
def signed_stack(stack, signing_env) -> Iterator[Stack]:
    """The session's stack with its workers restarted holding an operator's key (only
    workers sign), put back as they were after this module's signed tests."""
    workers = [name for name in stack.commands if name != "web"]
    saved = {name: stack.process_env.get(name, {}) for name in workers}
    _restart(stack, {name: {**saved[name], **signing_env} for name in workers})
    try:
        yield stack
    finally:
        _restart(stack, saved)


def _restart(stack: Stack, envs: dict[str, dict[str, str]]) -> None:
    """Stop the workers (SIGTERM: idle, their drain ends at once), then start each again
    with its environment."""
    for name in envs:
        os.killpg(stack.procs[name].pid, signal.SIGTERM)
    for name, env in envs.items():
        try:
            stack.procs[name].wait(timeout=30)
        except subprocess.TimeoutExpired:
            stack.kill(name)
        stack.process_env[name] = env
        stack.start(name)


@pytest.fixture(scope="module")
def carried_input(tmp_path_factory, signing_env) -> tuple[Path, str]:
    """A grey scan that already carries a signed manifest (as a scanner's would)."""
    folder = tmp_path_factory.mktemp("carried")
    plain = folder / "plain.jpg"
    Image.fromarray(np.dstack([grey_photo(160, 120)] * 3)).save(plain, "JPEG", quality=95)
    settings = load_settings({"TINTYPE_DATA_DIR": str(folder), **signing_env})
    facts = definition.Facts("image", parse_options({"operations": "inpaint"}, settings), "raw.jpg", "0" * 64)
    signed = attach(plain, "image/jpeg", definition.build(facts, "scan.jpg"), Source(None, "raw.jpg", None), settings)
    return signed.path, json.loads(signed.manifest)["active_manifest"]


def _run(stack: Stack, path: Path, tmp_path: Path, **form) -> tuple[dict, Path]:
    response = stack.submit(path, **form)
    assert response.status_code == 202, response.text
    job = stack.wait(response.json()["id"])
    assert job["status"] == "succeeded", job
    return job, stack.download(job, tmp_path / f"{job['id']}.out")


def _read(path: Path, content_type: str) -> dict:
    with path.open("rb") as fh, c2pa.Reader(content_type, fh) as reader:
        assert reader.get_validation_state() in ("Valid", "Trusted"), reader.get_validation_results()
        return json.loads(reader.json())


def _active(store: dict) -> tuple[dict, list[str], dict]:
    """The active manifest, its action names and tintype's own assertion."""
    active = store["manifests"][store["active_manifest"]]
    labels = {a["label"].split(".v")[0] if a["label"].startswith("c2pa.actions") else a["label"]: a["data"]
              for a in active["assertions"]}
    return active, [a["action"] for a in labels["c2pa.actions"]["actions"]], labels[definition.ASSERTION]


# Runs first: the signed tests below restart the workers with a key until this module ends.
def test_without_a_key_the_result_has_an_unsigned_sidecar_and_a_note(stack, tmp_path):
    path = tmp_path / "scan.png"
    Image.fromarray(grey_photo(64, 48), "L").save(path)
    job, out = _run(stack, path, tmp_path, operations="colorize")
    assert job["provenance"]["signed"] is False
    assert any("not signed" in note and "C2PA_SIGN_CERT" in note for note in job["notes"]), job["notes"]
    assert job["outputs"]["manifest"]["label"] == "C2PA manifest (unsigned sidecar)"
    sidecar = stack.http.get(job["provenance"]["manifest_url"], timeout=30).json()
    assert sidecar["signed"] is False and sidecar["result_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert sidecar["parent_ingredient"]["title"] == "scan.png"
    steps = sidecar["manifest"]["assertions"][0]["data"]["actions"]
    assert [s["action"] for s in steps] == ["c2pa.opened", "c2pa.color_adjustments"]
    assert steps[1]["digitalSourceType"] == TRAINED
    with out.open("rb") as fh:
        assert c2pa.Reader.try_create("image/png", fh) is None  # nothing embedded


def test_an_unsigned_video_sidecar_keeps_the_manifest_its_input_carried(stack, signing_env, tmp_path):
    """No key on the workers; the film was signed earlier (a camera's, an archive's own):
    its manifest is read from the input (fetched from S3 here) into the sidecar."""
    plain = grey_video(tmp_path / "plain.mp4", size="96x64", frames=12, audio=False)
    settings = load_settings({"TINTYPE_DATA_DIR": str(tmp_path), **signing_env})
    facts = definition.Facts("video", parse_options({"operations": "inpaint"}, settings), "raw.mp4", "0" * 64)
    carried = attach(plain, "video/mp4", definition.build(facts, "scan.mp4"), Source(None, "raw.mp4", None), settings)
    job, _ = _run(stack, carried.path, tmp_path, operations="colorize", colour_mode="per-frame")
    assert job["provenance"]["signed"] is False
    parent = stack.http.get(job["provenance"]["manifest_url"], timeout=30).json()["parent_ingredient"]
    assert parent["read"] is True
    assert parent["manifest_store"]["active_manifest"] == json.loads(carried.manifest)["active_manifest"]


def test_signed_photos_keep_the_input_manifest_and_show_it(signed_stack, carried_input, tmp_path):
    source, carried = carried_input
    marked, png = _run(signed_stack, source, tmp_path, operations="colorize", output_format="png",
                       visible_mark="1")
    jpeg_job, jpeg = _run(signed_stack, source, tmp_path, operations="colorize", output_format="jpeg")
    for job, path, kind in ((marked, png, "image/png"), (jpeg_job, jpeg, "image/jpeg")):
        store = _read(path, kind)
        active, actions, details = _active(store)
        assert actions[:2] == ["c2pa.opened", "c2pa.color_adjustments"], actions
        parent = active["ingredients"][0]
        assert parent["relationship"] == "parentOf" and parent["active_manifest"] == carried
        assert details["models"][0]["name"] == job["options"]["colorize_model"]
        assert len(details["models"][0]["sha256"]) == 64
        assert job["provenance"]["signed"] is True and "provenance" not in " ".join(job["notes"])
        shown = signed_stack.http.get(job["provenance"]["manifest_url"], timeout=30)
        assert shown.status_code == 200 and shown.json()["active_manifest"] == store["active_manifest"]
    assert "c2pa.edited" in _active(_read(png, "image/png"))[1]  # the mark is an action too
    # The mark: colorizing keeps the input's lightness everywhere but in the mark's box.
    grey = np.asarray(Image.open(source).convert("L"), float)
    lightness = np.asarray(Image.open(png).convert("L"), float)
    x, y, w, h = mark_box(mark_text(True, False), 160, 120)
    inside = np.zeros(grey.shape, bool)
    inside[y:y + h, x:x + w] = True
    diff = np.abs(lightness - grey)
    assert diff[~inside].mean() < 3 and diff[inside].mean() > 25


def test_a_signed_video_names_models_and_its_input_and_burns_the_mark(signed_stack, tmp_path):
    source = grey_video(tmp_path / "reel.mp4", size="160x120", frames=24, audio=False)
    job, out = _run(signed_stack, source, tmp_path, operations="colorize", colour_mode="per-frame",
                    visible_mark="1", master="prores")
    active, actions, details = _active(_read(out, "video/mp4"))
    # The ProRes master (QuickTime) is signed too, with its own manifest output.
    master = tmp_path / "master.mov"
    master.write_bytes(signed_stack.http.get(job["outputs"]["master"]["url"], timeout=60).content)
    assert master.stat().st_size == job["outputs"]["master"]["bytes"]
    steps = _active(_read(master, "video/quicktime"))[1]  # its own encoding, and never the mark
    assert steps == ["c2pa.opened", "c2pa.color_adjustments", "c2pa.transcoded"], steps
    assert job["outputs"]["master-manifest"]["label"].startswith("C2PA manifest of the master (signed")
    assert actions == ["c2pa.opened", "c2pa.color_adjustments", "c2pa.transcoded", "c2pa.edited"], actions
    assert active["ingredients"][0]["title"] == "reel.mp4"
    assert [m["name"] for m in details["models"]] == [job["options"]["colorize_model"]]
    assert job["provenance"]["signed"] is True
    assert [a["action"] for a in job["provenance"]["actions"]] == actions
    # The mark is burnt into every frame, and the luma elsewhere is the source's.
    got, want = decode(out, 160, 120), decode(source, 160, 120)
    luma = lambda rgb: rgb.astype(float) @ [0.299, 0.587, 0.114]  # noqa: E731
    x, y, w, h = mark_box(mark_text(True, False), 160, 120)
    diff = np.abs(luma(got) - luma(want))
    inside = np.zeros(diff.shape[1:], bool)
    inside[y:y + h, x:x + w] = True
    assert len(got) == 24 and diff[:, ~inside].mean() < 3 and diff[:, inside].mean() > 25
