"""Colour input is respected: `colorize=auto` colorizes a black-and-white input and keeps
one that already has colour (sepia, toned, tinted, colour film), decided at intake and
recorded on the job (embedded defaults: SQLite, local objects, no workers)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.media_factory import encode_frames, grey_film, grey_photo, rect_mask, save_picture, tinted
from tintype.jobs import queries
from tintype.jobs import state as jobstate
from tintype.jobs.errors import IntakeError
from tintype.jobs.intake import Submission, create_job, parse_options
from tintype.media import tone
from tintype.media.color import lab_to_rgb, rgb_to_lab
from tintype.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
HISTORICAL = ROOT.parent / "shared" / "data" / "historical"


def toned(rgb: np.ndarray, a: float = 6.0, b: float = 20.0) -> np.ndarray:
    """The picture as a sepia print: its lightness, one warm hue everywhere."""
    lab = rgb_to_lab(rgb)
    lab[..., 1], lab[..., 2] = a, b
    return lab_to_rgb(lab)


GREY = np.repeat(grey_photo()[..., None], 3, 2)
SEPIA = toned(GREY)
FAINT = toned(GREY, 1.0, 3.0)  # a black-and-white scan with a faint warm cast
COLOUR = tinted(GREY)


@pytest.mark.parametrize("picture, kind", [(GREY, "greyscale"), (FAINT, "greyscale"), (SEPIA, "toned"),
                                           (COLOUR, "colour")])
def test_the_tone_of_a_picture(picture, kind):
    assert tone.measure(picture).kind == kind


@pytest.mark.skipif(not HISTORICAL.is_dir(), reason="the project's historical photographs are not here")
def test_real_sepia_prints_have_colour_and_black_and_white_scans_do_not():
    scratched = sorted((HISTORICAL / "scratched").glob("*.png"))  # sepia prints with scratches
    assert scratched and all(tone.measure_image(p).has_colour for p in scratched)
    for name in ("ttr_Abraham_Lincoln_original_1863_01.jpg", "ddcolor_Detroit_circa_1915.jpg",
                 "ttr_Thomas_Edison_middle_age_nonwiki_01.jpg"):
        assert not tone.measure_image(HISTORICAL / "photos" / name).has_colour, name


def _submit(path: Path, settings, store, form: dict, mask: Path | None = None, reference: Path | None = None):
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    sub = Submission(path, path.name, path.stat().st_size, digest, parse_options(form, settings), mask,
                     reference)
    job_id = create_job(sub, settings, store, settings.database_url, lambda job_id: "task-" + job_id)
    return jobstate.get_job(settings.database_url, job_id)


def _mask(tmp_path: Path) -> Path:
    return rect_mask(tmp_path / "mask.png", GREY.shape[1], GREY.shape[0], (10, 10, 30, 30))


def test_a_sepia_print_sent_for_scratch_removal_keeps_its_colour(tmp_path, settings, store):
    """The issue: the form's defaults (colorize auto, Inpaint ticked) on a sepia print."""
    photo = save_picture(tmp_path / "sepia.jpg", SEPIA)
    job = _submit(photo, settings, store, {"colorize": "auto", "inpaint": "1"}, _mask(tmp_path))
    assert job.operations == ["inpaint"] and job.options["colorize"] == "auto"
    assert any("toned in one hue" in n and "colour was kept" in n and "colorize=yes" in n for n in job.notes)


def test_a_black_and_white_photo_is_still_colorized_by_default(tmp_path, settings, store):
    photo = save_picture(tmp_path / "grey.png", GREY)
    job = _submit(photo, settings, store, {})
    assert job.operations == ["colorize"] and any("black and white" in n and "colorized" in n for n in job.notes)
    both = _submit(photo, settings, store, {"colorize": "auto", "inpaint": "1"}, _mask(tmp_path))
    assert both.operations == ["inpaint", "colorize"]


def test_colour_is_recoloured_only_when_asked(tmp_path, settings, store):
    photo = save_picture(tmp_path / "colour.png", COLOUR)
    assert _submit(photo, settings, store, {"colorize": "yes"}).operations == ["colorize"]
    assert _submit(photo, settings, store, {"operations": "colorize"}).operations == ["colorize"]
    grey = save_picture(tmp_path / "grey.png", GREY)
    kept = _submit(grey, settings, store, {"colorize": "no", "inpaint": "1"}, _mask(tmp_path))
    assert kept.operations == ["inpaint"] and kept.notes == []


def test_a_colour_picture_with_nothing_to_do_is_refused_and_nothing_is_stored(tmp_path, settings, store):
    photo = save_picture(tmp_path / "sepia.png", SEPIA)
    with pytest.raises(IntakeError, match="already has colour") as refused:
        _submit(photo, settings, store, {})
    assert (refused.value.status, refused.value.code) == (422, "no_operation")
    assert queries.list_jobs(settings.database_url, queries.JobFilter(None), 1, 10).total == 0
    assert list(store.list("jobs/")) == []


def test_a_colour_reference_asks_for_colour(tmp_path, settings, store):
    photo = save_picture(tmp_path / "sepia.png", SEPIA)
    reference = save_picture(tmp_path / "ref.png", COLOUR)
    job = _submit(photo, settings, store, {}, reference=reference)
    assert job.operations == ["colorize"] and any("reference" in n for n in job.notes)


def test_a_toned_film_keeps_its_colour_and_a_grey_one_is_colorized(tmp_path, settings, store):
    frames = grey_film(24)
    grey = encode_frames(tmp_path / "grey.mp4", frames, lossless=False)
    sepia = encode_frames(tmp_path / "sepia.mp4", [toned(f) for f in frames], lossless=False)
    mask = rect_mask(tmp_path / "m.png", 96, 64, (10, 10, 30, 30))
    assert _submit(grey, settings, store, {}).operations == ["colorize"]
    kept = _submit(sepia, settings, store, {"colorize": "auto", "inpaint": "1"}, mask)
    assert kept.operations == ["inpaint"] and any("colour was kept" in n for n in kept.notes)


def test_the_form_says_what_will_happen_before_upload(settings):
    html = create_app(settings).test_client().get("/").get_data(as_text=True)
    assert f'data-has-colour="{tone.HAS_COLOUR}"' in html and f'data-toned="{tone.TONED}"' in html
    assert 'id="colour-hint"' in html and '<option value="auto" selected>' in html
    assert 'name="colorize" value="1" checked' not in html  # no longer ticked by default


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_browser_measures_colour_as_intake_does():
    """static/app.js's Lab conversion and wording, run in node against tintype.media.tone."""
    pixels = np.random.default_rng(0).integers(0, 256, (64, 3), dtype=np.uint8)
    limits = {"hasColour": tone.HAS_COLOUR, "toned": tone.TONED}
    sepia, grey = tone.measure(SEPIA), tone.measure(GREY)
    script = f"""
      const vm = require("vm"), fs = require("fs"), box = {{}};
      vm.runInNewContext(fs.readFileSync({json.dumps(str(ROOT / 'tintype/web/static/app.js'))}, "utf8")
                         + "; this.t = tintype;", box);
      const limits = {json.dumps(limits)};
      console.log(JSON.stringify({{
        lab: {json.dumps(pixels.tolist())}.map((p) => box.t.lab(...p)),
        sepia: box.t.colourPlan({json.dumps(sepia.__dict__)}, limits, "auto", false, true),
        grey: box.t.colourPlan({json.dumps(grey.__dict__)}, limits, "auto", false, false),
      }}));"""
    out = json.loads(subprocess.run(["node", "-e", script], check=True, capture_output=True, text=True).stdout)
    expected = rgb_to_lab(pixels[None])[0]
    assert np.abs(np.array(out["lab"]) - expected).max() < 0.5
    assert "toned in one hue" in out["sepia"] and "will be kept" in out["sepia"]
    assert "black and white" in out["grey"] and "will be colorized" in out["grey"]


def test_an_rgb_scan_of_a_grey_picture_is_greyscale(tmp_path):
    path = tmp_path / "scan.jpg"
    Image.fromarray(GREY).save(path, quality=80)
    assert tone.measure_image(path).kind == "greyscale"
