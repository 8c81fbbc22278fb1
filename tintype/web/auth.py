"""Who is asking: an API key (Bearer), a browser session made from one, or, when
AUTH_REQUIRED is off, the installation's one local owner.

Every job belongs to an owner. A job that is not the caller's is answered exactly as a
job that does not exist (404), so ids cannot be probed; operators see every job.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Response, g, redirect, render_template, request, session, url_for
from flask_babel import gettext

from tintype.storage import apikeys
from tintype.storage.models import LOCAL_OWNER, OPERATOR, ApiKey, Job
from tintype.web.resources import get_app_settings, json_error

# /metrics holds aggregate numbers only (no job ids, no owners) and Prometheus scrapes it
# without a key; keep it off the public ingress.
OPEN_PATHS = ("/api/v1/openapi.json", "/api/v1/health", "/healthz", "/readyz", "/static/", "/login", "/logout",
              "/lang/", "/metrics")
auth = Blueprint("auth", __name__)


@dataclass(frozen=True)
class Principal:
    owner: str
    operator: bool
    key_id: str | None  # None: the local owner of an installation without keys
    via: str  # "bearer", "session" or "local"
    limits: apikeys.Limits = apikeys.Limits()


LOCAL = Principal(LOCAL_OWNER, True, None, "local")


def principal() -> Principal:
    return g.principal


def can_see(job: Job) -> bool:
    who = principal()
    return who.operator or job.owner == who.owner


def authenticate() -> Response | None:
    """before_request: set g.principal, or answer 401 (API) / send to the login page."""
    settings = get_app_settings()
    if not settings.auth_required:
        g.principal = LOCAL
        return None
    g.principal = None
    if request.path.startswith(OPEN_PATHS):
        return None
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        key = apikeys.verify(settings.database_url, token.strip()) if scheme.lower() == "bearer" else None
        if key is None:
            return _refuse("send a valid, unrevoked API key as 'Authorization: Bearer <key>'")
        g.principal = _principal(key, "bearer")
        return None
    key = apikeys.find(settings.database_url, session["key_id"]) if session.get("key_id") else None
    if key is None:
        session.pop("key_id", None)
        return _refuse("this server needs an API key: send 'Authorization: Bearer <key>' or sign in")
    g.principal = _principal(key, "session")
    return None


def _principal(key: ApiKey, via: str) -> Principal:
    limits = apikeys.Limits(key.requests_per_minute, key.jobs_in_flight, key.bytes_per_day)
    return Principal(key.owner, key.role == OPERATOR, key.id, via, limits)


def _refuse(message: str) -> Response:
    if request.path.startswith("/api/"):
        return json_error(401, "unauthorized", message, {"WWW-Authenticate": 'Bearer realm="tintype"'})
    return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))


@auth.route("/login", methods=["GET", "POST"])
def login():
    settings = get_app_settings()
    if not settings.auth_required:
        return redirect(url_for("pages.index"))
    error = None
    if request.method == "POST":
        key = apikeys.verify(settings.database_url, request.form.get("api_key", "").strip())
        if key is not None:
            session.clear()
            session["key_id"] = key.id
            return redirect(local_target(request.args.get("next", "")))
        error = gettext("that key is not valid or has been revoked")
    return render_template("login.html", error=error), 401 if error else 200


def local_target(target: str) -> str:
    """Only paths on this site (no //host or /\\host, which browsers treat as another site).
    Browsers drop tabs and newlines from a URL and some trim spaces, so `/<TAB>/host` would
    become `//host`: a target holding any whitespace or control character is refused too."""
    if (target.startswith("/") and not target.startswith(("//", "/\\")) and "\\" not in target
            and not any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7f for ch in target)):
        return target
    return url_for("pages.index")


@auth.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("auth.login"))
