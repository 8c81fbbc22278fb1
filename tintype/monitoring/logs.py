"""Log lines operators can search: with LOG_FORMAT=json every web and worker log record
is one JSON object per line, carrying the job, chunk, stage, worker and duration where
known. Plain text stays the default (`make run`).

What a task works on is bound in a context variable when it starts (Celery's task_prerun)
and a logging filter copies it onto every record, so a log call deep in the media code
needs no job id passed down to it.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar, Token
from datetime import datetime, timezone
from typing import Any

FIELDS = ("job_id", "chunk", "stage", "task_id", "worker", "pool", "duration_s", "outcome", "method", "route")
_CONTEXT: ContextVar[dict[str, Any] | None] = ContextVar("tintype_log_context", default=None)
HANDLER_NAME = "tintype-json"


def bind(**fields: Any) -> Token:
    """Add fields to every record logged in this context until `reset(token)`."""
    return _CONTEXT.set({**(_CONTEXT.get() or {}), **{k: v for k, v in fields.items() if v is not None}})


def reset(token: Token) -> None:
    _CONTEXT.reset(token)


class ContextFilter(logging.Filter):
    """Copies the bound fields (and, in the web, the request's route and job) onto records."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in {**_request_fields(), **(_CONTEXT.get() or {})}.items():
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        return True


def _request_fields() -> dict[str, Any]:
    flask = sys.modules.get("flask")
    if flask is None or not flask.has_request_context():
        return {}
    request = flask.request
    rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
    job_id = (request.view_args or {}).get("job_id")
    return {"method": request.method, "route": rule, **({"job_id": job_id} if job_id else {})}


class JsonFormatter(logging.Formatter):
    """One JSON object per record; a traceback is one string field, never extra lines."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def use_json(handler: logging.Handler) -> None:
    handler.setFormatter(JsonFormatter())
    if not any(isinstance(f, ContextFilter) for f in handler.filters):
        handler.addFilter(ContextFilter())


def configure_process(log_format: str) -> None:
    """JSON on every handler of the root and gunicorn loggers, adding a stderr handler at
    INFO to the root when it has none (a gunicorn worker's app logs); text: unchanged."""
    if log_format != "json":
        return
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(HANDLER_NAME)
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    for logger in (root, logging.getLogger("gunicorn.error")):
        for handler in logger.handlers:
            use_json(handler)


def on_celery_logger_setup(logger: logging.Logger | None = None, **_kwargs: Any) -> None:
    """Celery's after_setup_logger / after_setup_task_logger: its handlers write JSON."""
    for handler in (logger.handlers if logger is not None else []):
        use_json(handler)
