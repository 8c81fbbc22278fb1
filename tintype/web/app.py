"""The Flask front door: an app factory with its resources attached in a fixed order."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g, render_template, request
from flask_babel import lazy_gettext
from werkzeug.exceptions import HTTPException

from tintype.jobs.keyframes import MAX_KEYFRAMES
from tintype.monitoring import web as monitoring
from tintype.queue.app import make_celery
from tintype.settings import DEFAULT_SECRET, Settings, load_settings
from tintype.storage.db import upgrade
from tintype.storage.objects import store_from_settings
from tintype.web import auth, csrf, i18n
from tintype.web.api import api
from tintype.web.batches import batches
from tintype.web.events import events
from tintype.web.limits import RateLimiter
from tintype.web.pages import pages
from tintype.web.painter_api import painter_api
from tintype.web.probes import probes
from tintype.web.resources import get_app_settings, json_error
from tintype.web.staged import staged


def create_app(settings: Settings | None = None, overrides: dict[str, Any] | None = None) -> Flask:
    settings = settings or load_settings()
    if settings.auth_required and settings.secret_key == DEFAULT_SECRET:
        raise RuntimeError("AUTH_REQUIRED is on but SECRET_KEY is the embedded default; set SECRET_KEY to a "
                           "long random value (it signs browser sessions)")
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        # Uploads stream to disk; the ceiling leaves room for a mask and the form fields.
        MAX_CONTENT_LENGTH=settings.max_upload_bytes + 64 * 1024**2,
        MAX_FORM_MEMORY_SIZE=1024**2,
        MAX_FORM_PARTS=64 + MAX_KEYFRAMES,  # the fields, and each keyframe as its own part
        JSON_SORT_KEYS=False,
    )
    app.config.update(overrides or {})
    app.extensions["tintype.settings"] = settings
    app.extensions["tintype.store"] = store_from_settings(settings)
    # Tasks are sent by name through an app built from these settings (never imported).
    app.extensions["tintype.celery"] = make_celery(settings)
    if app.config.get("MIGRATE_ON_START", settings.migrate_on_start):
        upgrade(settings.database_url)
    app.extensions["tintype.limiter"] = RateLimiter(settings.rate_limit_url)
    monitoring.init_app(app, settings)
    app.before_request(auth.authenticate)
    app.before_request(csrf.protect)
    app.before_request(_rate_limit)
    app.context_processor(lambda: {"csrf_token": csrf.csrf_token, "auth_required": settings.auth_required,
                                   "principal": g.get("principal")})
    i18n.init_app(app)
    app.register_blueprint(api)
    app.register_blueprint(painter_api)
    app.register_blueprint(batches)
    app.register_blueprint(staged)
    app.register_blueprint(events)
    app.register_blueprint(probes)
    app.register_blueprint(pages)
    app.register_blueprint(auth.auth)
    app.register_error_handler(HTTPException, _http_error)
    return app


def _rate_limit():
    """Requests per minute per key (per address for the keyless local mode)."""
    who = g.get("principal")
    if who is None or not request.path.startswith("/api/"):
        return None
    settings = get_app_settings()
    name = who.key_id or f"addr:{request.remote_addr}"
    limit = who.limits.requests_per_minute or settings.rate_limit_per_minute
    wait = current_app.extensions["tintype.limiter"].hit(name, limit)
    if wait is None:
        return None
    return json_error(429, "rate_limited", f"more than {limit} requests in a minute; retry in {wait} s",
                      {"Retry-After": str(wait)})


def _http_error(exc: HTTPException):
    if request.path.startswith("/api/"):
        code = (exc.name or "error").lower().replace(" ", "_")
        message = exc.description or exc.name
        if exc.code == 413:
            limit = get_app_settings().max_upload_bytes
            message = f"the upload is larger than the limit of {limit} bytes"
        # Keep the headers HTTP requires with the error (Allow on 405).
        headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
        return json_error(exc.code or 500, code, message, headers)
    return _error_page(exc)


PAGE_MESSAGES = {404: lazy_gettext("There is no page here. A job that was deleted, or that belongs to someone "
                                   "else, is not found either.")}
PAGE_TITLES = {400: lazy_gettext("Bad request"), 403: lazy_gettext("Forbidden"), 404: lazy_gettext("Not found"),
               405: lazy_gettext("Method not allowed"), 413: lazy_gettext("Too large"),
               500: lazy_gettext("Something went wrong")}


def _error_page(exc: HTTPException):
    """Browsers get errors in the site's layout, not the framework's bare page."""
    code = exc.code or 500
    message = PAGE_MESSAGES.get(code, exc.description or exc.name)
    page = render_template("error.html", title=f"{PAGE_TITLES.get(code, exc.name)} ({code})", message=message)
    headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
    return page, code, headers


__all__ = ["create_app"]
