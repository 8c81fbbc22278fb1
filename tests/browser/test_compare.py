"""Compare on a job's page: a divider dragged by mouse, finger and keyboard over a real photo
job's result and input; a real film job's two players locked to one timeline, stepped frame by
frame; the masks that inpainting filled; full screen; nothing wider than a phone."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, shot, signed_in_page
from tests.media_factory import grey_photo, grey_video, mask_zip, rect_mask
from tests.stack import Stack

FPS = 24
FRAMES = 48
BOX = (40, 30, 100, 80)  # the filled rectangle in the 160 × 120 photo
# The film's masks move: its first half fills a box on the left, its second one on the right.
FILM_W, FILM_H = 256, 192
LEFT, RIGHT = (16, 40, 96, 100), (160, 92, 240, 152)


def _submit(stack: Stack, key: str, source: Path, mask: Path, part: str = "mask") -> str:
    files = {"file": (source.name, source.read_bytes()), part: (mask.name, mask.read_bytes())}
    response = stack.client(key).post(f"{stack.base}/api/v1/jobs", files=files,
                                      data={"operations": "inpaint,colorize"}, timeout=120)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def _finished(stack: Stack, key: str, job_id: str, timeout: float = 240) -> dict[str, Any]:
    client, deadline = stack.client(key), time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"{stack.base}/api/v1/jobs/{job_id}", timeout=30).json()
        if job["status"] not in ("queued", "running"):
            assert job["status"] == "succeeded", job
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s\n{stack.tail()}")


@pytest.fixture(scope="module")
def jobs(stack: Stack, browser_key: str, tmp_path_factory) -> dict[str, dict[str, Any]]:
    """An inpainted and colorized photo and film, owned by the browser's owner (submitted
    together, so the workers make both at once)."""
    folder = tmp_path_factory.mktemp("compare")
    photo = folder / "print.png"
    Image.fromarray(grey_photo(160, 120)).save(photo)
    # Wide enough that its before | after poster (512 px) is wider than a phone.
    film = grey_video(folder / "reel.mp4", size="256x192", rate=str(FPS), frames=FRAMES, audio=False)
    mask = rect_mask(folder / "mask.png", 160, 120, BOX)
    film_masks = mask_zip(folder / "film-masks.zip", [_box_mask(LEFT if n < FRAMES // 2 else RIGHT)
                                                       for n in range(FRAMES)])
    ids = {"photo": _submit(stack, browser_key, photo, mask),
           "film": _submit(stack, browser_key, film, film_masks, "masks")}
    return {kind: _finished(stack, browser_key, job_id) for kind, job_id in ids.items()}


def _box_mask(box: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros((FILM_H, FILM_W), bool)
    mask[box[1]:box[3] + 1, box[0]:box[2] + 1] = True
    return mask


def _open(page, job: dict[str, Any]) -> None:
    page.goto(job["links"]["page"])
    page.locator("#compare-slider").wait_for(state="visible")


def _divider(page) -> dict[str, float]:
    """Where the divider is, where the result's visible part starts, and the stage's box
    (scrolled into view, as a person would before dragging)."""
    page.locator("#cmp-stage").scroll_into_view_if_needed()
    return page.evaluate("""() => {
        const stage = document.getElementById("cmp-stage").getBoundingClientRect();
        const line = document.getElementById("cmp-divider").getBoundingClientRect();
        const after = document.getElementById("cmp-after");
        const clip = getComputedStyle(after).clipPath;  // inset(0px 0px 0px N%) or Npx
        const left = clip.match(/inset\\(\\S+ \\S+ \\S+ ([\\d.]+)(px|%)\\)/);
        const cut = left[2] === "%" ? Number(left[1]) / 100 * stage.width : Number(left[1]);
        return {value: Number(document.getElementById("cmp-divider").getAttribute("aria-valuenow")),
                line: (line.left + line.width / 2 - stage.left) / stage.width, cut: cut / stage.width,
                x: stage.left, y: stage.top, width: stage.width, height: stage.height};
    }""")


def _redness(page, job: dict[str, Any], box: tuple[int, int, int, int] = BOX) -> int:
    """Red minus green at the middle of a box, as the page shows it."""
    stage = page.locator("#cmp-stage")
    picture = Image.open(io.BytesIO(stage.screenshot())).convert("RGB")
    facts = job["input"]["facts"]
    # The stage has the picture's shape, so the box scales with it.
    x = (box[0] + box[2]) / 2 / facts["width"] * picture.width
    y = (box[1] + box[3]) / 2 / facts["height"] * picture.height
    r, g, _ = picture.getpixel((int(x), int(y)))
    return r - g


def test_the_divider_follows_a_mouse_drag_and_the_keyboard_and_masks_show_in_red(page, jobs):
    job = jobs["photo"]
    _open(page, job)
    page.wait_for_function("document.querySelector('#cmp-after img').naturalWidth > 0"
                           " && document.querySelector('#cmp-before img').naturalWidth > 0")
    start = _divider(page)
    assert start["value"] == 50 and abs(start["cut"] - 0.5) < 0.01 and abs(start["line"] - 0.5) < 0.01
    assert abs(start["width"] / start["height"] - 160 / 120) < 0.02, "the stage has the picture's shape"

    page.mouse.move(start["x"] + 0.5 * start["width"], start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(start["x"] + 0.8 * start["width"], start["y"] + start["height"] / 3, steps=6)
    page.mouse.move(start["x"] + 0.7 * start["width"], start["y"] + start["height"] / 3, steps=3)
    page.mouse.up()
    dragged = _divider(page)
    assert dragged["value"] == 70 and abs(dragged["cut"] - 0.7) < 0.01 and abs(dragged["line"] - 0.7) < 0.01
    page.mouse.move(start["x"] + 0.2 * start["width"], start["y"] + 5)  # moving without a button does nothing
    assert _divider(page)["value"] == 70

    divider = page.get_by_role("slider", name="Divider: before on the left, after on the right")
    expect_focused = page.evaluate("document.activeElement.id")
    assert expect_focused == "cmp-divider", "a drag leaves the divider focused for the keys"
    for _ in range(3):
        divider.press("ArrowLeft")
    assert _divider(page)["value"] == 67
    divider.press("Home")
    home = _divider(page)
    assert home["value"] == 0 and home["cut"] < 0.01, "Home shows the whole result"
    divider.press("End")
    end = _divider(page)
    assert end["value"] == 100 and end["cut"] > 0.99, "End shows the whole input"
    divider.press("PageDown")
    assert _divider(page)["value"] == 90
    assert "90% before" in divider.get_attribute("aria-valuetext")

    divider.press("Home")  # the whole result, over which the masks are drawn
    plain = _redness(page, job)
    page.get_by_label("Show what was filled").check()
    page.wait_for_function("document.querySelector('#cmp-masks img')?.naturalWidth > 0")
    assert page.locator("#cmp-masks").is_visible()
    assert _redness(page, job) > plain + 60, "the filled box is drawn in red over the picture"
    for _ in range(5):
        divider.press("PageUp")
    shot(page, "compare")
    page.get_by_label("Show what was filled").uncheck()
    assert not page.locator("#cmp-masks").is_visible()
    assert abs(_redness(page, job) - plain) < 20


def _overflow(page) -> list[str]:
    """Elements reaching past the right edge of the viewport, and the page's own width."""
    return page.evaluate("""() => {
        const width = document.documentElement.clientWidth;
        const wide = [...document.querySelectorAll("body *")].filter((e) => {
            const box = e.getBoundingClientRect();
            return box.width > 0 && box.right > width + 0.5;
        }).map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`);
        const scroll = document.documentElement.scrollWidth;
        if (scroll > width) wide.push(`scrollWidth ${scroll}`);
        return wide;
    }""")


def test_the_page_fits_a_phone_and_a_finger_drags_the_divider(browser, stack, browser_key, jobs):
    page = signed_in_page(browser, stack, browser_key, PHONE)
    try:
        for kind in ("photo", "film"):
            _open(page, jobs[kind])
            page.locator("#compare-img").wait_for(state="visible") if jobs[kind]["compare_url"] else None
            page.wait_for_function("[...document.images].every((i) => i.complete || i.loading === 'lazy')")
            assert _overflow(page) == [], f"the {kind} job's page is wider than a phone"
        start = _divider(page)
        touch = page.context.new_cdp_session(page)
        y = start["y"] + start["height"] / 2
        touch.send("Input.dispatchTouchEvent", {"type": "touchStart",
                                                "touchPoints": [{"x": start["x"] + start["width"] / 2, "y": y}]})
        for fraction in (0.45, 0.4, 0.35, 0.3):
            point = {"x": start["x"] + fraction * start["width"], "y": y}
            touch.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
        touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        moved = _divider(page)
        assert moved["value"] == 30 and abs(moved["cut"] - 0.3) < 0.02
        shot(page, "compare-phone")
    finally:
        page.context.close()


def test_the_poster_stays_within_a_desktop_page(page, jobs):
    _open(page, jobs["film"])
    page.locator("#compare-img").wait_for(state="visible")
    page.wait_for_function("document.getElementById('compare-img').complete")
    assert _overflow(page) == []
    assert page.locator("#compare-img").bounding_box()["width"] <= DESKTOP["width"]


def _times(page) -> dict[str, float]:
    return page.evaluate("""() => {
        const [input, result] = ["#cmp-before video", "#cmp-after video"].map((s) => document.querySelector(s));
        return {input: input.currentTime, result: result.currentTime, paused: result.paused,
                frame: Number(document.getElementById("cmp-stage").dataset.frame)};
    }""")


def test_the_films_play_on_one_timeline_and_step_by_frames(page, jobs):
    job = jobs["film"]
    _open(page, job)
    page.wait_for_function("[...document.querySelectorAll('#cmp-stage video')].every((v) => v.readyState >= 2)",
                           timeout=60_000)
    assert page.locator("#cmp-before video").get_attribute("src") == job["input"]["url"]
    assert page.locator("#cmp-after video").get_attribute("src") == job["result"]["url"]

    page.get_by_role("button", name="Play", exact=True).click()
    # Sampled at every painted frame while both play: the input never more than a frame off,
    # and when it is knocked 8 frames ahead (as a stalled decoder would leave it), it is
    # brought back within a frame by the next painted frame or two.
    drift = page.evaluate("""(fps) => new Promise((done) => {
        const [input, result] = ["#cmp-before video", "#cmp-after video"].map((s) => document.querySelector(s));
        const seen = []; const began = performance.now(); let knocked = null;
        const sample = () => {
            const now = performance.now() - began;
            if (!result.paused) seen.push({d: Math.abs(input.currentTime - result.currentTime), t: result.currentTime,
                                           after: knocked === null ? null : now - knocked});
            if (knocked === null && now > 500) { knocked = now; input.currentTime = result.currentTime + 8 / fps; }
            if (now < 1000 && !result.ended) requestAnimationFrame(sample); else done(seen);
        };
        requestAnimationFrame(sample);
    })""", FPS)
    steady = [s for s in drift if s["after"] is None or s["after"] > 150]
    assert len(steady) > 10 and any(s["after"] for s in steady), "the films played past the knock"
    assert max(s["t"] for s in drift) > 0.4, "the timeline moved on"
    worst = max(s["d"] for s in steady)
    assert worst < 1 / FPS, f"the input drifted from the result by {worst:.3f} s"
    page.get_by_role("button", name="Pause", exact=True).click()
    assert _times(page)["paused"]

    page.get_by_label("Position").focus()
    page.keyboard.press("Home")
    at = _times(page)
    assert at["frame"] == 0
    for key, frame in ((".", 1), (".", 2), (".", 3), (",", 2)):
        page.keyboard.press(key)
        at = _times(page)
        assert at["frame"] == frame and int(at["result"] * FPS) == frame, (key, at)
        assert abs(at["input"] - at["result"]) < 1 / FPS
    page.get_by_role("button", name="Next frame", exact=True).click()
    assert _times(page)["frame"] == 3
    page.get_by_role("button", name="Previous frame", exact=True).click()
    page.get_by_role("button", name="Previous frame", exact=True).click()
    assert _times(page)["frame"] == 1
    page.get_by_label("Position").press("End")
    assert _times(page)["frame"] == FRAMES - 1
    assert page.locator("#cmp-frame").inner_text() == f"Frame {FRAMES} of {FRAMES}"

    # Every frame shows its own mask: the left box early in the film, the right one later.
    toggle = page.get_by_label("Show what was filled")
    for frame, filled, unfilled in ((10, LEFT, RIGHT), (30, RIGHT, LEFT)):
        page.get_by_label("Position").fill(str(frame))
        assert _times(page)["frame"] == frame
        page.wait_for_function("[...document.querySelectorAll('#cmp-stage video')].every((v) => !v.seeking)")
        plain = {box: _redness(page, job, box) for box in (LEFT, RIGHT)}
        toggle.check()
        page.wait_for_function("(n) => document.getElementById('cmp-masks').dataset.frame === String(n)"
                               " && document.querySelector('#cmp-masks img').complete", arg=frame)
        assert page.locator("#cmp-masks img").get_attribute("src").endswith(f"/masks/frames/{frame}")
        assert _redness(page, job, filled) > plain[filled] + 60, f"frame {frame}'s mask is drawn in red"
        assert abs(_redness(page, job, unfilled) - plain[unfilled]) < 20, f"only frame {frame}'s mask"
        if frame == 10:
            shot(page, "compare-film-masks")
        toggle.uncheck()
        assert not page.locator("#cmp-masks").is_visible()
    toggle.check()
    page.keyboard.press(",")  # stepping with the masks on brings the stepped-to frame's mask
    page.wait_for_function("document.getElementById('cmp-masks').dataset.frame === '29'")
    toggle.uncheck()

    full = page.get_by_role("button", name="Full screen", exact=True)
    full.click()
    page.wait_for_function("document.fullscreenElement?.id === 'compare-slider'"
                           " || document.getElementById('compare-slider').classList.contains('cmp-full')")
    exit_full = page.get_by_role("button", name="Exit full screen", exact=True)
    expect(exit_full).to_have_attribute("aria-pressed", "true")
    box = page.locator("#cmp-stage").bounding_box()
    assert box["width"] > 0.9 * DESKTOP["width"], "the compare box fills the screen"
    exit_full.click()
    page.wait_for_function("!document.fullscreenElement"
                           " && !document.getElementById('compare-slider').classList.contains('cmp-full')")
    expect(full).to_have_attribute("aria-pressed", "false")
