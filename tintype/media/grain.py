"""Film grain: taken off the picture before restoration, put back after it.

Grain is random from frame to frame while the picture is not, so a short temporal
average separates them (`separate`): each neighbour within `RADIUS` frames is brought
onto the frame along the optical flow (DIS, computed on blurred frames so that grain
does not steer it) and weighted by how well its *smoothed* self then matches the
frame's (smoothing removes the grain, so the weight measures what the flow missed, not
grain); then a small edge-keeping spatial filter takes the grain that the few averaged
frames leave (and all of it where the flow failed). The grain layer is the frame minus
that clean picture, in luma.

Restoration (inpainting, colorization) runs on the clean picture; afterwards the
original grain goes back where the picture is the source's, and inside filled holes,
where no grain was ever recorded, grain is synthesised (`synthesise`): Gaussian noise
shaped by the frame's measured grain spectrum and scaled to the grain's strength in a
ring around each hole. The noise is seeded by the job and the frame's index in the
film, so a redelivered or differently split chunk gives the same bytes.

Everything works on a 2-D float luma array in the caller's units (a 4:2:0 luma plane,
or RGB luma), on numpy and OpenCV only: CPU workers may use it, nothing imports torch.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from tintype.media.flow import flow, warp

RADIUS = 2  # frames either side of a frame that its clean picture is averaged from
MOTION_SIGMA = 1.5  # Gaussian blur (px) that removes grain before frames are compared
TILE = 32  # side of the tiles the grain's power spectrum is measured on
RING = (3, 12)  # px: the ring around a hole where its grain strength is measured, from..to
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def separate(lumas: Sequence[np.ndarray], radius: int = RADIUS) -> list[np.ndarray]:
    """(H, W) float32 clean pictures of same-sized luma frames, one per frame.

    Frame t's clean picture uses only frames t-radius..t+radius that are in `lumas` (its
    grain strength and motion guard are measured there too), so a chunk that decodes
    `radius` context frames either side of its own frames gets the same clean pictures
    for them as one that decodes the whole film. A single frame (a photograph) is only
    filtered spatially."""
    frames = [np.asarray(f, np.float32) for f in lumas]
    smooth = [cv2.GaussianBlur(f, (0, 0), MOTION_SIGMA) for f in frames]
    guides = [np.clip(s + 0.5, 0, 255).astype(np.uint8) for s in smooth]
    out = []
    for t in range(len(frames)):
        neighbours = [s for s in range(max(0, t - radius), min(len(frames), t + radius + 1)) if s != t]
        if not neighbours:
            out.append(_alone(frames[t]))
            continue
        aligned = [_aligned(frames[s], smooth[s], flow(guides[t], guides[s])) for s in neighbours]
        # Differences to the aligned neighbours: of the raw frames, grain (about twice its
        # variance) and what the flow missed; of the smoothed ones, the grain left after
        # blurring and what the flow missed. Medians read the grain where the flow holds.
        sigma = max(1.0, float(np.median([_spread(frames[t] - raw) for raw, _ in aligned])) / np.sqrt(2.0))
        guard = 3.0 * float(np.median([_spread(smooth[t] - sm) for _, sm in aligned])) + 1.0
        out.append(_spatial(_temporal(frames[t], smooth[t], aligned, guard), sigma))
    return out


def _aligned(frame: np.ndarray, smooth: np.ndarray, field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A neighbour and its smoothed self brought onto the frame's grid along the flow."""
    return warp(frame, field), warp(smooth, field)


def _spread(difference: np.ndarray) -> float:
    """Robust standard deviation of a zero-mean difference (median |d| / 0.6745)."""
    return float(np.median(np.abs(difference)) / 0.6745)


def _temporal(frame: np.ndarray, smooth: np.ndarray, aligned: list[tuple[np.ndarray, np.ndarray]],
              guard: float) -> np.ndarray:
    """The frame averaged with its aligned neighbours, each weighted down where its
    smoothed self differs from the frame's by more than the guard (the flow missed:
    occlusion, new picture)."""
    total = frame.copy()
    weight = np.ones_like(total)
    for raw, smoothed in aligned:
        w = np.exp(-0.5 * np.square((smoothed - smooth) / guard))
        total += w * raw
        weight += w
    return total / weight


def _alone(frame: np.ndarray) -> np.ndarray:
    """A frame without neighbours (a photograph): a wider edge-keeping filter, its range
    set by what a 2 px blur takes off (grain clumps, which the finest differences miss)."""
    sigma = max(1.0, _spread(frame - cv2.GaussianBlur(frame, (0, 0), 2.0)))
    return cv2.bilateralFilter(frame, 9, 2.5 * sigma, 2.5)


def _spatial(picture: np.ndarray, sigma: float) -> np.ndarray:
    """An edge-keeping pass that removes grain the temporal average left: differences
    within a few grain deviations are averaged, edges of the picture are not."""
    return cv2.bilateralFilter(picture, 5, 2.5 * sigma, 1.5)


def rgb_luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W) float32 luma (BT.601 weights, 0..255) of a uint8 RGB frame."""
    return cv2.transform(rgb.astype(np.float32), _LUMA[None, :]).reshape(rgb.shape[:2])


def shift_rgb(rgb: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """`rgb` with `delta` (H, W) added to every channel, rounded and saturated: a change of
    luma by `delta` that leaves a grey pixel grey."""
    out = rgb.astype(np.float32) + delta[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def power_spectrum(grain: np.ndarray, valid: np.ndarray | None = None, tile: int = TILE) -> np.ndarray:
    """(tile, tile) mean power spectrum of the grain over the tiles wholly inside `valid`
    (all tiles without it), each tile's mean taken off and a Hann window applied; DC at
    [0, 0]. Normalised so a white noise of variance v reads v at every frequency. Zeros
    when no tile fits."""
    grain = np.asarray(grain, np.float32)
    window = np.outer(np.hanning(tile), np.hanning(tile)).astype(np.float32)
    norm = float(np.square(window).sum())
    total, count = np.zeros((tile, tile), np.float64), 0
    for y in range(0, grain.shape[0] - tile + 1, tile // 2):
        for x in range(0, grain.shape[1] - tile + 1, tile // 2):
            if valid is not None and not valid[y:y + tile, x:x + tile].all():
                continue
            patch = grain[y:y + tile, x:x + tile]
            total += np.abs(np.fft.fft2((patch - patch.mean()) * window)) ** 2 / norm
            count += 1
    return (total / count).astype(np.float32) if count else total.astype(np.float32)


def radial_nps(spectrum: np.ndarray, bins: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, power): a power spectrum averaged over rings of radial frequency, in
    cycles per pixel from 0 to 0.5, DC left out. The noise power spectrum (NPS) film
    people compare grain by."""
    size = spectrum.shape[0]
    f = np.fft.fftfreq(size)
    radius = np.hypot(*np.meshgrid(f, f, indexing="ij"))
    edges = np.linspace(0.0, 0.5, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    power = np.array([spectrum[(radius > lo) & (radius <= hi)].mean() for lo, hi in zip(edges[:-1], edges[1:])])
    return centres, power


def shaping_kernel(spectrum: np.ndarray) -> np.ndarray:
    """A (tile, tile) float32 filter that turns white noise into noise of this spectrum's
    shape (its amplitude response is the spectrum's square root, zero phase), scaled to
    unit output variance. A flat spectrum (or none) gives a delta: white grain."""
    amplitude = np.sqrt(np.maximum(spectrum, 0.0)).astype(np.float64)
    amplitude[0, 0] = 0.0  # grain has no mean
    if not amplitude.any():
        amplitude = np.ones_like(amplitude)
    kernel = np.fft.fftshift(np.real(np.fft.ifft2(amplitude)))
    energy = float(np.square(kernel).sum())
    return (kernel / np.sqrt(energy)).astype(np.float32)


def frame_seed(job_seed: int, frame: int) -> np.random.Generator:
    """The noise source of one frame of one job: the same whoever processes it."""
    return np.random.default_rng([int(job_seed) & 0xFFFFFFFF, int(frame)])


def synthesise(grain: np.ndarray, hole: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H, W) float32 grain for the pixels of `hole` (bool), zero elsewhere.

    Its spectrum is the frame's grain spectrum measured outside the holes; each connected
    hole gets the standard deviation of `grain` in a ring around it (the grain's strength
    follows the picture's brightness, so the surroundings say best what belongs inside)."""
    out = np.zeros(grain.shape, np.float32)
    if not hole.any():
        return out
    near = _dilate(hole, RING[0])
    kernel = shaping_kernel(power_spectrum(grain, ~near))
    noise = cv2.filter2D(rng.standard_normal(grain.shape).astype(np.float32), -1, kernel,
                         borderType=cv2.BORDER_REFLECT)
    count, labels = cv2.connectedComponents(hole.astype(np.uint8), connectivity=8)
    for label in range(1, count):
        one = labels == label
        ring = _dilate(one, RING[1]) & ~_dilate(one, RING[0]) & ~near
        strength = float(grain[ring].std()) if ring.sum() > 16 else float(grain[~near].std())
        out[one] = noise[one] * strength
    return out


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def restore_grain(grain: np.ndarray, hole: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """The grain to add to a restored frame's clean luma: the original outside `hole`,
    synthesised inside it."""
    if hole is None or not hole.any():
        return grain
    return np.where(hole, synthesise(grain, hole, rng), grain).astype(np.float32)
