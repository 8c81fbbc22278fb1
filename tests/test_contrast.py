"""The palette in static/style.css is readable: WCAG AA contrast for every text colour on
the background it is shown on (4.5:1 for text, 3:1 for the focus ring, a non-text part)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parent.parent / "tintype" / "web" / "static" / "style.css"
NAMED = {"white": "#ffffff", "black": "#000000"}
TEXT, NON_TEXT = 4.5, 3.0

# Text shown on a background another rule paints (the colour is inherited, so no one rule
# declares both): (what, foreground, background, least ratio).
INHERITED = [
    ("body text", "--ink", "--paper", TEXT),
    ("header links", "--paper", "--ink", TEXT),
    ("who is signed in, the other language", "--on-ink-muted", "--ink", TEXT),
    ("hints, card labels", "--muted", "--paper", TEXT),
    ("errors", "--error", "--paper", TEXT),
    ("succeeded", "--ok", "--paper", TEXT),
    ("links", "--accent", "--paper", TEXT),
    ("focus ring on the page", "--focus", "--paper", NON_TEXT),
    ("focus ring in the header", "--paper", "--ink", NON_TEXT),
]


def variables(css: str) -> dict[str, str]:
    root = re.search(r":root\s*\{([^}]*)\}", css)
    assert root, "style.css declares its palette in :root"
    return {name: value.strip().lower() for name, value in re.findall(r"(--[\w-]+)\s*:\s*([^;]+);", root.group(1))}


def resolve(value: str, palette: dict[str, str]) -> str:
    value = value.strip().lower()
    var = re.fullmatch(r"var\((--[\w-]+)\)", value)
    value = palette[var.group(1)] if var else palette.get(value, value)
    value = NAMED.get(value, value)
    if re.fullmatch(r"#[0-9a-f]{3}", value):
        value = "#" + "".join(c * 2 for c in value[1:])
    assert re.fullmatch(r"#[0-9a-f]{6}", value), f"not a colour this test reads: {value!r}"
    return value


def luminance(hex_colour: str) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(int(hex_colour[i:i + 2], 16) / 255) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_contrast_formula_matches_wcag():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic just-fails grey


@pytest.mark.parametrize(("what", "fg", "bg", "least"), INHERITED, ids=[p[0] for p in INHERITED])
def test_inherited_pairs_are_readable(what, fg, bg, least):
    palette = variables(CSS.read_text())
    ratio = contrast(resolve(palette[fg], palette), resolve(palette[bg], palette))
    assert ratio >= least, f"{what}: {fg} on {bg} is {ratio:.2f}:1, needs {least}:1"


def test_every_rule_that_sets_both_colours_is_readable():
    """A rule with a text colour and a background (buttons, the current language, the skip link)."""
    css = CSS.read_text()
    palette = variables(css)
    checked = 0
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        declared = dict(re.findall(r"(?:^|;)\s*(color|background(?:-color)?)\s*:\s*([^;]+)", body))
        background = declared.get("background") or declared.get("background-color")
        if "color" not in declared or background is None:
            continue
        ratio = contrast(resolve(declared["color"], palette), resolve(background, palette))
        assert ratio >= TEXT, f"{selector.strip()}: {ratio:.2f}:1"
        checked += 1
    assert checked >= 3  # button, the current language, the skip link
