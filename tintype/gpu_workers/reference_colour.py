"""Colour from a reference image: move frames' colours towards a reference's, region by region.

`transfer_reference(frames, reference)` keeps every frame's lightness (L) and changes only
its chroma (ab, CIE Lab as in media/color.py), so the picture's detail is untouched:

1. **Segment the reference.** k-means in (L, a, b, x, y) on a small copy of the reference
   finds up to K_CLUSTERS regions of similar colour, lightness and place; each keeps its
   mean and spread of a and b.
2. **Match frame pixels to reference regions** by lightness (after matching the frames'
   overall L mean and spread to the reference's, so a darker print still finds the right
   regions), by position, and by chroma in proportion to how much chroma the frames
   already have (none for a grey frame, where only L and position can decide). The
   assignment is soft (a softmax over distances), so region borders blend instead of
   cutting.
3. **Per region, an affine map of ab** takes the matched pixels' ab mean and spread (pooled
   over all the frames given, so a chunk of video gets one consistent grade and does not
   flicker) to the reference region's: the classic Reinhard transfer, done per region.
4. **Edge-aware, smooth correction.** The per-pixel scale and offset fields are computed at
   low resolution and brought to full size with a guided filter steered by the frame's
   own L (He & Sun's fast guided upsampling), so colour changes follow the picture's
   edges and do not tear or speckle.
5. ab is blended with `strength` (0 = unchanged, 1 = full transfer), chroma that would fall
   outside the sRGB gamut is reduced just enough to fit (which would otherwise shift L
   when RGB is clipped), and the frame is rebuilt from its own L.

Pure numpy/OpenCV and deterministic (fixed seeds, no threads' races): the same inputs
give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from tintype.gpu_workers.colorize import fast_guided_upsample
from tintype.media.color import lab_to_rgb, rgb_to_lab

K_CLUSTERS = 8
WORK_SIDE = 256  # long side of the working copies (reference and frames)
MIN_CLUSTER_SHARE = 0.005  # reference regions smaller than this are dropped
POSITION_WEIGHT = 0.35  # x, y in [0, 100] against L in [0, 100]
CHROMA_WEIGHT = 0.75  # a, b against L, when the frames have chroma of their own
CHROMA_FULL_TRUST = 12.0  # frames' mean chroma (Lab units) at which ab counts fully
SOFTNESS = 6.0  # softmax temperature on feature distances (L units)
SIGMA_FLOOR = 2.0  # ab spread below this counts as this much (grey frames)
MAX_SCALE = 3.0
GUIDE_RADIUS = 3  # guided filter radius at working resolution
GUIDE_EPS = 1e-3
SEED = 0


@dataclass(frozen=True)
class _Regions:
    centres: np.ndarray  # (K, 5) in feature units (L, a, b, x, y), unweighted
    ab_mean: np.ndarray  # (K, 2)
    ab_std: np.ndarray  # (K, 2)
    light_mean: float
    light_std: float


def _check_rgb(img: np.ndarray, what: str) -> None:
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        shape = getattr(img, "shape", None)
        raise ValueError(f"{what} must be uint8 RGB (H, W, 3), got {getattr(img, 'dtype', type(img))} {shape}")


def _small(rgb: np.ndarray) -> np.ndarray:
    """A working copy whose long side is at most WORK_SIDE."""
    h, w = rgb.shape[:2]
    scale = min(1.0, WORK_SIDE / max(h, w))
    if scale >= 1.0:
        return rgb
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _positions(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres scaled to [0, 100] on both axes."""
    ys = (np.arange(h, dtype=np.float32) + 0.5) * (100.0 / h)
    xs = (np.arange(w, dtype=np.float32) + 0.5) * (100.0 / w)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return xx, yy


def _features(lab: np.ndarray, chroma_weight: float) -> np.ndarray:
    """(N, 5) weighted features (L, a, b, x, y) of a Lab image."""
    h, w = lab.shape[:2]
    xx, yy = _positions(h, w)
    feats = np.stack([lab[..., 0], lab[..., 1] * chroma_weight, lab[..., 2] * chroma_weight,
                      xx * POSITION_WEIGHT, yy * POSITION_WEIGHT], axis=-1)
    return feats.reshape(-1, 5).astype(np.float32)


def _sq_dist(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(N, K) squared Euclidean distances."""
    d = (points * points).sum(1)[:, None] - 2.0 * points @ centres.T + (centres * centres).sum(1)[None]
    return np.maximum(d, 0.0)


def _kmeans(points: np.ndarray, k: int, iterations: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic k-means (k-means++ seeding with a fixed seed): centres and labels."""
    rng = np.random.default_rng(SEED)
    k = max(1, min(k, len(points)))
    centres = [points[rng.integers(len(points))]]
    closest = _sq_dist(points, np.array(centres))[:, 0]
    for _ in range(1, k):
        total = float(closest.sum())
        if total <= 0.0:
            break
        pick = int(np.searchsorted(np.cumsum(closest, dtype=np.float64), rng.random() * total))
        centres.append(points[min(pick, len(points) - 1)])
        closest = np.minimum(closest, _sq_dist(points, np.array(centres[-1:]))[:, 0])
    centres_arr = np.array(centres, dtype=np.float32)
    labels = np.zeros(len(points), dtype=np.int64)
    for step in range(iterations):
        new_labels = _sq_dist(points, centres_arr).argmin(1)
        if step and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        for j in range(len(centres_arr)):
            members = points[labels == j]
            if len(members):
                centres_arr[j] = members.mean(0)
    return centres_arr, labels


def _fit_reference(reference_rgb: np.ndarray) -> _Regions:
    lab = rgb_to_lab(_small(reference_rgb))
    feats = _features(lab, CHROMA_WEIGHT)
    centres, labels = _kmeans(feats, K_CLUSTERS)
    ab = lab[..., 1:].reshape(-1, 2)
    keep, means, stds = [], [], []
    for j in range(len(centres)):
        members = labels == j
        if members.mean() < MIN_CLUSTER_SHARE:
            continue
        keep.append(j)
        means.append(ab[members].mean(0))
        stds.append(ab[members].std(0))
    # unweight the chroma and position axes: matching re-weights them per target
    scale = np.array([1.0, CHROMA_WEIGHT, CHROMA_WEIGHT, POSITION_WEIGHT, POSITION_WEIGHT], np.float32)
    light = lab[..., 0]
    return _Regions(centres=centres[keep] / scale, ab_mean=np.array(means, np.float32),
                    ab_std=np.array(stds, np.float32), light_mean=float(light.mean()),
                    light_std=float(light.std()))


def _soft_assign(lab: np.ndarray, regions: _Regions, chroma_weight: float,
                 light_gain: float, light_bias: float) -> np.ndarray:
    """(h, w, K) soft membership of each pixel in each reference region."""
    matched = lab.copy()
    matched[..., 0] = lab[..., 0] * light_gain + light_bias
    feats = _features(matched, chroma_weight)
    weights = np.array([1.0, chroma_weight, chroma_weight, POSITION_WEIGHT, POSITION_WEIGHT], np.float32)
    d = _sq_dist(feats, regions.centres * weights)
    logits = -d / (2.0 * SOFTNESS ** 2)
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(1, keepdims=True)
    return p.reshape(*lab.shape[:2], -1).astype(np.float32)


_WHITE = np.array([0.950456, 1.0, 1.088754])  # D65, as OpenCV's Lab
_XYZ_TO_RGB = np.array([[3.240479, -1.537150, -0.498535],
                        [-0.969256, 1.875991, 0.041556],
                        [0.055648, -0.204043, 1.057311]])


def _linear_rgb(light: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """(N, 3) linear sRGB of (N,) L and (N, 2) ab, without clipping (OpenCV's Lab2RGB clips)."""
    fy = (light + 16.0) / 116.0
    f = np.stack([fy + ab[:, 0] / 500.0, fy, fy - ab[:, 1] / 200.0], axis=1)
    delta = 6.0 / 29.0
    xyz = np.where(f > delta, f ** 3, 3 * delta * delta * (f - 4.0 / 29.0)) * _WHITE
    return xyz @ _XYZ_TO_RGB.T


def _fit_gamut(light: np.ndarray, ab: np.ndarray, steps: int = 10) -> np.ndarray:
    """Shrink the chroma of out-of-gamut pixels (bisection) so RGB needs no clipping and L is kept."""
    flat_l = light.reshape(-1).astype(np.float64)
    flat_ab = ab.reshape(-1, 2).astype(np.float64)
    tol = 1e-3

    def inside(lum: np.ndarray, chroma: np.ndarray) -> np.ndarray:
        rgb = _linear_rgb(lum, chroma)
        return ((rgb >= -tol) & (rgb <= 1.0 + tol)).all(axis=1)

    bad = np.nonzero(~inside(flat_l, flat_ab))[0]
    if not len(bad):
        return ab
    l_bad, ab_bad = flat_l[bad], flat_ab[bad]
    lo, hi = np.zeros(len(bad)), np.ones(len(bad))
    for _ in range(steps):
        mid = (lo + hi) / 2
        ok = inside(l_bad, ab_bad * mid[:, None])
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    out = flat_ab.copy()
    out[bad] = ab_bad * lo[:, None]
    return out.reshape(ab.shape).astype(np.float32)


def transfer_reference(frames_rgb: Sequence[np.ndarray], reference_rgb: np.ndarray,
                       strength: float = 1.0) -> list[np.ndarray]:
    """Frames (uint8 RGB) with their ab moved towards the reference's, region by region.

    Each frame's L is kept (up to the uint8 round trip); `strength` in [0, 1] blends
    between the input (0) and the full transfer (1). All frames share one grade.
    """
    _check_rgb(reference_rgb, "reference image")
    for i, frame in enumerate(frames_rgb):
        _check_rgb(frame, f"frame {i}")
    if not 0.0 <= float(strength) <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if not frames_rgb:
        return []
    if strength == 0.0:
        return [frame.copy() for frame in frames_rgb]

    regions = _fit_reference(reference_rgb)
    small_labs = [rgb_to_lab(_small(frame)) for frame in frames_rgb]

    # Frames' overall lightness matched to the reference's, for finding regions only.
    lights = np.concatenate([lab[..., 0].ravel() for lab in small_labs])
    light_std = float(lights.std())
    light_gain = float(np.clip(regions.light_std / max(light_std, 1.0), 0.5, 2.0))
    light_bias = regions.light_mean - light_gain * float(lights.mean())
    chroma = float(np.mean([np.hypot(lab[..., 1], lab[..., 2]).mean() for lab in small_labs]))
    chroma_weight = CHROMA_WEIGHT * min(1.0, chroma / CHROMA_FULL_TRUST)

    memberships = [_soft_assign(lab, regions, chroma_weight, light_gain, light_bias) for lab in small_labs]

    # Per-region ab statistics of the frames, pooled over all frames (one grade per call).
    k = len(regions.ab_mean)
    w_sum = np.zeros(k, np.float64)
    s1 = np.zeros((k, 2), np.float64)
    s2 = np.zeros((k, 2), np.float64)
    for lab, p in zip(small_labs, memberships):
        pw = p.reshape(-1, k).astype(np.float64)
        ab = lab[..., 1:].reshape(-1, 2).astype(np.float64)
        w_sum += pw.sum(0)
        s1 += pw.T @ ab
        s2 += pw.T @ (ab * ab)
    w_safe = np.maximum(w_sum, 1e-6)[:, None]
    t_mean = s1 / w_safe
    t_std = np.sqrt(np.maximum(s2 / w_safe - t_mean ** 2, 0.0))
    scale = np.clip(regions.ab_std / np.maximum(t_std, SIGMA_FLOOR), 0.0, MAX_SCALE)
    offset = regions.ab_mean - scale * t_mean
    # (k, 4): per-region (scale_a, scale_b, offset_a, offset_b)
    affine = np.concatenate([scale, offset], axis=1).astype(np.float32)

    out = []
    for frame, lab_small, p in zip(frames_rgb, small_labs, memberships):
        lab = rgb_to_lab(frame)
        light, ab = lab[..., 0], lab[..., 1:]
        fields_small = (p.reshape(-1, k) @ affine).reshape(*p.shape[:2], 4)
        fields = fast_guided_upsample(fields_small, lab_small[..., 0], light, GUIDE_RADIUS, GUIDE_EPS)
        moved = ab * fields[..., :2] + fields[..., 2:]
        new_ab = ab + np.float32(strength) * (moved - ab)
        new_ab = _fit_gamut(light, new_ab.astype(np.float32))
        out.append(lab_to_rgb(np.dstack([light, new_ab])))
    return out
