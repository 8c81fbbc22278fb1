"""Cross-site request forgery: a browser's state-changing request must carry the
token its page was rendered with.

API clients that send a Bearer key are not at risk (a browser never adds that header
on its own) and need no token. Requests that look like a browser's (a session cookie,
an Origin or Referer, Sec-Fetch-Site) must send the token as X-CSRF-Token or the form
field csrf_token, and a foreign Origin is refused outright.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlparse

from flask import Response, g, request, session

from tintype.web.resources import json_error

SAFE = ("GET", "HEAD", "OPTIONS")
BROWSER_HEADERS = ("Origin", "Referer", "Sec-Fetch-Site")


def csrf_token() -> str:
    """The session's token, made on first use; templates put it in a meta tag."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def protect() -> Response | None:
    """before_request, after authentication."""
    if request.method in SAFE:
        return None
    who = g.get("principal")
    if who is not None and who.via == "bearer":
        return None
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlparse(origin).netloc != request.host:
        return _refuse(f"requests from {origin} are not accepted")
    from_browser = bool(request.cookies) or any(request.headers.get(h) for h in BROWSER_HEADERS)
    if not from_browser:
        return None
    sent = request.headers.get("X-CSRF-Token") or _form_token()
    expected = session.get("csrf", "")
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        return _refuse("the page's CSRF token is missing or stale; reload the page and try again")
    return None


def _form_token() -> str | None:
    # Only small urlencoded forms (the login page); uploads send the header.
    if request.mimetype == "application/x-www-form-urlencoded":
        return request.form.get("csrf_token")
    return None


def _refuse(message: str) -> Response:
    if request.path.startswith("/api/"):
        return json_error(403, "csrf_failed", message)
    return Response(message, status=403, mimetype="text/plain")
