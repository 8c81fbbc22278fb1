"""Zhang et al.'s ECCV16 / SIGGRAPH17 backends: release-compatible state dicts, loading, errors.

The released weight files cannot be downloaded here, so the tests build files with the
same keys and shapes (random values) in tmp_path.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tintype.gpu_workers.models import zhang
from tintype.gpu_workers.models.effnet_unet import WEIGHTS as EFFNET
from tintype.gpu_workers.models.errors import WeightsError
from tintype.gpu_workers.models.registry import ModelRegistry, resolve_weights
from tintype.gpu_workers.models.weight_files import Weights, sha256_of, verify_weights
from tintype.settings import load_settings

CPU = torch.device("cpu")
SETTINGS = load_settings()

# A few of the release's keys and shapes, written out by hand from the published modules.
ECCV16_KEYS = {
    "model1.0.weight": (64, 1, 3, 3), "model1.4.running_var": (64,),
    "model3.4.weight": (256, 256, 3, 3), "model5.0.weight": (512, 512, 3, 3),
    "model8.0.weight": (512, 256, 4, 4), "model8.6.weight": (313, 256, 1, 1),
    "model8.6.bias": (313,), "model_out.weight": (2, 313, 1, 1),
}
SIGGRAPH17_KEYS = {
    "model1.0.weight": (64, 4, 3, 3), "model8up.0.weight": (512, 256, 4, 4),
    "model3short8.0.weight": (256, 256, 3, 3), "model8.1.weight": (256, 256, 3, 3),
    "model8.5.running_mean": (256,), "model9.3.weight": (128,),
    "model10up.0.weight": (128, 128, 4, 4), "model1short10.0.weight": (128, 64, 3, 3),
    "model10.1.weight": (128, 128, 3, 3), "model_class.0.weight": (529, 256, 1, 1),
    "model_out.0.weight": (2, 128, 1, 1), "model_out.0.bias": (2,),
}


def _light(b: int, h: int, w: int) -> torch.Tensor:
    y = torch.linspace(0, 1, h)[:, None].expand(h, w)
    return (20 + 60 * y).expand(b, 1, h, w).contiguous()


@pytest.fixture(scope="module")
def eccv16_file(tmp_path_factory: pytest.TempPathFactory) -> Weights:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("eccv16") / "eccv16-test.pth"
    torch.save(zhang.ECCV16Net().state_dict(), path)
    return Weights(path=path, sha256=sha256_of(path))


@pytest.fixture
def empty_weights_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def registry(empty_weights_dir: Path) -> ModelRegistry:
    """A worker's registry whose WEIGHTS_DIR is the empty folder."""
    return ModelRegistry(replace(SETTINGS, weights_dir=empty_weights_dir))


@pytest.mark.parametrize("net, keys", [(zhang.ECCV16Net, ECCV16_KEYS), (zhang.SIGGRAPH17Net, SIGGRAPH17_KEYS)])
def test_state_dict_keys_and_shapes_match_the_release(net, keys) -> None:
    state = net().state_dict()
    for key, shape in keys.items():
        assert tuple(state[key].shape) == shape, key
    params = sum(v.numel() for k, v in state.items() if not k.endswith("num_batches_tracked"))
    if net is zhang.ECCV16Net:
        # the released file is 128,976,165 bytes: float32 values plus ~12 kB of pickle
        assert 0 < zhang.ECCV16_WEIGHTS.meta["bytes"] - 4 * params < 20_000


def test_eccv16_loads_from_verified_file_and_predicts(eccv16_file: Weights) -> None:
    verify_weights(eccv16_file)
    colorizer = zhang.build_eccv16(eccv16_file, CPU, SETTINGS)
    ab = colorizer.predict_ab(_light(2, 37, 51))  # not multiples of 8: padded and cropped
    assert ab.shape == (2, 2, 37, 51) and ab.dtype == torch.float32
    assert torch.isfinite(ab).all()
    # decoding is the mean over the 313 bins: ab stays inside the bins' range
    centres = colorizer.net.model_out.weight[:, :, 0, 0] * zhang.AB_NORM
    assert (ab.amin(dim=(0, 2, 3)) >= centres.amin(dim=1) - 1e-3).all()
    assert (ab.amax(dim=(0, 2, 3)) <= centres.amax(dim=1) + 1e-3).all()


def test_eccv16_annealed_mean_is_the_release_mean_at_t1(eccv16_file: Weights) -> None:
    net = zhang.load_net(zhang.ECCV16Net(), eccv16_file.path, CPU)
    light = _light(1, 32, 32)
    with torch.inference_mode():
        logits = net.logits(light)
        release = torch.nn.functional.interpolate(
            net.model_out(torch.softmax(logits, 1)) * zhang.AB_NORM, scale_factor=4, mode="bilinear")
        assert torch.allclose(net(light, temperature=1.0), release, atol=1e-4)
        assert net(light, temperature=zhang.ANNEALED_MEAN_T).shape == (1, 2, 32, 32)


def test_siggraph17_loads_and_predicts_without_hints(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "sig.pth"
    state = zhang.SIGGRAPH17Net().state_dict()
    # files from old PyTorch releases have no BatchNorm counters: still accepted
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(state, path)
    colorizer = zhang.build_siggraph17(Weights(path=path, sha256=sha256_of(path)), CPU, SETTINGS)
    ab = colorizer.predict_ab(_light(1, 40, 30))
    assert ab.shape == (1, 2, 40, 30)
    assert ab.abs().max() <= zhang.AB_NORM + 1e-3  # tanh x 110


def test_wrong_key_or_shape_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    state = zhang.ECCV16Net().state_dict()
    renamed = dict(state)
    renamed["model9.0.weight"] = renamed.pop("model8.6.weight")
    bad_key = tmp_path / "bad-key.pth"
    torch.save(renamed, bad_key)
    with pytest.raises(WeightsError) as err:
        zhang.build_eccv16(Weights(path=bad_key, sha256=sha256_of(bad_key)), CPU, SETTINGS)
    message = str(err.value)
    assert str(bad_key) in message and "model8.6.weight" in message and "model9.0.weight" in message

    reshaped = dict(state)
    reshaped["model_out.weight"] = torch.zeros(2, 256, 1, 1)
    bad_shape = tmp_path / "bad-shape.pth"
    torch.save(reshaped, bad_shape)
    with pytest.raises(WeightsError) as err:
        zhang.build_eccv16(Weights(path=bad_shape, sha256=sha256_of(bad_shape)), CPU, SETTINGS)
    assert "model_out.weight (2, 256, 1, 1) (expected (2, 313, 1, 1))" in str(err.value)

    # the SIGGRAPH17 file is not an ECCV16 file
    sig = tmp_path / "sig.pth"
    torch.save(zhang.SIGGRAPH17Net().state_dict(), sig)
    with pytest.raises(WeightsError, match="does not fit ECCV16Net"):
        zhang.build_eccv16(Weights(path=sig, sha256=sha256_of(sig)), CPU, SETTINGS)


def test_corrupt_file_is_a_weights_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file" * 100)
    with pytest.raises(WeightsError, match="junk.pth"):
        zhang.build_eccv16(Weights(path=junk, sha256=sha256_of(junk)), CPU, SETTINGS)


def test_get_model_without_the_file_names_file_and_sha(registry: ModelRegistry, empty_weights_dir: Path) -> None:
    with pytest.raises(WeightsError) as err:
        registry.get("eccv16", CPU)
    assert "colorization_release_v2-9b330a0b.pth" in str(err.value)
    assert "9b330a0bae53f4ded77b1e23defbf78beaa09c10ebc4c4999e8e4f4a160b93f9" in str(err.value)
    with pytest.raises(WeightsError) as err:
        registry.get("siggraph17", CPU)
    assert "siggraph17-df00044c.pth" in str(err.value) and zhang.SIGGRAPH17_SHA256 in str(err.value)
    # the worker's other models still load, from WEIGHTS_DIR, and colorize
    (empty_weights_dir / EFFNET.path.name).symlink_to(EFFNET.path)
    spec = registry.spec("effnet-lite0-unet")
    assert resolve_weights(spec, registry.settings).path == empty_weights_dir / EFFNET.path.name
    ab = registry.colorizer("effnet-lite0-unet", CPU).predict_ab(_light(1, 24, 40))
    assert ab.shape == (1, 2, 24, 40) and torch.isfinite(ab).all()
    assert ab.abs().mean() > 1.0  # colour added: not the greyscale (all-zero ab) answer


def test_file_with_the_release_name_but_other_bytes_is_refused(registry: ModelRegistry,
                                                               empty_weights_dir: Path) -> None:
    (empty_weights_dir / zhang.ECCV16_FILE).write_bytes(b"\0" * 1024)
    with pytest.raises(WeightsError) as err:
        registry.get("eccv16", CPU)
    assert zhang.ECCV16_FILE in str(err.value) and zhang.ECCV16_SHA256 in str(err.value)


def test_siggraph17_sha256_setting_replaces_the_recorded_hash(empty_weights_dir: Path) -> None:
    settings = replace(SETTINGS, weights_dir=empty_weights_dir, siggraph17_sha256="ab" * 32)
    with pytest.raises(WeightsError) as err:
        ModelRegistry(settings).get("siggraph17", CPU)
    assert "ab" * 32 in str(err.value) and zhang.SIGGRAPH17_SHA256 not in str(err.value)
