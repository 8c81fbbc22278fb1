"""Joining the pieces of a fold (media/inpaint/fold_join.py), and the scratch net's
decision that uses it.

Each picture is drawn here: a mottled background (smoothed noise, like the painted
backdrop of a studio portrait) crossed by a fold, a bright crest with a lit ramp on one
side and a shadow on the other, plain at both ends and faint in the middle, as on real
print c. The "found" mask stands for what the net flags: the plain ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest
import torch

from tintype.gpu_workers.models import scratch_unet
from tintype.gpu_workers.models.registry import ModelRegistry
from tintype.media.inpaint.fold_join import join_folds
from tintype.settings import load_settings


@dataclass(frozen=True)
class Fold:
    grey: np.ndarray  # (H, W) uint8
    ends: np.ndarray  # bool: the fold's plain ends, what the net flags
    middle: np.ndarray  # bool: the faint middle third of its crest
    near: np.ndarray  # bool: within 2 px of the fold's line


def fold_picture(seed: int, middle_contrast: float = 0.35, scale: int = 1) -> Fold:
    """A 260x200 mottled picture with a fold from (20, 30) to (240, 180), all times `scale`
    but the fold's width and the mottle's grain; `middle_contrast` scales the fold's
    middle third."""
    rng = np.random.default_rng(seed)
    h, w = 200 * scale, 260 * scale
    mottle = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 2.5)
    grey = 125 + 9 * mottle / mottle.std()
    start, stop = np.array([20.0, 30.0]) * scale, np.array([240.0, 180.0]) * scale
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (stop - start) / np.hypot(*(stop - start))
    along = ((xs - start[0]) * u[0] + (ys - start[1]) * u[1]) / np.hypot(*(stop - start))
    across = (xs - start[0]) * -u[1] + (ys - start[1]) * u[0]
    on = (along >= 0) & (along <= 1)
    faint = on & (along > 1 / 3) & (along < 2 / 3)
    s = across
    profile = 40 * np.exp(-s ** 2 / 0.6) + np.where((s > -6) & (s < 0), 14 * (1 + s / 6), 0) \
        - np.where((s > 0.8) & (s < 2.5), 20, 0)
    grey += np.where(on, np.where(faint, middle_contrast, 1.0) * profile, 0)
    crest = on & (np.abs(s) <= 0.7)
    return Fold(np.clip(grey, 0, 255).astype(np.uint8), crest & ~faint, crest & faint,
                on & (np.abs(s) <= 2.5))


def near(mask: np.ndarray, px: int) -> np.ndarray:
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1,) * 2)
    return cv2.dilate(mask.astype(np.uint8), disc) > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_two_plain_ends_of_a_fold_are_joined_across_its_faint_middle(seed: int) -> None:
    fold = fold_picture(seed)
    joined = join_folds(fold.grey, fold.ends)
    added = joined & ~fold.ends
    assert (fold.middle & near(added, 1)).sum() >= 0.9 * fold.middle.sum()
    assert (added & fold.near).sum() >= 0.97 * added.sum()  # on the fold, not beside it
    assert (joined & fold.ends).sum() == fold.ends.sum()  # what was found stays found


def test_a_large_scan_is_joined_too() -> None:
    fold = fold_picture(4, scale=5)  # 1300 px wide: searched at 1024 (0.79x), drawn back
    added = join_folds(fold.grey, fold.ends) & ~fold.ends
    assert (fold.middle & near(added, 2)).sum() >= 0.9 * fold.middle.sum()
    assert (added & near(fold.near, 2)).sum() >= 0.97 * added.sum()


def branching(ends: np.ndarray, first: bool = False) -> np.ndarray:
    """The found pieces with cracks branching off the second (and the first) piece."""
    branched = ends.copy()
    cv2.line(branched.view(np.uint8), (215, 163), (215, 199), 1, 1)
    cv2.line(branched.view(np.uint8), (235, 176), (250, 150), 1, 1)
    if first:
        cv2.line(branched.view(np.uint8), (50, 52), (50, 90), 1, 1)
        cv2.line(branched.view(np.uint8), (70, 64), (95, 30), 1, 1)
    return branched


def test_the_straight_part_of_a_branching_crack_is_joined_to_a_straight_piece() -> None:
    """A crack that meets another is not straight as a whole, but its straight part is one
    end of the fold (real print b: the crack across the forehead meets one running down)."""
    fold = fold_picture(13)
    branched = branching(fold.ends)
    added = join_folds(fold.grey, branched) & ~branched
    assert (fold.middle & near(added, 1)).sum() >= 0.9 * fold.middle.sum()
    assert (added & fold.near).sum() >= 0.97 * added.sum()


def test_two_parts_of_branching_cracks_are_not_joined() -> None:
    """At least one of two joined pieces is straight as a whole. Joining any two pieces
    that ran along one line joined straight content on real photos (a shingled wall, a
    coat's edge)."""
    fold = fold_picture(13)
    branched = branching(fold.ends, first=True)
    assert (join_folds(fold.grey, branched) == branched).all()


@pytest.mark.parametrize("seed", [5, 6, 7, 8])
def test_two_pieces_in_line_with_no_fold_between_them_stay_apart(seed: int) -> None:
    fold = fold_picture(seed, middle_contrast=0.0)
    assert (join_folds(fold.grey, fold.ends) == fold.ends).all()


@pytest.mark.parametrize("moved", ["turned 25 degrees", "shifted 30 px"])
def test_pieces_that_do_not_line_up_are_not_joined(moved: str) -> None:
    """The fold is in the picture, but the second piece found is not on its line."""
    fold = fold_picture(9, middle_contrast=1.0)
    columns = np.arange(fold.ends.shape[1])[None, :]
    first, second = fold.ends & (columns < 130), (fold.ends & (columns >= 130)).astype(np.uint8)
    if moved == "shifted 30 px":
        second = np.roll(second, 30, axis=0)
    else:
        turn = cv2.getRotationMatrix2D((130.0, 105.0), 25.0, 1.0)
        second = cv2.warpAffine(second, turn, second.shape[::-1], flags=cv2.INTER_NEAREST)
    pieces = first | (second > 0)
    assert (join_folds(fold.grey, pieces) == pieces).all()


@pytest.mark.parametrize(("piece_px", "joined"), [(60, True), (35, False)])
def test_a_join_reaches_no_further_than_a_few_lengths_of_its_longer_piece(piece_px: int, joined: bool) -> None:
    """The whole fold is plain here, but only a short piece at each end is found: 60 px
    pieces 146 px apart (2.4 times) are joined; 35 px pieces 196 px apart (5.6 times, over
    MAX_REACH) are not: far beyond their length two pieces line up by chance as often as
    they are one fold (a line across two faces on real print d, one through a white beard)."""
    fold = fold_picture(4, middle_contrast=1.0)
    ys, xs = np.nonzero(fold.ends)
    along = np.hypot(xs - 20.0, ys - 30.0)
    ends = np.zeros_like(fold.ends)
    keep = (along <= piece_px) | (along >= along.max() - piece_px)
    ends[ys[keep], xs[keep]] = True
    added = join_folds(fold.grey, ends) & ~ends
    assert added.any() == joined
    if joined:
        assert (added & fold.near).sum() >= 0.97 * added.sum()


def test_a_crack_crossing_the_line_further_on_is_not_taken_for_its_other_piece() -> None:
    """The fold runs on, plain, but what was found ahead is a short crack across it: not a
    piece of the same line, so nothing is joined (though the picture would match)."""
    fold = fold_picture(14, middle_contrast=1.0)
    first = fold.ends & (np.arange(fold.ends.shape[1])[None, :] < 100)
    crossing = np.zeros_like(first)
    cv2.line(crossing.view(np.uint8), (205, 140), (190, 162), 1, 1)  # across the fold near (200, 151)
    pieces = first | crossing
    assert (join_folds(fold.grey, pieces) == pieces).all()


def test_a_single_found_piece_is_not_followed_along_the_line_it_sits_on() -> None:
    """One flagged piece of a straight line (a reed, a frame's edge) would be followed
    along the whole line; only two pieces that line up are joined."""
    fold = fold_picture(10, middle_contrast=1.0)
    first_piece = fold.ends & (np.arange(fold.ends.shape[1])[None, :] < 100)
    assert (join_folds(fold.grey, first_piece) == first_piece).all()


def test_a_curly_or_branching_found_shape_is_not_joined() -> None:
    fold = fold_picture(11)
    wobbly = np.zeros_like(fold.ends)
    columns = np.arange(fold.ends.shape[1])[None, :]
    for piece in (fold.ends & (columns < 100), fold.ends & (columns > 160)):
        ys, xs = np.nonzero(piece)
        wobbly[np.clip(ys + np.round(4 * np.sin(xs / 3)).astype(int), 0, 199), xs] = True
    assert (join_folds(fold.grey, wobbly) == wobbly).all()


def test_join_folds_needs_a_mask_the_size_of_the_picture() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        join_folds(np.zeros((10, 12), np.uint8), np.zeros((10, 11), bool))


def test_the_scratch_nets_decision_joins_the_pieces_of_a_fold() -> None:
    """What a job fills (ScratchNet.scratches) goes through `decide`: the threshold, then
    the join. Given a probability with the fold's two ends above the threshold, the
    decision covers its middle too."""
    net = ModelRegistry(load_settings()).scratch_detector("scratch-unet", torch.device("cpu"))
    assert isinstance(net, scratch_unet.ScratchNet)
    fold = fold_picture(12)
    probability = np.where(fold.ends, 0.9, 0.01).astype(np.float32)
    decided = net.decide(fold.grey, probability)
    assert (fold.middle & near(decided, 1)).sum() >= 0.9 * fold.middle.sum()
    assert not net.decide(fold.grey, np.zeros_like(probability)).any()
