"""The pages' message catalogues are complete and compiled (`make translations`).

The extraction runs here, in-process, with the same babel.cfg as `make translations`, so a
string added to a template, to static/*.js (`tintype.t`), to the web package (`_`,
`lazy_gettext`) or to a job option's form label fails this test until it has a Chinese
translation and the .mo is compiled again.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tests.test_pages import queued_photo_job
from tintype.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "tintype" / "web" / "translations"
LANGUAGES = ["zh"]
PLACEHOLDER = re.compile(r"\{\w+\}|%\(\w+\)s")
CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_PHRASE = re.compile(r"[A-Za-z]{2,}(?: [A-Za-z]{2,})+")  # two English words or more


def extracted() -> dict[str, str]:
    """Every msgid the pages use → where it was found (file:line)."""
    with open(ROOT / "babel.cfg", encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: dict[str, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=DEFAULT_KEYWORDS):
        msgid = message[0] if isinstance(message, tuple) else message
        found.setdefault(msgid, f"{filename}:{lineno}")
    return found


def catalogue(language: str):
    with open(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", "rb") as po:
        return read_po(po, locale=language)


def translated(language: str) -> dict[str, str]:
    """msgid → translation, as a compiler would keep them (no fuzzy, no empty ones)."""
    return {m.id: m.string for m in catalogue(language) if m.id and m.string and not m.fuzzy}


def test_extraction_finds_the_pages_strings():
    found = extracted()
    assert "Restore a photograph or a film" in found  # a template
    assert "the upload was interrupted" in found  # static/app.js, tintype.t
    assert "Not ready yet." in found  # pages.py, lazy_gettext
    assert "Saturation" in found and "16-bit TIFF" in found  # a job option's label and a choice label
    assert "colorize the input" not in " ".join(found)  # an option's help is the API's, not the form's


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_string_has_a_translation(language):
    have = translated(language)
    missing = sorted(f"{where}: {msgid!r}" for msgid, where in extracted().items() if msgid not in have)
    assert not missing, (f"{len(missing)} strings have no {language} translation; run `make translations` and "
                         f"translate them in tintype/web/translations/{language}/LC_MESSAGES/messages.po:\n"
                         + "\n".join(missing))


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogue_is_up_to_date(language):
    with open(TRANSLATIONS / language / "LC_MESSAGES" / "messages.mo", "rb") as mo:
        compiled = {m.id: m.string for m in read_mo(mo) if m.id}
    stale = {k for k in translated(language).items() ^ compiled.items()}
    assert not stale, f"messages.mo differs from messages.po (run `make translations`): {sorted(stale)[:10]}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_their_placeholders(language):
    for msgid, string in translated(language).items():
        assert sorted(PLACEHOLDER.findall(msgid)) == sorted(PLACEHOLDER.findall(string)), msgid


def test_pages_speak_chinese_and_the_api_stays_english(settings):
    client = create_app(settings).test_client()
    upload = client.get("/?lang=zh").get_data(as_text=True)
    assert '<html lang="zh">' in upload and "修复照片或影片" in upload
    assert ">饱和度 <input" in upload  # a job option's label from FIELDS
    assert '<option value="auto" selected>若为黑白则上色（保留已有颜色）</option>' in upload
    embedded = re.search(r'<script type="application/json" id="tintype-messages">(.*?)</script>', upload, re.S)
    assert json.loads(embedded.group(1))["the upload was interrupted"] == "上传被中断"  # for static/app.js
    missing = client.get("/jobs/no-such-job?lang=zh")
    assert missing.status_code == 404 and "未找到 (404)" in missing.get_data(as_text=True)
    api = client.get("/api/v1/openapi.json?lang=zh", headers={"Accept-Language": "zh"})
    assert api.status_code == 200 and not CJK.search(api.get_data(as_text=True))
    assert "Restore a photograph or a film" in client.get("/?lang=en").get_data(as_text=True)


class VisibleText(HTMLParser):
    """What a reader sees or hears of a page: its text and the attributes that are read out
    (not scripts, styles, or code shown as code)."""

    HIDDEN, READ = {"script", "style", "code", "pre"}, {"placeholder", "aria-label", "alt", "title"}

    def __init__(self) -> None:
        super().__init__()
        self.depth, self.parts = 0, []

    def handle_starttag(self, tag, attrs):
        self.depth += tag in self.HIDDEN
        self.parts += [value for name, value in attrs if name in self.READ and value]

    def handle_endtag(self, tag):
        self.depth -= tag in self.HIDDEN

    def handle_data(self, data):
        if not self.depth and data.strip():
            self.parts.append(data.strip())


def test_no_english_is_left_on_the_chinese_pages(settings, tmp_path):
    """A string someone forgot to wrap in _() shows up here, before anyone reads the page."""
    app = create_app(settings)
    job_id = queued_photo_job(app, tmp_path)
    client = app.test_client()
    for path in ("/", "/jobs", f"/jobs/{job_id}", "/no/such/page"):
        reader = VisibleText()
        reader.feed(client.get(path + "?lang=zh").get_data(as_text=True))
        english = [phrase for part in reader.parts for phrase in ENGLISH_PHRASE.findall(part)]
        assert not english, f"{path} in Chinese still says {english}"


def test_scripts_give_t_a_plain_string():
    """The extractor reads `t("...")` and `t('...')`; a template literal would never reach the
    catalogue (put the values in `{name}` placeholders instead)."""
    static = ROOT / "tintype" / "web" / "static"
    literal = re.compile(r"\bt\(\s*`")
    found = [f"{js.name}:{n}" for js in sorted(static.glob("*.js"))
             for n, line in enumerate(js.read_text(encoding="utf-8").splitlines(), 1) if literal.search(line)]
    assert not found, f"tintype.t() with a template literal: {found}"
