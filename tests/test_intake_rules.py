"""The front door's rules, through REST v1 on the embedded defaults (SQLite, local objects,
a folder broker with no workers): videos cut short, unknown fields, reused idempotency
keys, tintype's own words for oversized images, and the real type of a served input."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image

from tests.media_factory import ffmpeg, grey_photo, grey_video

ROOT = Path(__file__).resolve().parent.parent
ENV_KEYS = ("DATABASE_URL", "BROKER_URL", "RESULT_BACKEND", "STORAGE_URL", "S3_ENDPOINT_URL")
VIDEO = ("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=24", "-f", "lavfi", "-i", "sine=frequency=440",
         "-frames:v", "48", "-vf", "hue=s=0")
H264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
# Every container kind intake takes, as a camera, a phone or an editor writes it.
CONTAINERS = {
    "mp4": (*H264, "-c:a", "aac", "-shortest"),
    "mp4 with its index first": (*H264, "-c:a", "aac", "-shortest", "-movflags", "+faststart"),
    "mov": ("-c:v", "prores_ks", "-c:a", "pcm_s16le", "-shortest"),
    "mkv": (*H264, "-c:a", "aac", "-shortest"),
    "webm": ("-c:v", "libvpx-vp9", "-deadline", "realtime", "-c:a", "libopus", "-shortest"),
    "avi": ("-c:v", "mpeg4", "-c:a", "mp3", "-shortest"),
    "wmv": ("-c:v", "wmv2", "-c:a", "wmav2", "-shortest"),
    "flv": ("-c:v", "flv1", "-an"),
}
CUTS = (0.3, 0.6, 0.9)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from tintype.settings import load_settings
    from tintype.web.app import create_app

    environ = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    environ["TINTYPE_DATA_DIR"] = str(tmp_path_factory.mktemp("intake-data"))
    environ["QUOTA_JOBS_IN_FLIGHT"] = "1000"  # no workers here: every accepted job stays queued
    return create_app(load_settings(environ))


@pytest.fixture(scope="module")
def films(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("films")
    made = {}
    for kind, args in CONTAINERS.items():
        path = folder / f"{kind.replace(' ', '-')}.{kind.split()[0]}"
        ffmpeg(*VIDEO, *args, str(path))
        made[kind] = path
    return made


def _settings(app):
    return app.extensions["tintype.settings"]


def _rows(app) -> int:
    engine = sa.create_engine(_settings(app).database_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar_one()
    engine.dispose()
    return count


def _objects(app) -> list[Path]:
    root = _settings(app).data_dir / "objects"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _post(app, data: bytes, name: str, headers: dict | None = None, url: str = "/api/v1/jobs", **fields):
    form = {"file": (io.BytesIO(data), name), **fields} if data else fields
    return app.test_client().post(url, data=form, headers=headers or {}, content_type="multipart/form-data")


def _accepted(response) -> dict:
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


def _cut(path: Path, fraction: float, folder: Path) -> Path:
    data = path.read_bytes()
    cut = folder / f"cut-{int(fraction * 100)}-{path.name}"
    cut.write_bytes(data[:int(len(data) * fraction)])
    return cut


def _refused_cleanly(app, response, status: int, code: str) -> str:
    """The answer is `status` with a JSON error `code`; returns its message."""
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"], error
    return error["message"]


@pytest.mark.reliability
@pytest.mark.parametrize("kind", list(CONTAINERS))
def test_a_video_cut_short_is_refused_with_422_and_leaves_nothing(app, films, tmp_path, kind, reliability):
    reliability.injected(f"hostile upload: a {kind} cut at {', '.join(f'{c:.0%}' for c in CUTS)} of its bytes")
    for fraction in CUTS:
        cut = _cut(films[kind], fraction, tmp_path)
        rows, objects = _rows(app), _objects(app)
        response = _post(app, cut.read_bytes(), cut.name, operations="colorize")
        message = _refused_cleanly(app, response, 422, "corrupt_media")
        assert not re.search(r"moov|ffprobe|ffmpeg exited|\[\w+ @ 0x", message), message  # tintype's words
        assert (_rows(app), _objects(app)) == (rows, objects)
    reliability.saw("each answered 422 corrupt_media in tintype's words")
    reliability.check("422 with a JSON message; no job row; no stored object")


@pytest.mark.parametrize("kind", list(CONTAINERS))
def test_a_complete_video_of_every_container_is_accepted(app, films, kind):
    response = _post(app, films[kind].read_bytes(), films[kind].name, operations="colorize")
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json()["input"]["facts"]["frames"] == 48


def test_a_cut_matroska_says_where_its_frames_stop(app, films, tmp_path):
    cut = _cut(films["mkv"], 0.6, tmp_path)
    message = _refused_cleanly(app, _post(app, cut.read_bytes(), cut.name, operations="colorize"), 422,
                               "corrupt_media")
    assert re.search(r"cut short.*frames stop at about \d+\.\d\d s \(frame \d+\)", message), message


def test_an_mp4_cut_before_its_index_is_corrupt_not_unknown(app, films, tmp_path):
    """The index (moov) of an ordinary MP4 comes last: cut anywhere, ffprobe cannot open it."""
    cut = _cut(films["mp4"], 0.9, tmp_path)
    message = _refused_cleanly(app, _post(app, cut.read_bytes(), cut.name, operations="colorize"), 422,
                               "corrupt_media")
    assert "MP4/QuickTime" in message and "moov" not in message
    text = _post(app, b"hello, not a film\n" * 20, "clip.mp4", operations="colorize")
    _refused_cleanly(app, text, 415, "not_media")


def test_a_video_whose_last_second_does_not_decode_is_refused(app, tmp_path):
    """The container is whole but the last frames' bytes are garbage: found by decoding them."""
    whole = grey_video(tmp_path / "whole.mp4", frames=48, audio=False, extra=("-movflags", "+faststart"))
    data = bytearray(whole.read_bytes())
    tail = len(data) * 3 // 4
    data[tail:] = bytes(len(data) - tail)
    message = _refused_cleanly(app, _post(app, bytes(data), "damaged.mp4", operations="colorize"), 422,
                               "corrupt_media")
    assert re.search(r"plays up to \d+\.\d\d s \(frame \d+ of 48\)", message), message


@pytest.mark.slow
def test_the_cli_refuses_a_cut_video_with_exit_status_2(films, tmp_path):
    cut = _cut(films["mkv"], 0.5, tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env.update(TINTYPE_DATA_DIR=str(tmp_path / "data"), TORCH_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "tintype.cli", "restore", str(cut), "-o", str(tmp_path / "o.mp4")],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 2, done.stderr
    assert "cut short" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "o.mp4").exists()


def _photo(fmt: str = "PNG", seed: int = 0) -> bytes:
    out = io.BytesIO()
    Image.fromarray(grey_photo(64 + seed, 48)).save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF", "BMP"])
def test_a_photograph_cut_short_is_refused_with_422_and_leaves_nothing(app, fmt):
    rng = np.random.default_rng(1)
    out = io.BytesIO()
    Image.fromarray((rng.random((120, 160, 3)) * 255).astype(np.uint8)).save(out, fmt)
    for fraction in (0.5, 0.95):
        rows, objects = _rows(app), _objects(app)
        response = _post(app, out.getvalue()[:int(len(out.getvalue()) * fraction)], f"print.{fmt.lower()}",
                         colorize="yes")
        assert "damaged or cut short" in _refused_cleanly(app, response, 422, "corrupt_media")
        assert (_rows(app), _objects(app)) == (rows, objects)
    _accepted(_post(app, out.getvalue(), f"print.{fmt.lower()}", colorize="yes"))


def test_unknown_fields_are_refused_naming_them(app):
    rows = _rows(app)
    response = _post(app, _photo(), "scan.png", operations="colorize", colour="blue")
    message = _refused_cleanly(app, response, 400, "unknown_field")
    assert message.startswith("unknown field(s): colour; known fields are ")
    assert "saturation" in message and "reference" in message and "csrf_token" not in message
    extra_part = _post(app, _photo(), "scan.png", operations="colorize", negative=(io.BytesIO(b"x"), "n.png"))
    assert "unknown field(s): negative" in _refused_cleanly(app, extra_part, 400, "unknown_field")
    assert _rows(app) == rows


def test_every_field_the_pages_send_is_known(app, tmp_path):
    """The upload form, filled in as a browser sends it (with its CSRF token), is accepted;
    so is every option's other spelling."""
    from tintype.jobs.options import FIELDS

    client = app.test_client()
    page = client.get("/").get_data(as_text=True)
    names = set(re.findall(r'<(?:input|select|textarea)\b[^>]*\bname="([^"]+)"', page))
    assert {"file", "colorize", "inpaint", "mask", "masks", "reference"} <= names
    assert {spec.name for spec in FIELDS} <= names
    form = {name: "" for name in names if name not in ("file", "mask", "masks", "reference")}
    form.update(colorize="1", csrf_token="ignored-without-a-session", track="0")
    response = _post(app, _photo(seed=1), "form.png", **form)
    assert response.status_code == 202, response.get_data(as_text=True)


def test_recolour_refuses_unknown_fields(app):
    job = _accepted(_post(app, _photo(seed=2), "parent.png", operations="colorize"))
    response = _post(app, b"", "", url=f"/api/v1/jobs/{job['id']}/recolour", hue="red")
    assert "unknown field(s): hue" in _refused_cleanly(app, response, 400, "unknown_field")


def test_an_idempotency_key_reused_for_another_request_is_refused(app):
    key = {"Idempotency-Key": "scan-0042"}
    first = _post(app, _photo(seed=3), "a.png", headers=key, operations="colorize")
    again = _post(app, _photo(seed=3), "a.png", headers=key, operations="colorize")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.get_json()["id"] == first.get_json()["id"]
    rows = _rows(app)
    other_file = _post(app, _photo(seed=4), "a.png", headers=key, operations="colorize")
    message = _refused_cleanly(app, other_file, 422, "idempotency_key_reused")
    assert first.get_json()["id"] in message and "new key" in message
    other_options = _post(app, _photo(seed=3), "a.png", headers=key, operations="colorize", saturation="2")
    _refused_cleanly(app, other_options, 422, "idempotency_key_reused")
    other_part = _post(app, _photo(seed=3), "a.png", headers=key, operations="colorize",
                       reference=(io.BytesIO(_photo(seed=5)), "ref.png"))
    _refused_cleanly(app, other_part, 422, "idempotency_key_reused")
    assert _rows(app) == rows


def test_a_job_stored_before_fingerprints_is_still_matched_by_its_input(app):
    """Rows from before migration 0007 have no request fingerprint: their input's sha256 decides."""
    key = {"Idempotency-Key": "old-client-7"}
    first = _accepted(_post(app, _photo(seed=6), "old.png", headers=key, operations="colorize"))
    engine = sa.create_engine(_settings(app).database_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE jobs SET request_sha256 = NULL WHERE id = :id"), {"id": first["id"]})
    engine.dispose()
    same = _post(app, _photo(seed=6), "old.png", headers=key, operations="colorize")
    assert same.status_code == 200 and same.get_json()["id"] == first["id"]
    _refused_cleanly(app, _post(app, _photo(seed=7), "old.png", headers=key, operations="colorize"), 422,
                     "idempotency_key_reused")


def test_migration_0007_keeps_the_jobs_stored_before_it(tmp_path):
    from alembic import command
    from alembic.config import Config

    from tintype.storage.db import MIGRATIONS, session_scope
    from tintype.storage.models import Job

    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "0006")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO jobs (id, owner, idempotency_key, kind, status, stage, operations, options, input_name, "
            "input_bytes, input_sha256, input_facts, has_mask, has_reference, chunks_total, chunks_done, notes, "
            "timings, created_at, updated_at) VALUES ('old1', 'local', 'k', 'image', 'succeeded', 'done', '[]', "
            "'{}', 'a.png', 1, :sha, '{}', 0, 0, 0, 0, '[]', '{}', '2026-01-01', '2026-01-01')"), {"sha": "0" * 64})
    engine.dispose()
    command.upgrade(config, "head")
    with session_scope(url) as s:
        job = s.get(Job, "old1")
        assert job.request_sha256 is None and job.input_sha256 == "0" * 64


@pytest.mark.parametrize("side", [10_000, 14_000])  # Pillow warns above 89.5 Mpx and refuses above 179 Mpx
def test_an_oversized_image_is_refused_in_tintypes_words(app, tmp_path, side):
    path = tmp_path / "huge.png"
    Image.new("1", (side, side)).save(path)
    message = _refused_cleanly(app, _post(app, path.read_bytes(), "huge.png", operations="colorize"), 413,
                               "media_too_large")
    assert "80,000,000" in message, message
    assert not re.search(r"89,?478,?485|DOS|decompression bomb", message, re.I), message


@pytest.mark.parametrize("fmt, name, expected", [
    ("PNG", "scan.png", "image/png"), ("JPEG", "scan.jpg", "image/jpeg"), ("TIFF", "scan.tif", "image/tiff"),
    ("WEBP", "scan.webp", "image/webp"), ("BMP", "scan.bmp", "image/bmp"),
    ("PNG", "misnamed.jpg", "image/png"),  # the bytes decide, not the name
])
def test_a_photographs_input_is_served_as_its_real_type(app, fmt, name, expected):
    job = _accepted(_post(app, _photo(fmt, seed=9), name, operations="colorize"))
    response = app.test_client().get(job["input"]["url"])
    assert response.status_code == 200 and response.mimetype == expected


@pytest.mark.parametrize("kind, expected", [("mp4", "video/mp4"), ("mkv", "video/x-matroska"),
                                            ("webm", "video/webm"), ("avi", "video/x-msvideo")])
def test_a_films_input_is_served_as_its_real_type(app, films, tmp_path, kind, expected):
    job = _accepted(_post(app, films[kind].read_bytes(), films[kind].name, operations="colorize"))
    response = app.test_client().get(job["input"]["url"])
    assert response.status_code == 200 and response.mimetype == expected
