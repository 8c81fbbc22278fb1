"""The REST contract and the upload path under generated input: no request gets a 5xx.

Schemathesis generates requests for every operation of the served OpenAPI document and
checks the answers against it (status codes, content types, response schemas, no server
errors). Hypothesis mutates real media (flipped bits, truncation, splices) and random
names into uploads: each must be accepted or refused with a 4xx JSON error, and a
refused upload leaves nothing stored. The app runs on its embedded defaults in a
temporary folder (SQLite, local objects, a folder broker with no workers)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from schemathesis.checks import positive_data_acceptance

from tests.media_factory import grey_video

ENV_KEYS = ("DATABASE_URL", "BROKER_URL", "RESULT_BACKEND", "STORAGE_URL", "S3_ENDPOINT_URL")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from tintype.settings import load_settings
    from tintype.web.app import create_app

    environ = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    environ["TINTYPE_DATA_DIR"] = str(tmp_path_factory.mktemp("fuzz-data"))
    environ["EVENTS_STREAM_SECONDS"] = "0.2"  # each generated call to an event stream ends quickly
    return create_app(load_settings(environ))


@pytest.fixture(scope="module")
def api_schema(app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


@pytest.mark.reliability
def test_every_operation_answers_within_its_contract(api_schema, reliability):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10
    reliability.injected("schemathesis: generated requests for every operation of the OpenAPI document")
    reliability.saw(f"{len(operations)} operations, 40 examples each, answered within the schema")
    reliability.check("no 5xx; every response matches its documented schema and status")
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def answers(case):
            # Our schema types fields loosely (any string); the application is stricter, so
            # a schema-valid request may be refused with a 4xx. Everything else is checked.
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        answers()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("seeds")
    png, jpeg = io.BytesIO(), io.BytesIO()
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8))
    picture.save(png, "PNG")
    picture.save(jpeg, "JPEG")
    video = grey_video(tmp / "seed.mp4", size="32x24", frames=6, audio=False)
    return {"png": png.getvalue(), "jpeg": jpeg.getvalue(), "mp4": video.read_bytes()}


def _mutate(data: bytes, flips: list[tuple[int, int]], cut: float | None, splice: bytes) -> bytes:
    out = bytearray(data)
    for position, value in flips:
        out[position % len(out)] = value
    if cut is not None:
        out = out[:max(1, int(len(out) * cut))]
    return bytes(out) + splice


mutations = st.tuples(st.sampled_from(["png", "jpeg", "mp4"]),
                      st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
                      st.one_of(st.none(), st.floats(0.05, 0.95)),
                      st.binary(max_size=64),
                      st.text(min_size=1, max_size=40))


@pytest.mark.reliability
@given(mutation=mutations)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_mutated_uploads_are_accepted_or_refused_cleanly(app, seeds, mutation, reliability):
    reliability.injected("hypothesis: 60 uploads mutated from real image and video seeds (bit flips, cuts, "
                         "splices, hostile names)")
    kind, flips, cut, splice, name = mutation
    body = _mutate(seeds[kind], flips, cut, splice)
    store_root = app.extensions["tintype.settings"].data_dir / "objects"
    before = sorted(store_root.rglob("*")) if store_root.exists() else []
    response = app.test_client().post("/api/v1/jobs", data={"file": (io.BytesIO(body), name),
                                                            "operations": "colorize"},
                                      content_type="multipart/form-data")
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        error = response.get_json()["error"]
        assert error["code"] and error["message"]
        after = sorted(store_root.rglob("*")) if store_root.exists() else []
        assert after == before, "a refused upload left objects behind"
    else:
        assert response.status_code == 202
    reliability.check("no 5xx; a refused upload leaves no object behind")
    outcome = "accepted (202)" if response.status_code == 202 else "refused with a 4xx JSON error"
    if outcome not in reliability.happened:
        reliability.saw(outcome)
