"""Colour hints in the browser: open a keyframe of a real film job, pick a colour, paint a
stroke, preview, re-colour; the new job holds the edited keyframe, blue where painted."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from tests.browser.conftest import PHONE, shot, signed_in_page
from tests.browser.test_i18n_a11y import CONTROLS, NAMELESS
from tests.media_factory import encode_frames, grey_film, tinted
from tintype.media.color import rgb_to_lab

FILM = grey_film()
BLUE = "#2855d8"
ORANGE = "#d0601c"
PAINTED = (slice(30, 35), slice(26, 48))  # around the stroke _paint draws along row 32


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, "PNG")
    return out.getvalue()


def _film_job(stack, client, tmp_path) -> dict:
    film = encode_frames(tmp_path / "film.mp4", FILM, lossless=False)
    files = [("file", (film.name, film.read_bytes())), ("keyframes", ("5.png", _png(tinted(FILM[5])))),
             ("keyframes", ("12.png", _png(tinted(FILM[12]))))]
    response = client.post(f"{stack.base}/api/v1/jobs", files=files, data={"operations": "colorize"}, timeout=120)
    assert response.status_code == 202, response.text
    job, deadline = response.json(), time.monotonic() + 240
    while job["status"] not in ("succeeded", "failed", "cancelled") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = client.get(job["links"]["self"], timeout=30).json()
    assert job["status"] == "succeeded", (job, stack.tail())
    return job


def _hue_share(rgb: np.ndarray, box: tuple[slice, slice], colour: str) -> float:
    """Share of `box` within 15 degrees of `colour`'s hue, with some chroma."""
    want = rgb_to_lab(np.array([[[int(colour[i:i + 2], 16) for i in (1, 3, 5)]]], np.uint8))[0, 0, 1:]
    ab = rgb_to_lab(rgb)[box][..., 1:].reshape(-1, 2)
    cosine = ab @ want / np.maximum(np.linalg.norm(ab, axis=1), 1e-6) / np.linalg.norm(want)
    return float(((cosine > np.cos(np.radians(15))) & (np.linalg.norm(ab, axis=1) > 15)).mean())


@pytest.fixture(scope="module")
def film_job(stack, browser_key, tmp_path_factory) -> dict:
    """One finished film job with keyframes 5 and 12, shared: each test re-colours it anew."""
    return _film_job(stack, stack.client(browser_key), tmp_path_factory.mktemp("hints"))


def _open_keyframe(page, frame: int) -> None:
    """Open keyframe `frame` in the hint editor and wait for its picture."""
    page.get_by_role("button", name=f"Paint colour hints on keyframe {frame}").click()
    page.wait_for_function(f"document.getElementById('hint-title').textContent === 'Keyframe of frame {frame}'")
    page.wait_for_function("!document.getElementById('hint-editor').hasAttribute('aria-busy') "
                           "&& document.getElementById('hint-canvas').width === 96")


def _paint(page, colour: str, size: int) -> None:
    """A stroke of `colour` along row 32, from x 24 to 48, dragged with the mouse (the canvas
    is measured each time: showing the preview beside it narrows it)."""
    canvas = page.get_by_label("Picture to paint on", exact=False)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    scale = box["width"] / 96
    page.get_by_label("Colour", exact=True).fill(colour)
    page.get_by_label("Brush size").fill(str(size))
    page.mouse.move(box["x"] + 24 * scale, box["y"] + 32 * scale)
    page.mouse.down()
    for x in range(26, 50, 2):
        page.mouse.move(box["x"] + x * scale, box["y"] + 32 * scale)
    page.mouse.up()


def _preview(page) -> None:
    page.get_by_role("button", name="Preview").click()
    page.wait_for_function("document.getElementById('hint-status').textContent === 'Preview ready' "
                           "|| document.getElementById('hint-error').textContent !== ''")
    assert page.locator("#hint-error").inner_text() == ""


def _recolour(page, client, stack, parent: dict) -> dict[int, np.ndarray]:
    """Press Re-colour; the new job's keyframes as the API stores them, by frame."""
    page.get_by_role("button", name="Re-colour").click()
    page.wait_for_url(lambda url: parent["id"] not in url and "/jobs/" in url)
    child_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    child = client.get(f"{stack.base}/api/v1/jobs/{child_id}", timeout=30).json()
    assert child["recolour_of"] == parent["id"]
    stored = {}
    for keyframe in child["keyframes"]:
        picture = client.get(f"{stack.base}/api/v1/jobs/{child_id}/keyframes/{keyframe['frame']}", timeout=30)
        stored[keyframe["frame"]] = np.asarray(Image.open(io.BytesIO(picture.content)).convert("RGB"))
    return stored


def test_paint_a_keyframe_preview_and_recolour(page, stack, browser_key, film_job):
    client = stack.client(browser_key)
    parent = film_job
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error"
            and not message.location["url"].endswith("/favicon.ico") else None)
    page.goto(f"/jobs/{parent['id']}")
    page.get_by_role("button", name="Paint colour hints on keyframe 5").click()
    canvas = page.get_by_label("Picture to paint on", exact=False)
    page.wait_for_function("!document.getElementById('hint-editor').hasAttribute('aria-busy') "
                           "&& document.getElementById('hint-canvas').width === 96")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box["y"] + box["height"] <= 900, "the picture does not fit in the window"
    scale = box["width"] / 96

    # The eyedropper takes the keyframe's colour under the pointer.
    page.get_by_role("button", name="Pick a colour from the picture").click()
    page.mouse.click(box["x"] + 10.5 * scale, box["y"] + 10.5 * scale)
    keyframe = tinted(FILM[5])
    picked = page.get_by_label("Colour", exact=True).input_value()
    assert not errors, errors
    assert np.abs(np.array([int(picked[i:i + 2], 16) for i in (1, 3, 5)]) - keyframe[10, 10].astype(int)).max() <= 3

    page.get_by_label("Colour", exact=True).fill(BLUE)
    page.get_by_label("Brush size").fill("6")
    page.mouse.move(box["x"] + 24 * scale, box["y"] + 32 * scale)
    page.mouse.down()
    for x in range(26, 50, 2):
        page.mouse.move(box["x"] + x * scale, box["y"] + 32 * scale)
    page.mouse.up()
    page.get_by_role("button", name="Preview").click()
    page.wait_for_function("document.getElementById('hint-status').textContent === 'Preview ready' "
                           "|| document.getElementById('hint-error').textContent !== ''")
    assert page.locator("#hint-error").inner_text() == "" and not errors, (page.locator("#hint-error").inner_text(),
                                                                           errors)
    assert page.get_by_role("img", name="The picture recoloured by your strokes").is_visible()
    page.wait_for_function("document.getElementById('hint-preview-img').naturalWidth === 96")
    shot(page, "keyframe-hints")

    # Another keyframe replaced by a colour photo of its frame (its colours swapped round).
    page.get_by_role("button", name="Paint colour hints on keyframe 12").click()
    page.wait_for_function("document.getElementById('hint-title').textContent === 'Keyframe of frame 12'")
    page.wait_for_function("!document.getElementById('hint-editor').hasAttribute('aria-busy') "
                           "&& document.getElementById('hint-canvas').width === 96")
    swapped = np.ascontiguousarray(tinted(FILM[12])[..., ::-1])
    page.get_by_label("Or choose a colour photo of this frame").set_input_files(
        files=[{"name": "photo.png", "mimeType": "image/png", "buffer": _png(swapped)}])
    page.wait_for_function("document.getElementById('hint-status').textContent.includes('replaces keyframe 12')")
    page.get_by_role("button", name="Paint colour hints on keyframe 5").click()  # its strokes are kept
    page.wait_for_function("document.getElementById('hint-status').textContent === 'Strokes: 1'")

    page.get_by_role("button", name="Re-colour").click()
    page.wait_for_url(lambda url: parent["id"] not in url and "/jobs/" in url)
    child_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    child = client.get(f"{stack.base}/api/v1/jobs/{child_id}", timeout=30).json()
    assert child["recolour_of"] == parent["id"]
    assert child["keyframes"] == [{"frame": 5, "source": "user"}, {"frame": 12, "source": "user"}]
    dropped = client.get(f"{stack.base}/api/v1/jobs/{child_id}/keyframes/12", timeout=30)
    assert np.abs(np.asarray(Image.open(io.BytesIO(dropped.content)).convert("RGB")).astype(int) - swapped).mean() < 3
    stored = client.get(f"{stack.base}/api/v1/jobs/{child_id}/keyframes/5", timeout=30)
    edited = np.asarray(Image.open(io.BytesIO(stored.content)).convert("RGB"))
    painted = (slice(30, 35), slice(26, 48))
    assert _hue_share(edited, painted, BLUE) > 0.9, "the stroke's colour is not in the new job's keyframe"
    assert _hue_share(keyframe, painted, BLUE) < 0.1
    assert np.abs(rgb_to_lab(edited)[..., 0] - rgb_to_lab(keyframe)[..., 0]).max() < 1.5  # lightness kept


@pytest.fixture()
def phone_page(browser, stack, browser_key):
    opened = signed_in_page(browser, stack, browser_key, PHONE)
    yield opened
    opened.context.close()


def test_paint_a_photo_on_a_phone_by_touch_and_keyboard_and_download_it(phone_page, stack, browser_key, tmp_path):
    page = phone_page
    client = stack.client(browser_key)
    photo = tmp_path / "photo.png"
    photo.write_bytes(_png(FILM[0]))
    response = client.post(f"{stack.base}/api/v1/jobs", files={"file": ("photo.png", photo.read_bytes())},
                           data={"operations": "colorize"}, timeout=120)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    page.goto(f"/jobs/{job_id}")
    page.get_by_role("button", name="Paint colour hints on the result").click()  # offered once it succeeds
    page.wait_for_function("!document.getElementById('hint-editor').hasAttribute('aria-busy') "
                           "&& document.getElementById('hint-canvas').width === 96")
    page.get_by_label("Colour", exact=True).fill(BLUE)
    canvas = page.get_by_label("Picture to paint on", exact=False)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], "the picture is wider than the phone"
    page.touchscreen.tap(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.2)  # a dab by finger
    assert page.locator("#hint-status").inner_text() == "Strokes: 1"
    page.get_by_role("button", name="Undo").click()
    assert page.locator("#hint-status").inner_text() == "Strokes: 0"
    canvas.focus()  # the brush starts in the middle (48, 32): Space puts it down, arrows paint
    page.keyboard.press("Space")
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    page.keyboard.press("Space")
    assert page.locator("#hint-status").inner_text() == "Strokes: 1"
    page.keyboard.press("Control+z")
    assert page.locator("#hint-status").inner_text() == "Strokes: 0"
    page.keyboard.press("Space")
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    page.keyboard.press("Space")
    page.get_by_role("button", name="Preview").click()
    download = page.get_by_role("link", name="Download the hinted photo")
    download.wait_for(state="visible")
    with page.expect_download() as started:
        download.click()
    hinted = np.asarray(Image.open(started.value.path()).convert("RGB"))
    result = client.get(f"{stack.base}/api/v1/jobs/{job_id}/result", timeout=30)
    before = np.asarray(Image.open(io.BytesIO(result.content)).convert("RGB"))
    painted = (slice(30, 35), slice(35, 47))
    assert _hue_share(hinted, painted, BLUE) > 0.9 and _hue_share(before, painted, BLUE) < 0.1
    shot(page, "photo-hints-phone")


def test_recolour_sends_the_strokes_painted_after_the_preview(page, stack, browser_key, film_job):
    """Paint blue, preview, paint orange over it: the new job's keyframe is orange, not the
    blue of the stale preview (review finding 1, case A)."""
    page.goto(f"/jobs/{film_job['id']}")
    _open_keyframe(page, 5)
    _paint(page, BLUE, 6)
    _preview(page)
    _paint(page, ORANGE, 12)  # wider: it covers the blue stroke
    stored = _recolour(page, stack.client(browser_key), stack, film_job)
    assert _hue_share(stored[5], PAINTED, ORANGE) > 0.9, "the second stroke's colour is not in the new job"
    assert _hue_share(stored[5], PAINTED, BLUE) < 0.1, "the stale preview was sent"
    assert _hue_share(tinted(FILM[5]), PAINTED, ORANGE) < 0.1


def test_recolour_sends_a_keyframe_painted_but_never_previewed(page, stack, browser_key, film_job):
    """Keyframe 5 painted without a preview, keyframe 12 painted and previewed: both reach the
    new job (review finding 1, case B)."""
    page.goto(f"/jobs/{film_job['id']}")
    _open_keyframe(page, 5)
    _paint(page, BLUE, 6)
    _open_keyframe(page, 12)
    _paint(page, ORANGE, 6)
    _preview(page)
    stored = _recolour(page, stack.client(browser_key), stack, film_job)
    assert 5 in stored and _hue_share(stored[5], PAINTED, BLUE) > 0.9, "keyframe 5's strokes never reached the job"
    assert _hue_share(stored[12], PAINTED, ORANGE) > 0.9
    assert _hue_share(tinted(FILM[5]), PAINTED, BLUE) < 0.1


def test_the_open_editor_is_named_shows_the_last_keyframe_opened_and_gives_focus_back(page, film_job):
    page.goto(f"/jobs/{film_job['id']}")
    # Keyframe 5's picture answers late: opened, then 12 at once, the editor must show 12.
    page.evaluate("""() => {
      const original = window.fetch;
      window.fetch = (url, ...rest) => (String(url).endsWith('/keyframes/5')
        ? new Promise((resolve) => setTimeout(resolve, 1500)).then(() => original(url, ...rest))
        : original(url, ...rest));
    }""")
    page.get_by_role("button", name="Paint colour hints on keyframe 5").click()
    _open_keyframe(page, 12)
    page.wait_for_timeout(2500)  # keyframe 5's picture has arrived meanwhile
    shown = np.array(page.evaluate("""() => {
      const c = document.getElementById('hint-canvas');
      return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
    }"""), np.uint8).reshape(64, 96, 4)[..., :3].astype(int)
    assert np.abs(shown - tinted(FILM[12])).mean() < 3 < np.abs(shown - tinted(FILM[5])).mean(), \
        "the editor, titled keyframe 12, paints on keyframe 5's picture"

    opener = page.get_by_role("button", name="Paint colour hints on keyframe 12")
    opener.focus()
    page.keyboard.press("Enter")  # opened by keyboard this time
    page.wait_for_function("document.getElementById('hint-status').textContent !== 'Loading…'")
    controls = f"#hint-editor :is({CONTROLS})"
    assert page.locator(controls).count() >= 8
    assert page.evaluate(NAMELESS, controls) == [], "controls without a name in the hint editor"
    page.get_by_role("button", name="Close", exact=True).focus()
    page.keyboard.press("Enter")
    assert page.locator("#hint-editor").is_hidden()
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Paint colour hints on keyframe 12"
