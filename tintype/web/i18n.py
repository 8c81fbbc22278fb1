"""The page's language: English or Chinese, chosen by the visitor and remembered.

Strings live in gettext catalogues (`translations/<lang>/LC_MESSAGES/messages.po`, compiled
to `.mo` beside it). Templates call `_()`; static JavaScript calls `tintype.t()`, which reads
the same catalogue, embedded in every page, so a string is translated once for both.
"""

from __future__ import annotations

from flask import Blueprint, Flask, redirect, request, url_for
from flask_babel import Babel, get_locale, get_translations

from tintype.web.auth import local_target

LANGUAGES = {"en": "English", "zh": "中文"}
DEFAULT = "en"
COOKIE = "tintype_lang"
ONE_YEAR = 365 * 24 * 3600

i18n = Blueprint("i18n", __name__)


def choose_locale() -> str:
    """An explicit `?lang=`, then the remembered choice, then the browser's preference."""
    for asked in (request.args.get("lang"), request.cookies.get(COOKIE)):
        if asked in LANGUAGES:
            return asked
    return request.accept_languages.best_match(list(LANGUAGES), default=DEFAULT) or DEFAULT


def page_messages() -> dict[str, str]:
    """The current language's catalogue (msgid → translation) for static/app.js."""
    catalogue = getattr(get_translations(), "_catalog", {})
    return {key: value for key, value in catalogue.items() if isinstance(key, str) and key and value}


@i18n.get("/lang/<code>")
def switch(code: str):
    """Remember the visitor's language and go back where they were."""
    response = redirect(local_target(request.args.get("next") or url_for("pages.index")))
    if code in LANGUAGES:
        response.set_cookie(COOKIE, code, max_age=ONE_YEAR, samesite="Lax")
    return response


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=choose_locale, default_translation_directories="translations")
    app.register_blueprint(i18n)
    app.context_processor(lambda: {"languages": LANGUAGES, "locale": str(get_locale() or DEFAULT),
                                   "page_messages": page_messages})
