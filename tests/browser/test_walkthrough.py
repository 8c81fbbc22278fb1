"""The whole road a person takes, in one go, in English on a desktop and in Chinese on a
phone: drop a damaged photograph onto the upload page, paint over the scratch, draw a box
round the caption, submit, watch the progress arrive, compare with the slider, download.
Each step is checked against what the API received or made, not against the page alone."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.browser.conftest import DESKTOP, PHONE, shot, signed_in_page
from tests.browser.test_painter import drag
from tests.browser.test_uploads import _drop
from tests.media_factory import grey_photo
from tests.stack import BUCKET, PREFIX
from tests.test_api_uploads import allow_browsers

W, H = 128, 96
WORDS = {"en": {"submit": "Upload and start", "succeeded": "succeeded"},
         "zh": {"submit": "上传并开始", "succeeded": "已完成"}}


def _damaged_photo() -> bytes:
    picture = np.asarray(grey_photo(W, H)).copy()
    picture[70:73, 10:60] = 255  # a scratch across the lower left
    out = io.BytesIO()
    Image.fromarray(picture).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(("lang", "viewport"), [("en", DESKTOP), ("zh", PHONE)],
                         ids=["english-desktop", "chinese-phone"])
def test_drop_paint_box_submit_watch_compare_download(browser, stack, browser_key, lang, viewport):
    allow_browsers(stack)  # the photo goes up as a staged upload, its parts straight to S3
    page = signed_in_page(browser, stack, browser_key, viewport=viewport)
    words = WORDS[lang]
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if r.url.endswith("/events") else None)
    try:
        page.goto(f"/lang/{lang}?next=/")  # the language switch: remembered on every page after
        assert page.locator("html").get_attribute("lang") == lang
        _drop(page, [("scratched.png", "image/png", _damaged_photo())])

        canvas = page.locator("#upload-painter canvas.painter-canvas")
        canvas.wait_for()
        canvas.focus()
        page.keyboard.press("b")
        drag(page, canvas, [(8, 71), (62, 71)])  # over the scratch
        page.keyboard.press("r")
        drag(page, canvas, [(80, 8), (120, 30)])  # round the caption
        assert page.locator(".painter-boxes li").count() == 1
        page.get_by_role("button", name=words["submit"]).click()
        page.wait_for_url(lambda url: "/jobs/" in url, timeout=60_000)
        job_id = page.url.rstrip("/").rsplit("/", 1)[-1]

        # Progress arrives on its own (pushed), and the job ends well.
        page.wait_for_function("document.getElementById('job-status').dataset.status === 'succeeded'",
                               timeout=180_000)
        assert page.locator("#job-status").text_content() == words["succeeded"]
        assert any(f"/api/v1/jobs/{job_id}/events" in url for url in streams), streams
        job = stack.client(browser_key).get(f"{stack.base}/api/v1/jobs/{job_id}", timeout=30).json()
        assert job["status"] == "succeeded" and "inpaint" in job["operations"] and job["input"]["has_mask"]
        [box] = job["options"]["boxes"]
        assert abs(box["x"] - 80) <= 2 and abs(box["y"] - 8) <= 2, box
        mask = stack.s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/jobs/{job_id}/mask.png")["Body"].read()
        painted = np.asarray(Image.open(io.BytesIO(mask)).convert("L")) > 127
        assert painted[71, 12:58].all() and not painted[:60, :70].any(), "the stroke, as painted"

        # Compare: the divider answers the keyboard, all the way to either side.
        divider = page.locator("#cmp-divider")
        divider.wait_for(state="visible")
        divider.focus()
        page.keyboard.press("Home")
        assert float(divider.get_attribute("aria-valuenow")) == 0
        page.keyboard.press("End")
        assert float(divider.get_attribute("aria-valuenow")) == 100
        for _ in range(5):
            page.keyboard.press("ArrowLeft")
        assert 90 <= float(divider.get_attribute("aria-valuenow")) < 100
        shot(page, f"walkthrough-{lang}-{'phone' if viewport is PHONE else 'desktop'}")

        # Download: the file a person saves is the job's result.
        with page.expect_download() as saving:
            page.locator("#download-link").click()
        saved = Image.open(saving.value.path())
        assert saved.size == (W, H)
        assert np.asarray(saved.convert("RGB")).std() > 0
    finally:
        page.context.close()
