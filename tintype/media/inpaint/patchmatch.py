"""Exemplar fill of one image: PatchMatch search and patch voting, coarse to fine.

Diffusion fills (OpenCV's Telea, Navier–Stokes) smear the boundary inward, which is
fine for a hairline but turns a brick wall or a striped coat into a blur once the hole
is more than a few pixels wide. Copying whole patches from the rest of the image keeps
texture. This is the method of Wexler et al. (2007) with Barnes et al.'s PatchMatch
(2009) for the nearest-neighbour field:

* the hole is filled on a Gaussian pyramid, coarsest first, so the structure is decided
  while the hole is only a few patches wide and refined at each finer level;
* at each level, rounds of (search, vote): every patch that touches the hole finds a
  similar patch lying wholly outside it (propagation from neighbours' matches plus
  random search at shrinking radii), then every hole pixel becomes the weighted mean of
  the source pixels that the overlapping patches put on it.

Everything is vectorised over all patches at once: propagation is done in parallel
(Jacobi style, with a few long jumps to make up for not scanning in order) rather than
pixel by pixel. Work happens on crops around groups of nearby hole pixels, so the cost
follows the size of the hole, not of the image.
"""

from __future__ import annotations

import cv2
import numpy as np

_PM_SWEEPS = 2  # search sweeps per voting round on coarse levels (the finest, inheriting a good field, gets 1)
_JUMPS = (2, 4, 8, 16)  # long propagation steps, one used per sweep in turn
_MIN_SOURCES = 16  # a pyramid level needs at least this many source patches


def patch_fill(rgb: np.ndarray, hole: np.ndarray, patch: int = 7, iterations: int = 4,
               seed: int = 0) -> np.ndarray:
    """Fill `hole` (True = replace) of a uint8 RGB image with texture copied from outside it.

    Use it where the hole is wider than a few pixels and the surroundings are textured;
    pixels outside the hole come back unchanged, and the same seed gives the same result.
    `iterations` is the number of search-and-vote rounds per pyramid level.
    """
    _check_inputs(rgb, hole, patch, iterations)
    out = rgb.copy()
    if not hole.any():
        return out
    rng = np.random.default_rng(seed)
    for (y0, y1, x0, x1), own in _regions(hole, patch):
        filled = _fill_crop(rgb[y0:y1, x0:x1], hole[y0:y1, x0:x1], patch, iterations, rng)
        region = out[y0:y1, x0:x1]
        region[own] = filled[own]
    return out


def _check_inputs(rgb: np.ndarray, hole: np.ndarray, patch: int, iterations: int) -> None:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"patch_fill needs uint8 RGB (H, W, 3), got {rgb.dtype} {rgb.shape}")
    if hole.dtype != np.bool_ or hole.shape != rgb.shape[:2]:
        raise ValueError(f"hole must be a bool mask of shape {rgb.shape[:2]}, got {hole.dtype} {hole.shape}")
    if patch < 3 or patch % 2 == 0:
        raise ValueError(f"patch must be an odd size of at least 3, got {patch}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    if hole.all():
        raise ValueError(f"the hole covers the whole {rgb.shape[1]}x{rgb.shape[0]} image: nothing to copy from")


def _regions(hole: np.ndarray, patch: int) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
    """Crops (y0, y1, x0, x1) around groups of nearby hole pixels, each with the mask of
    the hole pixels it owns. A crop reaches out by about the hole's own size, so coarse
    levels still have plenty of texture around the hole to copy from."""
    h, w = hole.shape
    near = 4 * patch
    grouped = cv2.dilate(hole.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_RECT, (2 * near + 1,) * 2))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(grouped, connectivity=8)
    regions = []
    for label in range(1, count):
        gx, gy, gw, gh, _ = stats[label]
        own_full = (labels[gy:gy + gh, gx:gx + gw] == label) & hole[gy:gy + gh, gx:gx + gw]
        ys, xs = np.nonzero(own_full)
        if ys.size == 0:
            continue
        by0, by1, bx0, bx1 = gy + ys.min(), gy + ys.max() + 1, gx + xs.min(), gx + xs.max() + 1
        margin = max(near, by1 - by0, bx1 - bx0)
        y0, y1 = max(0, by0 - margin), min(h, by1 + margin)
        x0, x1 = max(0, bx0 - margin), min(w, bx1 + margin)
        own = np.zeros((y1 - y0, x1 - x0), bool)
        own[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0] = own_full[by0 - gy:by1 - gy, bx0 - gx:bx1 - gx]
        regions.append(((y0, y1, x0, x1), own))
    return regions


def _fill_crop(rgb: np.ndarray, hole: np.ndarray, patch: int, iterations: int,
               rng: np.random.Generator) -> np.ndarray:
    """Coarse-to-fine fill of one crop; returns the crop with its hole filled (uint8)."""
    images, holes = _pyramid(rgb.astype(np.float32), hole, patch)
    coarsest = len(images) - 1
    start = cv2.inpaint(np.clip(images[-1], 0, 255).astype(np.uint8), holes[-1].astype(np.uint8), 3,
                        cv2.INPAINT_TELEA).astype(np.float32)
    images[-1][holes[-1]] = start[holes[-1]]
    nnf: _Field | None = None
    for level in range(coarsest, -1, -1):
        field = _Field(images[level], holes[level], patch, rng)
        if nnf is not None:
            field.inherit(nnf)
            field.vote(weighted=False)
        rounds = iterations + (2 if level == coarsest else 0)
        for _ in range(rounds):
            field.search(sweeps=1 if level == 0 and coarsest > 0 else _PM_SWEEPS)
            field.vote(weighted=True)
        nnf = field
    result = rgb.copy()
    result[hole] = np.clip(np.rint(nnf.image[hole]), 0, 255).astype(np.uint8)
    return result


def _pyramid(image: np.ndarray, hole: np.ndarray, patch: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Gaussian pyramid of the crop and a conservative hole mask per level (a coarse pixel
    is hole if any hole pixel blurred into it), down to where the hole is about a patch
    deep, as long as each level keeps enough source patches."""
    images, holes = [image], [hole]
    radius = patch // 2
    while True:
        depth = float(cv2.distanceTransform(holes[-1].astype(np.uint8), cv2.DIST_L2, 3).max())
        if depth <= radius + 1 or min(images[-1].shape[:2]) < 4 * patch:
            break
        small = cv2.pyrDown(images[-1])
        small_hole = cv2.pyrDown(holes[-1].astype(np.float32)) > 1e-3
        if small_hole.all() or _sources(small_hole, patch).sum() < max(_MIN_SOURCES, small_hole.sum()):
            break
        images.append(small)
        holes.append(small_hole)
    return images, holes


def _sources(hole: np.ndarray, patch: int) -> np.ndarray:
    """Centres of patches lying wholly inside the crop and wholly outside the hole."""
    radius = patch // 2
    known = (~hole).astype(np.uint8)
    ok = cv2.erode(known, np.ones((patch, patch), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    ok[:radius], ok[-radius:], ok[:, :radius], ok[:, -radius:] = False, False, False, False
    return ok


class _Field:
    """Nearest-neighbour field of one pyramid level: for each target patch (one that
    touches the hole) the centre of its best source patch so far, and its distance."""

    def __init__(self, image: np.ndarray, hole: np.ndarray, patch: int, rng: np.random.Generator) -> None:
        self.image, self.hole, self.patch, self.rng = image, hole, patch, rng
        self.radius = r = patch // 2
        self.h, self.w = hole.shape
        self.valid = _sources(hole, patch)
        if not self.valid.any():
            raise ValueError(f"no {patch}x{patch} patch lies wholly outside the hole in a "
                             f"{self.w}x{self.h} crop: the hole is too large for its surroundings")
        touching = cv2.dilate(hole.astype(np.uint8), np.ones((patch, patch), np.uint8)) > 0
        self.ty, self.tx = (a.astype(np.int32) for a in np.nonzero(touching))
        self.wp = self.w + 2 * r
        dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
        self.offsets = (dy * self.wp + dx).ravel().astype(np.int64)
        self.target_flat = (self.ty + r).astype(np.int64) * self.wp + (self.tx + r)
        hy, hx = np.nonzero(hole)  # row-major, the order of image[hole]
        self.hole_flat = (hy + r).astype(np.int64) * self.wp + (hx + r)
        self.vy, self.vx = (a.astype(np.int32) for a in np.nonzero(self.valid))
        pick = rng.integers(0, self.vy.size, self.ty.size)
        self.sy, self.sx = self.vy[pick].copy(), self.vx[pick].copy()
        self.cost = np.full(self.ty.size, np.inf, np.float32)

    def inherit(self, coarse: _Field) -> None:
        """Start from the coarser level's field: each target takes the doubled offset of
        its parent, re-drawn at random where that lands on an invalid source."""
        cy = np.minimum(self.ty // 2, coarse.h - 1)
        cx = np.minimum(self.tx // 2, coarse.w - 1)
        dense_y, dense_x = coarse.dense()
        sy = 2 * dense_y[cy, cx] + (self.ty - 2 * cy)
        sx = 2 * dense_x[cy, cx] + (self.tx - 2 * cx)
        ok = self._usable(sy, sx)
        self.sy = np.where(ok, sy, self.sy).astype(np.int32)
        self.sx = np.where(ok, sx, self.sx).astype(np.int32)
        self.cost[:] = np.inf

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """Source centre per pixel of the level: the match for targets, the pixel itself elsewhere."""
        yy, xx = np.mgrid[0:self.h, 0:self.w].astype(np.int32)
        yy[self.ty, self.tx], xx[self.ty, self.tx] = self.sy, self.sx
        return yy, xx

    def _usable(self, sy: np.ndarray, sx: np.ndarray) -> np.ndarray:
        inside = (sy >= 0) & (sy < self.h) & (sx >= 0) & (sx < self.w)
        ok = np.zeros(sy.shape, bool)
        ok[inside] = self.valid[sy[inside], sx[inside]]
        return ok

    def _padded(self) -> np.ndarray:
        r = self.radius
        return cv2.copyMakeBorder(self.image, r, r, r, r, cv2.BORDER_REFLECT).reshape(-1, 3)

    def _gather(self, flat_image: np.ndarray, centres: np.ndarray) -> np.ndarray:
        return np.take(flat_image, centres[:, None] + self.offsets[None, :], axis=0)  # ~6x faster than [ ]

    def _source_flat(self, sy: np.ndarray, sx: np.ndarray) -> np.ndarray:
        return (sy + self.radius).astype(np.int64) * self.wp + (sx + self.radius)

    def search(self, sweeps: int) -> None:
        """PatchMatch sweeps against the current image: re-score, propagate, random search."""
        flat = self._padded()
        targets = self._gather(flat, self.target_flat)
        self.cost = self._distance(flat, targets, np.arange(self.ty.size), self.sy, self.sx)
        for sweep in range(sweeps):
            jump = _JUMPS[(sweep + int(self.rng.integers(0, len(_JUMPS)))) % len(_JUMPS)]
            for step in (1, jump):
                for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                    self._try(flat, targets, *self._propagated(dy * step, dx * step))
            for sy, sx in self._random_candidates():
                self._try(flat, targets, sy, sx)

    def _propagated(self, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
        """Candidates from the neighbour at (-dy, -dx): its match shifted by (dy, dx)."""
        dense_y, dense_x = self.dense()
        ny = np.clip(self.ty - dy, 0, self.h - 1)
        nx = np.clip(self.tx - dx, 0, self.w - 1)
        return dense_y[ny, nx] + (self.ty - ny), dense_x[ny, nx] + (self.tx - nx)

    def _random_candidates(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Random search around the current match at radii halving down to one pixel,
        plus one candidate drawn anywhere among the sources."""
        out = []
        reach = float(max(self.h, self.w))
        while reach >= 1.0:
            jy = np.rint(self.rng.uniform(-reach, reach, self.ty.size)).astype(np.int32)
            jx = np.rint(self.rng.uniform(-reach, reach, self.ty.size)).astype(np.int32)
            out.append((self.sy + jy, self.sx + jx))
            reach /= 2.0
        pick = self.rng.integers(0, self.vy.size, self.ty.size)
        out.append((self.vy[pick], self.vx[pick]))
        return out

    def _try(self, flat: np.ndarray, targets: np.ndarray, sy: np.ndarray, sx: np.ndarray) -> None:
        which = np.nonzero(self._usable(sy, sx))[0]
        if which.size == 0:
            return
        cost = self._distance(flat, targets, which, sy[which], sx[which])
        better = cost < self.cost[which]
        chosen = which[better]
        self.sy[chosen], self.sx[chosen] = sy[which][better], sx[which][better]
        self.cost[chosen] = cost[better]

    def _distance(self, flat: np.ndarray, targets: np.ndarray, which: np.ndarray,
                  sy: np.ndarray, sx: np.ndarray) -> np.ndarray:
        """Sum of squared differences between target patches `which` and sources (sy, sx)."""
        diff = self._gather(flat, self._source_flat(sy, sx)) - targets[which]
        return np.einsum("npc,npc->n", diff, diff)

    def vote(self, weighted: bool) -> None:
        """Each hole pixel becomes the weighted mean of what the overlapping matches put on it;
        close matches weigh more (Wexler et al.'s exp(-d / 2σ²), σ² the 75th percentile)."""
        flat = self._padded()
        values = self._gather(flat, self._source_flat(self.sy, self.sx))  # (N, P, 3)
        if weighted and np.isfinite(self.cost).all():
            per_pixel = self.cost / (self.offsets.size * 3.0)
            scale = max(float(np.percentile(per_pixel, 75)), 1.0)
            weight = np.exp(-per_pixel / (2.0 * scale)).astype(np.float32)
        else:
            weight = np.ones(self.ty.size, np.float32)
        destination = (self.target_flat[:, None] + self.offsets[None, :]).ravel()
        size = flat.shape[0]
        weights = np.repeat(weight, self.offsets.size)
        total = np.bincount(destination, weights=weights, minlength=size)
        spots = self.hole_flat
        for c in range(3):
            summed = np.bincount(destination, weights=weights * values[..., c].ravel(), minlength=size)
            channel = self.image[..., c]
            channel[self.hole] = (summed[spots] / np.maximum(total[spots], 1e-12)).astype(np.float32)
