"""The ONNX Runtime backend: a tiny L -> ab network exported with torch.onnx, run and compared."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")  # torch.onnx.export needs it

from tintype.gpu_workers.models import onnx_colorizer  # noqa: E402
from tintype.gpu_workers.models.contracts import Colorizer  # noqa: E402
from tintype.gpu_workers.models.errors import WeightsError  # noqa: E402
from tintype.gpu_workers.models.registry import ModelRegistry  # noqa: E402
from tintype.gpu_workers.models.weight_files import Weights, sha256_of  # noqa: E402
from tintype.settings import load_settings  # noqa: E402

CPU = torch.device("cpu")
SETTINGS = load_settings()


class TinyColorizer(nn.Module):
    """L (B,1,H,W) in [0,100] -> ab (B,2,H,W): a few convs, any size."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                                  nn.ReLU(), nn.Conv2d(8, 2, 1))

    def forward(self, light: torch.Tensor) -> torch.Tensor:
        return 40.0 * torch.tanh(self.body(light / 50.0 - 1.0))


def _export(model: nn.Module, path: Path, dynamic: bool = True, size: tuple[int, int] = (24, 32)) -> Path:
    axes = {"L": {0: "batch", 2: "height", 3: "width"}, "ab": {0: "batch", 2: "height", 3: "width"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.full((1, 1, *size), 50.0),), str(path), dynamo=False,
                          input_names=["L"], output_names=["ab"], dynamic_axes=axes if dynamic else None,
                          opset_version=17)
    return path


@pytest.fixture(scope="module")
def tiny() -> TinyColorizer:
    torch.manual_seed(0)
    return TinyColorizer().eval()


@pytest.fixture
def onnx_settings(monkeypatch: pytest.MonkeyPatch):
    return monkeypatch


def _load_onnx() -> Colorizer:
    """Model `onnx` from a registry built from the environment as it is now, as a worker would."""
    return ModelRegistry(load_settings()).colorizer("onnx", CPU)


def _light(b: int, h: int, w: int) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(b, 1, h, w) * 100


def test_backend_matches_torch_on_any_size_and_batch(tiny: TinyColorizer, tmp_path: Path) -> None:
    path = _export(tiny, tmp_path / "tiny.onnx")
    colorizer = onnx_colorizer.build(Weights(path=path, sha256=sha256_of(path)), CPU, SETTINGS)
    for b, h, w in ((1, 24, 32), (3, 37, 50)):
        light = _light(b, h, w)
        with torch.inference_mode():
            expected = tiny(light)
        ab = colorizer.predict_ab(light)
        assert ab.shape == (b, 2, h, w) and ab.dtype == torch.float32
        assert torch.allclose(ab, expected, atol=1e-4)


def test_fixed_size_graph_is_fed_resized_frames(tiny: TinyColorizer, tmp_path: Path) -> None:
    path = _export(tiny, tmp_path / "fixed.onnx", dynamic=False, size=(16, 16))
    colorizer = onnx_colorizer.build(Weights(path=path, sha256=""), CPU, SETTINGS)
    assert colorizer.fixed_size == (16, 16) and colorizer.fixed_batch == 1
    ab = colorizer.predict_ab(torch.full((3, 1, 40, 30), 60.0))
    assert ab.shape == (3, 2, 40, 30)
    with torch.inference_mode():
        expected = tiny(torch.full((1, 1, 16, 16), 60.0))[0, :, 8, 8]
    assert torch.allclose(ab[1, :, 20, 15], expected, atol=1e-3)  # flat input: flat-ish output


def test_registered_onnx_model_reads_its_settings(tiny: TinyColorizer, tmp_path: Path,
                                                  onnx_settings: pytest.MonkeyPatch) -> None:
    path = _export(tiny, tmp_path / "tiny.onnx")
    onnx_settings.setenv("ONNX_COLORIZER_PATH", str(path))
    onnx_settings.setenv("ONNX_COLORIZER_SHA256", sha256_of(path))
    colorizer = _load_onnx()
    light = _light(2, 20, 28)
    with torch.inference_mode():
        assert torch.allclose(colorizer.predict_ab(light), tiny(light), atol=1e-4)


def test_bad_settings_and_files_give_clear_errors(tiny: TinyColorizer, tmp_path: Path,
                                                  onnx_settings: pytest.MonkeyPatch) -> None:
    onnx_settings.delenv("ONNX_COLORIZER_PATH", raising=False)
    with pytest.raises(WeightsError, match="ONNX_COLORIZER_PATH"):
        _load_onnx()

    missing = tmp_path / "nowhere.onnx"
    onnx_settings.setenv("ONNX_COLORIZER_PATH", str(missing))
    onnx_settings.setenv("ONNX_COLORIZER_SHA256", "ab" * 32)
    with pytest.raises(WeightsError) as err:
        _load_onnx()
    assert str(missing) in str(err.value) and "ab" * 32 in str(err.value)

    path = _export(tiny, tmp_path / "tiny.onnx")
    onnx_settings.setenv("ONNX_COLORIZER_PATH", str(path))  # wrong sha256 still set
    with pytest.raises(WeightsError, match="expected " + "ab" * 32):
        _load_onnx()

    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(path.read_bytes()[:200])
    onnx_settings.setenv("ONNX_COLORIZER_PATH", str(corrupt))
    onnx_settings.delenv("ONNX_COLORIZER_SHA256")
    with pytest.raises(WeightsError, match="corrupt.onnx"):
        _load_onnx()


def test_graph_that_breaks_the_contract_is_refused(tmp_path: Path) -> None:
    rgb_out = nn.Conv2d(1, 3, 1)
    path = _export(rgb_out, tmp_path / "rgb.onnx")
    with pytest.raises(WeightsError, match=r"expected \(B, 2, H, W\)"):
        onnx_colorizer.build(Weights(path=path, sha256=""), CPU, SETTINGS)
