"""Still images through REST v1: every input mode, orientation, alpha, JPEG on request."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.media_factory import grey_photo
from tintype.media.color import rgb_to_lab

pytestmark = pytest.mark.integration


def _result(stack, tmp_path, path, **form) -> tuple[dict, Image.Image]:
    response = stack.submit(path, **form)
    assert response.status_code == 202, response.text
    job = stack.wait(response.json()["id"])
    assert job["status"] == "succeeded", job
    out = stack.download(job, tmp_path / "result.bin")
    return job, Image.open(io.BytesIO(out.read_bytes()))


def test_grey_photo_is_colorized_with_its_lightness_kept(stack, tmp_path):
    grey = grey_photo()
    path = tmp_path / "photo.png"
    Image.fromarray(grey, "L").save(path)
    job, img = _result(stack, tmp_path, path, operations="colorize")
    assert img.format == "PNG" and img.mode == "RGB" and img.size == (120, 90)
    lab = rgb_to_lab(np.asarray(img))
    source_l = rgb_to_lab(np.dstack([grey] * 3))[..., 0]
    assert np.abs(lab[..., 0] - source_l).mean() < 1.5
    assert np.hypot(lab[..., 1], lab[..., 2]).mean() > 2.0  # not grey any more
    assert job["progress"]["fraction"] == 1.0 and [n for n in job["notes"] if "provenance" not in n] == []
    assert stack.objects(job["id"]) == [f"jobs/{job['id']}/{name}" for name in ("input", "manifest.json", "output.png")]


@pytest.mark.parametrize("mode", ["I;16", "P", "LA", "CMYK"])
def test_unusual_modes_are_accepted(stack, tmp_path, mode):
    grey = grey_photo(64, 48)
    if mode == "I;16":
        img, fmt = Image.fromarray(grey.astype(np.uint16) * 257), "PNG"
    elif mode == "P":
        img, fmt = Image.fromarray(grey, "L").convert("P"), "PNG"
    elif mode == "LA":
        img, fmt = Image.fromarray(grey, "L").convert("LA"), "PNG"
        img.putalpha(Image.fromarray(np.where(grey > 100, 255, 40).astype(np.uint8)))
    else:
        img, fmt = Image.fromarray(grey, "L").convert("CMYK"), "JPEG"
    path = tmp_path / f"in.{fmt.lower()}"
    img.save(path, fmt)
    _, out = _result(stack, tmp_path, path, operations="colorize")
    assert out.size == (64, 48)
    if mode == "LA":
        assert out.mode == "RGBA"
        alpha = np.asarray(out.getchannel("A"))
        assert set(np.unique(alpha)) == {40, 255}


def test_exif_orientation_is_honoured_and_jpeg_returned_on_request(stack, tmp_path):
    grey = grey_photo(80, 40)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    Image.fromarray(np.dstack([grey] * 3)).save(path, "JPEG", exif=exif, quality=95)
    job, out = _result(stack, tmp_path, path, operations="colorize", output_format="jpeg")
    assert out.format == "JPEG" and out.size == (40, 80)
    assert job["result"]["content_type"] == "image/jpeg"


def test_colour_input_is_colorized_from_lightness_and_says_so(stack, tmp_path):
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[..., 0], rgb[..., 1] = 200, np.linspace(0, 255, 64, dtype=np.uint8)
    path = tmp_path / "colour.png"
    Image.fromarray(rgb).save(path)
    job, _ = _result(stack, tmp_path, path, operations="colorize")
    assert any("already had colour" in note for note in job["notes"])


def test_colour_reference_pulls_the_colours_towards_it(stack, tmp_path):
    grey = grey_photo()
    path = tmp_path / "photo.png"
    Image.fromarray(grey, "L").save(path)
    reference = tmp_path / "uniform.png"
    red = np.zeros((60, 80, 3), np.uint8)
    red[..., 0], red[..., 1], red[..., 2] = 180, 30, 40
    Image.fromarray(red).save(reference)
    plain_job, plain = _result(stack, tmp_path, path, operations="colorize")
    response = stack.submit(path, reference=reference, operations="colorize")
    assert response.status_code == 202, response.text
    job = stack.wait(response.json()["id"])
    assert job["status"] == "succeeded" and job["input"]["has_reference"] is True
    guided = Image.open(io.BytesIO(stack.download(job, tmp_path / "guided.png").read_bytes()))
    a_plain = rgb_to_lab(np.asarray(plain))[..., 1].mean()
    a_guided = rgb_to_lab(np.asarray(guided))[..., 1].mean()
    assert a_guided > a_plain + 5, (a_plain, a_guided)  # redder, like the reference
    light_guided = rgb_to_lab(np.asarray(guided))[..., 0]
    assert np.abs(light_guided - rgb_to_lab(np.dstack([grey] * 3))[..., 0]).mean() < 1.5


def test_reference_needs_colorize_and_must_be_an_image(stack, tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(grey_photo(), "L").save(path)
    mask = tmp_path / "m.png"
    Image.fromarray(np.pad(np.full((10, 10), 255, np.uint8), 20)).resize((120, 90)).save(mask)
    ref = tmp_path / "ref.png"
    Image.new("RGB", (10, 10), (200, 0, 0)).save(ref)
    response = stack.submit(path, mask=mask, reference=ref, operations="inpaint")
    assert response.status_code == 400 and response.json()["error"]["code"] == "reference_without_colorize"
    bad = tmp_path / "ref.txt"
    bad.write_text("not a picture")
    response = stack.submit(path, reference=bad, operations="colorize")
    assert 400 <= response.status_code < 500 and response.json()["error"]["code"] == "bad_reference"


def test_a_sepia_print_sent_for_scratch_removal_keeps_its_colour(stack, tmp_path):
    """The form's defaults (colorize auto, Inpaint ticked) on a sepia print: only inpainted,
    and the job says why; the result keeps the print's tone instead of new colours."""
    import jsonschema

    from tests.media_factory import rect_mask
    from tintype.media.color import lab_to_rgb
    from tintype.web.openapi import openapi_document

    lab = rgb_to_lab(np.repeat(grey_photo()[..., None], 3, 2))
    lab[..., 1], lab[..., 2] = 6.0, 20.0
    path = tmp_path / "sepia.png"
    Image.fromarray(lab_to_rgb(lab)).save(path)
    mask = rect_mask(tmp_path / "m.png", 120, 90, (10, 10, 30, 30))
    response = stack.submit(path, mask=mask, colorize="auto", inpaint="1")
    assert response.status_code == 202, response.text
    job = stack.wait(response.json()["id"])
    assert job["status"] == "succeeded" and job["operations"] == ["inpaint"] and job["options"]["colorize"] == "auto"
    assert any("colour was kept" in note for note in job["notes"])
    doc = openapi_document()
    jsonschema.validate(job, {**doc["components"]["schemas"]["Job"], "components": doc["components"]})
    out = np.asarray(Image.open(io.BytesIO(stack.download(job, tmp_path / "r.png").read_bytes())).convert("RGB"))
    ab = rgb_to_lab(out)[..., 1:]
    assert np.abs(ab - np.array([6.0, 20.0])).mean() < 2.0  # the tone, not new colours
