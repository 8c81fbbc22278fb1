"""The shipped EfficientNet-Lite0 U-Net colorizer: loading, shapes, integrity, training CLI.

Fast and CPU-only; the training test uses a few random images written to tmp_path,
never the shared data set.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tintype.gpu_workers.colorize import colorize_frames
from tintype.gpu_workers.models.ab_bins import gamut_bins
from tintype.gpu_workers.models.effnet_unet import (
    WEIGHTS,
    WEIGHTS_V1,
    WEIGHTS_V2,
    AbClassifier,
    EffNetColorizer,
    EffNetUNet,
    export_state,
    load_model,
)
from tintype.gpu_workers.models.errors import WeightsError
from tintype.gpu_workers.models.registry import ModelRegistry
from tintype.gpu_workers.models.weight_files import Weights, verify_weights
from tintype.media import metrics
from tintype.media.color import lightness, merge_lightness_chroma
from tintype.media.metrics import PSNR_CAP
from tintype.settings import load_settings
from tintype.training import train

# The traced fp32 graph these tests compare with the training graph (MODEL_PRECISION=auto
# is untraced bf16 on CPUs with bf16 instructions; tests/test_model_precision.py covers it).
FP32 = load_settings({**os.environ, "MODEL_PRECISION": "fp32"})


def _natural_light(height: int, width: int) -> torch.Tensor:
    """A bright sky over a darker textured ground with a round object: photo-like L."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    light = np.where(y < height * 0.45, 80 - 20 * y / height, 35 + 8 * np.sin(x / 3) * np.cos(y / 4))
    blob = (x - width * 0.6) ** 2 + (y - height * 0.6) ** 2 < (min(height, width) * 0.15) ** 2
    light = np.where(blob, 60.0, light)
    return torch.from_numpy(np.clip(light, 0, 100).astype(np.float32))[None, None]


@pytest.fixture(scope="module")
def colorizer() -> EffNetColorizer:
    torch.set_num_threads(2)
    return ModelRegistry(FP32).get("effnet-lite0-unet", torch.device("cpu"))


def test_registered_model_loads(colorizer: EffNetColorizer) -> None:
    assert isinstance(colorizer, EffNetColorizer)
    assert not colorizer.model.training


def test_predict_ab_odd_size_shape_and_dtype(colorizer: EffNetColorizer) -> None:
    ab = colorizer.predict_ab(_natural_light(50, 70))
    assert ab.shape == (1, 2, 50, 70)
    assert ab.dtype == torch.float32
    assert ab.device.type == "cpu"


def test_predict_ab_batch_and_tiny_input(colorizer: EffNetColorizer) -> None:
    light = torch.cat([_natural_light(33, 47), torch.full((1, 1, 33, 47), 50.0)])
    assert colorizer.predict_ab(light).shape == (2, 2, 33, 47)
    assert colorizer.predict_ab(torch.full((1, 1, 3, 5), 40.0)).shape == (1, 2, 3, 5)


def test_predict_ab_adds_colour(colorizer: EffNetColorizer) -> None:
    ab = colorizer.predict_ab(_natural_light(96, 128))
    assert torch.isfinite(ab).all()
    assert ab.abs().max() > 1.0  # a grey (a=b=0) stub would fail here
    assert ab.abs().max() < 128.0


def test_predict_ab_rejects_wrong_shape(colorizer: EffNetColorizer) -> None:
    with pytest.raises(ValueError):
        colorizer.predict_ab(torch.zeros(1, 3, 8, 8))


def test_shipped_weights_are_small_fp16_and_verified() -> None:
    assert verify_weights(WEIGHTS) == WEIGHTS.path
    assert WEIGHTS.path.stat().st_size <= 25 * 1024 * 1024
    state = torch.load(WEIGHTS.path, map_location="cpu", weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())


def test_corrupted_weights_raise_with_file_and_sha(tmp_path: Path) -> None:
    data = bytearray(WEIGHTS.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightsError) as err:
        verify_weights(Weights(path=bad, sha256=WEIGHTS.sha256))
    assert str(bad) in str(err.value)
    assert WEIGHTS.sha256 in str(err.value)


def _write_random_images(root: Path) -> None:
    rng = np.random.default_rng(0)
    for folder in ("faces", "scenes"):
        (root / folder).mkdir(parents=True)
        for i in range(4):
            colour = rng.integers(0, 256, 3, dtype=np.uint8)
            img = np.clip(colour + rng.integers(-30, 30, (72, 90, 3)), 0, 255).astype(np.uint8)
            suffix = ".png" if i % 2 else ".jpg"
            cv2.imwrite(str(root / folder / f"{i}{suffix}"), img)


def test_tiny_training_run_checkpoints_and_exports(tmp_path: Path) -> None:
    data, work, out = tmp_path / "data", tmp_path / "work", tmp_path / "weights.pt"
    _write_random_images(data)
    common = ["colorize", "--data", str(data), "--out", str(out), "--work", str(work),
              "--batch", "2", "--crop", "64", "--val-fraction", "0.25", "--seed", "1",
              "--ckpt-every", "1", "--no-progress"]
    summary = train.main([*common, "--steps", "2"])
    assert summary["steps"] == 2
    assert (work / "checkpoint.pt").is_file()
    assert (work / "losses.csv").read_text().count("\n") == 3  # header + 2 steps
    model = load_model(out, torch.device("cpu"))
    with torch.inference_mode():
        assert model(_natural_light(40, 56)).shape == (1, 2, 40, 56)
    resumed = train.main([*common, "--steps", "3", "--resume", str(work / "checkpoint.pt")])
    assert resumed["steps"] == 3
    assert len(resumed["sha256"]) == 64


def test_validation_split_is_deterministic_and_balanced_sampling() -> None:
    names = [f"src/{i}.jpg" for i in range(200)]
    first = [train.in_validation(n, 0, 0.1) for n in names]
    assert first == [train.in_validation(n, 0, 0.1) for n in names]
    assert 5 <= sum(first) <= 40
    probs = train.balanced_weights(["big"] * 90 + ["small"] * 10, power=1.0)
    assert probs[:90].sum() == pytest.approx(0.5)


def test_cpu_fast_path_matches_the_training_graph():
    """The streamlined CPU inference graph must give the trained network's answer."""
    colorizer = ModelRegistry(FP32).get("effnet-lite0-unet", torch.device("cpu"))
    torch.manual_seed(0)
    light = torch.rand(2, 1, 70, 90) * 100
    with torch.inference_mode():
        assert torch.allclose(colorizer.predict_ab(light), colorizer.model(light), atol=1e-2)
        for _ in range(2):  # a shape seen twice in a row is traced, and gives the same answer
            assert torch.allclose(colorizer.predict_ab(light), colorizer.model(light), atol=1e-2)
        assert (2, 1, 70, 90) in colorizer._traced
        photo = torch.rand(1, 1, 41, 57) * 100  # a shape seen once runs the eager graph
        assert torch.allclose(colorizer.predict_ab(photo), colorizer.model(photo), atol=1e-2)
    assert (1, 1, 41, 57) not in colorizer._traced


def test_fine_tuning_starts_from_an_exported_file_with_the_mse_loss(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "tuned.pt"
    _write_random_images(data)
    tuned = train.main(["colorize", "--data", str(data), "--out", str(out), "--work", str(tmp_path / "work"),
                        "--batch", "2", "--crop", "64", "--val-fraction", "0.25", "--steps", "1", "--lr", "0",
                        "--warmup", "0", "--no-progress", "--init", str(WEIGHTS_V1.path), "--regression", "mse"])
    assert tuned["steps"] == 1
    start, after = load_model(WEIGHTS_V1.path, torch.device("cpu")), load_model(out, torch.device("cpu"))
    # lr 0: the exported weights are the file it started from (to fp16 rounding), not a fresh net
    tuned_state = after.state_dict()
    for name, a in start.state_dict().items():
        if a.is_floating_point() and "running" not in name:
            assert torch.allclose(a, tuned_state[name], atol=1e-3), name


def test_the_mse_loss_is_the_mean_squared_ab_error() -> None:
    pred, target = torch.zeros(1, 2, 4, 4), torch.full((1, 2, 4, 4), 50.0)
    loss, parts = train.colorize_loss(pred, target, chroma_weight=0.0, regression="mse")
    assert abs(loss.item() - 0.25) < 1e-6 and abs(parts["reg"] - 0.25) < 1e-6  # (50/100)^2
    smooth, _ = train.colorize_loss(pred, target, chroma_weight=0.0)
    assert abs(smooth.item() - (0.5 - 0.025)) < 1e-6  # smooth-L1 with beta 0.05


def test_classifier_fine_tune_from_the_regression_file_picks_its_decoding(tmp_path: Path) -> None:
    """A v1 (regression) file seeds the trunk of a classifier; decoding is chosen on validation."""
    data, out = tmp_path / "data", tmp_path / "classifier.pt"
    _write_random_images(data)
    summary = train.main(["colorize", "--data", str(data), "--out", str(out), "--work", str(tmp_path / "work"),
                          "--batch", "2", "--crop", "64", "--val-fraction", "0.25", "--steps", "2",
                          "--no-progress", "--init", str(WEIGHTS_V1.path), "--head", "classify",
                          "--prior-batches", "2", "--temperatures", "0.5,1", "--rebalances", "0,0.3"])
    assert len(summary["decoding_sweep"]) == 4
    model = load_model(out, torch.device("cpu"))
    head = model.head
    assert isinstance(head, AbClassifier)
    assert float(head.temperature) in (0.5, 1.0) and float(head.rebalance) in (0.0, pytest.approx(0.3, abs=1e-3))
    assert torch.isfinite(head.log_prior).all() and head.log_prior.exp().sum() == pytest.approx(1.0, abs=1e-2)
    # the reported validation scores are the exported model's (at its chosen decoding)
    val = train.split_images(data, 0, 0.25).val
    exported = train.evaluate(model, val, render_size=int(summary["args"]["render_size"]))
    assert summary["validation"]["psnr"] == pytest.approx(exported["psnr"], abs=0.05)
    assert summary["validation"]["colourfulness"] == pytest.approx(exported["colourfulness"], rel=0.02)
    v1 = load_model(WEIGHTS_V1.path, torch.device("cpu"))
    # the trunk came from the file (the encoder's early blocks are frozen); the head is new
    assert torch.allclose(model.encoder._conv_stem.weight, v1.encoder._conv_stem.weight, atol=1e-3)
    with torch.inference_mode():
        assert model(_natural_light(40, 56)).shape == (1, 2, 40, 56)


def test_bf16_training_step_matches_float32_loss_and_learns() -> None:
    """--bf16 autocasts the network only: the loss is float32 and close to the float32 loss."""
    torch.manual_seed(0)
    model = load_model(WEIGHTS.path, torch.device("cpu")).float().eval()  # deterministic: no drop-connect
    opt = train.make_optimizer(model, 1e-3, 0.3)
    light = _natural_light(64, 64).repeat(2, 1, 1, 1)
    ab = torch.randn(2, 2, 64, 64) * 20
    loss_fn = train.classify_loss_fn(None)
    with torch.no_grad():
        reference, _ = loss_fn(model, light, ab)
    before = model.head.conv.weight.detach().clone()
    parts = train.train_step(model, opt, light, ab, 1e-3, loss_fn, bf16=True)
    assert parts["loss"] == pytest.approx(reference.item(), rel=0.03)
    assert parts["loss"] != reference.item()  # the network really ran in bfloat16
    assert not torch.equal(before, model.head.conv.weight)


def _with_scene_context() -> EffNetUNet:
    """The v2 trunk and head with a scene-context branch whose projection is random."""
    torch.manual_seed(1)
    model = EffNetUNet(pretrained=True, bins=gamut_bins(), scene_context=True).eval()
    v2 = {k: v.float() if v.is_floating_point() else v
          for k, v in torch.load(WEIGHTS_V2.path, map_location="cpu", weights_only=True).items()}
    missing, unexpected = model.load_state_dict(v2, strict=False)
    assert not unexpected and all(k.startswith("context.") for k in missing)
    with torch.no_grad():
        model.context.fc.weight.normal_(0, 0.05)
    return model


def test_scene_context_changes_the_answer_and_survives_export(tmp_path: Path) -> None:
    model = _with_scene_context()
    light = _natural_light(64, 96)
    with torch.inference_mode():
        with_context = model(light)
        saved = model.context.fc.weight.clone()
        model.context.fc.weight.zero_()  # a zero projection is the network without the branch
        without = model(light)
        model.context.fc.weight.copy_(saved)
    assert (with_context - without).abs().max() > 0.1
    path = tmp_path / "ctx.pt"
    torch.save(export_state(model), path)
    loaded = load_model(path, torch.device("cpu"))
    assert loaded.context is not None
    with torch.inference_mode():
        assert torch.allclose(loaded(light), with_context, atol=0.5)  # fp16 file


def test_cpu_fast_path_with_scene_context_matches_the_training_graph() -> None:
    model = _with_scene_context()
    colorizer = EffNetColorizer(model, torch.device("cpu"))
    light = torch.rand(2, 1, 70, 90) * 100
    with torch.inference_mode():
        reference = model(light)
        for _ in range(2):  # eager, then traced
            assert torch.allclose(colorizer.predict_ab(light), reference, atol=1e-2)


def test_the_image_cache_white_balances_only_when_asked(tmp_path: Path) -> None:
    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[:] = (200, 160, 90)  # warm
    rgb[:20] = (120, 100, 60)
    path = tmp_path / "warm.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert np.array_equal(train.ImageCache().get(path), rgb)
    balanced = train.ImageCache(1.0).get(path)
    warm_b = train.rgb_to_lab(rgb)[..., 2].mean()
    assert abs(train.rgb_to_lab(balanced)[..., 2].mean()) < 0.3 * warm_b


def test_validation_scores_images_as_the_worker_renders_them(tmp_path: Path) -> None:
    """train.py picks the decoding on what the worker would output: render size, guided upsampling."""
    yy, xx = np.mgrid[0:96, 0:128]
    paths = []
    for i, colour in enumerate(((200, 60, 40), (40, 90, 200), (60, 160, 70))):
        img = np.zeros((96, 128, 3), np.uint8)
        img[:] = colour
        img[(xx // 16 + yy // 16) % 2 == 1] = (230, 220, 200)  # sharp edges that rendering blurs
        paths.append(tmp_path / f"{i}.png")
        cv2.imwrite(str(paths[-1]), img)
    model = load_model(WEIGHTS.path, torch.device("cpu"))
    worker = EffNetColorizer(model, torch.device("cpu"))
    rendered = []
    for path in paths:
        truth = train.read_rgb(path)
        grey = merge_lightness_chroma(lightness(truth), np.zeros((*truth.shape[:2], 2), np.float32))
        rendered.append(metrics.psnr(colorize_frames(worker, [grey], 24)[0], truth))
    at_render_size = train.evaluate(model, paths, render_size=24)["psnr"]
    at_full_size = train.evaluate(model, paths)["psnr"]
    assert at_render_size == pytest.approx(np.mean(rendered), abs=0.02)
    assert abs(at_full_size - at_render_size) > 0.2, "rendering at 24 px should change the score"


def test_a_grey_photo_keeps_the_validation_means_finite(tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    cv2.imwrite(str(path), np.tile(np.linspace(20, 230, 64, dtype=np.uint8), (48, 1)))
    stats = train.evaluate(load_model(WEIGHTS.path, torch.device("cpu")), [path], render_size=32)
    assert stats["psnr_grey"] == PSNR_CAP  # grey is exact for a grey photo
    assert 0 < stats["psnr"] < PSNR_CAP


@pytest.mark.parametrize(("avx512_bf16", "amx", "emulated"), [(False, False, True), (True, False, False),
                                                              (False, True, False)])
def test_bf16_is_called_emulated_only_on_a_cpu_without_bf16_instructions(
        monkeypatch: pytest.MonkeyPatch, avx512_bf16: bool, amx: bool, emulated: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert train.bf16_emulated() is emulated
