"""A job's frames with their film grain taken off, and the grain put back on the results
(the `grain=keep` option; the pixel work is `tintype.media.grain`).

Frames come as 4:2:0 (a chunk that only colorizes) or RGB, all of one kind. 4:2:0 frames
lose their grain from the luma plane only; their results get the source's luma plane
back, the very array, so what the option changes there is what the colorizer sees (a
clean picture, whose colour holds steadier than one read through grain). RGB frames move
every channel by the grain, which keeps a grey pixel grey; their results get the original
grain back outside the masks and synthesised grain inside, and where nothing but the
fill changed a pixel (no colorization), the source pixel itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from tintype.media import grain as film_grain
from tintype.media.yuv import Yuv420

Frame = np.ndarray | Yuv420


def job_seed(job_id: str) -> int:
    """A job's grain seed: the same on every worker that takes one of its chunks."""
    return int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:4], "big")


@dataclass(frozen=True)
class Grain:
    """The grain taken off a window of frames, and the frames as they came."""

    originals: list[Frame]
    layers: list[np.ndarray]  # (H, W) float32 luma grain, one per frame
    seed: int
    first: int  # index in the film of the window's first frame

    def put_back(self, results: Sequence[Frame], keep: slice, masks: Sequence[np.ndarray] | None,
                 recoloured: bool) -> list[Frame]:
        """`results` (the kept frames, restored from the clean ones) with grain again;
        `masks` are the kept frames' filled holes (uint8 0/255)."""
        positions = range(len(self.originals))[keep]
        out = []
        for i, (position, result) in enumerate(zip(positions, results)):
            original = self.originals[position]
            if isinstance(result, Yuv420):
                out.append(original.with_chroma(result.cb, result.cr))
                continue
            hole = masks[i] > 127 if masks is not None else None
            rng = film_grain.frame_seed(self.seed, self.first + position)
            grainy = film_grain.shift_rgb(result, film_grain.restore_grain(self.layers[position], hole, rng))
            if not recoloured:  # outside the holes the result is the source: give it back exactly
                grainy = np.where(hole[..., None], grainy, original) if hole is not None else original
            out.append(grainy)
        return out


def take_off(frames: Sequence[Frame], seed: int, first: int) -> tuple[list[Frame], Grain]:
    """The frames with their grain taken off, and the grain."""
    yuv = bool(frames) and isinstance(frames[0], Yuv420)
    lumas = [f.y.astype(np.float32) if yuv else film_grain.rgb_luma(f) for f in frames]
    cleans = film_grain.separate(lumas)
    layers = [luma - clean for luma, clean in zip(lumas, cleans)]
    if yuv:
        clean_frames: list[Frame] = [
            Yuv420(np.clip(c + 0.5, 0, 255).astype(np.uint8), f.cb, f.cr, f.width, f.height)
            for f, c in zip(frames, cleans)]
    else:
        clean_frames = [film_grain.shift_rgb(f, -g) for f, g in zip(frames, layers)]
    return clean_frames, Grain(list(frames), layers, seed, first)
