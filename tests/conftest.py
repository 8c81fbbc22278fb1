"""Fixtures: a whole tintype deployment on loopback for the integration tests.

The `stack` fixture runs real Redis (broker and results), a real PostgreSQL database, a
real S3-API server, gunicorn serving the Flask app, and one CPU and one GPU Celery
worker, each a separate process configured only through environment variables.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.stack import Stack, running_stack

pytest_plugins = ["tests.reliability_report"]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running
