"""The grain benchmark's plot: radially averaged noise power spectra, one panel per clip,
power on a log scale. Drawn with Pillow, like the other benches' plots."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from bench.report import font

COLOURS = {"input, outside holes": (90, 90, 90), "output, outside holes": (67, 147, 195),
           "ring around holes": (40, 160, 80), "holes, grain=keep": (214, 96, 77),
           "holes, grain=off": (230, 170, 40)}
PANEL_W, PANEL_H, LEFT, TOP, BOTTOM = 420, 300, 60, 36, 40


def nps_panels(cases: list[dict[str, Any]], path: Path) -> None:
    """`cases`: {name, frequencies, nps: {curve name: powers}} each; one panel per case."""
    img = Image.new("RGB", (PANEL_W * max(1, len(cases)), PANEL_H + 24 * len(COLOURS) // 2 + 20), "white")
    draw = ImageDraw.Draw(img)
    for k, case in enumerate(cases):
        _panel(draw, k * PANEL_W, case)
    y = PANEL_H + 6
    for k, (name, colour) in enumerate(COLOURS.items()):
        x, row = 20 + (k % 3) * 260, y + (k // 3) * 22
        draw.line([(x, row + 7), (x + 30, row + 7)], fill=colour, width=3)
        draw.text((x + 36, row), name, fill="black", font=font(13))
    img.save(path)


def _panel(draw: ImageDraw.ImageDraw, left: int, case: dict[str, Any]) -> None:
    curves = {name: p for name, p in case["nps"].items() if name in COLOURS and p}
    values = [v for p in curves.values() for v in p if v > 0]
    low, high = (math.log10(min(values)), math.log10(max(values))) if values else (0.0, 1.0)
    low, high = math.floor(low), math.ceil(high) if high > low else low + 1
    x0, x1, y0, y1 = left + LEFT, left + PANEL_W - 16, TOP, PANEL_H - BOTTOM
    draw.rectangle([x0, y0, x1, y1], outline="black")
    draw.text((left + PANEL_W // 2, 8), case["name"], fill="black", font=font(14), anchor="ma")
    for decade in range(low, high + 1):
        y = y1 - (decade - low) / (high - low) * (y1 - y0)
        draw.text((x0 - 6, y), f"1e{decade}", fill="black", font=font(11), anchor="rm")
    for f in (0.0, 0.25, 0.5):
        draw.text((x0 + f / 0.5 * (x1 - x0), y1 + 6), f"{f:g}", fill="black", font=font(11), anchor="ma")
    draw.text(((x0 + x1) // 2, y1 + 22), "cycles / pixel", fill="black", font=font(11), anchor="ma")
    for name, powers in curves.items():
        points = [(x0 + f / 0.5 * (x1 - x0), y1 - (math.log10(max(p, 10.0 ** low)) - low) / (high - low) * (y1 - y0))
                  for f, p in zip(case["frequencies"], powers)]
        draw.line(points, fill=COLOURS[name], width=2)
