"""The oracle trust frontier (bench/trust.py) on images whose right answer is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench import trust
from bench.metrics import colourfulness, psnr
from tintype.media.color import merge_lightness_chroma, rgb_to_lab


def _scene(seed: int) -> np.ndarray:
    """A colourful uint8 RGB picture: smooth hue gradients plus a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:48, 0:64]
    base = np.stack([80 + 2 * x, 60 + 3 * y, 200 - 2 * x - y], axis=-1) + rng.normal(0, 4, (48, 64, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


def _with_chroma(truth: np.ndarray, factor: float) -> np.ndarray:
    """truth's lightness with its chroma times `factor` (-1 flips every hue)."""
    lab = rgb_to_lab(truth)
    return merge_lightness_chroma(lab[..., 0], lab[..., 1:] * np.float32(factor))


def test_scale_curve_runs_from_grey_through_the_output() -> None:
    truth = _scene(0)
    out = _with_chroma(truth, 0.5)
    curve = trust.scale_curve(out, truth)
    assert len(curve.psnr) == len(trust.SCALES)
    assert curve.psnr_grey == pytest.approx(psnr(_with_chroma(truth, 0.0), truth), abs=0.05)
    assert curve.psnr[trust.UNIFORM] == pytest.approx(psnr(out, truth), abs=0.2)
    assert curve.colourfulness[0] == pytest.approx(0.0, abs=0.5)
    assert np.all(np.diff(curve.colourfulness) > 0)  # more chroma, more colour
    assert curve.colourfulness_truth == pytest.approx(colourfulness(truth))
    # half the true chroma: doubling it is exactly right, so PSNR peaks at scale 2
    assert int(np.argmax(curve.psnr)) == len(trust.SCALES) - 1
    with pytest.raises(ValueError, match="differ in shape"):
        trust.scale_curve(out[:-1], truth)


def test_the_oracle_trusts_right_colours_and_drops_wrong_ones() -> None:
    right, wrong = _scene(1), _scene(2)
    curves = [trust.scale_curve(right, right), trust.scale_curve(_with_chroma(wrong, -1.0), wrong)]
    result = trust.summary(curves, floor=0.4)
    own = result["as_output"]
    assert own["colourfulness_ratio"] > 0.9  # both as colourful as the truth, one of them wrongly
    # plain PSNR-greedy oracle: keeps the right image as it is, greys the flipped one
    greedy = result["oracle"][0]
    assert greedy["lambda"] == 0.0
    assert greedy["mean_scale"] == pytest.approx(0.5)
    share = colourfulness(right) / (colourfulness(right) + colourfulness(wrong))
    assert greedy["colourfulness_ratio"] == pytest.approx(share, abs=0.02)
    assert greedy["psnr_gain_db"] > own["psnr_gain_db"] + 2
    # no single scale can separate them: at the same colourfulness the oracle is far ahead
    assert result["best_oracle_gain_db"] > result["best_uniform_gain_db"] + 2
    assert trust.best_gain(result["uniform"], floor=10.0) is None


def test_summary_of_nothing_and_the_picture(tmp_path: Path) -> None:
    assert trust.summary([], 0.6) == {"items": 0}
    truth = _scene(3)
    s = trust.summary([trust.scale_curve(_with_chroma(truth, 0.7), truth)], 0.6)
    path = tmp_path / "trust.png"
    trust.plot({"photos": s, "empty": {"items": 0}}, path, "some-model")
    with Image.open(path) as img:
        assert img.size[0] > 400 and img.size[1] > 300
        pixels = np.asarray(img.convert("RGB"))
    assert (np.abs(pixels.astype(int) - (200, 40, 40)).sum(axis=-1) < 10).any()  # the model's dot
