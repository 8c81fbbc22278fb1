"""Colour hints (media.hints): strokes spread along the picture's edges, lightness kept."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from tintype.jobs import hints as job_hints
from tintype.jobs.errors import IntakeError
from tintype.media.color import lab_to_rgb, rgb_to_lab
from tintype.media.hints import apply_hints, geodesic_spread
from tintype.storage.objects import LocalStore

BLUE = (40, 80, 200)


def _two_halves(width: int = 160, height: int = 90, noise: float = 3.0) -> np.ndarray:
    """A grey picture: a dark left half and a light right half (a strong edge between),
    with grain on both."""
    grey = np.full((height, width), 90.0)
    grey[:, width // 2:] = 200.0
    grey += np.random.default_rng(0).normal(0, noise, grey.shape)
    return np.repeat(grey.clip(0, 255).astype(np.uint8)[..., None], 3, 2)


def _strokes(height: int, width: int, box: tuple[int, int, int, int], colour=BLUE) -> np.ndarray:
    strokes = np.zeros((height, width, 4), np.uint8)
    x0, y0, x1, y1 = box
    strokes[y0:y1, x0:x1] = (*colour, 255)
    return strokes


def _stroke_ab(colour=BLUE) -> np.ndarray:
    return rgb_to_lab(np.array([[colour]], np.uint8))[0, 0, 1:]


@pytest.mark.parametrize("size", [(160, 90), (854, 480)])  # spread at full size, and at the working size
def test_the_stroke_colours_its_region_and_stops_at_the_edge(size):
    width, height = size
    picture = _two_halves(width, height)
    out = apply_hints(picture, _strokes(height, width, (width // 8, height // 2 - 3, width // 4, height // 2 + 3)))
    lab_in, lab_out = rgb_to_lab(picture), rgb_to_lab(out)
    left, right = lab_out[:, : width // 2 - 2, 1:], lab_out[:, width // 2 + 2:, 1:]
    assert np.abs(left.mean((0, 1)) - _stroke_ab()).max() < 6, left.mean((0, 1))  # the whole region, not a blob
    assert np.abs(left.reshape(-1, 2) - _stroke_ab()).max(axis=1).mean() < 8
    assert (out[:, width // 2 + 4:] == picture[:, width // 2 + 4:]).all(), "colour crossed the edge"
    assert np.abs(right).max() < 1
    assert np.abs(lab_out[..., 0] - lab_in[..., 0]).max() < 1.0, "the lightness changed"


def test_no_strokes_leave_the_picture_as_it_was():
    picture = _two_halves()
    transparent = _strokes(90, 160, (10, 10, 50, 50))
    transparent[..., 3] = 100  # below the stroke threshold: a soft brush edge, not a stroke
    assert apply_hints(picture, np.zeros((90, 160, 4), np.uint8)) is picture
    assert (apply_hints(picture, transparent) == picture).all()


def test_far_areas_keep_their_own_colour_and_strokes_of_any_size_fit():
    width, height = 400, 40  # one long flat region: colour fades with distance along it
    lab = np.zeros((height, width, 3), np.float32)
    lab[..., 0], lab[..., 1], lab[..., 2] = 60, 30, 10  # a coloured keyframe (reddish)
    picture = lab_to_rgb(lab)
    strokes = _strokes(height // 2, width // 2, (0, 5, 5, 15))  # half size: scaled to the picture
    out = apply_hints(picture, strokes)
    got, want = rgb_to_lab(out)[:, :20, 1:].mean((0, 1)), _stroke_ab()
    # This blue is outside sRGB at the picture's lightness: its hue is kept, its chroma reduced.
    assert got @ want / np.linalg.norm(got) / np.linalg.norm(want) > 0.99 and np.linalg.norm(got) > 40
    assert np.abs(rgb_to_lab(out)[..., 0] - 60).max() < 0.5, "the lightness changed"
    assert (out[:, -40:] == picture[:, -40:]).all(), "the far end keeps its colour"


def test_two_strokes_each_colour_their_own_side():
    picture = _two_halves()
    peach = (240, 180, 150)  # of about the light half's lightness, so in gamut there
    strokes = _strokes(90, 160, (10, 40, 30, 46)) | _strokes(90, 160, (120, 40, 140, 46), peach)
    lab = rgb_to_lab(apply_hints(picture, strokes))
    assert np.abs(lab[:, :75, 1:].mean((0, 1)) - _stroke_ab()).max() < 6
    assert np.abs(lab[:, 85:, 1:].mean((0, 1)) - _stroke_ab(peach)).max() < 4


def test_geodesic_spread_refuses_mismatched_shapes_and_is_quick():
    with pytest.raises(ValueError, match="must share"):
        geodesic_spread(np.zeros((4, 5), np.float32), np.zeros((4, 4), bool), np.zeros((4, 5, 2), np.float32))
    with pytest.raises(ValueError, match="RGBA"):
        apply_hints(_two_halves(), np.zeros((90, 160, 3), np.uint8))
    picture = _two_halves(854, 480)
    strokes = _strokes(480, 854, (100, 200, 300, 210))
    started = time.perf_counter()
    apply_hints(picture, strokes)
    assert time.perf_counter() - started < 1.5  # measured 0.16-0.2 s on the 2-core CI machine


def test_a_preview_refuses_pictures_too_large_and_strokes_of_another_shape(tmp_path, monkeypatch):
    store = LocalStore(tmp_path / "store")
    Image.fromarray(_two_halves(40, 30)).save(tmp_path / "picture.png")
    store.put_file("jobs/x/output.png", tmp_path / "picture.png", "image/png")
    Image.fromarray(_strokes(15, 20, (2, 2, 8, 8))).save(tmp_path / "strokes.png")
    hinted = job_hints.hinted_png(store, "jobs/x/output.png", tmp_path / "strokes.png", 10**8)
    assert Image.open(io.BytesIO(hinted)).size == (40, 30)
    Image.fromarray(_strokes(30, 30, (2, 2, 8, 8))).save(tmp_path / "square.png")
    with pytest.raises(IntakeError, match="not of the picture's shape") as refused:
        job_hints.hinted_png(store, "jobs/x/output.png", tmp_path / "square.png", 10**8)
    assert refused.value.status == 422
    with pytest.raises(IntakeError, match="40x30, larger than") as refused:
        job_hints.hinted_png(store, "jobs/x/output.png", tmp_path / "strokes.png", 10**8, 1000)
    assert refused.value.status == 413


def test_strokes_larger_than_the_hints_limit_are_refused_before_decoding(tmp_path, monkeypatch):
    store = LocalStore(tmp_path / "store")
    Image.fromarray(_two_halves(40, 30)).save(tmp_path / "picture.png")
    store.put_file("jobs/x/output.png", tmp_path / "picture.png", "image/png")
    Image.fromarray(_strokes(300, 400, (2, 2, 8, 8))).save(tmp_path / "strokes.png")  # 120 000 px, the shape fits

    def no_decoding(*_args):
        raise AssertionError("decoded before its size was checked")

    monkeypatch.setattr(job_hints, "load_image", no_decoding)
    with pytest.raises(IntakeError, match="strokes is 400x300") as refused:
        job_hints.hinted_png(store, "jobs/x/output.png", tmp_path / "strokes.png", 10**8, 100_000)
    assert refused.value.status == 413 and refused.value.code == "strokes_too_large_for_hints"
