"""Keyframe colour: carry a keyframe's chroma through its shot along optical flow.

A keyframe is a colour picture of one frame; its chroma (Lab a, b) is carried to the
other frames of its shot, forward and backward, and the film's own lightness is kept
exactly (only ab is produced). Everything here works at a *working resolution* (e.g. a
short side of 256); `refine` brings the result to full size along the full-resolution
lightness (`media.guided`).

How colour travels, and why:

* Drift. Carrying ab frame to frame by warping resamples it once per frame, and repeated
  bilinear resampling blurs it away. Instead each frame keeps the *composed* flow back to
  its keyframe (`flow.compose`, one step per frame) and samples the keyframe's ab
  directly: one resampling of colour at any distance. Every `anchor_every` frames the
  composed flow is checked against a direct flow to the keyframe (started from the
  composed flow itself); where that direct flow is consistent it replaces the chain,
  which both removes accumulated flow error and recovers pixels the chain lost.
* Lost pixels. Where the chain has lost the key (an arm swung, a dog in mid-jump, a
  passer-by in front for a moment), a direct flow from the frame to the key often finds
  the surface again; its sample is taken where the key's lightness around it matches.
* Trust. Each pixel's confidence is the product along the chain of the pairs'
  forward–backward consistency (`flow.consistent`) and a per-frame decay: occluded and
  newly revealed pixels get none, and far frames count less than near ones.
* Scene cuts. Consecutive frames are joined by `media.scenecut.join` (the one cut test,
  whose flows are reused); colour never crosses a cut.
* Two keyframes. Between two keys of one shot both contribute, weighted by their
  confidence and by temporal distance (linear: the nearer key counts more), so occluded
  parts of one are filled by the other.
* Where a pair's flow fails its check, the key's colour still counts a little (weight
  `untrusted`) if the lightness it was sampled from matches the frame's: most such pixels
  are the same surface, and the keyframe's colour beats any model there.
* What no key reaches is filled by spreading the trusted propagated colour (normalised
  convolution within bands of lightness, then by place, then global) on top of a share
  `fallback_detail` of the fallback (e.g. the per-frame model's ab): the fallback moved
  toward the keys' palette. On the real clips the model's own detail made the fill worse
  (bench.keyframes), so by default none of it is kept where any key reaches the frame; a
  frame no key reaches (a shot without keys) gets the fallback as it is. Nothing is
  smeared along untrusted flow.

Bounded memory: `propagate` runs on a window of frames (a chunk); colour entering the
window from outside comes in as `borders`, soft keyframes at the window's ends with less
confidence than true keys. `shot_chroma` is the cheap whole-video pass at low resolution
that produces those borders, streaming, holding only the frames since the last keyframe.

Arrays: lightness (h, w) uint8 0..255 (OpenCV's 8-bit L) or float L 0..100; ab
(h, w, 2) float32 in Lab units (about -128..127); confidences (h, w) float32 in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import cv2
import numpy as np

from tintype.media import flow as fl
from tintype.media import scenecut
from tintype.media.guided import upsample_ab

Fallback = Sequence[np.ndarray] | Callable[[int], np.ndarray | None] | None


@dataclass(frozen=True)
class Options:
    """Tuning of the propagation (the defaults are what the keyframe benchmark measured)."""

    decay: float = 0.985  # confidence kept per frame of distance from a key
    border_confidence: float = 0.5  # a soft keyframe (a window's border) against a true one
    anchor_every: int = 6  # frames between checks of the chain against a direct flow
    fill_strength: float = 0.01  # summed confidence at which propagation and the fill weigh the same
    fallback_detail: float = 0.0  # share of the fallback's own variation kept in the fill (0 measured best)
    fill_sigma: float = 0.08  # spread of the fallback's correction, as a share of the short side
    untrusted: float = 0.3  # weight of a key's colour where the flow failed its check but lightness matches
    lightness_tolerance: float = 12.0  # 8-bit lightness difference at which that weight falls to e^-1/2
    direct_below: float = 0.5  # chain trust (share of the key's level) under which a direct flow is tried
    match_patch: int = 5  # side of the patch over which a direct flow's lightness must match
    fill_bands: int = 8  # lightness bands of the fill (1: spread by place only)


DEFAULT_OPTIONS = Options()


@dataclass
class Propagation:
    """ab (h, w, 2) float32 and confidence (h, w) float32 per frame; `cuts` lists the first
    frame of each new shot (window indices)."""

    ab: list[np.ndarray]
    confidence: list[np.ndarray]
    cuts: list[int] = field(default_factory=list)


def light_u8(light: np.ndarray) -> np.ndarray:
    """8-bit lightness for flow from uint8 (as is) or float L in [0, 100]."""
    if light.dtype == np.uint8:
        return light
    return cv2.convertScaleAbs(light, alpha=2.55)


def working_size(height: int, width: int, short_side: int = 256) -> tuple[int, int]:
    """(h, w) with the short side at `short_side` (never upscaled), aspect kept."""
    scale = min(1.0, short_side / float(min(height, width)))
    return max(8, round(height * scale)), max(8, round(width * scale))


def resize_ab(ab: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W, 2) chroma brought to (height, width): area-averaged down, bilinear up."""
    if ab.shape[:2] == (height, width):
        return ab.astype(np.float32, copy=False)
    shrink = height * width < ab.shape[0] * ab.shape[1]
    return cv2.resize(ab.astype(np.float32, copy=False), (width, height),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def refine(ab: np.ndarray, light: np.ndarray, light_small: np.ndarray | None = None) -> np.ndarray:
    """Working-resolution ab (h, w, 2) to the size of the full lightness `light` (H, W),
    colour edges following its edges (`media.guided.upsample_ab`). `light_small` is the
    working lightness (L 0..100 or uint8); derived from `light` when not given."""
    if light_small is not None and light_small.dtype == np.uint8:
        light_small = light_small.astype(np.float32) / np.float32(2.55)
    full = light.astype(np.float32) / np.float32(2.55) if light.dtype == np.uint8 else light
    return upsample_ab(ab, full, light_small)


# ---------------------------------------------------------------------------- links


@dataclass
class Link:
    """The flows joining frame t-1 and t of one shot: `pair` from `scenecut.join`, and the
    consistency mask on t-1's grid, computed when first needed."""

    pair: fl.PairFlow
    _back_mask: np.ndarray | None = None

    def step(self, forward: bool) -> tuple[np.ndarray, np.ndarray]:
        """(flow, trusted) on the grid of the frame being reached: going forward that is t,
        whose flow points back to t-1; going backward it is t-1, pointing to t."""
        if forward:
            return self.pair.to_prev, self.pair.mask
        if self._back_mask is None:
            self._back_mask = fl.consistent(self.pair.to_next, self.pair.to_prev)
        return self.pair.to_next, self._back_mask


def link(lights: Sequence[np.ndarray]) -> list[Link | None]:
    """links[t] joins frame t-1 to t; None at t = 0 and where a scene cut lies between."""
    u8 = [light_u8(light) for light in lights]
    out: list[Link | None] = [None]
    for previous, light in zip(u8, u8[1:]):
        pair = scenecut.join(previous, light)
        out.append(Link(pair) if pair is not None else None)
    return out


def shots_of(links: Sequence[Link | None]) -> list[range]:
    """The shots as ranges of frame indices."""
    starts = [t for t, joined in enumerate(links) if joined is None]
    return [range(s, e) for s, e in zip(starts, starts[1:] + [len(links)])]


# ---------------------------------------------------------------------------- carrying


@dataclass
class _Key:
    index: int
    ab: np.ndarray
    confidence: float


def _direct(light: np.ndarray, key_light: np.ndarray, initial: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A direct flow from a frame to its keyframe, started from the composed chain, and
    the pixels where it holds: consistent with the flow back, computed from scratch."""
    there = fl.flow_from(light, key_light, initial)
    back = fl.flow_from(key_light, light, fl.invert(there))
    return there, fl.consistent(there, back)


def carry(lights: Sequence[np.ndarray], links: Sequence[Link | None], key: _Key, stop: int,
          options: Options = DEFAULT_OPTIONS) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(t, ab, confidence) for each frame from the key toward `stop` (exclusive; below the
    key's index goes backward), ending early at a cut. ab samples the keyframe directly
    through the composed flow; confidence includes the key's own."""
    forward = stop > key.index
    step = 1 if forward else -1
    h, w = key.ab.shape[:2]
    composed = np.zeros((h, w, 2), np.float32)
    trust = np.full((h, w), key.confidence, np.float32)
    key_light = light_u8(lights[key.index])
    key_light_f = key_light.astype(np.float32)
    spread = np.float32(-0.5 / options.lightness_tolerance ** 2)
    for t in range(key.index + step, stop, step):
        joined = links[t] if forward else links[t + 1]
        if joined is None:
            return
        move, trusted = joined.step(forward)
        composed = fl.compose(move, composed)
        trust = fl.warp(trust, move)
        trust *= trusted
        trust *= np.float32(options.decay)
        light = light_u8(lights[t])
        if options.anchor_every and abs(t - key.index) % options.anchor_every == 0:
            composed, trust = _anchor(light, key_light, composed, trust, key, abs(t - key.index), options)
        # Where the chain failed its check, the key's colour still counts a little when the
        # lightness it was sampled from matches the frame's (the same surface, most likely).
        match = _match(key_light_f, composed, light, spread)
        level = np.float32(key.confidence * options.decay ** abs(t - key.index))
        floor = np.float32(options.untrusted) * level
        ab, confidence = fl.warp(key.ab, composed), np.maximum(trust, floor * match)
        lost = trust < np.float32(options.direct_below) * level
        if lost.any():
            # Where the chain lost the key, the direct flow's sample replaces it if the key's
            # lightness around that sample matches the frame's better.
            direct_ab, direct_match = _direct_sample(light, key_light, key_light_f, key.ab, composed, spread,
                                                     options.match_patch)
            better = lost & (direct_match > match)
            ab = np.where(better[..., None], direct_ab, ab)
            confidence = np.where(better, np.maximum(confidence, floor * direct_match), confidence)
        yield t, ab, confidence


def _match(key_light: np.ndarray, field: np.ndarray, light: np.ndarray, spread: np.float32,
           patch: int = 1) -> np.ndarray:
    """How well the key's lightness sampled through `field` matches the frame's, 1 = equal,
    over a patch (a single pixel's lightness says little in a flat region)."""
    difference = cv2.subtract(fl.warp(key_light, field), light, dtype=cv2.CV_32F)
    square = difference * difference
    if patch > 1:
        square = cv2.blur(square, (patch, patch))
    return np.exp(square * spread)


def _direct_sample(light: np.ndarray, key_light: np.ndarray, key_light_f: np.ndarray, key_ab: np.ndarray,
                   composed: np.ndarray, spread: np.float32, patch: int) -> tuple[np.ndarray, np.ndarray]:
    """The key's ab through a direct flow from the frame to the key (seeded by the chain),
    and how well the key's lightness matches there over a patch. Where the chain lost the
    key (a moving arm, a dog in mid-jump) this often finds the surface again: +0.2 dB for
    the first frame as key on the real clips (bench.keyframes), +1 dB on the fastest."""
    direct = fl.flow_from(light, key_light, composed)
    return fl.warp(key_ab, direct), _match(key_light_f, direct, light, spread, patch)


def _anchor(light: np.ndarray, key_light: np.ndarray, composed: np.ndarray, trust: np.ndarray, key: _Key,
            distance: int, options: Options) -> tuple[np.ndarray, np.ndarray]:
    """Replace the chain by a direct flow to the key where that flow is consistent."""
    direct, holds = _direct(light, key_light, composed)
    level = np.float32(key.confidence * options.decay ** distance)
    gap = direct - composed
    agrees = gap[..., 0] ** 2 + gap[..., 1] ** 2 < 4.0
    take = holds & (agrees | (trust < 0.5 * level))
    composed = np.where(take[..., None], direct, composed)
    trust = np.where(take, np.maximum(trust, level), trust)
    return composed, trust.astype(np.float32, copy=False)


# ---------------------------------------------------------------------------- blending


def _fallback_of(fallback: Fallback) -> Callable[[int], np.ndarray | None]:
    if fallback is None:
        return lambda t: None
    if callable(fallback):
        return fallback
    return lambda t: fallback[t]


def _spread(values: np.ndarray, weight: np.ndarray, sigma: float, light: np.ndarray | None = None,
            bands: int = 1) -> np.ndarray:
    """Normalised convolution of (h, w, 2) values with (h, w) weights: each pixel gets the
    weighted mean of its neighbourhood (Gaussian `sigma` px), and the weighted global mean
    where the neighbourhood holds no weight. Computed at a quarter size (it is smooth).

    With the frame's lightness `light` and `bands` > 1, the mean is taken within soft
    (triangular) bands of lightness, each pixel mixing the two bands it lies between:
    revealed sky takes the colour of the sky beside it, not of the dark roof it also
    borders. Where a band holds no colour nearby, the mean by place alone."""
    h, w = weight.shape
    small = (max(4, w // 4), max(4, h // 4))
    wv = cv2.resize(values * weight[..., None], small, interpolation=cv2.INTER_AREA)
    ws = cv2.resize(weight, small, interpolation=cv2.INTER_AREA)
    total = float(ws.sum())
    mean = (wv.reshape(-1, 2).sum(0) / total if total > 1e-6 else np.zeros(2)).astype(np.float32)
    s = max(1.0, sigma / 4.0)
    plain = _normalised(wv, ws, s, mean)
    if light is None or bands < 2:
        return cv2.resize(plain, (w, h), interpolation=cv2.INTER_LINEAR)
    level = light_u8(light).astype(np.float32) * np.float32((bands - 1) / 255.0)
    level_small = cv2.resize(level, small, interpolation=cv2.INTER_AREA)
    fields = []
    for band in range(bands):
        share = np.maximum(0.0, 1.0 - np.abs(level_small - np.float32(band)))
        fields.append(_normalised(wv * share[..., None], ws * share, s, plain))
    stack = cv2.resize(np.concatenate(fields, axis=2), (w, h), interpolation=cv2.INTER_LINEAR)
    stack = stack.reshape(h * w, bands, 2)
    below = np.clip(level.astype(np.int64), 0, bands - 2).ravel()
    pixels = np.arange(h * w)
    beneath, above = stack[pixels, below], stack[pixels, below + 1]
    frac = (level.ravel() - below)[:, None]
    return (beneath + frac * (above - beneath)).reshape(h, w, 2).astype(np.float32)


def _normalised(wv: np.ndarray, ws: np.ndarray, s: float, prior: np.ndarray) -> np.ndarray:
    """Blurred weighted sums over blurred weights; `prior` where the weights vanish."""
    eps = np.float32(1e-3)
    return (cv2.GaussianBlur(wv, (0, 0), s) + eps * prior) / (cv2.GaussianBlur(ws, (0, 0), s) + eps)[..., None]


def blend(total: np.ndarray, weight: np.ndarray, fallback: np.ndarray | None,
          options: Options = DEFAULT_OPTIONS, light: np.ndarray | None = None) -> np.ndarray:
    """The propagated mean total / weight, with the fill (the trusted colour spread, by
    place and by the frame's lightness `light`, over a share of the fallback) taking over
    as the summed confidence `weight` goes to 0; the fallback as it is when nothing
    reaches the frame."""
    h, w = weight.shape
    if not (weight > 1e-3).any():  # no key reaches this frame: the fallback as it is
        return fallback.astype(np.float32) if fallback is not None else np.zeros((h, w, 2), np.float32)
    propagated = total / np.maximum(weight, 1e-6)[..., None]
    base = (fallback.astype(np.float32) * np.float32(options.fallback_detail) if fallback is not None
            else np.zeros((h, w, 2), np.float32))
    sigma = options.fill_sigma * min(h, w)
    filled = base + _spread(propagated - base, np.minimum(weight, 1.0), sigma, light, options.fill_bands)
    alpha = (weight / (weight + np.float32(options.fill_strength)))[..., None]
    return (alpha * propagated + (1 - alpha) * filled).astype(np.float32)


def _needed(fallback_at: Callable[[int], np.ndarray | None], t: int, weight: np.ndarray,
            options: Options) -> np.ndarray | None:
    """The fallback of frame t, asked for only when `blend` uses it (it may be the model,
    the costliest step): where no key reaches the frame, or when the fill keeps some of it."""
    if options.fallback_detail > 0 or not (weight > 1e-3).any():
        return fallback_at(t)
    return None


def _keys_of(shot: range, keyframes: Mapping[int, np.ndarray], borders: Mapping[int, np.ndarray],
             size: tuple[int, int], options: Options) -> list[_Key]:
    keys = {t: _Key(t, resize_ab(ab, *size), options.border_confidence) for t, ab in borders.items() if t in shot}
    keys.update({t: _Key(t, resize_ab(ab, *size), 1.0) for t, ab in keyframes.items() if t in shot})
    return [keys[t] for t in sorted(keys)]


def propagate(lights: Sequence[np.ndarray], keyframes: Mapping[int, np.ndarray], fallback: Fallback = None,
              borders: Mapping[int, np.ndarray] | None = None, options: Options = DEFAULT_OPTIONS,
              links: Sequence[Link | None] | None = None) -> Propagation:
    """Keyframe chroma carried through a window of frames.

    lights: the window's lightness at the working resolution, (h, w) each.
    keyframes: {window index: ab} true keyframes (any size; resized to (h, w)).
    fallback: ab per frame for what no key reaches (a sequence or a function of the window
        index returning (h, w, 2) or None), e.g. the per-frame model; None: spread the
        trusted colour.
    borders: {window index: ab} soft keyframes, the chroma entering the window from outside
        (`shot_chroma` at the window's first and last frame); they count
        `options.border_confidence` against a true key, and a true key at the same index
        wins.
    links: the consecutive flows (`link(lights)`), when the caller has them already.
    """
    n = len(lights)
    if n == 0:
        return Propagation([], [])
    h, w = lights[0].shape
    links = list(links) if links is not None else link(lights)
    fallback_at = _fallback_of(fallback)
    total = [np.zeros((h, w, 2), np.float32) for _ in range(n)]
    weight = [np.zeros((h, w), np.float32) for _ in range(n)]
    exact: dict[int, np.ndarray] = {}
    shots = shots_of(links)
    for shot in shots:
        keys = _keys_of(shot, keyframes, borders or {}, (h, w), options)
        for i, key in enumerate(keys):
            if key.confidence >= 1.0:
                exact[key.index] = key.ab
            total[key.index] += key.ab * key.confidence
            weight[key.index] += key.confidence
            before = keys[i - 1].index if i > 0 else None
            after = keys[i + 1].index if i + 1 < len(keys) else None
            _accumulate(lights, links, key, after if after is not None else shot.stop, after, total, weight, options)
            _accumulate(lights, links, key, before if before is not None else shot.start - 1, before, total, weight,
                        options)
    ab, confidence = [], []
    for t in range(n):
        ab.append(exact[t] if t in exact else blend(total[t], weight[t], _needed(fallback_at, t, weight[t], options),
                                                     options, lights[t]))
        confidence.append(np.minimum(weight[t], 1.0))
        total[t] = weight[t] = None  # type: ignore[call-overload]
    return Propagation(ab, confidence, [s.start for s in shots[1:]])


def _accumulate(lights: Sequence[np.ndarray], links: Sequence[Link | None], key: _Key, stop: int,
                other: int | None, total: list[np.ndarray], weight: list[np.ndarray], options: Options) -> None:
    """Add one key's carried colour to the frames toward `stop`; with another key at
    `other` (== stop), weighted linearly by distance between the two."""
    for t, ab, trust in carry(lights, links, key, stop, options):
        if other is not None:
            trust = trust * np.float32(abs(other - t) / abs(other - key.index))
        total[t] += ab * trust[..., None]
        weight[t] += trust


# ---------------------------------------------------------------------------- whole shots


def shot_chroma(lights: Iterable[np.ndarray], keyframes: Mapping[int, np.ndarray], at: Iterable[int],
                fallback: Fallback = None, options: Options = DEFAULT_OPTIONS) -> Iterator[tuple[int, np.ndarray]]:
    """The cheap whole-video pass: (index, ab) at each frame in `at`, in order, from
    lightness streamed at a low resolution (e.g. a short side of 96).

    The result at a frame depends only on the keys on either side of it in its shot, so
    frames are buffered from one key (or cut) to the next and the buffer is propagated
    and dropped there: memory holds the longest keyframe gap at this resolution
    (`choose_keyframes(max_gap=...)` bounds it). Equal to `propagate` over the whole
    sequence at this resolution. Use the ab as `borders` of the chunks' `propagate`.
    """
    wanted = sorted(set(at))
    fallback_at = _fallback_of(fallback)
    buffer: list[np.ndarray] = []
    links: list[Link | None] = []
    first = 0  # video index of buffer[0]
    for index, light in enumerate(lights):
        light = light_u8(light)
        joined = scenecut.join(buffer[-1], light) if buffer else None
        if buffer and joined is None:  # a cut: the buffered part of the shot is complete
            yield from _flush(buffer, links, first, keyframes, wanted, fallback_at, options)
            buffer, links, first = [], [], index
        buffer.append(light)
        links.append(Link(joined) if joined is not None else None)
        if index in keyframes and len(buffer) > 1:
            yield from _flush(buffer, links, first, keyframes, wanted, fallback_at, options)
            buffer, links, first = [light], [None], index
    if buffer:
        yield from _flush(buffer, links, first, keyframes, wanted, fallback_at, options, last=True)


def _flush(buffer: list[np.ndarray], links: list[Link | None], first: int, keyframes: Mapping[int, np.ndarray],
           wanted: list[int], fallback_at: Callable[[int], np.ndarray | None], options: Options,
           last: bool = False) -> Iterator[tuple[int, np.ndarray]]:
    """Propagate one buffered stretch (its keys at its ends) and yield the wanted frames;
    the stretch's last frame is yielded by the next stretch when it is a key shared with it."""
    end = first + len(buffer)
    shared_end = not last and (end - 1) in keyframes and len(buffer) > 1
    todo = [t for t in wanted if first <= t < (end - 1 if shared_end else end)]
    if not todo:
        return
    local_keys = {t - first: ab for t, ab in keyframes.items() if first <= t < end}
    result = propagate(buffer, local_keys, lambda t: fallback_at(t + first), options=options, links=links)
    for t in todo:
        yield t, result.ab[t - first]


# ---------------------------------------------------------------------------- keyframes


def sharpness(light: np.ndarray) -> float:
    """Variance of the Laplacian: higher for a sharper frame (less motion blur)."""
    return float(cv2.Laplacian(light_u8(light), cv2.CV_32F).var())


def choose_keyframes(lights: Sequence[np.ndarray], min_trusted: float = 0.6, max_gap: int = 240,
                     links: Sequence[Link | None] | None = None, min_gap: int = 8) -> list[int]:
    """Frames to colour as keyframes: per shot the sharpest frame of its middle third (it
    reaches the whole shot in the fewest steps), then, walking out from each key, a new
    key wherever the share of pixels whose flow is trusted back to the last key falls below
    `min_trusted` (but not within `min_gap` frames of it: on fast motion every frame would
    be a key, each a fresh guess of the model) or `max_gap` frames have passed. Cheap at a
    low resolution."""
    links = list(links) if links is not None else link(lights)
    chosen: list[int] = []
    for shot in shots_of(links):
        third = max(1, len(shot) // 3)
        middle = range(shot.start + (len(shot) - third) // 2, shot.start + (len(shot) - third) // 2 + third)
        centre = max(middle, key=lambda t: sharpness(lights[t]))
        keys = {centre}
        for stop in (shot.stop, shot.start - 1):
            keys.update(_walk(links, centre, stop, min_trusted, max_gap, min_gap))
        chosen += sorted(keys)
    return chosen


def _walk(links: Sequence[Link | None], start: int, stop: int, min_trusted: float, max_gap: int,
          min_gap: int) -> list[int]:
    """Keys added walking from `start` toward `stop` (exclusive)."""
    forward = stop > start
    step = 1 if forward else -1
    added, last, trust = [], start, None
    for t in range(start + step, stop, step):
        move, trusted = (links[t] if forward else links[t + 1]).step(forward)
        trust = trusted.astype(np.float32) if trust is None else fl.warp(trust, move) * trusted
        faded = float((trust > 0.5).mean()) < min_trusted and abs(t - last) >= min_gap
        if faded or abs(t - last) >= max_gap:
            added.append(t)
            last, trust = t, None
    return added
