"""The mask painter in a real browser: what is painted is exactly what the API receives.

On a video job's page a person opens the painter, paints on two frames with the mouse,
erases part of a stroke, draws a box and asks it to be followed, undoes and redoes,
previews the tracking and submits; the new job's stored per-frame masks and boxes are
read back from the store. On the upload page a photograph is painted on and submitted.
"""

from __future__ import annotations

import io
import subprocess

import numpy as np
from PIL import Image

from tests.browser.conftest import PHONE, shot, signed_in_page
from tests.browser.test_i18n_a11y import CONTROLS, NAMELESS
from tests.media_factory import encode_frames, grey_photo, moving_square, save_picture, textured_frames
from tests.stack import BUCKET, PREFIX
from tests.test_api_uploads import allow_browsers

W, H = 128, 96


def stored(stack, key: str) -> bytes:
    return stack.s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}")["Body"].read()


def drag(page, canvas, points: list[tuple[float, float]], width: int = W, height: int = H) -> None:
    """A mouse drag through points given in the frame's pixels."""
    box = canvas.bounding_box()
    at = [(box["x"] + x * box["width"] / width, box["y"] + y * box["height"] / height) for x, y in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for x, y in at[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


def cancel(stack, key: str, job_id: str) -> None:
    stack.client(key).delete(f"{stack.base}/api/v1/jobs/{job_id}", timeout=30)  # spare the workers


def test_paint_erase_box_follow_undo_and_submit_on_a_video_job(page, stack, browser_key, tmp_path):
    frames, _ = moving_square(textured_frames(12, W, H))
    source = encode_frames(tmp_path / "film.mp4", frames)
    api = stack.client(browser_key)
    made = api.post(f"{stack.base}/api/v1/jobs", files={"file": ("film.mp4", source.read_bytes())},
                    data={"operations": "colorize"}, timeout=60)
    assert made.status_code == 202, made.text
    parent = made.json()["id"]
    cancel(stack, browser_key, parent)

    page.goto(f"/jobs/{parent}")
    page.get_by_role("button", name="Paint masks and inpaint again").click()
    canvas = page.locator("canvas.painter-canvas")
    canvas.wait_for()
    page.wait_for_function("document.querySelector('.painter-status').textContent === 'Frame 0'")
    canvas.focus()
    for _ in range(6):
        page.keyboard.press("]")  # brush size 3 → 10
    assert page.locator(".painter-bar output").inner_text() == "10"
    page.keyboard.press("b")
    drag(page, canvas, [(20, 20), (100, 20)])  # frame 0: a line across the top
    drag(page, canvas, [(20, 50), (100, 50)])  # and one across the middle, undone and redone
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+y")
    drag(page, canvas, [(20, 80), (100, 80)])  # and one at the bottom, undone
    page.keyboard.press("Control+z")
    for _ in range(5):
        page.keyboard.press(".")  # next frame (arrows move the keyboard's cursor)
    assert page.get_by_label("Frame", exact=True).last.input_value() == "5"
    drag(page, canvas, [(20, 70), (60, 70)])  # frame 5: a shorter line lower down, on frame 0's mask it showed
    assert page.locator(".painter-status").inner_text().startswith("Frame 5 now has its own mask, copied from")
    page.keyboard.press("e")
    drag(page, canvas, [(40, 55), (40, 85)])  # erase across it: two pieces remain
    page.keyboard.press("r")
    drag(page, canvas, [(80, 40), (110, 60)])  # a box from frame 5 on
    follow = page.get_by_label("Follow it")
    follow.check()
    canvas.focus()
    page.keyboard.press("Control+z")
    assert not follow.is_checked(), "undo takes the follow-it back"
    page.keyboard.press("Control+Shift+z")
    assert page.get_by_label("Follow it").is_checked(), "redo puts it back"
    page.get_by_role("button", name="Preview tracking").click()
    page.wait_for_function("document.querySelector('.painter-status').textContent.startsWith('Tracked boxes shown')")
    page.get_by_label("Frame", exact=True).last.fill("5")
    page.get_by_label("Frame", exact=True).last.press("Enter")
    page.wait_for_function("document.querySelector('.painter-status').textContent === 'Frame 5'")
    shot(page, "painter")

    page.get_by_role("button", name="Inpaint again, as a new job").click()
    page.wait_for_url(lambda url: parent not in url and "/jobs/" in url)
    job_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    job = api.get(f"{stack.base}/api/v1/jobs/{job_id}", timeout=30).json()
    cancel(stack, browser_key, job_id)
    assert "inpaint" in job["operations"] and "colorize" in job["operations"]
    [box] = job["options"]["boxes"]
    assert box["first"] == 5 and box["track"] == 1, box
    assert abs(box["x"] - 80) <= 2 and abs(box["y"] - 40) <= 2 and abs(box["w"] - 30) <= 3 and abs(box["h"] - 20) <= 3

    page.get_by_role("button", name="Paint masks and inpaint again").click()  # a correction of the correction
    page.locator(".painter-boxes li").wait_for()
    assert page.locator(".painter-boxes li").count() == 1 and page.get_by_label("Follow it").is_checked(), \
        "the painter starts from the job's own boxes"

    path = tmp_path / "masks.mkv"
    path.write_bytes(stored(stack, f"jobs/{job_id}/masks.mkv"))
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                         check=True, capture_output=True).stdout
    masks = np.frombuffer(raw, np.uint8).reshape(-1, H, W) > 127
    assert masks.shape[0] == 12
    assert masks[0, 20, 25:95].all() and masks[0, 50, 25:95].all(), "frame 0: its line and the one redone"
    assert not masks[0, 60:].any(), "the undone stroke is gone"
    assert not masks[1:5].any() and not masks[6:].any(), "frames painted on nothing are empty"
    assert masks[5, 70, 22:30].all() and masks[5, 70, 50:58].all(), "frame 5: both ends of its line"
    assert not masks[5, 70, 38:43].any(), "the eraser took the middle out"
    assert masks[5, 20, 25:95].all() and masks[5, 47, 25:95].all(), "frame 5 started from the mask it showed"
    assert not masks[5, 27:43].any() and not masks[5, 78:].any(), "nothing else on frame 5"


def test_a_photo_is_painted_on_the_upload_page_and_submitted(page, stack, browser_key, tmp_path):
    photo = save_picture(tmp_path / "print.png", grey_photo(W, H))
    page.goto("/")
    page.locator('input[name="file"]').set_input_files(str(photo))
    canvas = page.locator("#upload-painter canvas.painter-canvas")
    canvas.wait_for()
    canvas.focus()
    page.keyboard.press("b")
    drag(page, canvas, [(10, 80), (50, 80)])
    page.keyboard.press("r")
    drag(page, canvas, [(70, 10), (100, 30)])
    assert page.locator(".painter-boxes li").count() == 1
    page.get_by_role("button", name="Upload and start").click()
    page.wait_for_url(lambda url: "/jobs/" in url)
    job_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    job = stack.client(browser_key).get(f"{stack.base}/api/v1/jobs/{job_id}", timeout=30).json()
    cancel(stack, browser_key, job_id)
    assert "inpaint" in job["operations"] and job["input"]["has_mask"]
    [box] = job["options"]["boxes"]
    assert abs(box["x"] - 70) <= 2 and abs(box["y"] - 10) <= 2 and "first" not in box and "track" not in box
    mask = np.asarray(Image.open(io.BytesIO(stored(stack, f"jobs/{job_id}/mask.png"))).convert("L")) > 127
    assert mask.shape == (H, W)
    assert mask[80, 14:46].all() and not mask[:70].any(), "the stroke, and only the stroke"




def test_a_film_is_staged_painted_on_and_submitted_from_the_upload_page(page, stack, browser_key, tmp_path):
    frames, _ = moving_square(textured_frames(8, W, H))
    film = encode_frames(tmp_path / "reel.mp4", frames)
    page.goto("/")
    page.locator('input[name="file"]').set_input_files(str(film))
    page.get_by_role("button", name="Upload now and paint on its frames").click()
    canvas = page.locator("#upload-painter canvas.painter-canvas")
    canvas.wait_for()
    canvas.focus()
    page.keyboard.press(".")
    page.keyboard.press(".")
    page.keyboard.press("b")
    drag(page, canvas, [(30, 10), (30, 50)])  # one painted frame: one mask for every frame
    page.get_by_role("button", name="Upload and start").click()
    page.wait_for_url(lambda url: "/jobs/" in url)
    job_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    job = stack.client(browser_key).get(f"{stack.base}/api/v1/jobs/{job_id}", timeout=30).json()
    cancel(stack, browser_key, job_id)
    assert job["input"]["name"] == "reel.mp4" and job["input"]["facts"]["frames"] == 8
    assert "inpaint" in job["operations"] and job["input"]["has_mask"]
    mask = np.asarray(Image.open(io.BytesIO(stored(stack, f"jobs/{job_id}/mask.png"))).convert("L")) > 127
    assert mask[15:45, 30].all() and not mask[:, 40:].any()


def test_detected_damage_is_previewed_and_used_as_the_mask(page, stack, browser_key, tmp_path):
    frames = textured_frames(6, W, H)
    for frame in frames:
        frame[:, 61:63] = 250  # a bright line scratch down the whole film
    film = encode_frames(tmp_path / "scratched.mp4", frames)
    api = stack.client(browser_key)
    parent = api.post(f"{stack.base}/api/v1/jobs", files={"file": ("scratched.mp4", film.read_bytes())},
                      data={"operations": "colorize"}, timeout=60).json()["id"]
    cancel(stack, browser_key, parent)
    page.goto(f"/jobs/{parent}")
    page.get_by_role("button", name="Paint masks and inpaint again").click()
    page.get_by_role("button", name="Detect damage on this frame").click()
    page.get_by_role("button", name="Use it").click()
    page.get_by_role("button", name="Inpaint again, as a new job").click()
    page.wait_for_url(lambda url: parent not in url and "/jobs/" in url)
    job_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    job = api.get(f"{stack.base}/api/v1/jobs/{job_id}", timeout=30).json()
    cancel(stack, browser_key, job_id)
    assert job["input"]["has_mask"] and not job["options"]["boxes"]
    mask = np.asarray(Image.open(io.BytesIO(stored(stack, f"jobs/{job_id}/mask.png"))).convert("L")) > 127
    assert mask[:, 60:64].mean() > 0.5 and mask[:, :55].mean() < 0.01, "the scratch the detector found"


def test_damage_detected_on_a_photo_chosen_on_the_upload_page_is_its_mask(page, stack, browser_key, tmp_path):
    picture = grey_photo(W, H).copy()
    picture[:, 61:63] = 250  # a bright line scratch down the whole print
    photo = save_picture(tmp_path / "scratched.png", picture)
    page.goto("/")
    page.locator('input[name="file"]').set_input_files(str(photo))
    page.get_by_role("button", name="Detect damage on this frame").click()  # stages the photo first
    page.get_by_role("button", name="Use it").click()
    page.get_by_role("button", name="Upload and start").click()
    page.wait_for_url(lambda url: "/jobs/" in url)
    job_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    job = stack.client(browser_key).get(f"{stack.base}/api/v1/jobs/{job_id}", timeout=30).json()
    cancel(stack, browser_key, job_id)
    assert job["input"]["name"] == "scratched.png" and "inpaint" in job["operations"] and job["input"]["has_mask"]
    mask = np.asarray(Image.open(io.BytesIO(stored(stack, f"jobs/{job_id}/mask.png"))).convert("L")) > 127
    assert mask.shape == (H, W)
    assert mask[:, 60:64].mean() > 0.5 and mask[:, :55].mean() < 0.01, "the scratch the detector found"


def test_a_finger_paints_on_a_phone(browser, stack, browser_key, tmp_path):
    page = signed_in_page(browser, stack, browser_key, PHONE)
    try:
        photo = save_picture(tmp_path / "print.png", grey_photo(W, H))
        page.goto("/")
        page.locator('input[name="file"]').set_input_files(str(photo))
        canvas = page.locator("#upload-painter canvas.painter-canvas")
        canvas.wait_for()
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], "the frame fits the phone's width"
        assert canvas.evaluate("c => getComputedStyle(c).touchAction") == "none"
        touch = page.context.new_cdp_session(page)
        y = box["y"] + 60 * box["height"] / H
        xs = [box["x"] + x * box["width"] / W for x in range(20, 101, 10)]

        def send(kind: str, x: float | None) -> None:
            points = [] if x is None else [{"x": x, "y": y, "id": 1}]
            touch.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})
        send("touchStart", xs[0])
        for x in xs[1:]:
            send("touchMove", x)
        send("touchEnd", None)
        page.get_by_role("button", name="Upload and start").click()
        page.wait_for_url(lambda url: "/jobs/" in url)
        job_id = page.url.rstrip("/").rsplit("/", 1)[-1]
        cancel(stack, browser_key, job_id)
        mask = np.asarray(Image.open(io.BytesIO(stored(stack, f"jobs/{job_id}/mask.png"))).convert("L")) > 127
        assert mask[60, 25:95].all() and not mask[:50].any(), "the finger's stroke"
    finally:
        page.context.close()


SUBMITS = "window.submits = 0; window.addEventListener('submit', () => { window.submits += 1; }, true)"
PENDING_UPLOADS = """() => new Promise((resolve) => {
  const open = indexedDB.open("tintype-uploads", 1);
  open.onupgradeneeded = () => open.result.createObjectStore("pending", { keyPath: "id" });
  open.onsuccess = () => {
    const all = open.result.transaction("pending").objectStore("pending").getAll();
    all.onsuccess = () => { resolve(all.result.length); open.result.close(); };
  };
})"""


def press(page, key: str, times: int = 1) -> None:
    for _ in range(times):
        page.keyboard.press(key)


def test_a_film_staged_on_the_upload_page_is_painted_and_boxed_by_keyboard_alone(page, stack, browser_key, tmp_path):
    allow_browsers(stack)  # the drop zone's staged upload may PUT its parts straight to S3
    frames, _ = moving_square(textured_frames(8, W, H))
    film = encode_frames(tmp_path / "keys.mp4", frames)
    page.goto("/")
    page.evaluate(SUBMITS)
    page.locator('input[name="file"]').set_input_files(str(film))
    page.get_by_role("button", name="Upload now and paint on its frames").click()
    row = page.locator("#upload-list .painter-staging")
    row.locator(".upload-state", has_text="Uploaded").wait_for()  # sent as the drop zone sends, with its bar
    assert row.locator("progress").evaluate("p => p.value") == 100
    canvas = page.locator("#upload-painter canvas.painter-canvas")
    canvas.wait_for()
    page.wait_for_function("document.querySelector('.painter-status').textContent === 'Frame 0'")
    number = page.locator("#upload-painter .painter-frame")
    number.fill("3")
    number.press("Enter")  # inside the upload form: shows frame 3, submits nothing
    page.wait_for_function("document.querySelector('.painter-status').textContent === 'Frame 3'")
    assert page.evaluate("window.submits") == 0 and "/jobs/" not in page.url

    canvas.focus()
    page.keyboard.press("b")
    # The cursor starts in the middle (64, 48); an arrow moves it 1 pixel, Shift+arrow 10.
    press(page, "Shift+ArrowUp", 3)
    press(page, "Shift+ArrowLeft", 3)  # (34, 18)
    page.keyboard.press("Space")  # the pen goes down
    press(page, "Shift+ArrowRight", 4)  # painting to (74, 18)
    page.keyboard.press("Space")  # and up
    assert page.locator(".painter-status").inner_text() == "Brush lifted"
    page.keyboard.press("r")
    press(page, "ArrowRight", 6)
    press(page, "Shift+ArrowDown", 4)  # (80, 58)
    page.keyboard.press("Space")  # a box starts at the cursor
    press(page, "Shift+ArrowRight", 2)
    press(page, "Shift+ArrowDown", 2)
    page.keyboard.press("Enter")  # kept: 20×20 at 80,58
    assert page.locator(".painter-boxes li").count() == 1
    assert page.locator(".painter-status").inner_text().startswith("Box 1 kept: 20×20 at 80,58")
    assert page.evaluate("window.submits") == 0
    assert page.evaluate(NAMELESS, "#upload-painter " + CONTROLS.replace(", ", ", #upload-painter ")) == [], \
        "every painter control has a name"

    page.get_by_role("button", name="Upload and start").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/jobs/" in url)
    job_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    assert page.evaluate(PENDING_UPLOADS) == 0, "the staged upload is no longer offered for resuming"
    job = stack.client(browser_key).get(f"{stack.base}/api/v1/jobs/{job_id}", timeout=30).json()
    cancel(stack, browser_key, job_id)
    assert job["input"]["name"] == "keys.mp4" and job["input"]["has_mask"]
    [box] = job["options"]["boxes"]
    assert (box["x"], box["y"], box["w"], box["h"], box["first"]) == (80, 58, 20, 20, 3), box
    mask = np.asarray(Image.open(io.BytesIO(stored(stack, f"jobs/{job_id}/mask.png"))).convert("L")) > 127
    assert mask[18, 36:73].all(), "the stroke the keyboard painted"
    assert not mask[:15].any() and not mask[22:].any() and not mask[:, :30].any() and not mask[:, 80:].any()


def test_enter_in_the_photo_painter_does_not_submit_and_a_replaced_painter_stops_listening(page, tmp_path):
    first = save_picture(tmp_path / "first.png", grey_photo(W, H))
    second = save_picture(tmp_path / "second.png", grey_photo(W, H))
    page.goto("/")
    page.evaluate(SUBMITS)
    page.locator('input[name="file"]').set_input_files(str(first))
    canvas = page.locator("#upload-painter canvas.painter-canvas")
    canvas.wait_for()
    assert page.evaluate(NAMELESS, "#upload-painter " + CONTROLS.replace(", ", ", #upload-painter ")) == []
    page.get_by_label("Brush size").focus()
    page.keyboard.press("Enter")
    assert page.evaluate("window.submits") == 0, "Enter in the brush size submitted the upload form"
    drag(page, canvas, [(10, 10), (60, 10)])
    page.locator('input[name="file"]').set_input_files(str(second))  # a new painter, nothing painted yet
    page.wait_for_function("document.querySelectorAll('#upload-painter canvas').length === 1 && "
                           "!document.querySelector('#upload-painter .painter-boxes li')")
    page.evaluate("window.changes = 0; document.querySelector('#upload-painter .painter')"
                  ".addEventListener('painter-change', () => { window.changes += 1; })")
    canvas.focus()
    page.keyboard.press("Control+z")  # nothing to undo here; the first painter must not hear it
    assert page.evaluate("window.changes") == 0


def test_a_large_photo_is_painted_at_2048_pixels_and_sent_at_its_own_size(page, stack, browser_key, tmp_path):
    allow_browsers(stack)
    photo = save_picture(tmp_path / "scan.png", grey_photo(3072, 1280))  # under the stack's 4 MP limit
    page.goto("/")
    page.locator('input[name="file"]').set_input_files(str(photo))
    canvas = page.locator("#upload-painter canvas.painter-canvas")
    canvas.wait_for()
    assert canvas.evaluate("c => [c.width, c.height]") == [2048, 853], "the painter works at most 2048 pixels long"
    canvas.focus()
    page.keyboard.press("b")
    drag(page, canvas, [(200, 200), (1000, 200)], 2048, 853)  # the painter's pixels: 2/3 of the scan's
    page.keyboard.press("r")
    drag(page, canvas, [(1200, 100), (1600, 300)], 2048, 853)
    page.get_by_role("button", name="Upload and start").click()
    page.wait_for_url(lambda url: "/jobs/" in url, timeout=60_000)
    job_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    job = stack.client(browser_key).get(f"{stack.base}/api/v1/jobs/{job_id}", timeout=30).json()
    cancel(stack, browser_key, job_id)
    [box] = job["options"]["boxes"]
    assert all(abs(box[k] - v) <= 6 for k, v in {"x": 1800, "y": 150, "w": 600, "h": 300}.items()), box
    mask = np.asarray(Image.open(io.BytesIO(stored(stack, f"jobs/{job_id}/mask.png"))).convert("L")) > 127
    assert mask.shape == (1280, 3072), "the mask is sent at the scan's own size"
    assert mask[300, 350:1450].all() and not mask[400:].any() and not mask[:, 1600:].any()
