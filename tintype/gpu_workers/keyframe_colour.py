"""Colouring a film from keyframes in the pool: the plan over the whole film, and a chunk.

The plan (gpu.plan_colour, once per job) streams the film at a low resolution, finds its
shots, picks automatic keyframes for shots that have none of the user's, colours them
with the model at its best setting, and runs the cheap low-resolution propagation over
every shot (`media.propagate.shot_chroma`) to learn the colour entering each chunk: the
chroma at each chunk's first and last frame. Chunks then fan out as usual; each carries
the keyframes inside it and those two borders through its own frames at the working
resolution (`media.propagate.propagate`) and refines the chroma along its full-resolution
lightness. So a long shot with one keyframe still spreads over every worker, and two
neighbouring chunks agree at their border because both start from the same pass.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Sequence

import cv2
import numpy as np
import torch

from tintype.gpu_workers.colorize import colorize_frames, half_lightness, render_lightness
from tintype.gpu_workers.models.contracts import Colorizer
from tintype.gpu_workers.reference_colour import transfer_reference
from tintype.media import propagate as pg
from tintype.media.color import merge_lightness_chroma, rgb_to_lab
from tintype.media.reference_fit import Fit, warped_chroma
from tintype.media.yuv import Yuv420, chroma_planes, grey_lightness

PLAN_SHORT_SIDE = 96  # the plan's low resolution: cheap flow, enough to carry colour to a border
WORKING_SHORT_SIDE = 256  # a chunk's propagation resolution; refined to full size after
KEYFRAME_RENDER_SIZE = 384  # the model's best setting for the few frames it colours as keys
SEGMENT_FRAMES = 2400  # the plan chooses keyframes over at most this many frames at a time
MAX_KEY_GAP = 240  # frames: propagate.choose_keyframes' longest gap between automatic keys
REFERENCE_STRIDE = 6  # the plan tries the colour reference on every this-many-th frame


@dataclass
class ColourWindow:
    """What one chunk needs to colour its own frames from keyframes: the keys inside it
    (RGB, any size) and the chroma entering it at its ends (ab at the plan's resolution),
    all by video frame index."""

    first: int
    keyframes: dict[int, np.ndarray] = field(default_factory=dict)
    borders: dict[int, np.ndarray] = field(default_factory=dict)


def keyframe_ab(rgb: np.ndarray) -> np.ndarray:
    """A keyframe's chroma (h, w, 2) float32; its lightness is ignored."""
    return rgb_to_lab(rgb)[..., 1:].copy()


def plan_lightness(frame: np.ndarray) -> np.ndarray:
    """8-bit lightness of a low-resolution RGB frame, as the plan's flow reads it."""
    return cv2.cvtColor(frame, cv2.COLOR_RGB2LAB)[..., 0]


def plan_size(width: int, height: int) -> tuple[int, int]:
    """(w, h) of the plan's frames: the short side at PLAN_SHORT_SIDE, even sides."""
    h, w = pg.working_size(height, width, PLAN_SHORT_SIDE)
    return max(2, w - w % 2), max(2, h - h % 2)


def shots_and_keyframes(lights: Iterator[np.ndarray]) -> tuple[list[range], list[int]]:
    """The shots of a film streamed as low-resolution 8-bit lightness and its automatic
    keyframes, worked out in segments of at most SEGMENT_FRAMES so memory stays bounded
    whatever the film's length (a segment's end counts as a shot's end)."""
    shots: list[range] = []
    chosen: list[int] = []
    segment: list[np.ndarray] = []
    first = 0
    for light in lights:
        segment.append(light)
        if len(segment) == SEGMENT_FRAMES:
            _segment_plan(segment, first, shots, chosen)
            first, segment = first + len(segment), []
    if segment:
        _segment_plan(segment, first, shots, chosen)
    return shots, chosen


def automatic_keys_needed(shots: Sequence[range], auto: Sequence[int], user: Sequence[int],
                          max_gap: int = MAX_KEY_GAP) -> list[int]:
    """The automatic keyframes to colour: all of them in shots without a user keyframe, and
    in a shot with some, only those more than `max_gap` frames from every user keyframe of
    that shot (where the user's colour has faded), so colour never runs out between keys."""
    needed = []
    for t in auto:
        shot = next((s for s in shots if t in s), None)
        near = [u for u in user if shot is not None and u in shot and abs(u - t) <= max_gap]
        if not near:
            needed.append(t)
    return needed


def _segment_plan(segment: list[np.ndarray], first: int, shots: list[range], chosen: list[int]) -> None:
    links = pg.link(segment)
    shots += [range(first + s.start, first + s.stop) for s in pg.shots_of(links)]
    chosen += [first + t for t in pg.choose_keyframes(segment, links=links)]


def colour_keyframe(model: Colorizer, rgb: np.ndarray, render_size: int, saturation: float,
                    reference: np.ndarray | None, fit: Fit | None = None) -> np.ndarray:
    """The model's colour for one automatic keyframe (full size RGB), at its best render
    size, moved toward the job's colour reference when its shot shows it; where `fit`
    places the reference on this frame, the reference's own colours replace the model's."""
    coloured = colorize_frames(model, [rgb], max(render_size, KEYFRAME_RENDER_SIZE), saturation)
    if reference is not None:
        coloured = transfer_reference(coloured, reference)
    if reference is None or fit is None:
        return coloured[0]
    lab = rgb_to_lab(coloured[0])
    placed, weight = warped_chroma(reference, fit, rgb.shape[1], rgb.shape[0])
    ab = lab[..., 1:] * (1 - weight[..., None]) + placed * weight[..., None]
    return merge_lightness_chroma(rgb_to_lab(rgb)[..., 0], ab)


def reference_keys(shots: Sequence[range], fits: Mapping[int, float], user: Sequence[int]) -> dict[int, range]:
    """The frame where the colour reference fits best in each shot that shows it (`fits`:
    `reference_fit.Fit.score` by frame, only frames where it fits), with that shot; shots
    with keyframes of the user's own are left to them."""
    chosen = {}
    for shot in shots:
        tried = {t: n for t, n in fits.items() if t in shot}
        if tried and not any(u in shot for u in user):
            chosen[max(tried, key=lambda t: (tried[t], -t))] = shot
    return chosen


def border_frames(chunks: Sequence[tuple[int, int]]) -> list[int]:
    """The frames whose entering colour the chunks need: each chunk's first and last."""
    return sorted({f for start, count in chunks for f in (start, start + count - 1)})


def borders_to_bytes(borders: Mapping[int, np.ndarray]) -> bytes:
    """The plan's border chroma as one small object (float16 is ample for Lab ab)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{str(t): ab.astype(np.float16) for t, ab in borders.items()})
    return buffer.getvalue()


def borders_from_bytes(data: bytes, wanted: Sequence[int]) -> dict[int, np.ndarray]:
    with np.load(io.BytesIO(data)) as stored:
        return {t: stored[str(t)].astype(np.float32) for t in wanted if str(t) in stored}


def colour_window(frames: Sequence[np.ndarray], window: ColourWindow,
                  fallback: Callable[[np.ndarray], np.ndarray] | None = None) -> list[np.ndarray]:
    """A chunk's own frames (uint8 RGB, full size) coloured from its keys and borders; the
    output's lightness is the input's. `fallback(light_small)` gives the model's chroma
    for what no key reaches (None: the keys' trusted colour is spread instead)."""
    lights = [rgb_to_lab(f)[..., 0] for f in frames]
    h, w = pg.working_size(*lights[0].shape, WORKING_SHORT_SIDE)
    small = [cv2.resize(light, (w, h), interpolation=cv2.INTER_AREA) for light in lights]
    carried = _carry_window(small, window, fallback)
    return [merge_lightness_chroma(light, pg.refine(ab, light, s))
            for light, s, ab in zip(lights, small, carried)]


def colour_window_yuv(frames: Sequence[Yuv420], window: ColourWindow,
                      fallback: Callable[[np.ndarray], np.ndarray] | None = None) -> list[Yuv420]:
    """`colour_window` for 4:2:0 frames: L read from the luma plane, the carried chroma
    refined to chroma resolution along the lightness at that size and converted to Cb/Cr
    there; each output's luma plane is its input's, the very array."""
    h, w = pg.working_size(frames[0].height, frames[0].width, WORKING_SHORT_SIDE)
    halves = [half_lightness(grey_lightness(f.y)) for f in frames]
    small = [_working_lightness(half, f, (w, h)) for half, f in zip(halves, frames)]
    carried = _carry_window(small, window, fallback)
    return [f.with_chroma(*chroma_planes(half, pg.refine(ab, half, s)))
            for f, half, s, ab in zip(frames, halves, small, carried)]


def _working_lightness(half: np.ndarray, frame: Yuv420, size: tuple[int, int]) -> np.ndarray:
    """A 4:2:0 frame's lightness at the working size (w, h), from the chroma-resolution
    lightness when that is at least as large, else from the full-size one."""
    if half.shape[0] >= size[1] and half.shape[1] >= size[0]:
        return cv2.resize(half, size, interpolation=cv2.INTER_AREA)
    light = grey_lightness(frame.y)[:frame.height, :frame.width]
    return cv2.resize(light, size, interpolation=cv2.INTER_AREA)


def _carry_window(small: Sequence[np.ndarray], window: ColourWindow,
                  fallback: Callable[[np.ndarray], np.ndarray] | None) -> list[np.ndarray]:
    """The chroma the window's keys and borders carry onto each working-resolution lightness."""
    local = {t - window.first: keyframe_ab(rgb) for t, rgb in window.keyframes.items()}
    borders = {t - window.first: ab for t, ab in window.borders.items()}
    model = (lambda t: fallback(small[t])) if fallback is not None else None
    return list(pg.propagate([pg.light_u8(s) for s in small], local, model, borders).ab)


def model_fallback(model: Colorizer, render_size: int, saturation: float) -> Callable[[np.ndarray], np.ndarray]:
    """The per-frame model's chroma for a working-resolution lightness (L 0..100), resized
    to it: what fills pixels no keyframe reaches."""
    def predict(light_small: np.ndarray) -> np.ndarray:
        seen = render_lightness(light_small, render_size)
        with torch.inference_mode():
            ab = model.predict_ab(torch.from_numpy(seen[None, None]).float())
        ab = ab.float().cpu().numpy()[0].transpose(1, 2, 0) * float(saturation)
        return pg.resize_ab(ab, *light_small.shape)

    return predict
