"""Real prints whose cracks were traced by hand, as training crops beside the synthetic damage.

Why: synthetic damage alone pulls the scratch net away from real cracks the longer it
trains (v6's card: 1,100 more steps on synthetic damage alone, and the net found 55 of the
81 cracks traced on the four bench prints where v6 finds 59). Crops of real traced prints
in every batch hold it to real damage, and what they teach carries to a print the run never
saw (the card's leave-one-print-out runs, `--hold-out`).

A trace is a crack's centre line, not its mask. So the label is a thin line along it; a band
beyond it, where the crack's true width is unknown, is left out of the loss (weight 0); and
the rest of the print is taught as undamaged, since the reviewer traced every crack they were
sure of. The file is bench/print_cracks.json's format: {print file name: {"size": [w, h],
"cracks": [{"name", "visibility", "region", "points": [[x, y], ...]}, ...]}}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

VISIBILITY = ("obvious", "clear", "faint")  # at 1x; at 2-3x; only at close zoom
SCALES = (1, 2)  # each print seen at its size and twice it, as a job's net sees a small print
LABEL_PX = 1  # the labelled line's nominal width at 1x; 2 * scale - 1 at a scale (at 2x, ~2 px each side)
UNSURE_PX = 7  # the nominal width of the band left out of the loss at 1x (~4 px each side)


@dataclass(frozen=True)
class Trace:
    """One traced crack: what it is, how plainly it shows, and its polyline (x, y)."""

    name: str
    visibility: str
    region: str
    points: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Crop:
    """A print (or a piece of one) with what the loss is told about each pixel."""

    grey: np.ndarray  # (H, W) float32 in [0, 1]
    label: np.ndarray  # (H, W) float32: 1 on a traced crack
    weight: np.ndarray  # (H, W) float32: 0 where the crack's width is unsure, else 1


def read_traces(path: Path) -> dict[str, tuple[tuple[int, int], list[Trace]]]:
    """Print file name → (its size (w, h), its traces); every point checked to lie on it."""
    traced = json.loads(path.read_text())
    out = {}
    for name, entry in traced.items():
        w, h = entry["size"]
        traces = [Trace(t["name"], t["visibility"], t["region"], tuple((int(x), int(y)) for x, y in t["points"]))
                  for t in entry["cracks"]]
        for t in traces:
            if t.visibility not in VISIBILITY or len(t.points) < 2:
                raise ValueError(f"{path.name}: {name} {t.name!r}: visibility {t.visibility!r}, "
                                 f"{len(t.points)} points (want one of {VISIBILITY}, two points at least)")
            if any(not (0 <= x < w and 0 <= y < h) for x, y in t.points):
                raise ValueError(f"{path.name}: {name} {t.name!r} has a point off the {w}x{h} print")
        out[name] = ((w, h), traces)
    return out


def rasterise(grey: np.ndarray, traces: Sequence[Trace], scale: int) -> Crop:
    """A traced print (uint8 grey at its own size) seen `scale` times its size, labelled."""
    h, w = grey.shape
    if scale != 1:
        grey = cv2.resize(grey, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
    label = np.zeros(grey.shape, np.uint8)
    unsure = np.zeros(grey.shape, np.uint8)
    for trace in traces:  # pixel centres: x at scale s lands on s * x + (s - 1) / 2
        line = [(np.array(trace.points, np.float32) * scale + (scale - 1) / 2).round().astype(np.int32)]
        cv2.polylines(label, line, False, 1, (2 * scale - 1) * LABEL_PX)
        cv2.polylines(unsure, line, False, 1, (UNSURE_PX - 1) * scale + 1)
    weight = np.where((unsure > 0) & (label == 0), 0.0, 1.0).astype(np.float32)
    return Crop(grey.astype(np.float32) / 255.0, label.astype(np.float32), weight)


class TracedPrints:
    """Random crops of the traced prints but those held out, each print (at each scale)
    drawn in proportion to its area, turned, flipped and shifted in tone."""

    def __init__(self, traces: Path, folder: Path, hold_out: Sequence[str] = ()) -> None:
        traced = read_traces(traces)
        unknown = sorted(set(hold_out) - set(traced))
        if unknown:
            raise ValueError(f"cannot hold out {', '.join(unknown)}: {traces.name} traces {', '.join(sorted(traced))}")
        kept = [name for name in traced if name not in hold_out]
        if not kept:
            raise ValueError(f"every print of {traces.name} is held out: nothing is left to train on")
        self.names, self.cracks = kept, sum(len(traced[name][1]) for name in kept)
        self.prints = [rasterise(_read(folder / name, traced[name][0]), traced[name][1], scale)
                       for name in kept for scale in SCALES]
        area = np.array([p.grey.size for p in self.prints], np.float64)
        self.share = area / area.sum()

    def crop(self, rng: np.random.Generator, size: int) -> Crop:
        whole = self.prints[rng.choice(len(self.prints), p=self.share)]
        planes = [_fit(plane, size) for plane in (whole.grey, whole.label, whole.weight)]
        h, w = planes[0].shape
        top, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        turns, flip = int(rng.integers(4)), bool(rng.random() < 0.5)
        planes = [np.rot90(p[top:top + size, left:left + size], turns) for p in planes]
        grey, label, weight = (np.ascontiguousarray(p[:, ::-1] if flip else p) for p in planes)
        grey = np.clip((grey - 0.5) * rng.uniform(0.8, 1.2) + 0.5 + rng.uniform(-0.08, 0.08), 0.0, 1.0)
        return Crop(grey.astype(np.float32), label, weight)


def job_grey(path: Path) -> np.ndarray:
    """A print as the grey a job's net sees: its colour picture's luma. Not the decoder's own
    grey (damage_synth.read_grey), which for these PNGs is a level off here and there, enough
    to move v6's count of traced cracks found from 59 to 57."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"traced print {path} cannot be read")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


def _read(path: Path, size: tuple[int, int]) -> np.ndarray:
    grey = job_grey(path)
    if (grey.shape[1], grey.shape[0]) != tuple(size):
        raise ValueError(f"traced print {path} is {grey.shape[1]}x{grey.shape[0]}, "
                         f"its traces are for {size[0]}x{size[1]}")
    return grey


def _fit(plane: np.ndarray, size: int) -> np.ndarray:
    """A plane padded (mirrored) to `size` on a side shorter than it."""
    pad_h, pad_w = max(0, size - plane.shape[0]), max(0, size - plane.shape[1])
    return np.pad(plane, ((0, pad_h), (0, pad_w)), mode="reflect") if pad_h or pad_w else plane
