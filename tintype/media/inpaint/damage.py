"""Finding damage automatically: dust on film, vertical line scratches, photo scratches.

Each detector returns a bool mask (True = damaged, to be inpainted) and errs on the side
of missing faint damage rather than flagging real content, since whatever is flagged
gets replaced. The tell-tale signs used:

* dust and dirt sit on one frame only: the pixel differs from both motion-compensated
  neighbours while the neighbours agree with each other (the spike detector of Kokaram);
* a line scratch is a thin line that keeps its column for much of the frame's height,
  which real content rarely does, so column averages of a horizontal high-pass find it;
* a scratch or crease on a print is thin and long: it survives an opening with a line
  element along it but not a rank filter across it.

That last one, `photo_scratches`, misses most real cracks (jagged, branching, soft-edged):
the GPU worker passes `detect` a learnt detector instead (gpu_workers/models/scratch_unet.py),
and these filters are the fallback when its weights cannot be loaded. This module stays
free of torch: the detector comes in as a plain callable.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence

import cv2
import numpy as np

from tintype.media import flow as fl

KINDS = ("dust", "lines", "scratches")  # the job option `detect_damage` takes these names
# (H, W, 3) uint8 RGB -> (H, W) bool mask of scratches, cracks, creases and tears
ScratchFinder = Callable[[np.ndarray], np.ndarray]

# dust
_DUST_MIN_CONTRAST = 18.0  # lightness levels (0..255) a speck must differ by, at least
_DUST_NOISE_FACTOR = 5.0  # ... and this many robust noise sigmas of the frame differences
_DUST_MAX_AREA = 0.002  # share of the frame a single speck may cover
_FLOW_MEDIAN = 5  # median filter (px) that removes specks from the flow's input

# line scratches
_LINE_MAX_WIDTH = 5
_LINE_WINDOW = 15  # horizontal median window; wider than the widest scratch
_LINE_BANDS = 8  # horizontal bands whose column profiles are compared
_LINE_MIN_SHARE = 0.5  # share of the bands a scratch must show in
_LINE_ROW_SHARE = 0.6  # share of a band's rows it must show in, to show in the band
_LINE_MIN_CONTRAST = 6.0  # lightness levels above or below the row's median, at least
_LINE_NOISE_FACTOR = 3.0  # ... and this many robust sigmas of that difference
_LINE_MIN_RUN, _LINE_MIN_RUN_SHARE = 24, 0.1  # a kept piece of scratch is this tall, at least

# photo scratches
_PHOTO_LENGTH = 21  # line element length: shorter bright/dark strokes are not scratches
_PHOTO_ANGLES = 16
_PHOTO_WIDTH = 7  # rank filter across: wider than the widest scratch
_PHOTO_CONTRAST = 3.0  # response in local standard deviations
_PHOTO_MIN_CONTRAST = 12.0  # response in lightness levels, at least
_PHOTO_ELONGATION = 4.0  # length over width of a kept component
_PHOTO_CROWD_WINDOW, _PHOTO_MAX_CROWD = 31, 0.12  # candidates covering more of a window are a pattern


def detect(frames: Sequence[np.ndarray], index: int, kinds: Iterable[str] = ("dust", "lines"),
           scratch_finder: ScratchFinder | None = None) -> np.ndarray:
    """Damage mask of frames[index] from the chosen detectors ("dust", "lines", "scratches").

    Dust needs the neighbouring frames; pass the frames around `index` (at least three
    in all, or dust finds nothing). "scratches" uses `scratch_finder` when one is given
    (the worker's scratch net), else the morphological filters of `photo_scratches`."""
    chosen = tuple(kinds)
    unknown = [k for k in chosen if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown damage kinds {unknown}; choose from {KINDS}")
    _check_index(frames, index)
    frame = frames[index]
    mask = np.zeros(frame.shape[:2], bool)
    if "dust" in chosen:
        mask |= dust(frames, index)
    if "lines" in chosen:
        mask |= line_scratches(frame)
    if "scratches" in chosen:
        found = photo_scratches(frame) if scratch_finder is None else scratch_finder(frame)
        if found.shape != mask.shape or found.dtype != np.bool_:
            raise ValueError(f"the scratch finder returned {found.dtype} {found.shape}, "
                             f"not a bool mask of {mask.shape}")
        mask |= found
    return mask


def dilate(mask: np.ndarray, margin_px: int) -> np.ndarray:
    """Grow a mask by a round margin, so the fill also covers a defect's soft edge."""
    if mask.dtype != np.bool_ or mask.ndim != 2:
        raise ValueError(f"dilate needs a bool (H, W) mask, got {mask.dtype} {mask.shape}")
    if margin_px < 0:
        raise ValueError(f"the dilation margin must be 0 or more pixels, got {margin_px}")
    if margin_px == 0 or not mask.any():
        return mask.copy()
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin_px + 1,) * 2)
    return cv2.dilate(mask.astype(np.uint8), disc) > 0


def _check_index(frames: Sequence[np.ndarray], index: int) -> None:
    if not 0 <= index < len(frames):
        raise ValueError(f"frame index {index} is outside the {len(frames)} frames given")
    shape = frames[index].shape
    if frames[index].dtype != np.uint8 or len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"frames must be uint8 RGB (H, W, 3), frame {index} is {frames[index].dtype} {shape}")


# --- dust -----------------------------------------------------------------------------

def dust(frames: Sequence[np.ndarray], index: int) -> np.ndarray:
    """Specks of dust and dirt on frames[index]: short-lived spikes that neither neighbour shows.

    With fewer than three frames there is no temporal evidence and the mask is empty.
    """
    _check_index(frames, index)
    if len(frames) < 3:
        return np.zeros(frames[index].shape[:2], bool)
    before, after = _neighbours(len(frames), index)
    light = fl.lightness_u8(frames[index])
    steady = cv2.medianBlur(light, _FLOW_MEDIAN)
    here = light.astype(np.float32)
    seen = [_compensated(frames[j], steady) for j in (before, after)]
    diff_a, diff_b = here - seen[0], here - seen[1]
    noise = _robust_sigma(np.concatenate([diff_a.ravel(), diff_b.ravel()]))
    threshold = max(_DUST_MIN_CONTRAST, _DUST_NOISE_FACTOR * noise)
    same_sign = np.sign(diff_a) == np.sign(diff_b)
    spike = np.minimum(np.abs(diff_a), np.abs(diff_b))
    agree = np.abs(seen[0] - seen[1]) < 0.5 * spike
    candidate = same_sign & agree & (spike > threshold)
    specks = _small_blobs(candidate, max_area=max(4, int(_DUST_MAX_AREA * candidate.size)))
    return dilate(specks, 1)


def _neighbours(count: int, index: int) -> tuple[int, int]:
    """The two frames to compare with: either side, or two on one side at the ends."""
    if index == 0:
        return 1, 2
    if index == count - 1:
        return count - 2, count - 3
    return index - 1, index + 1


def _compensated(rgb: np.ndarray, steady_here: np.ndarray) -> np.ndarray:
    """A neighbour's lightness brought onto this frame along the flow; flow is estimated on
    median-filtered lightness on both sides, so the specks themselves do not steer it."""
    light = fl.lightness_u8(rgb)
    field = fl.flow(steady_here, cv2.medianBlur(light, _FLOW_MEDIAN))
    return fl.warp(light.astype(np.float32), field)


def _robust_sigma(values: np.ndarray) -> float:
    """Noise level from the median absolute deviation (1.4826 × MAD for Gaussian noise)."""
    sample = values[:: max(1, values.size // 200_000)]
    return 1.4826 * float(np.median(np.abs(sample - np.median(sample))))


def _small_blobs(mask: np.ndarray, max_area: int) -> np.ndarray:
    """Only the connected components no larger than `max_area` pixels."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, bool)
    keep = stats[:, cv2.CC_STAT_AREA] <= max_area
    keep[0] = False
    return keep[labels]


# --- vertical line scratches ----------------------------------------------------------

def line_scratches(frame: np.ndarray) -> np.ndarray:
    """Vertical line scratches: thin lines (≤ 5 px) that hold their column over much of the height.

    A step edge of real content survives the horizontal median and so is not flagged;
    a thin vertical object of real content (a mast, a rope) can be.
    """
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"line_scratches needs uint8 RGB (H, W, 3), got {frame.dtype} {frame.shape}")
    light = fl.lightness_u8(frame).astype(np.float32)
    detail = light - _horizontal_median(light, _LINE_WINDOW)
    threshold = max(_LINE_MIN_CONTRAST, _LINE_NOISE_FACTOR * _robust_sigma(detail.ravel()))
    columns = _scratch_columns(detail, threshold)
    if not columns.any():
        return np.zeros(light.shape, bool)
    return _refine_rows(detail, columns, threshold)


def _horizontal_median(image: np.ndarray, window: int) -> np.ndarray:
    """Median over a horizontal window per pixel (edge pixels replicated)."""
    half = window // 2
    padded = np.pad(image, ((0, 0), (half, half)), mode="edge")
    views = np.lib.stride_tricks.sliding_window_view(padded, window, axis=1)
    return np.median(views, axis=-1).astype(np.float32)


def _scratch_columns(detail: np.ndarray, threshold: float) -> np.ndarray:
    """Signed per-column flag (+1 bright, -1 dark, 0 none): columns where the line stands out
    with one sign in most rows of most horizontal bands, in runs no wider than a scratch.
    Asking for most rows, not a high column mean, keeps short vertical strokes that share
    a column (brick joints, window bars) from adding up to a scratch."""
    h = detail.shape[0]
    bands = min(_LINE_BANDS, max(1, h // 16))
    edges = np.linspace(0, h, bands + 1).astype(int)
    bright = np.stack([(detail[a:b] > threshold).mean(axis=0) for a, b in itertools.pairwise(edges)])
    dark = np.stack([(detail[a:b] < -threshold).mean(axis=0) for a, b in itertools.pairwise(edges)])
    needed = _LINE_MIN_SHARE * bands
    flag = ((bright >= _LINE_ROW_SHARE).sum(axis=0) >= needed).astype(np.int8)
    flag -= ((dark >= _LINE_ROW_SHARE).sum(axis=0) >= needed).astype(np.int8)
    return _thin_runs(flag)


def _thin_runs(flag: np.ndarray) -> np.ndarray:
    """Drop runs of equally flagged columns wider than a scratch can be."""
    out = flag.copy()
    padded = np.concatenate([[0], flag, [0]])
    bounds = np.nonzero(padded[1:] != padded[:-1])[0]  # where a run of one value starts or ends
    for start, stop in itertools.pairwise(bounds):
        if flag[start] != 0 and stop - start > _LINE_MAX_WIDTH:
            out[start:stop] = 0
    return out


def _refine_rows(detail: np.ndarray, columns: np.ndarray, threshold: float) -> np.ndarray:
    """Per row, keep the flagged columns (and one either side) where the pixel has the
    scratch's sign and contrast; bridge short vertical gaps and keep only long runs."""
    reach = cv2.dilate((columns != 0).astype(np.uint8)[None, :], np.ones((1, 3), np.uint8))[0] > 0
    sign = cv2.dilate(columns.astype(np.float32)[None, :], np.ones((1, 3), np.uint8))[0]
    sign = np.where(sign > 0, 1.0, -1.0).astype(np.float32)
    strong = detail * sign[None, :] > 0.5 * threshold
    mask = strong & reach[None, :]
    mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((9, 1), np.uint8)) > 0
    return _tall(mask & reach[None, :], max(_LINE_MIN_RUN, int(_LINE_MIN_RUN_SHARE * detail.shape[0])))


def _tall(mask: np.ndarray, min_height: int) -> np.ndarray:
    """Only the connected components at least `min_height` rows tall."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_HEIGHT] >= min_height
    keep[0] = False
    return keep[labels]


# --- photo scratches ------------------------------------------------------------------

def photo_scratches(rgb: np.ndarray) -> np.ndarray:
    """Scratches and creases on a photograph: thin bright or dark strokes, long in some direction.

    Thresholds are relative to local contrast, so fine texture (grain, foliage) is not
    taken for scratches as readily as a stroke across a smooth sky or face.
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"photo_scratches needs uint8 RGB (H, W, 3), got {rgb.dtype} {rgb.shape}")
    light = fl.lightness_u8(rgb).astype(np.float32)
    across = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (_PHOTO_WIDTH, _PHOTO_WIDTH))
    bright = light - cv2.morphologyEx(light, cv2.MORPH_OPEN, across)  # thin bright things (top-hat)
    dark = cv2.morphologyEx(light, cv2.MORPH_CLOSE, across) - light  # thin dark things (black-hat)
    response = np.maximum(_longest_opening(bright), _longest_opening(dark))
    background = cv2.medianBlur(np.clip(light, 0, 255).astype(np.uint8), 2 * (_PHOTO_WIDTH // 2) + 1)
    contrast = _local_std(background.astype(np.float32))
    candidate = response > np.maximum(_PHOTO_MIN_CONTRAST, _PHOTO_CONTRAST * contrast)
    return dilate(_elongated(_isolated(candidate)), 1)


def _isolated(candidate: np.ndarray) -> np.ndarray:
    """Drop candidates where they crowd: many thin lines side by side are a pattern (stripes,
    fabric, railings), while a scratch covers only a small share of its surroundings."""
    share = cv2.boxFilter(candidate.astype(np.float32), -1, (_PHOTO_CROWD_WINDOW,) * 2,
                          borderType=cv2.BORDER_REFLECT)
    return candidate & (share < _PHOTO_MAX_CROWD)


def _line_element(length: int, angle_deg: float) -> np.ndarray:
    """A one-pixel-wide line of `length` through the centre at `angle_deg`."""
    kernel = np.zeros((length, length), np.uint8)
    c = length // 2
    dx, dy = np.cos(np.radians(angle_deg)) * c, np.sin(np.radians(angle_deg)) * c
    cv2.line(kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1)
    return kernel


def _longest_opening(thin: np.ndarray) -> np.ndarray:
    """Supremum over orientations of openings with a long line: what is left is thin
    structure that is also long in some direction (dots and short strokes vanish). The
    openings run on a 3x3-dilated copy, so a line need not match an element's raster
    exactly, and the result is cut back to the original response."""
    widened = cv2.dilate(thin, np.ones((3, 3), np.uint8))
    best = np.zeros_like(thin)
    for angle in np.arange(_PHOTO_ANGLES) * (180.0 / _PHOTO_ANGLES):
        np.maximum(best, cv2.morphologyEx(widened, cv2.MORPH_OPEN, _line_element(_PHOTO_LENGTH, angle)), out=best)
    return np.minimum(best, thin)


def _local_std(image: np.ndarray, sigma: float = 8.0) -> np.ndarray:
    mean = cv2.GaussianBlur(image, (0, 0), sigma)
    square = cv2.GaussianBlur(image * image, (0, 0), sigma)
    return np.sqrt(np.maximum(square - mean * mean, 0.0))


def _elongated(mask: np.ndarray) -> np.ndarray:
    """Components whose principal axes have a length-to-width ratio of at least _PHOTO_ELONGATION
    and whose length is at least the line element's."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = np.zeros(count, bool)
    for label in range(1, count):
        x, y, w, h = stats[label][:4]
        if max(w, h) < _PHOTO_LENGTH * 0.8:
            continue
        ys, xs = np.nonzero(labels[y:y + h, x:x + w] == label)
        keep[label] = _elongation(xs.astype(np.float64), ys.astype(np.float64)) >= _PHOTO_ELONGATION
    return keep[labels]


def _elongation(xs: np.ndarray, ys: np.ndarray) -> float:
    """Ratio of the principal standard deviations of a point set (1 for a disc)."""
    if xs.size < 3:
        return 1.0
    cov = np.cov(np.stack([xs, ys]))
    small, large = np.linalg.eigvalsh(cov)
    return float(np.sqrt(large / max(small, 1.0 / 12.0)))
