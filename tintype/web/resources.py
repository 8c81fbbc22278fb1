"""What `create_app` attaches to the Flask app, and the one shape of a JSON error.

Blueprints import these accessors, not the app factory, so the factory can import the
blueprints without a cycle.
"""

from __future__ import annotations

from celery import Celery
from flask import Response, current_app, jsonify

from tintype.settings import Settings
from tintype.storage.objects import ObjectStore


def get_app_settings() -> Settings:
    return current_app.extensions["tintype.settings"]


def get_store() -> ObjectStore:
    return current_app.extensions["tintype.store"]


def get_celery() -> Celery:
    """The Celery app this web app sends tasks with (built from its settings)."""
    return current_app.extensions["tintype.celery"]


def json_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response
