"""The pages in Chinese, on a phone, by keyboard and to a screen reader, in a real browser.

Chinese: every page says its words from the zh catalogue and writes dates the Chinese way.
A phone (390×844): nothing is wider than the screen and the jobs table becomes cards.
Accessibility: every control has an accessible name, the skip link and Tab reach the form's
submit button, and Enter on it starts the job.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import PHONE, shot, signed_in_page
from tests.media_factory import grey_photo, save_picture

ZH_DATE = re.compile(r"\d{4}年\d{1,2}月\d{1,2}日")
CONTROLS = "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex='-1'])"

# The accessible name of each visible control, computed as a browser's accessibility tree
# would for these elements: aria-labelledby, aria-label, an associated <label>, alt text of an
# image inside, the element's text, a title.
NAMELESS = """(selector) => {
  const name = (el) => {
    if (el.getAttribute("aria-labelledby")) {
      return el.getAttribute("aria-labelledby").split(/\\s+/)
        .map((id) => (document.getElementById(id) || {}).textContent || "").join(" ").trim();
    }
    if ((el.getAttribute("aria-label") || "").trim()) return el.getAttribute("aria-label").trim();
    if (el.labels && el.labels.length) return [...el.labels].map((l) => l.textContent).join(" ").trim();
    const text = (el.innerText || el.textContent || "").trim();
    if (text) return text;
    const img = el.querySelector && el.querySelector("img[alt]");
    if (img && img.alt.trim()) return img.alt.trim();
    return (el.getAttribute("title") || el.getAttribute("placeholder") || "").trim();
  };
  return [...document.querySelectorAll(selector)]
    .filter((el) => el.getClientRects().length > 0)
    .filter((el) => !name(el))
    .map((el) => el.outerHTML.slice(0, 160));
}"""


@pytest.fixture(scope="module")
def job_id(stack, browser_key, tmp_path_factory) -> str:
    """A job of the browser's owner, so the list and a job page have something to show."""
    photo = save_picture(tmp_path_factory.mktemp("i18n") / "grey.png", grey_photo())
    response = stack.client(browser_key).post(f"{stack.base}/api/v1/jobs", timeout=60,
                                              files={"file": ("grey.png", photo.read_bytes())},
                                              data={"colorize": "yes"})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_every_page_speaks_chinese_once_chosen_by_keyboard(browser, stack, browser_key, job_id):
    page = signed_in_page(browser, stack, browser_key)
    try:
        page.goto("/")
        page.get_by_role("link", name="中文").focus()
        page.keyboard.press("Enter")
        page.wait_for_function("document.documentElement.lang === 'zh'")
        assert page.get_by_role("heading", level=1).inner_text() == "修复照片或影片"
        assert page.get_by_role("link", name="中文").get_attribute("aria-current") == "true"
        page.get_by_text("选项", exact=True).click()
        page.get_by_label("饱和度").fill("1.5")  # a job option's label, from FIELDS through the catalogue
        assert page.locator("select[name=colorize] option[selected]").inner_text() == "若为黑白则上色（保留已有颜色）"
        assert page.get_by_role("button", name="上传并开始").is_visible()
        assert page.get_by_role("navigation", name="语言").is_visible()
        shot(page, "upload-zh")
        page.locator("input[name=file]").set_input_files(
            {"name": "notes.png", "mimeType": "image/png", "buffer": b"not a picture at all"})
        page.get_by_role("button", name="上传并开始").click()
        error = page.locator("#submit-error")
        error.filter(has_text="(").wait_for()
        said = error.inner_text()  # the API's code in Chinese words, then its English detail
        assert said.startswith(("这不是图片、影片或帧的 ZIP 压缩包。", "无法读取该文件：文件可能已损坏。")), said

        page.goto("/jobs")  # remembered: no ?lang any more
        assert page.get_by_role("heading", level=1).inner_text() == "任务"
        row = page.locator("#jobs-body tr", has=page.locator(f"a[href$='{job_id}']"))
        created = row.locator("time")
        assert ZH_DATE.search(created.inner_text()), created.inner_text()
        api = stack.client(browser_key).get(f"{stack.base}/api/v1/jobs/{job_id}", timeout=30).json()
        assert created.get_attribute("datetime") == api["created_at"]
        assert row.locator("td").nth(2).inner_text() == "图片"  # the kind, in words
        assert row.locator("td").nth(4).inner_text() in {"排队中", "运行中", "已完成", "失败"}
        assert re.fullmatch(r"\d+%", row.locator("td").nth(5).inner_text())
        assert re.fullmatch(r"第 \d+ 页，共 \d+ 页", page.locator("#page-info").inner_text())
        shot(page, "jobs-zh")

        page.goto(f"/jobs/{job_id}")
        assert page.locator("#job-status").inner_text() in {"排队中", "运行中", "已完成", "失败"}
        page.wait_for_function("/\\d{4}年/.test(document.getElementById('job-created').textContent)")
        assert page.locator("#job-ops").inner_text() == "上色"
        assert page.locator("details summary").inner_text() == "详细信息"
        shot(page, "job-zh")

        page.goto("/jobs/no-such-job")
        assert page.get_by_role("heading", level=1).inner_text() == "未找到 (404)"
    finally:
        page.context.close()


@pytest.mark.parametrize("locale", ["en-GB", "zh-CN"])
def test_a_phone_shows_every_page_without_sideways_scrolling(browser, stack, browser_key, job_id, locale):
    page = signed_in_page(browser, stack, browser_key, viewport=PHONE, locale=locale)
    suffix = "" if locale.startswith("en") else "-zh"
    try:
        for path, name in (("/", "upload-phone"), ("/jobs", "jobs-phone"), (f"/jobs/{job_id}", "job-phone")):
            page.goto(path)
            if path == "/":
                page.locator("details summary").click()  # the options open too
                page.get_by_role("button", name=re.compile("Add keyframe|添加关键帧")).click()
            if path == "/jobs":
                page.locator("#jobs-body tr").first.wait_for()
                card = page.locator("#jobs-body tr").first
                assert card.evaluate("tr => getComputedStyle(tr).display") == "block", "rows are cards on a phone"
                label = card.locator("td").nth(6).evaluate("td => getComputedStyle(td, '::before').content")
                assert label.strip('"') in {"Created", "创建时间"}, "each card cell says what it is"
            page.wait_for_load_state("networkidle")
            wide = page.evaluate("""() => [document.documentElement.scrollWidth, window.innerWidth,
                [...document.querySelectorAll('body *')]
                  .filter((el) => el.getBoundingClientRect().right > innerWidth + 1).slice(0, 5)
                  .map((el) => el.tagName + '.' + el.className + '#' + el.id)]""")
            assert wide[0] <= wide[1], f"{path} is {wide[0]} px wide on a {wide[1]} px phone: {wide[2]}"
            header = page.locator("header").bounding_box()
            assert header["width"] <= PHONE["width"]
            shot(page, name + suffix)
    finally:
        page.context.close()


def test_every_control_has_an_accessible_name_and_the_landmarks_are_there(page, job_id, browser, stack):
    for path in ("/", "/jobs", f"/jobs/{job_id}"):
        page.goto(path)
        if path == "/":
            page.locator("details summary").click()
            page.get_by_role("button", name="Add keyframe").click()  # the row's inputs too
        page.wait_for_load_state("networkidle")
        assert page.evaluate(NAMELESS, CONTROLS) == [], f"controls without a name on {path}"
        assert page.get_by_role("banner").count() == 1 and page.get_by_role("main").count() == 1
        assert page.get_by_role("navigation", name="Pages").count() == 1
        assert page.get_by_role("navigation", name="Language").count() == 1
    # Progress is read out from one quiet region (status, stage, every 10 %), not each second.
    assert page.locator("#job-announce").get_attribute("role") == "status"
    assert page.locator("#job-progress-text").get_attribute("aria-live") is None
    signed_out = browser.new_context(base_url=stack.base)
    try:
        login = signed_out.new_page()
        login.goto("/jobs")  # sends a stranger to sign in
        login.wait_for_url("**/login**")
        assert login.evaluate(NAMELESS, CONTROLS) == [], "controls without a name on the sign-in page"
        assert login.get_by_label("API key").get_attribute("type") == "password"
    finally:
        signed_out.close()


def test_the_keyboard_alone_skips_to_the_form_tabs_to_submit_and_starts_the_job(page, stack, browser_key, tmp_path):
    page.goto("/")
    page.keyboard.press("Tab")
    skip = page.evaluate("document.activeElement.className")
    assert skip == "skip-link" and page.locator(".skip-link").is_visible(), "the first Tab shows the skip link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    photo = save_picture(tmp_path / "keyboard.png", grey_photo())
    page.locator("input[name=file]").set_input_files(str(photo))  # the one thing a file dialog does
    active = "() => document.activeElement.className"
    seen, keyframe_row_tried = [], False
    for _ in range(60):
        page.keyboard.press("Tab")
        focused = page.evaluate("""() => { const el = document.activeElement;
            return { tag: el.tagName, name: el.name || '', type: el.type || '', cls: el.className,
                     ring: getComputedStyle(el).outlineStyle }; }""")
        seen.append(focused)
        if focused["cls"] == "add-keyframe" and not keyframe_row_tried:  # add a row and take it away again
            keyframe_row_tried = True
            page.keyboard.press("Enter")
            assert page.evaluate(active) == "keyframe-frame", "a new row takes the focus"
            page.keyboard.press("Tab")
            page.keyboard.press("Tab")
            assert page.evaluate(active) == "remove-keyframe"
            page.keyboard.press("Enter")
            assert page.evaluate(active) == "add-keyframe", "focus returns to Add keyframe"
            assert page.locator(".keyframe-rows .keyframe-row").count() == 0
        if focused["type"] == "submit":
            break
    names = [f["name"] for f in seen]
    assert seen[-1]["type"] == "submit", f"Tab never reached the submit button: {names}"
    assert "file" in names and "colorize" in names and "inpaint" in names and "mask" in names, names
    assert keyframe_row_tried, "Tab reached Add keyframe"
    assert all(f["ring"] != "none" for f in seen), "every focused control shows a focus ring"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/jobs/\w+$"))
    job_id = page.url.rsplit("/", 1)[1]
    job = stack.client(browser_key).get(f"{stack.base}/api/v1/jobs/{job_id}", timeout=30).json()
    assert job["input"]["name"] == "keyboard.png"  # what the API received
