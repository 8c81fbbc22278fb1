"""Probes for an orchestrator: `/healthz` (is this process serving?) and `/readyz` (can it
do its work: does the database answer?).

They are separate because they lead to different actions: a failed liveness probe
restarts the container, a failed readiness probe only takes it out of the Service. A
database outage must not restart every web pod, so only `/readyz` looks at it. Both are
open (no API key), since the kubelet has none.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from sqlalchemy.exc import OperationalError

from tintype.jobs import queries
from tintype.web.resources import get_app_settings

log = logging.getLogger(__name__)
probes = Blueprint("probes", __name__)
PROBE_PATHS = ("/healthz", "/readyz")


@probes.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@probes.get("/readyz")
def readyz() -> tuple[Response, int]:
    try:
        queries.database_answers(get_app_settings().database_url)
    except OperationalError as exc:
        log.warning("not ready: the database does not answer: %s", exc)
        return jsonify({"status": "unavailable", "database": "not answering"}), 503
    return jsonify({"status": "ok", "database": "ok"}), 200
