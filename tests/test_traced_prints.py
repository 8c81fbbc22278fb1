"""Real prints with traced cracks as training crops (training/traced_prints.py) and how a
scratch-net run mixes them in (train_damage --traced, --hold-out)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tintype.training import train_damage
from tintype.training.traced_prints import Trace, TracedPrints, job_grey, rasterise

DIAGONAL = Trace("diagonal", "clear", "background", ((10, 20), (70, 50)))


def _traced_folder(root: Path) -> Path:
    """Two small 'prints' with a dark crack each, and their traces."""
    root.mkdir(parents=True, exist_ok=True)
    traces = {}
    for name, (w, h), points in (("p.png", (96, 80), [[10, 20], [70, 50]]), ("q.png", (64, 72), [[5, 60], [60, 8]])):
        picture = np.full((h, w, 3), 170, np.uint8)
        cv2.polylines(picture, [np.array(points, np.int32)], False, (40, 40, 40), 1)
        cv2.imwrite(str(root / name), picture)
        traces[name] = {"size": [w, h], "cracks": [{"name": "crack", "visibility": "obvious",
                                                    "region": "background", "points": points}]}
    (root / "traces.json").write_text(json.dumps(traces))
    return root


def test_a_trace_labels_its_line_and_leaves_the_unsure_band_beside_it_out_of_the_loss() -> None:
    grey = np.full((64, 96), 128, np.uint8)
    for scale in (1, 2):
        crop = rasterise(grey, [DIAGONAL], scale)
        assert crop.grey.shape == crop.label.shape == crop.weight.shape == (64 * scale, 96 * scale)
        off = np.ones(crop.label.shape, np.uint8)  # 0 on the traced centre line at this scale
        cv2.polylines(off, [(np.array(DIAGONAL.points) * scale + (scale - 1) // 2).astype(np.int32)], False, 0, 1)
        distance = cv2.distanceTransform(off, cv2.DIST_L2, 5)
        labelled, unsure = crop.label > 0, crop.weight == 0
        assert labelled[distance == 0].all() and distance[labelled].max() <= 1.25 * scale
        assert not (labelled & unsure).any() and 0 < distance[unsure].min() and distance[unsure].max() <= 4.5 * scale
        clear = distance > 4.5 * scale  # beyond the band: taught as undamaged
        assert (crop.weight[clear] == 1).all() and not labelled[clear].any()


def test_crops_come_from_the_prints_not_held_out_and_keep_the_label_on_the_crack(tmp_path: Path) -> None:
    folder = _traced_folder(tmp_path / "prints")
    prints = TracedPrints(folder / "traces.json", folder, hold_out=["q.png"])
    assert prints.names == ["p.png"] and prints.cracks == 1
    rng = np.random.default_rng(0)
    crops = [prints.crop(rng, 64) for _ in range(20)]
    assert all(c.grey.shape == (64, 64) and c.grey.dtype == np.float32 for c in crops)
    cracked = [c for c in crops if c.label.any()]
    assert len(cracked) >= 10
    for crop in cracked:  # the labelled pixels are the dark crack's, whatever the turn and tone
        assert crop.grey[crop.label > 0].mean() < crop.grey[crop.weight > 0].mean() - 0.1
    for hold, said in ((["r.png"], "cannot hold out r.png"), (["p.png", "q.png"], "nothing is left")):
        with pytest.raises(ValueError, match=said):
            TracedPrints(folder / "traces.json", folder, hold)
    (folder / "q.png").write_bytes(b"not a picture")
    with pytest.raises(ValueError, match="cannot be read"):
        TracedPrints(folder / "traces.json", folder)


def test_a_print_is_read_as_a_jobs_net_sees_it(tmp_path: Path) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "p.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert np.array_equal(job_grey(tmp_path / "p.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


def test_a_batch_ends_with_real_crops_whose_unsure_pixels_the_loss_ignores(tmp_path: Path) -> None:
    folder = _traced_folder(tmp_path / "prints")
    photos = _photos(tmp_path / "photos")
    prints = TracedPrints(folder / "traces.json", folder)
    grey, label, weight = next(train_damage.batches(photos, 4, 64, 0, traced=prints, traced_per_batch=2))
    assert grey.shape == label.shape == weight.shape == (4, 1, 64, 64)
    assert bool((weight[:2] == 1).all()) and all(bool((w == 0).any()) for w in weight[2:])  # real: unsure band
    logits = torch.randn(4, 1, 64, 64)
    loss = train_damage.loss_fn(logits, label, 3.0, weight)
    moved = logits.clone()
    moved[weight == 0] += 5.0  # what the loss is told to ignore does not move it
    assert train_damage.loss_fn(moved, label, 3.0, weight) == pytest.approx(loss.item(), rel=1e-5)
    assert train_damage.loss_fn(logits, label, 3.0) == pytest.approx(
        train_damage.loss_fn(logits, label, 3.0, torch.ones_like(label)).item(), rel=1e-6)


def test_a_run_trains_on_the_traced_prints_and_refuses_a_bad_hold_out(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    folder = _traced_folder(tmp_path / "prints")
    _photos(tmp_path / "photos")
    common = ["--data", str(tmp_path / "photos"), "--arch", "unet", "--batch", "3", "--crop", "64",
              "--val-count", "4", "--val-size", "64", "--val-fraction", "0.3",
              "--traced", str(folder / "traces.json"), "--traced-dir", str(folder)]
    out = tmp_path / "net.pt"
    train_damage.train(train_damage.parse_args(common + ["--out", str(out), "--steps", "2", "--hold-out", "q.png"]))
    assert out.is_file()
    assert "traced: 1 real prints (1 cracks), holding out q.png; 2 of every 3 crops" in capsys.readouterr().err
    for extra, said in ((["--hold-out", "z.png"], "cannot hold out z.png"),
                        (["--traced-per-batch", "3"], "between 1 and 2")):
        with pytest.raises(SystemExit, match=said):
            train_damage.train(train_damage.parse_args(common + ["--out", str(tmp_path / "x.pt")] + extra))
    with pytest.raises(SystemExit, match="needs --traced"):
        train_damage.train(train_damage.parse_args(["--data", str(tmp_path / "photos"), "--hold-out", "q.png",
                                                    "--val-fraction", "0.3", "--val-count", "4", "--val-size", "64"]))


def _photos(root: Path) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)
    for i in range(8):
        cv2.imwrite(str(root / f"{i}.jpg"), cv2.GaussianBlur(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8),
                                                            (0, 0), 3))
    return sorted(root.glob("*.jpg"))
