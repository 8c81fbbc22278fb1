"""A CI run without Chromium must not pass by skipping every browser test: with
TINTYPE_REQUIRE_BROWSER=1 the `browser` fixture fails instead of skipping."""

from __future__ import annotations

import pytest

from tests.browser import conftest


def _start_browser_fixture() -> None:
    next(conftest.browser.__wrapped__())


def _no_chromium(monkeypatch) -> None:
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setattr(conftest.shutil, "which", lambda name: None)


def test_without_chromium_the_browser_tests_skip_by_default(monkeypatch):
    _no_chromium(monkeypatch)
    monkeypatch.delenv("TINTYPE_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception):
        _start_browser_fixture()


def test_without_chromium_the_browser_tests_fail_where_a_browser_is_required(monkeypatch):
    _no_chromium(monkeypatch)
    monkeypatch.setenv("TINTYPE_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="TINTYPE_REQUIRE_BROWSER"):
        _start_browser_fixture()
