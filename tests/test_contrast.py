"""The palette in static/style.css is readable: WCAG AA contrast for every text colour on
the background it is shown on (4.5:1 for text, 3:1 for the focus ring, a non-text part).
Every stylesheet under static/ is read (compare.css, painter.css, ...), not style.css alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parent.parent / "tintype" / "web" / "static"
CSS = STATIC / "style.css"
SHEETS = sorted(STATIC.glob("*.css"))
NOT_A_COLOUR = {"none", "transparent", "inherit", "currentcolor", "initial", "unset"}
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
    var = re.fullmatch(r"var\((--[\w-]+)\s*(?:,\s*([^)]+))?\)", value)
    value = palette.get(var.group(1), var.group(2) or "") if var else palette.get(value, value)
    value = NAMED.get(value, value)
    if re.fullmatch(r"#[0-9a-f]{3}", value):
        value = "#" + "".join(c * 2 for c in value[1:])
    assert re.fullmatch(r"#[0-9a-f]{6}", value), f"not a colour this test reads: {value!r}"
    return value


def backdrops(value: str, palette: dict[str, str]) -> list[str]:
    """A background as the opaque colours it can look like: a translucent rgba() is laid
    over white and over black (what lies under it is not known: a picture, a video)."""
    rgba = re.fullmatch(r"rgba?\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*(?:,\s*([\d.]+)\s*)?\)", value.strip().lower())
    if not rgba:
        return [resolve(value, palette)]
    alpha = float(rgba.group(4)) if rgba.group(4) else 1.0
    channels = [int(rgba.group(i)) for i in (1, 2, 3)]
    return ["#" + "".join(f"{round(c * alpha + under * (1 - alpha)):02x}" for c in channels) for under in (255, 0)]


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


def rules_with_both_colours(css: str) -> list[tuple[str, str, str]]:
    """(selector, text colour, background) for each rule that declares both."""
    found = []
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", re.sub(r"/\*.*?\*/", "", css, flags=re.S)):
        declared = dict(re.findall(r"(?:^|;)\s*(color|background(?:-color)?)\s*:\s*([^;]+)", body))
        background = declared.get("background") or declared.get("background-color")
        if "color" not in declared or background is None or background.strip().lower() in NOT_A_COLOUR:
            continue
        found.append((selector.strip(), declared["color"], background.split()[0] if background.strip().startswith("#")
                      else background))
    return found


@pytest.mark.parametrize("sheet", SHEETS, ids=[s.name for s in SHEETS])
def test_every_rule_that_sets_both_colours_is_readable(sheet):
    """A rule with a text colour and a background (buttons, the current language, the skip
    link, the full-screen compare view), in every stylesheet, with style.css's palette."""
    palette = variables(CSS.read_text())
    failures = []
    for selector, colour, background in rules_with_both_colours(sheet.read_text()):
        for under in backdrops(background, palette):
            ratio = contrast(resolve(colour, palette), under)
            if ratio < TEXT:
                failures.append(f"{sheet.name} {selector}: {colour} on {background} ({under}) is {ratio:.2f}:1")
    assert not failures, failures


def test_the_stylesheets_are_all_read():
    assert {"style.css", "compare.css"} <= {s.name for s in SHEETS}
    assert len(rules_with_both_colours(CSS.read_text())) >= 3  # button, the current language, the skip link


def _full_screen_rule() -> str:
    css = (STATIC / "compare.css").read_text()
    rule = re.search(r"\.cmp:fullscreen[^{]*\{([^}]*)\}", css)
    assert rule, "compare.css styles the full-screen compare view"
    return rule.group(1)


def full_screen_background() -> str:
    """The compare view's background in full screen (compare.css), which its hint note and
    its focus rings are then shown on."""
    return resolve(re.search(r"(?<![-\w])background\s*:\s*([^;]+)", _full_screen_rule()).group(1), {})


def full_screen_palette() -> dict[str, str]:
    """The palette variables the full-screen rule sets for what is inside it."""
    declared = re.findall(r"(--[\w-]+)\s*:\s*([^;]+);", _full_screen_rule())
    return {name: value.strip().lower() for name, value in declared}


# What the full-screen compare view shows on its dark background without a rule of its own.
FULL_SCREEN = [("the compare note (.hint in .cmp)", "--muted", TEXT),
               ("focus ring in full screen", "--focus", NON_TEXT)]


@pytest.mark.parametrize(("what", "fg", "least"), FULL_SCREEN, ids=[p[0] for p in FULL_SCREEN])
def test_the_full_screen_compare_view_is_readable(what, fg, least):
    palette = {**variables(CSS.read_text()), **full_screen_palette()}  # the view's own colours win
    ratio = contrast(resolve(palette[fg], palette), full_screen_background())
    assert ratio >= least, f"{what}: {fg} on {full_screen_background()} is {ratio:.2f}:1, needs {least}:1"
