"""The stage timeline of `make bench-e2e`: for one pair of runs, what ran when.

One panel per run, time from the command's start on the x axis. tintype: a row per
concurrent lane of each stage (probe, colour plan, each chunk, finalize: tasks that
overlap get separate lanes), the model's forward calls on their own row, and marks for
submit, first chunk done, playable output and job end. The naive script: its three
steps and its forward calls. Drawn with Pillow, like the other benches' plots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from bench.report import font

COLOURS = {"probe": (120, 120, 120), "plan_colour": (150, 110, 180), "process_chunk": (67, 147, 195),
           "finalize": (214, 96, 77), "decode": (120, 120, 120), "colorize": (67, 147, 195),
           "encode": (214, 96, 77), "forward": (40, 160, 80)}
ROW_H, LEFT, RIGHT, WIDTH = 18, 150, 20, 1200


def lanes(spans: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Rows of bars: each stage's spans packed greedily into as few lanes as overlap needs."""
    rows: list[tuple[str, list[dict[str, Any]]]] = []
    for stage in dict.fromkeys(s["stage"] for s in spans):
        packed: list[list[dict[str, Any]]] = []
        for span in sorted((s for s in spans if s["stage"] == stage), key=lambda s: s["start"]):
            lane = next((lane for lane in packed if lane[-1]["end"] <= span["start"]), None)
            if lane is None:
                packed.append([span])
            else:
                lane.append(span)
        rows += [(f"{stage} {i + 1}" if len(packed) > 1 else stage, lane) for i, lane in enumerate(packed)]
    return rows


def _panel(draw: ImageDraw.ImageDraw, top: int, title: str, run: dict[str, Any], scale: float) -> int:
    """Draw one run's rows from `top`; returns the y below it."""
    small = font(12)
    draw.text((10, top), title, fill="black", font=font(14))
    y = top + 22
    x = lambda t: LEFT + (t - run["t0"]) * scale  # noqa: E731
    rows = lanes(run["spans"]) + [("model forward", [{"stage": "forward", "start": a, "end": b}
                                                     for a, b in run["forwards"]])]
    for name, bars in rows:
        draw.text((LEFT - 6, y + ROW_H / 2), name, fill="black", font=small, anchor="rm")
        for bar in bars:
            colour = COLOURS.get(bar["stage"], (90, 90, 90))
            draw.rectangle([x(bar["start"]), y + 2, max(x(bar["start"]) + 1, x(bar["end"])), y + ROW_H - 2],
                           fill=colour)
            if bar.get("chunk") is not None and x(bar["end"]) - x(bar["start"]) > 18:
                draw.text((x(bar["start"]) + 3, y + ROW_H / 2), str(bar["chunk"]), fill="white", font=small,
                          anchor="lm")
        y += ROW_H
    for label, t in run["marks"].items():
        if t is not None:
            draw.line([(x(t), top + 20), (x(t), y)], fill=(0, 0, 0), width=1)
            draw.text((x(t) + 2, y + 2), label, fill="black", font=small)
            y += 14
    return y + 12


def timeline(runs: list[tuple[str, dict[str, Any]]], path: Path) -> None:
    """`runs`: (title, {t0, t_end, spans, forwards, marks}) per panel, on one time scale."""
    longest = max(r["t_end"] - r["t0"] for _, r in runs) or 1.0
    scale = (WIDTH - LEFT - RIGHT) / longest
    height = 60 + sum(60 + ROW_H * (len(lanes(r["spans"])) + 1) + 14 * len(r["marks"]) for _, r in runs)
    img = Image.new("RGB", (WIDTH, height), "white")
    draw = ImageDraw.Draw(img)
    y = 10
    for title, run in runs:
        y = _panel(draw, y, title, run, scale)
    step = next(s for s in (1, 2, 5, 10, 20, 30, 60, 120, 300, 600) if longest / s <= 12)
    for k in range(int(longest // step) + 1):
        xt = LEFT + k * step * scale
        draw.line([(xt, y), (xt, y + 5)], fill="black")
        draw.text((xt, y + 8), f"{k * step} s", fill="black", font=font(12), anchor="ma")
    img.crop((0, 0, WIDTH, min(height, int(y) + 30))).save(path)
