"""The web's share of monitoring: GET /metrics, HTTP latency by route, JSON logs.

Latency is labelled with the Flask URL rule (`/api/v1/jobs/<job_id>`), never the raw
path, so the number of series stays bounded however many jobs there are.
"""

from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, current_app, g, request

from tintype.monitoring import exposition, logs
from tintype.settings import Settings
from tintype.telemetry import HTTP_DURATION

metrics_blueprint = Blueprint("metrics", __name__)
_REGISTRY = "tintype.metrics_registry"


@metrics_blueprint.get("/metrics")
def metrics() -> Response:
    body = exposition.render(current_app.extensions[_REGISTRY])
    return Response(body, content_type="text/plain; version=0.0.4; charset=utf-8")


def _start_timer() -> None:
    g.tintype_started = time.perf_counter()


def _observe(response: Response) -> Response:
    began = g.pop("tintype_started", None)
    if began is not None:
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        HTTP_DURATION.labels(request.method, route, str(response.status_code)).observe(time.perf_counter() - began)
    return response


def init_app(app: Flask, settings: Settings) -> None:
    """Time every request (the timer runs before authentication, so refusals count too),
    and serve this process group's metrics plus the database and broker gauges."""
    logs.configure_process(settings.log_format)
    celery = app.extensions["tintype.celery"]
    registry = exposition.process_registry()
    registry.register(exposition.ScrapeCollector(settings, celery.conf.broker_url or "",
                                                 dict(celery.conf.broker_transport_options or {})))
    app.extensions[_REGISTRY] = registry
    app.before_request_funcs.setdefault(None, []).insert(0, _start_timer)
    app.after_request(_observe)
    app.register_blueprint(metrics_blueprint)
