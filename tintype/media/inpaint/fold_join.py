"""Joining the visible pieces of a fold across the stretch where it fades.

A fold across a print is one long line, but it is not equally plain along its length:
where it crosses flat background it stands 30-45 levels proud, where it crosses a
mottled or busy area only ~10, below what the scratch net flags. On real print c the net
finds a fold's two ends and misses its middle; a person sees the whole line because they
see the plain pieces first and follow the line between them. This does the same: two
long, straight stretches of found damage that line up (each pointing along the line
between them, within MAX_TURN) are taken for one fold if the picture shows the first one's
own cross-section along enough of the way between them: the corridor between the two is
searched for the smoothest path that shows it, and where it does for MIN_SHARE of the way,
from one stretch to the other, the whole fold is added to the mask: the matching runs of
that path, joined straight across the gaps between them (a fold does not stop where hair
or a busy pattern hides it, and the inpainting there is a line 1-3 px wide).

Why the piece's own cross-section and not a fixed ridge filter: a fold lit from one side
is lopsided (a crest, a ramp on one side, a shadow on the other), a scratch is a plain
crest, and content edges look like half a fold; matching the measured profile, its sign
and its shape, averaged over WINDOW px of line, tells them apart at contrasts a local
filter cannot. Why only between two straight stretches: a straight line in the picture
(a reed, a strap, a frame) that the net flags a piece of continues with the same
cross-section, so following a single piece onwards traced content (on bench.damage's
synthetic set with folds it cost 7 points of precision for 1 of recall), and joining a
stretch to any piece ahead that ran along its line joined shingle rows and a coat's edge
on the uncracked historical photos (5,175 px on 6 of 48); two straight flagged stretches
in line, with the first one's cross-section along a third of the way between them, are
far rarer in content than on a fold.

A crack that meets another (real print b: the crack across the forehead meets one that
runs down the backdrop) is not straight as a whole; its straight parts (Hough segments
of the component) are stretches too, but two such parts are never joined to each other:
one of the two pieces is straight as a whole. Measured on bench.damage: the forehead's
gap on b is closed, nothing more is flagged on the 48 uncracked photos, and the
synthetic sets lose 0.2-0.3 points of precision. A join is drawn as wide as the
narrower piece (a part is wider where another crack meets it).

A join spans at most MAX_REACH times the longer of its two pieces: a piece's line is
known only as well as its own length tells it, and far beyond that two pieces line up by
chance as often as they are one fold. Seen with a fine-tuned net: on real print d, a 34 px
part of the crack network at the left edge and a 50 px stretch at the right, 309 px apart
(6.2 times the longer), were joined by a straight line across both faces, matching a third
of the way on eyes, noses and cheeks; on an uncracked portrait, two 30 px pieces in a white
beard 325 px apart (9.8 times). The true joins on the prints span 3.2-3.7 times their
longer piece (b's forehead, c's crease).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

WORK_SIDE = 1024  # px: larger pictures are searched at this long side (the net's own scale)
MIN_LENGTH = 24.0  # px: a found stretch shorter than this is not joined
MAX_WOBBLE = 1.5  # px: RMS distance of a stretch's pixels from its line, beyond what its width explains
MAX_TURN = np.deg2rad(10.0)  # two stretches join when each points along the join this closely
MAX_TARGETS = 4  # other stretches' ends ahead of a stretch's end tried, nearest first
MAX_REACH = 5.0  # a join spans at most this many times the longer of its two pieces
HALF_WIDTH = 4  # px each side of the line in a cross-section
CORRIDOR = 8  # px each side of the straight join that the fold's path may stray
STEP = 4  # px along the line between path points; the path moves at most 1 px sideways per step
WINDOW = 12  # px of line each cross-section is averaged over
MIN_MATCH = 0.65  # correlation of the path's cross-section with the found stretch's, at least
MIN_STRENGTH = 0.1  # ... and its contrast relative to the found stretch's, at least
MIN_RUN = 3  # path points in a row that must match to count (12 px of line)
MIN_SHARE = 0.3  # share of the path in such runs for the pieces to be taken for one fold
END_SLACK = 2  # path points at either end that may fail to match (the fold must meet both pieces)
MAX_PARTS = 8  # straight segments taken from one component that is not straight as a whole
PART_REACH = 2.5  # px either side of such a segment whose pixels are its stretch

_S = np.arange(-HALF_WIDTH, HALF_WIDTH + 1, dtype=np.float32)


@dataclass(frozen=True)
class Stretch:
    """A straight piece of found damage: its two ends, direction and cross-section."""

    start: np.ndarray  # (x, y) of the end against `direction`
    end: np.ndarray  # (x, y) of the end along `direction`
    direction: np.ndarray  # unit (dx, dy)
    profile: np.ndarray  # (2 * HALF_WIDTH + 1,) cross-section, left of `direction` first; no mean, no slope
    width: int  # px, the stretch's thickness
    part: bool = False  # a straight part of a component that is not straight as a whole

    @property
    def length(self) -> float:
        return float(np.hypot(*(self.end - self.start)))

    def ends(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Each end with the direction pointing out of the stretch there and the
        cross-section seen walking that way."""
        yield self.end, self.direction, self.profile
        yield self.start, -self.direction, self.profile[::-1]


def join_folds(grey: np.ndarray, found: np.ndarray) -> np.ndarray:
    """(H, W) uint8 grey and bool damage found → the same mask with the pieces of each fold
    joined: two long straight stretches that line up, where the first one's cross-section
    shows along enough of the way between them."""
    if grey.shape != found.shape:
        raise ValueError(f"grey {grey.shape} and mask {found.shape} differ in size")
    h, w = grey.shape
    factor = min(1.0, WORK_SIDE / max(h, w))
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    picture = cv2.resize(grey, size, interpolation=cv2.INTER_AREA) if factor < 1 else grey
    # any found pixel marks its cell: nearest-neighbour sampling would break a 1 px line into pieces
    seen = cv2.resize(found.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0 if factor < 1 else found
    added = np.zeros(picture.shape, np.uint8)
    for points, width in folds(picture.astype(np.float32), seen.astype(bool)):
        cv2.polylines(added, [np.round(points).astype(np.int32)], False, 1, thickness=width)
    if factor < 1:
        added = cv2.resize(added, (w, h), interpolation=cv2.INTER_NEAREST)
    return found | (added > 0)


def folds(picture: np.ndarray, found: np.ndarray) -> Iterator[tuple[np.ndarray, int]]:
    """Each fold joining two found stretches that line up: a polyline ((n, 2) x, y) and its
    width (px)."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(found.astype(np.uint8), connectivity=8)
    stretches = straight_stretches(picture, labels, stats)
    drawn = np.zeros(picture.shape, np.uint8)  # the folds so far, 2 px wider each side
    for stretch in stretches:
        for end, outward, template in stretch.ends():
            x, y = np.clip(np.round(end).astype(int), 0, (drawn.shape[1] - 1, drawn.shape[0] - 1))
            if drawn[y, x]:
                continue  # a fold already leaves this end: the one from its other piece
            for target, other in _ends_ahead(stretches, stretch, end, outward):
                fold = _fold(picture, end, target - end, template)
                if fold is not None:
                    cv2.polylines(drawn, [np.round(fold).astype(np.int32)], False, 1, thickness=stretch.width + 4)
                    yield fold, min(stretch.width, other.width)  # a piece may be wider where a crack meets it
                    break


def _ends_ahead(stretches: list[Stretch], own: Stretch, end: np.ndarray,
                outward: np.ndarray) -> list[tuple[np.ndarray, Stretch]]:
    """The ends of the other stretches that lie ahead of `end` on its line and point back
    along it (each within MAX_TURN of the join) within MAX_REACH lengths of the longer
    piece, nearest first, at most MAX_TARGETS."""
    ahead = []
    for other in stretches:
        if other is own or (own.part and other.part):
            continue  # at least one of two joined pieces is straight as a whole
        for point, other_out, _ in other.ends():
            gap = point - end
            distance = float(np.hypot(*gap))
            if distance < 1 or distance > MAX_REACH * max(own.length, other.length):
                continue
            join = gap / distance
            if outward @ join >= np.cos(MAX_TURN) and -other_out @ join >= np.cos(MAX_TURN):
                ahead.append((distance, point, other))
    return [(point, other) for _, point, other in sorted(ahead, key=lambda item: item[0])[:MAX_TARGETS]]


def straight_stretches(picture: np.ndarray, labels: np.ndarray, stats: np.ndarray) -> list[Stretch]:
    """The found components (cv2.connectedComponentsWithStats' labels and stats) that are
    long and straight enough to join."""
    stretches = []
    for i in range(1, len(stats)):
        if max(stats[i, cv2.CC_STAT_WIDTH], stats[i, cv2.CC_STAT_HEIGHT]) < MIN_LENGTH:
            continue
        ys, xs = np.nonzero(labels == i)
        points = np.stack([xs, ys], axis=1).astype(np.float32)
        stretch = _fit(picture, points)
        if stretch is not None:
            stretches.append(stretch)
        else:
            stretches += _straight_parts(picture, points, stats[i])
    return stretches


def _straight_parts(picture: np.ndarray, points: np.ndarray, box: np.ndarray) -> list[Stretch]:
    """The straight stretches inside a component that is not straight as a whole (a crack
    that meets another, a branch of a network): line segments of at least MIN_LENGTH
    found in it (probabilistic Hough, deterministic in OpenCV), each the component's
    pixels along it."""
    x0, y0, w, h = (int(v) for v in box[:4])
    mask = np.zeros((h, w), np.uint8)
    mask[points[:, 1].astype(int) - y0, points[:, 0].astype(int) - x0] = 255
    segments = cv2.HoughLinesP(mask, 1, np.pi / 180, int(MIN_LENGTH), minLineLength=MIN_LENGTH, maxLineGap=2)
    segments = np.zeros((0, 4)) if segments is None else segments.reshape(-1, 4).astype(np.float32)
    longest = np.argsort(-np.hypot(segments[:, 2] - segments[:, 0], segments[:, 3] - segments[:, 1]))
    parts = []
    for x1, y1, x2, y2 in segments[longest[:MAX_PARTS]]:
        a, b = np.array([x1 + x0, y1 + y0], np.float32), np.array([x2 + x0, y2 + y0], np.float32)
        length = float(np.hypot(*(b - a)))
        direction = (b - a) / length
        rel = points - a
        along, across = rel @ direction, rel @ np.array([-direction[1], direction[0]], np.float32)
        part = _fit(picture, points[(np.abs(across) <= PART_REACH) & (along >= 0) & (along <= length)])
        if part is not None:
            parts.append(dataclasses.replace(part, part=True))
    return parts


def _fit(picture: np.ndarray, points: np.ndarray) -> Stretch | None:
    centre = points.mean(axis=0)
    spread, axes = np.linalg.eigh(np.cov((points - centre).T))
    direction = axes[:, 1]
    along = (points - centre) @ direction
    length = float(along.max() - along.min())
    width = max(1, round(len(points) / (length + 1)))
    if length < MIN_LENGTH or spread[0] - (width ** 2 - 1) / 12 > MAX_WOBBLE ** 2:
        return None  # short, or wandering more than a straight bar of its width would
    start = centre + along.min() * direction
    rows = _strip(picture, start, direction, length, HALF_WIDTH)
    if rows is None:
        return None
    profile = _detrend(rows.mean(axis=0))
    if not profile.any():
        return None
    return Stretch(start, centre + along.max() * direction, direction, profile, width)


def _fold(picture: np.ndarray, start: np.ndarray, span: np.ndarray, template: np.ndarray) -> np.ndarray | None:
    """The fold from `start` along `span`, as a polyline through the runs of the best path
    that match the template, drawn straight across the gaps between them (a fold does
    not stop where a busy picture hides it); None unless such runs cover MIN_SHARE of it
    and meet both ends."""
    length = float(np.hypot(*span))
    if length < STEP * MIN_RUN:
        return None
    path, good = _best_path(picture, start, span / length, length, template)
    runs = [(a, b) for a, b in _true_runs(good) if b - a >= MIN_RUN]
    if not runs or sum(b - a for a, b in runs) < MIN_SHARE * len(good):
        return None
    if runs[0][0] > END_SLACK or runs[-1][1] < len(good) - END_SLACK:
        return None  # it does not leave the one piece or does not reach the other
    return np.vstack([start, *(path[a:b] for a, b in runs), start + span])


def _true_runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(first, past-last) index of each run of True."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def _best_path(picture: np.ndarray, start: np.ndarray, direction: np.ndarray, length: float,
               template: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The path (one point per STEP px) through the corridor that shows the template most,
    moving at most 1 px sideways per step and starting and ending on the line; and
    whether the picture matches the template at each point."""
    strip = _strip(picture, start, direction, length, CORRIDOR + HALF_WIDTH, inside_only=False)
    along = cv2.blur(strip, (1, WINDOW))[::STEP]
    offsets = np.arange(-CORRIDOR, CORRIDOR + 1)
    sections = np.stack([along[:, CORRIDOR + o:CORRIDOR + o + 2 * HALF_WIDTH + 1] for o in offsets], axis=1)
    sections = _detrend(sections)
    energy = float(template @ template)
    strength = sections @ template / energy
    match = strength * energy / np.maximum(np.linalg.norm(sections, axis=-1) * np.sqrt(energy), 1e-6)
    chosen = _smoothest(np.clip(strength, -0.5, 1.0), offsets)
    rows = np.arange(len(chosen))
    normal = np.array([-direction[1], direction[0]])
    points = start + (rows * STEP)[:, None] * direction + offsets[chosen][:, None] * normal
    return points, (match[rows, chosen] >= MIN_MATCH) & (strength[rows, chosen] >= MIN_STRENGTH)


def _smoothest(score: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Dynamic programming over (step, offset): the offsets, one per step, that sum the most
    score, starting within 1 px of the line and ending within 2 px of it."""
    steps, n = score.shape
    total = np.where(np.abs(offsets) <= 1, score[0], -np.inf)
    came = np.zeros((steps, n), np.int64)
    for k in range(1, steps):
        options = np.stack([np.roll(total, 1), total, np.roll(total, -1)])
        options[0, 0] = options[2, -1] = -np.inf  # no wrapping round the corridor's edges
        pick = options.argmax(axis=0)
        came[k] = np.arange(n) + pick - 1
        total = options[pick, np.arange(n)] + score[k]
    total = np.where(np.abs(offsets) <= 2, total, -np.inf)
    chosen = np.zeros(steps, np.int64)
    chosen[-1] = int(total.argmax())
    for k in range(steps - 1, 0, -1):
        chosen[k - 1] = came[k, chosen[k]]
    return chosen


def _strip(picture: np.ndarray, start: np.ndarray, direction: np.ndarray, length: float, half: int,
           inside_only: bool = True) -> np.ndarray | None:
    """(n, 2 * half + 1) samples across the line at each pixel along it. Rows that leave
    the picture are dropped (None when fewer than half remain), or, not `inside_only`,
    filled by reflecting the picture at its border."""
    h, w = picture.shape
    normal = np.array([-direction[1], direction[0]], np.float32)
    t = np.arange(max(1, int(length)), dtype=np.float32)[:, None]
    s = np.arange(-half, half + 1, dtype=np.float32)[None, :]
    x = (start[0] + t * direction[0] + s * normal[0]).astype(np.float32)
    y = (start[1] + t * direction[1] + s * normal[1]).astype(np.float32)
    if inside_only:
        inside = ((x >= 0) & (y >= 0) & (x <= w - 1) & (y <= h - 1)).all(axis=1)
        if inside.sum() < max(1, len(t) // 2):
            return None
        x, y = x[inside], y[inside]
    return cv2.remap(picture, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def _detrend(profile: np.ndarray) -> np.ndarray:
    """Cross-sections (..., 2 * HALF_WIDTH + 1) without their mean and slope: the shape
    across the line, not the picture's tone or gradient there."""
    centred = profile - profile.mean(axis=-1, keepdims=True)
    return centred - _S * (centred @ _S)[..., None] / (_S @ _S)
