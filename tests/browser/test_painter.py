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
from tests.media_factory import encode_frames, grey_photo, moving_square, save_picture, textured_frames
from tests.stack import BUCKET, PREFIX

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
        page.keyboard.press("ArrowRight")
    assert page.get_by_label("Frame", exact=True).last.input_value() == "5"
    drag(page, canvas, [(20, 70), (60, 70)])  # frame 5: a shorter line lower down
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
    assert not masks[5, :40].any(), "nothing else on frame 5"


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
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
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
