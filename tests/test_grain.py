"""Film grain kept through restoration (`grain=keep`): separation, synthesis inside
holes, and the operations of a chunk with the option on (tintype.media.grain,
tintype.gpu_workers.grain_pass). No services: everything here is pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tintype.gpu_workers.processing import apply_operations, streams
from tintype.jobs.options import OptionError, parse_options
from tintype.media import grain
from tintype.media.yuv import Yuv420
from tintype.settings import load_settings

H, W, N = 120, 160, 9
GRAIN_STD = 8.0


def picture(t: int) -> np.ndarray:
    """A clean (H, W) float32 luma: a ramp with horizontal waves and a bright square
    moving 3 px a frame (so the denoise's motion guard has work to do)."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    base = 60 + 0.6 * xx + 30 * np.sin(yy / 9.0)
    square = (xx > 40 + 3 * t) & (xx < 80 + 3 * t) & (yy > 30) & (yy < 80)
    return np.where(square, 200.0, base).astype(np.float32)


def film_grain(rng: np.random.Generator, clump: float) -> np.ndarray:
    """(H, W) grain of std GRAIN_STD: white, or clumped by a Gaussian of `clump` px."""
    noise = rng.standard_normal((H, W)).astype(np.float32)
    if clump:
        noise = cv2.GaussianBlur(noise, (0, 0), clump)
    return GRAIN_STD * noise / noise.std()


def grainy_clip(clump: float, seed: int = 1) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    layers = [film_grain(rng, clump) for _ in range(N)]
    return [picture(t) + g for t, g in enumerate(layers)], layers


def nps(layer: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    return grain.radial_nps(grain.power_spectrum(layer, valid))[1]


@pytest.mark.parametrize("clump, std_tolerance", [(0.0, 0.06), (0.8, 0.15)])
def test_separation_recovers_the_grain_and_its_spectrum(clump, std_tolerance):
    frames, layers = grainy_clip(clump)
    cleans = grain.separate(frames)
    t = N // 2
    found = frames[t] - cleans[t]
    assert abs(found.std() / GRAIN_STD - 1) < std_tolerance, found.std()
    assert np.corrcoef(found.ravel(), layers[t].ravel())[0, 1] > 0.93
    assert np.abs(cleans[t] - picture(t)).std() < 0.35 * GRAIN_STD  # the clean picture lost most grain
    # NPS shape: the middle bands within 25% (the lowest lose some grain to the short
    # temporal average, the highest of clumped grain hold almost none), and the falling
    # spectrum of clumped grain still falls.
    truth, got = nps(layers[t]), nps(found)
    assert np.all(np.abs(got[2:6] / truth[2:6] - 1) < 0.25), (truth, got)
    if clump:
        assert got[1] > 4 * got[-2]


def test_a_windows_clean_frames_do_not_depend_on_where_it_was_cut():
    frames, _ = grainy_clip(0.8)
    whole = grain.separate(frames)
    r = grain.RADIUS
    part = grain.separate(frames[4 - r:6 + r])  # frames 4 and 5, with their context
    for k, t in enumerate((4, 5)):
        assert np.array_equal(part[r + k], whole[t])


def test_a_single_frame_is_denoised_spatially():
    frames, layers = grainy_clip(0.0)
    [clean] = grain.separate(frames[:1])
    assert np.corrcoef((frames[0] - clean).ravel(), layers[0].ravel())[0, 1] > 0.8


def test_synthesised_grain_matches_the_ring_around_the_hole():
    rng = np.random.default_rng(2)
    layer = film_grain(rng, 0.8)
    layer[:, W // 2:] *= 0.5  # weaker grain on the right: each hole must take its own ring's strength
    hole = np.zeros((H, W), bool)
    hole[30:94, 10:60] = True
    hole[40:90, 110:150] = True
    made = grain.synthesise(layer, hole, grain.frame_seed(7, 3))
    assert not made[~hole].any()
    for box in ((slice(30, 94), slice(10, 60)), (slice(40, 90), slice(110, 150))):
        one = np.zeros((H, W), bool)
        one[box] = True
        ring = cv2.dilate(one.astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool) & ~one
        assert abs(made[one].std() / layer[ring].std() - 1) < 0.15
    # The spectrum's shape: power falls from low to high frequency as the ring's does
    # (white noise would be flat); per band within a factor of 2.
    ring_nps, hole_nps = nps(layer, ~hole), nps(made / made[hole].std(), hole) * layer[~hole].var()
    assert np.all((hole_nps[:-1] / ring_nps[:-1] > 0.5) & (hole_nps[:-1] / ring_nps[:-1] < 2.0)), (ring_nps, hole_nps)
    assert hole_nps[1] > 4 * hole_nps[-2]
    again = grain.synthesise(layer, hole, grain.frame_seed(7, 3))
    other = grain.synthesise(layer, hole, grain.frame_seed(7, 4))
    assert np.array_equal(again, made) and not np.array_equal(other, made)


def rgb_clip(seed: int = 3) -> list[np.ndarray]:
    frames, _ = grainy_clip(0.6, seed)
    return [np.repeat(np.clip(f + 0.5, 0, 255).astype(np.uint8)[..., None], 3, axis=2) for f in frames]


def box_masks(count: int) -> list[np.ndarray]:
    mask = np.zeros((H, W), np.uint8)
    mask[20:60, 112:152] = 255
    return [mask.copy() for _ in range(count)]


def test_inpainting_under_the_grain_puts_it_back_and_grains_the_hole():
    settings = load_settings()
    frames, masks = rgb_clip(), box_masks(N)
    kept, flat = (parse_options({"operations": "inpaint", "inpaint_model": "telea", "grain": g}, settings)
                  for g in ("keep", "off"))
    with_grain = apply_operations(frames, kept, masks, keep=slice(2, 7), seed=(11, 0))
    without = apply_operations(frames, flat, masks, keep=slice(2, 7), seed=(11, 0))
    hole, ring = masks[0] > 0, np.zeros((H, W), bool)
    ring[14:66, 106:158] = True
    ring &= ~hole
    for k, t in enumerate(range(2, 7)):
        assert np.array_equal(with_grain[k][~hole], frames[t][~hole])  # the source outside the hole
        high_pass = [(f[..., 0].astype(np.float32) - cv2.GaussianBlur(f[..., 0].astype(np.float32), (0, 0), 2))
                     for f in (with_grain[k], without[k], frames[t])]
        around = high_pass[2][ring].std()
        assert abs(high_pass[0][hole].std() / around - 1) < 0.25
        # Made, not copied: the grain under the hole was the damage's, not the film's to keep.
        assert abs(np.corrcoef(high_pass[0][hole], high_pass[2][hole])[0, 1]) < 0.2
        assert high_pass[1][hole].std() < 0.5 * around  # a fill without the option is smooth (about 0.3)


def test_the_result_is_the_same_however_the_film_is_chunked():
    settings = load_settings()
    frames, masks = rgb_clip(), box_masks(N)
    options = parse_options({"operations": "inpaint", "inpaint_model": "telea", "grain": "keep"}, settings)
    whole = apply_operations(frames, options, masks, seed=(5, 0))
    r = grain.RADIUS
    for start, stop in ((0, 4), (4, N)):  # a chunk with its context frames either side
        first, last = max(0, start - r), min(N, stop + r)
        part = apply_operations(frames[first:last], options, masks[first:last],
                                keep=slice(start - first, stop - first), seed=(5, first))
        for k, t in enumerate(range(start, stop)):
            assert np.array_equal(part[k], whole[t]), t


def test_colorize_only_keeps_the_sources_luma_plane():
    settings = load_settings()
    options = parse_options({"operations": "colorize", "colour_mode": "per-frame", "grain": "keep"}, settings)
    assert not streams(options, None, None)  # the denoise needs the window
    frames = [Yuv420.from_rgb(f) for f in rgb_clip()]
    out = apply_operations(frames[:5], options, None, keep=slice(2, 4), seed=(1, 0))
    assert len(out) == 2 and all(o.y is f.y for o, f in zip(out, frames[2:4]))


def test_the_option_is_checked():
    settings = load_settings()
    assert parse_options({"operations": "inpaint"}, settings).grain == "off"
    assert parse_options({"operations": "inpaint", "grain": "keep"}, settings).keeps_grain
    with pytest.raises(OptionError, match="grain must be one of off, keep"):
        parse_options({"operations": "inpaint", "grain": "remove"}, settings)


def test_a_photographs_hole_gets_grain_from_its_spatial_separation():
    """One frame, no neighbours: the grain comes from the spatial filter alone."""
    settings = load_settings()
    options = parse_options({"operations": "inpaint", "inpaint_model": "telea", "grain": "keep"}, settings)
    [photo], [mask] = rgb_clip()[:1], box_masks(1)
    [out] = apply_operations([photo], options, [mask], seed=(3, 0))
    hole, ring = mask > 0, np.zeros((H, W), bool)
    ring[14:66, 106:158] = True
    ring &= ~hole
    detail = [f[..., 0].astype(np.float32) - cv2.GaussianBlur(f[..., 0].astype(np.float32), (0, 0), 2)
              for f in (out, photo)]
    assert np.array_equal(out[~hole], photo[~hole])
    assert 0.7 < detail[0][hole].std() / detail[1][ring].std() < 1.3
