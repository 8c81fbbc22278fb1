"""C2PA provenance without services: the manifest's content, signing and its absence,
an input's own manifest kept as the parent ingredient, and the visible mark."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import c2pa
import numpy as np
import pytest
from PIL import Image

from tests.c2pa_keys import make_signing_files
from tintype.jobs.options import parse_options
from tintype.media.yuv import Yuv420
from tintype.provenance import definition
from tintype.provenance.mark import mark_box, mark_rgb, mark_text, mark_yuv
from tintype.provenance.signing import SigningFailed, Source, attach, read_manifest
from tintype.settings import load_settings

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
MODELS = [{"name": "effnet-lite0-unet", "task": "colorize", "sha256": "ab" * 32}]


@pytest.fixture(scope="module")
def signing(tmp_path_factory):
    files = make_signing_files(tmp_path_factory.mktemp("c2pa"))
    return load_settings({"TINTYPE_DATA_DIR": str(files.cert.parent), **files.env()})


def _options(**form):
    return parse_options(form, load_settings({}))


def _facts(options, **kw) -> definition.Facts:
    return definition.Facts("image", options, "scan.jpg", "cd" * 32, models=MODELS, **kw)


def _picture(path: Path, fmt: str, seed: int = 0) -> Path:
    rgb = np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path, fmt)
    return path


def _actions(store: dict) -> list[dict]:
    active = store["manifests"][store["active_manifest"]]
    return next(a["data"]["actions"] for a in active["assertions"] if a["label"].startswith("c2pa.actions"))


def test_actions_say_what_was_done_with_which_masks_and_models():
    options = _options(operations="inpaint,colorize", boxes='[{"x": 1, "y": 2, "w": 3, "h": 4}]',
                       detect_damage="scratches", visible_mark="1")
    built = definition.build(_facts(options, has_mask=True), "scan.png")
    steps = built["assertions"][0]["data"]["actions"]
    assert [s["action"] for s in steps] == ["c2pa.opened", "c2pa.edited", "c2pa.color_adjustments", "c2pa.edited"]
    assert "uploaded mask, boxes, detected damage" in steps[1]["description"]
    assert steps[2]["digitalSourceType"] == TRAINED and all(s["softwareAgent"]["name"] == "tintype" for s in steps)
    details = built["assertions"][1]["data"]
    assert details["models"] == MODELS and details["input"]["sha256"] == "cd" * 32
    assert [m["kind"] for m in details["masks"]] == ["uploaded mask", "boxes", "detected damage"]
    assert details["tintype_version"] == definition.tintype_version() != ""


def test_without_a_key_the_result_gets_an_unsigned_sidecar_bound_to_it(tmp_path):
    result = _picture(tmp_path / "out.png", "PNG")
    before = result.read_bytes()
    built = definition.build(_facts(_options(operations="colorize")), "out.png")
    attached = attach(result, "image/png", built, Source(_picture(tmp_path / "in.jpg", "JPEG"), "in.jpg",
                                                        "image/jpeg"), load_settings({}))
    sidecar = json.loads(attached.manifest)
    assert not attached.signed and attached.path == result and result.read_bytes() == before
    assert sidecar["signed"] is False and "C2PA_SIGN_CERT" in sidecar["reason"]
    assert sidecar["result_sha256"] == hashlib.sha256(before).hexdigest() and sidecar["manifest"] == built
    assert read_manifest(result, "image/png") is None  # nothing embedded


def test_a_signed_result_keeps_the_manifest_its_input_carried(tmp_path, signing):
    # An input that a camera or an earlier tool signed: first signed here as a plain edit.
    scan = _picture(tmp_path / "scan.jpg", "JPEG")
    earlier = attach(scan, "image/jpeg", definition.build(_facts(_options(operations="inpaint")), "scan.jpg"),
                     Source(_picture(tmp_path / "raw.jpg", "JPEG", 1), "raw.jpg", "image/jpeg"), signing)
    carried = json.loads(earlier.manifest)["active_manifest"]
    result = _picture(tmp_path / "out.png", "PNG", 2)
    attached = attach(result, "image/png", definition.build(_facts(_options(operations="colorize")), "out.png"),
                      Source(earlier.path, "scan.jpg", "image/jpeg"), signing)
    assert attached.signed and attached.path != result
    with attached.path.open("rb") as fh, c2pa.Reader("image/png", fh) as reader:
        assert reader.get_validation_state() in ("Valid", "Trusted"), reader.get_validation_results()
        store = json.loads(reader.json())
    assert json.loads(attached.manifest)["active_manifest"] == store["active_manifest"]
    parent = store["manifests"][store["active_manifest"]]["ingredients"][0]
    assert parent["relationship"] == "parentOf" and parent["title"] == "scan.jpg"
    assert parent["active_manifest"] == carried and carried in store["manifests"]
    colour = next(a for a in _actions(store) if a["action"] == "c2pa.color_adjustments")
    assert colour["digitalSourceType"] == TRAINED
    assert np.asarray(Image.open(attached.path)).tolist() == np.asarray(Image.open(result)).tolist()


def test_an_input_c2pa_cannot_read_is_declared_by_name(tmp_path, signing):
    result = _picture(tmp_path / "out.jpg", "JPEG")
    attached = attach(result, "image/jpeg", definition.build(_facts(_options(operations="colorize")), "out.jpg"),
                      Source(None, "reel.mkv", None), signing)
    store = read_manifest(attached.path, "image/jpeg")
    assert store["manifests"][store["active_manifest"]]["ingredients"][0]["title"] == "reel.mkv"


@pytest.mark.parametrize("key", [False, True])
def test_a_bmp_input_or_one_with_broken_c2pa_data_is_declared_by_name(tmp_path, signing, key):
    """Intake takes BMP, which c2pa does not read; a JPEG's C2PA data may be damaged. The
    input's own problem must not cost the job: it is named, not read."""
    settings = signing if key else load_settings({})
    broken = tmp_path / "damaged.jpg"
    raw = _picture(tmp_path / "plain.jpg", "JPEG").read_bytes()
    broken.write_bytes(raw[:2] + b"\xff\xeb\x00\x10JP\x00\x01\x00\x00\x00\x01jumb" + raw[2:])  # a cut JUMBF box
    for source in (Source(_picture(tmp_path / "scan.bmp", "BMP"), "scan.bmp", "image/bmp"),
                   Source(broken, "damaged.jpg", "image/jpeg")):
        result = _picture(tmp_path / "out.png", "PNG")
        attached = attach(result, "image/png", definition.build(_facts(_options(operations="colorize")), "out.png"),
                          source, settings)
        assert attached.signed is key
        if key:
            store = read_manifest(attached.path, "image/png")
            assert store["manifests"][store["active_manifest"]]["ingredients"][0]["title"] == source.name
        else:
            assert json.loads(attached.manifest)["parent_ingredient"]["manifest_store"] is None


def test_a_container_c2pa_cannot_carry_gets_the_sidecar_even_with_a_key(tmp_path, signing):
    master = tmp_path / "master.mkv"
    master.write_bytes(b"\x1a\x45\xdf\xa3 not really a film")
    attached = attach(master, "video/x-matroska", {"title": "master.mkv"}, Source(None, "in.mkv", None), signing)
    assert not attached.signed and "video/x-matroska" in json.loads(attached.manifest)["reason"]


def test_a_key_that_cannot_sign_fails_with_the_reason(tmp_path, signing):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    settings = load_settings({"C2PA_SIGN_CERT": signing.c2pa_sign_cert, "C2PA_SIGN_KEY": str(bad)})
    result = _picture(tmp_path / "out.jpg", "JPEG")
    with pytest.raises(SigningFailed, match="C2PA signing failed"):
        attach(result, "image/jpeg", definition.build(_facts(_options(operations="colorize")), "out.jpg"),
               Source(None, "in.jpg", None), settings)
    assert not (tmp_path / "signed-out.jpg").exists()


def test_a_certificate_without_its_key_is_a_settings_error():
    with pytest.raises(ValueError, match="C2PA_SIGN_CERT and C2PA_SIGN_KEY"):
        load_settings({"C2PA_SIGN_CERT": "chain.pem"})


@pytest.mark.parametrize("width, height", [(160, 120), (1280, 720)])
def test_the_visible_mark_changes_only_its_box(width, height):
    rgb = np.random.default_rng(0).integers(40, 200, (height, width, 3), dtype=np.uint8)
    text = mark_text(colorized=True, inpainted=False)
    x, y, w, h = mark_box(text, width, height)
    marked = mark_rgb(rgb, text)
    outside = np.ones((height, width), bool)
    outside[y:y + h, x:x + w] = False
    assert np.array_equal(marked[outside], rgb[outside])
    box = marked[y:y + h, x:x + w]
    assert (box == 235).all(axis=2).mean() > 0.05 and (box < 80).all(axis=2).mean() > 0.3  # white on dark
    assert y + h > height * 0.8 and x < width * 0.1  # bottom-left


def test_the_visible_mark_on_video_planes_changes_only_its_box():
    rgb = np.random.default_rng(1).integers(40, 200, (120, 160, 3), dtype=np.uint8)
    frame = Yuv420.from_rgb(rgb)
    text = mark_text(colorized=True, inpainted=True)
    x, y, w, h = mark_box(text, 160, 120)
    marked = mark_yuv(frame, text)
    luma = marked.y.astype(int) - frame.y
    luma[y:y + h, x:x + w] = 0
    chroma = marked.cb.astype(int) - frame.cb
    chroma[y // 2:(y + h) // 2, x // 2:(x + w) // 2] = 0
    assert not luma.any() and not chroma.any()
    assert (marked.y[y:y + h, x:x + w] == 235).mean() > 0.05
