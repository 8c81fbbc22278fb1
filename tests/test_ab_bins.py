"""Quantized-ab classification: bins, soft targets, loss, rebalancing and decoding."""

from __future__ import annotations

import pytest
import torch

from tintype.gpu_workers.models.ab_bins import (
    GRID,
    annealed_mean,
    classification_loss,
    gamut_bins,
    nearest_bins,
    rebalance_weights,
    soft_histogram,
)
from tintype.gpu_workers.models.effnet_unet import EffNetUNet, FusedEffNetUNet
from tintype.training import train


@pytest.fixture(scope="module")
def bins() -> torch.Tensor:
    return gamut_bins()


def test_gamut_bins_cover_srgb_on_the_grid(bins: torch.Tensor) -> None:
    assert 200 < bins.shape[0] < 330  # the paper's 313 were measured on ImageNet's gamut
    assert torch.all(bins % GRID == 0)
    assert (bins == 0).all(dim=1).any()  # grey is a bin
    # sRGB reaches strong green-ish (a < 0) and yellow (b > 0) but not every corner
    assert bins[:, 0].min() < -60 and bins[:, 1].max() > 60
    assert not ((bins[:, 0] < -80) & (bins[:, 1] < -80)).any()


def test_soft_encoding_puts_a_bin_centre_mostly_on_itself(bins: torch.Tensor) -> None:
    ab = bins[[0, 10, 50]].T.reshape(1, 2, 1, 3)
    idx, weights = nearest_bins(ab, bins)
    assert idx[:, 0].tolist() == [0, 10, 50]
    assert torch.allclose(weights.sum(1), torch.ones(3))
    assert (weights[:, 0] > 0.5).all()
    hist = soft_histogram(ab, bins)
    assert hist.sum().item() == pytest.approx(1.0)
    assert hist.argmax().item() in (0, 10, 50)


def test_loss_prefers_the_true_colour_and_weights_rare_bins(bins: torch.Tensor) -> None:
    target_bin = 40
    ab = bins[target_bin].view(1, 2, 1, 1).expand(1, 2, 4, 4)
    uniform = torch.zeros(1, bins.shape[0], 4, 4)
    sure = uniform.clone()
    sure[:, target_bin] = 8.0
    assert classification_loss(sure, ab, bins) < classification_loss(uniform, ab, bins) - 1.0
    prior = torch.softmax(torch.randn(bins.shape[0]), 0)
    assert torch.allclose(rebalance_weights(prior, 1.0), torch.ones(bins.shape[0]))
    w = rebalance_weights(prior, 0.5)
    assert (prior * w).sum().item() == pytest.approx(1.0, abs=1e-5)
    assert w[prior.argmin()] > w[prior.argmax()]


def test_annealed_mean_spans_mean_to_mode() -> None:
    two_bins = torch.tensor([[0.0, 0.0], [40.0, 20.0]])
    logits = torch.log(torch.tensor([0.75, 0.25]))
    assert torch.allclose(annealed_mean(logits, two_bins, 1.0), torch.tensor([10.0, 5.0]))
    assert torch.allclose(annealed_mean(logits, two_bins, 0.01), torch.zeros(2), atol=1e-3)


def test_classifier_network_decodes_with_its_stored_settings(bins: torch.Tensor) -> None:
    torch.manual_seed(0)
    model = EffNetUNet(bins=bins).eval()
    torch.nn.init.normal_(model.head.conv.weight, std=0.5)
    model.head.log_prior.copy_(torch.log_softmax(torch.randn(bins.shape[0]), 0))
    light = torch.rand(2, 1, 45, 70) * 100
    with torch.no_grad():
        ab = model(light)
        assert ab.shape == (2, 2, 45, 70)
        assert torch.allclose(FusedEffNetUNet(model)(light), ab, atol=1e-3)
        model.head.temperature.fill_(0.3)
        sharper = model(light)
        model.head.rebalance.fill_(0.5)
        rebalanced = model(light)
    assert not torch.allclose(sharper, ab, atol=1e-2)
    assert not torch.allclose(rebalanced, sharper, atol=1e-2)
    reloaded = EffNetUNet(bins=model.state_dict()["head.bins"])
    reloaded.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.allclose(reloaded.eval()(light), rebalanced)


def _stats(psnr: float, colour: float) -> dict[str, float]:
    return {"psnr": psnr, "colourfulness": colour, "colourfulness_truth": 40.0}


def test_choose_decoding_takes_the_best_psnr_that_is_colourful_enough() -> None:
    sweep = {(1.0, 0.0): _stats(25.0, 20.0), (0.5, 0.0): _stats(24.5, 30.0),
             (0.38, 0.15): _stats(24.0, 34.0)}
    assert train.choose_decoding(sweep, 0.7) == (0.5, 0.0)
    assert train.choose_decoding(sweep, 0.0) == (1.0, 0.0)
    assert train.choose_decoding(sweep, 0.99) == (0.38, 0.15)  # none qualifies: most colourful
