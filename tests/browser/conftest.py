"""Browser tests: Playwright drives Debian's Chromium against the real app and real workers.

Every test here is marked `browser` (and `integration`): `make test-browser` runs them and
`.ci/run` installs Chromium first. Without a Chromium the tests are skipped with the reason
printed, unless TINTYPE_REQUIRE_BROWSER=1 (CI sets it): then they fail, so a CI run without
a browser cannot pass by skipping every browser test. `shot()` writes the screenshots
README.md shows into docs/screenshots/.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from tests.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
# As root, in a closed network: no sandbox, and none of Chromium's calls home (which this
# network refuses, many at a time).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 20_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.integration)


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def browser_required() -> bool:
    """True where a missing Chromium must fail the run rather than skip it."""
    return os.environ.get("TINTYPE_REQUIRE_BROWSER", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def browser():
    executable = chromium_path()
    if executable is None:
        reason = "no Chromium on this machine (apt-get install chromium; .ci/run installs it)"
        if browser_required():
            pytest.fail(f"TINTYPE_REQUIRE_BROWSER=1 and {reason}", pytrace=False)
        print(f"skipped: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def browser_key(stack: Stack) -> str:
    return stack.new_key("browser")


def signed_in_page(browser, stack: Stack, key: str, viewport: dict[str, int] = DESKTOP, locale: str = "en-GB"):
    """A fresh browser context signed in with `key` through the login page, as a person would."""
    context = browser.new_context(viewport=viewport, locale=locale, base_url=stack.base,
                                  has_touch=viewport["width"] < 600)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("API key").fill(key) if locale.startswith("en") else page.locator("input[name=api_key]").fill(key)
    page.locator("form button").last.click()
    page.wait_for_url(lambda url: "/login" not in url)
    return page


@pytest.fixture()
def page(browser, stack: Stack, browser_key: str) -> Iterator:
    """A signed-in desktop page in English; closed after the test."""
    opened = signed_in_page(browser, stack, browser_key)
    yield opened
    opened.context.close()


def shot(page, name: str) -> Path:
    """Save what the page shows now as docs/screenshots/<name>.png (README.md shows them)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
