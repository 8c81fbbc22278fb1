"""The inpainting algorithms on generated content: patch fill, flow-guided video
completion, damage detection and box tracking. No services; the whole file runs in a
few seconds on one CPU core."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tintype.media.inpaint import (
    boxes_to_masks,
    complete,
    complete_window,
    detect,
    dilate,
    dust,
    line_scratches,
    patch_fill,
    photo_scratches,
    smooth_fill,
    track_boxes,
)
from tintype.media.metrics import psnr


def noise_texture(h: int, w: int, seed: int = 0, contrast: float = 3.0) -> np.ndarray:
    """Band-limited colour noise: enough detail for flow, no exact repeats."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    fine = cv2.GaussianBlur(base, (0, 0), 2.0).astype(np.float32)
    coarse = cv2.GaussianBlur(base, (0, 0), 8.0).astype(np.float32)
    return np.clip((fine - 128) * contrast + (coarse - 128) * contrast + 128, 0, 255).astype(np.uint8)


def bricks(h: int, w: int) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[:] = (150, 70, 50)
    for row, y in enumerate(range(0, h, 16)):
        img[y:y + 3] = (200, 200, 190)
        for x in range(16 * (row % 2), w, 32):
            img[y:y + 16, x:x + 3] = (200, 200, 190)
    grain = np.random.default_rng(1).integers(-10, 11, img.shape)
    return np.clip(img.astype(int) + grain, 0, 255).astype(np.uint8)


def stripes(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    v = 127 + 100 * np.sin(2 * np.pi * (x + 0.5 * y) / 12)
    return np.dstack([v, 255 - v, 0.5 * v + 60]).astype(np.uint8)


def box_mask(shape: tuple[int, int], y: int, x: int, h: int, w: int) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[y:y + h, x:x + w] = True
    return mask


def telea(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    return cv2.inpaint(rgb, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)


def hole_psnr(results: list[np.ndarray], truths: list[np.ndarray], holes: list[np.ndarray]) -> float:
    return float(np.mean([psnr(r[m], t[m]) for r, t, m in zip(results, truths, holes)]))


# --- patch fill -------------------------------------------------------------------------

@pytest.mark.parametrize("make", [bricks, stripes], ids=["bricks", "stripes"])
def test_patch_fill_beats_telea_on_texture(make):
    truth = make(160, 200)
    hole = box_mask(truth.shape[:2], 60, 80, 32, 32)
    damaged = truth.copy()
    damaged[hole] = 0
    filled = patch_fill(damaged, hole)
    ours, theirs = psnr(filled[hole], truth[hole]), psnr(telea(damaged, hole)[hole], truth[hole])
    assert ours >= theirs + 3.0, f"patch fill {ours:.1f} dB vs Telea {theirs:.1f} dB"
    assert np.array_equal(filled[~hole], damaged[~hole])


def test_patch_fill_is_deterministic_per_seed_and_ignores_hole_content():
    truth = bricks(96, 128)
    hole = box_mask(truth.shape[:2], 30, 40, 24, 24)
    a, b = truth.copy(), truth.copy()
    a[hole], b[hole] = 0, 255
    assert np.array_equal(patch_fill(a, hole, seed=3), patch_fill(b, hole, seed=3))


def test_patch_fill_handles_separate_holes_and_the_image_border():
    truth = bricks(96, 160)
    hole = box_mask(truth.shape[:2], 0, 0, 12, 12) | box_mask(truth.shape[:2], 50, 120, 10, 30)
    filled = patch_fill(truth, hole)
    assert np.array_equal(filled[~hole], truth[~hole])
    assert psnr(filled[hole], truth[hole]) > psnr(telea(truth, hole)[hole], truth[hole])


def test_patch_fill_errors_name_the_sizes():
    img = bricks(32, 48)
    assert np.array_equal(patch_fill(img, np.zeros((32, 48), bool)), img)
    with pytest.raises(ValueError, match="48x32"):
        patch_fill(img, np.ones((32, 48), bool))
    with pytest.raises(ValueError, match=r"\(32, 48\)"):
        patch_fill(img, np.zeros((30, 48), bool))
    with pytest.raises(ValueError, match="odd"):
        patch_fill(img, box_mask((32, 48), 10, 10, 4, 4), patch=6)


# --- flow-guided completion ---------------------------------------------------------------

def panning(h: int, w: int, count: int, dx: int = 3, dy: int = 1) -> list[np.ndarray]:
    """A camera pan over a texture: frame t is the texture shifted by (t·dx, t·dy)."""
    big = noise_texture(h + count * dy + 2, w + count * dx + 2, seed=4)
    return [big[t * dy:t * dy + h, t * dx:t * dx + w].copy() for t in range(count)]


def test_moving_hole_over_a_pan_is_filled_from_other_frames():
    truth = panning(120, 160, 9)
    holes = [box_mask((120, 160), 40, 30 + 5 * t, 32, 32) for t in range(9)]
    damaged = [f.copy() for f in truth]
    for frame, hole in zip(damaged, holes):
        frame[hole] = (255, 0, 255)
    result = complete_window(damaged, holes, patch_fill)
    ours = hole_psnr(result.frames, truth, holes)
    theirs = hole_psnr([telea(f, m) for f, m in zip(damaged, holes)], truth, holes)
    assert ours >= theirs + 3.0, f"flow fill {ours:.1f} dB vs per-frame Telea {theirs:.1f} dB"
    assert result.propagated >= 0.9 * result.hole_pixels, result.summary()
    for out, frame, hole in zip(result.frames, damaged, holes):
        assert np.array_equal(out[~hole], frame[~hole])


def test_propagated_pixels_take_on_their_own_frame_s_exposure():
    """A still scene that brightens by 8 levels a frame: pixels copied from frames a few
    steps away are pulled towards the frame's own exposure from the hole's edge (plain
    copying is off by 9 levels on average here, 20 at the window's ends)."""
    still = noise_texture(96, 128, seed=7).astype(np.int16) // 2 + 40
    truth = [np.clip(still + 8 * t, 0, 255).astype(np.uint8) for t in range(9)]
    holes = [box_mask((96, 128), 30, 20 + 6 * t, 24, 24) for t in range(9)]
    damaged = [np.where(h[..., None], 0, f).astype(np.uint8) for f, h in zip(truth, holes)]
    result = complete_window(damaged, holes, patch_fill)
    assert result.propagated >= 0.9 * result.hole_pixels, result.summary()
    biases = [float(np.mean(out[hole].astype(np.float32) - frame[hole]))
              for out, frame, hole in zip(result.frames, truth, holes)]
    assert np.mean(np.abs(biases)) < 5.0 and max(np.abs(biases)) < 12.0, f"hole exposure off by {biases}"


def test_fixed_hole_over_a_still_scene_gets_the_same_fill_in_every_frame():
    still = noise_texture(96, 128, seed=6)
    hole = box_mask(still.shape[:2], 30, 50, 24, 24)
    damaged = []
    for t in range(7):
        frame = still.copy()
        frame[hole] = 40 * t  # the overlay itself changes: it must not leak into the fill
        damaged.append(frame)
    result = complete_window(damaged, [hole] * 7, patch_fill)
    assert result.key_frame == 3 and result.key_filled == hole.sum() and result.fallback == 0
    for out in result.frames:
        assert np.array_equal(out, result.frames[0])
    assert np.array_equal(result.frames[0][~hole], still[~hole])


def test_one_frame_falls_back_to_the_image_fill():
    frame = bricks(64, 96)
    hole = box_mask(frame.shape[:2], 20, 30, 16, 16)
    result = complete_window([frame], [hole], patch_fill)
    assert result.fallback == hole.sum() and result.propagated == 0
    assert np.array_equal(result.frames[0], patch_fill(frame, hole))


def test_a_hole_covering_a_whole_frame_is_refused():
    frames = panning(48, 64, 3)
    holes = [np.zeros((48, 64), bool), np.ones((48, 64), bool), np.zeros((48, 64), bool)]
    with pytest.raises(ValueError, match="frame 1 covers the whole 64x48 frame"):
        complete(frames, holes, patch_fill)
    with pytest.raises(ValueError, match="2 frames and 1 masks"):
        complete(frames[:2], holes[:1], patch_fill)


def test_image_fill_that_returns_the_wrong_shape_is_reported():
    frame = bricks(32, 48)
    with pytest.raises(ValueError, match="image_fill returned"):
        complete([frame], [box_mask((32, 48), 8, 8, 8, 8)], lambda rgb, hole: rgb[:10])


def test_smooth_fill_continues_a_linear_field():
    ys, xs = np.mgrid[0:64, 0:80].astype(np.float32)
    field = np.dstack([0.1 * xs + 2.0, -0.05 * ys])
    hole = box_mask((64, 80), 16, 20, 30, 30)
    filled = smooth_fill(np.where(hole[..., None], 99.0, field).astype(np.float32), hole)
    assert np.abs(filled - field).max() < 0.1  # of a 3-unit change across the hole
    assert np.array_equal(filled[~hole], field[~hole])


# --- damage detection --------------------------------------------------------------------

def test_dust_specks_on_a_moving_texture_are_found_with_few_false_alarms():
    h, w = 160, 224
    big = noise_texture(h + 12, w + 12, seed=7)
    frames = [big[t:t + h, 2 * t:2 * t + w].copy() for t in range(5)]
    rng = np.random.default_rng(5)
    specks, planted = [], np.zeros((h, w), np.uint8)
    for k in range(24):
        y, x, r = int(rng.integers(8, h - 8)), int(rng.integers(8, w - 8)), int(rng.integers(1, 4))
        cv2.circle(frames[2], (x, y), r, (25, 20, 20) if k % 2 else (240, 240, 230), -1)
        cv2.circle(planted, (x, y), r, 1, -1)
        specks.append((y, x, r))
    for t in (0, 1, 3, 4):  # dust on the neighbours must not show up on frame 2
        cv2.circle(frames[t], (int(rng.integers(8, w - 8)), int(rng.integers(8, h - 8))), 2, (0, 0, 0), -1)
    mask = dust(frames, 2)
    hits = sum(bool(mask[y - r:y + r + 1, x - r:x + r + 1].any()) for y, x, r in specks)
    clean = cv2.dilate(planted, np.ones((7, 7), np.uint8)) == 0
    assert hits >= 0.8 * len(specks)
    assert (mask & clean).sum() < 0.005 * clean.sum()


def test_dust_needs_neighbours():
    frames = [noise_texture(32, 32)] * 2
    assert not dust(frames, 0).any()
    with pytest.raises(ValueError, match="index 2 is outside the 2 frames"):
        dust(frames, 2)


def test_a_vertical_scratch_is_found_and_a_step_edge_is_not():
    clean = noise_texture(180, 240, seed=3, contrast=1.5)
    clean[:, 120:] = np.clip(clean[:, 120:].astype(int) + 60, 0, 255).astype(np.uint8)  # real content edge
    scratched = clean.copy()
    scratched[:, 70:72] = np.clip(scratched[:, 70:72].astype(int) + 70, 0, 255).astype(np.uint8)
    scratched[:, 180] = scratched[:, 180] // 3  # a dark one-pixel scratch
    mask = line_scratches(scratched)
    assert mask[:, 70:72].any(axis=1).mean() > 0.9
    assert mask[:, 180].mean() > 0.9
    flagged_columns = set(np.nonzero(mask.any(axis=0))[0])
    assert flagged_columns <= set(range(68, 75)) | set(range(178, 183))
    assert not line_scratches(clean).any()


def test_a_thin_diagonal_line_on_a_smooth_photo_is_found():
    rng = np.random.default_rng(2)
    base = cv2.GaussianBlur(rng.integers(0, 256, (180, 240, 3), dtype=np.uint8), (0, 0), 10).astype(np.float32)
    photo = np.clip((base - 128) * 6 + 128 + np.linspace(-30, 30, 240)[None, :, None], 0, 255).astype(np.uint8)
    scratched = photo.copy()
    cv2.line(scratched, (30, 150), (200, 40), (235, 235, 235), 1, cv2.LINE_AA)
    line = np.zeros((180, 240), np.uint8)
    cv2.line(line, (30, 150), (200, 40), 1, 1)
    mask = photo_scratches(scratched)
    assert mask[line > 0].mean() > 0.7
    away = cv2.dilate(line, np.ones((7, 7), np.uint8)) == 0
    assert mask[away].mean() < 0.005
    assert not photo_scratches(photo).any()


def test_regular_patterns_are_not_taken_for_scratches():
    wall, cloth = bricks(240, 320), stripes(240, 320)
    assert not line_scratches(wall).any()  # joints share columns, but only every other course
    assert not photo_scratches(wall).any() and not photo_scratches(cloth).any()


def test_detect_combines_kinds_and_dilate_grows_by_the_margin():
    frames = [noise_texture(64, 80, seed=1)] * 3
    with pytest.raises(ValueError, match="unknown damage kinds"):
        detect(frames, 1, kinds=("dust", "mould"))
    assert detect(frames, 1, kinds=("dust", "lines", "scratches")).shape == (64, 80)
    dot = np.zeros((21, 21), bool)
    dot[10, 10] = True
    grown = dilate(dot, 3)
    assert grown[10, 7] and grown[10, 13] and not grown[10, 6] and grown.sum() > 20
    assert np.array_equal(dilate(dot, 0), dot)


# --- tracking ------------------------------------------------------------------------------

def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_a_bright_square_is_followed_and_its_disappearance_reported():
    background = noise_texture(160, 220, seed=8, contrast=1.2)
    count, vanish = 20, 14
    frames, truth = [], []
    for t in range(count):
        frame, x, y = background.copy(), 16 + 6 * t, 50 + 2 * t
        if t < vanish:
            frame[y:y + 32, x:x + 32] = 235
        frames.append(frame)
        truth.append((x, y, 32, 32))
    result = track_boxes(frames, truth[0])
    assert all(iou(box, true) > 0.5 for box, true in zip(result.boxes[:vanish], truth[:vanish]))
    assert result.lost_at is not None and abs(result.lost_at - vanish) <= 1, result.note
    assert result.boxes[result.lost_at:] == [result.boxes[result.lost_at - 1]] * (count - result.lost_at)
    assert "kept" in result.note and len(result.boxes) == count


def test_boxes_to_masks_grows_and_clips():
    masks = boxes_to_masks([(2, 3, 4, 5), (28, 0, 10, 10)], (20, 32), margin=2)
    assert masks[0].sum() == 8 * 9 and masks[0][1, 0] and not masks[0][0, 0]
    assert masks[1][:12, 26:].all() and masks[1].sum() == 12 * 6
    with pytest.raises(ValueError, match="inside the 32x20 frame"):
        track_boxes([np.zeros((20, 32, 3), np.uint8)], (30, 0, 8, 8))
