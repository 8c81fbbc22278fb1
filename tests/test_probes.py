"""The orchestrator's probes: liveness never looks at the database, readiness does, and
neither needs an API key (the kubelet has none)."""

from __future__ import annotations

import socket

from tintype.settings import load_settings
from tintype.storage.db import upgrade
from tintype.web.app import create_app


def _app(tmp_path, **env: str):
    settings = load_settings({"TINTYPE_DATA_DIR": str(tmp_path / "data"), "AUTH_REQUIRED": "1", "MIGRATE_ON_START": "0",
                              "SECRET_KEY": "probe-test-" + "x" * 40, **env})
    if "DATABASE_URL" not in env:
        upgrade(settings.database_url)
    return create_app(settings).test_client()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_both_probes_answer_without_a_key(tmp_path):
    client = _app(tmp_path)
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["database"] == "ok"
    assert client.get("/api/v1/jobs").status_code == 401  # the rest still needs one


def test_a_database_outage_makes_the_pod_unready_but_not_dead(tmp_path):
    url = f"postgresql+psycopg2://tintype@127.0.0.1:{_closed_port()}/tintype?connect_timeout=2"
    client = _app(tmp_path, DATABASE_URL=url)
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["database"] == "not answering"
