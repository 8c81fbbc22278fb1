"""The pages load in a real browser, in both languages, with the switch remembered."""

from __future__ import annotations

from tests.browser.conftest import shot


def test_the_upload_page_loads_and_the_language_switch_is_remembered(page):
    page.goto("/")
    assert page.get_by_role("heading", level=1).inner_text() == "Restore a photograph or a film"
    assert page.locator("html").get_attribute("lang") == "en"
    shot(page, "upload")
    page.get_by_role("link", name="中文").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "zh"
    page.goto("/jobs")
    assert page.locator("html").get_attribute("lang") == "zh", "the choice is remembered across pages"
    page.get_by_role("link", name="English").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
