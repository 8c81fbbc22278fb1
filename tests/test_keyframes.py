"""Keyframes in the jobs layer: every refusal before anything is stored, the stored forms,
and the row's list (embedded defaults: SQLite, local objects, no workers)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.media_factory import encode_frames, grey_film, save_picture, tinted
from tintype.jobs import queries
from tintype.jobs import state as jobstate
from tintype.jobs.errors import IntakeError
from tintype.jobs.intake import Submission, create_job
from tintype.jobs.keyframes import MAX_KEYFRAMES, KeyframePart, frame_of, store_keyframe
from tintype.jobs.options import parse_options
from tintype.storage import keys
from tintype.storage.objects import LocalStore

FILM = grey_film()


@pytest.fixture(scope="module")
def film(tmp_path_factory) -> Path:
    return encode_frames(tmp_path_factory.mktemp("film") / "film.mp4", FILM, lossless=False)


COLORIZE = {"operations": "colorize"}


def _submit(path: Path, settings, store, parts: list[Path], form: dict | None = None) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    sub = Submission(path, path.name, path.stat().st_size, digest, parse_options(form or COLORIZE, settings),
                     keyframes=[KeyframePart(p.name, p) for p in parts])
    return create_job(sub, settings, store, settings.database_url, lambda job_id: "task-" + job_id)


def _keyframe(folder: Path, name: str, frame_index: int, size: tuple[int, int] | None = None) -> Path:
    folder.mkdir(exist_ok=True)
    return save_picture(folder / name, tinted(FILM[frame_index]), size)


def _nothing_stored(settings, store) -> bool:
    found = queries.list_jobs(settings.database_url, queries.JobFilter(None), 1, 10)
    return found.total == 0 and list(store.list("jobs/")) == []


@pytest.mark.parametrize("name, frame", [("120.png", 120), ("000120.jpg", 120), ("0.webp", 0),
                                         ("shots/7.tif", 7)])
def test_a_keyframe_is_named_by_its_frame(name, frame):
    assert frame_of(name) == frame


@pytest.mark.parametrize("name", ["frame120.png", "120", "-3.png", "12.5.png", "1234567890.png", ""])
def test_other_names_are_refused_with_the_form_to_use(name):
    with pytest.raises(IntakeError, match="named by its frame number, like 120.png") as refused:
        frame_of(name)
    assert (refused.value.code, refused.value.status) == ("bad_keyframe_name", 400)


def test_a_valid_keyframe_is_stored_as_png_and_thumbnail_and_listed(tmp_path, settings, store, film):
    small = _keyframe(tmp_path / "k", "000012.jpg", 12, size=(48, 32))  # any size: scaled to the frame
    job_id = _submit(film, settings, store, [small])
    job = jobstate.get_job(settings.database_url, job_id)
    assert job.keyframes == [{"frame": 12, "source": "user"}] and job.notes == []
    with Image.open(store.local_path(keys.keyframe_key(job_id, 12))) as png:
        assert (png.format, png.mode, png.size) == ("PNG", "RGB", (96, 64))
    with Image.open(store.local_path(keys.keyframe_thumbnail_key(job_id, 12))) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) <= 240
    assert store.exists(keys.timestamps_key(job_id))  # kept beside the input, not under work/


def test_a_zip_of_keyframes_is_unpacked_and_a_loose_match_becomes_a_note(tmp_path, settings, store, film):
    archive = tmp_path / "keys.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(_keyframe(tmp_path / "k", "3.png", 3), "3.png")
        z.write(_keyframe(tmp_path / "k", "x.png", 21), "20.png")  # the next frame's picture: 1 frame off
        z.writestr("__MACOSX/._3.png", b"resource fork")
    job_id = _submit(film, settings, store, [archive])
    job = jobstate.get_job(settings.database_url, job_id)
    assert job.keyframes == [{"frame": 3, "source": "user"}, {"frame": 20, "source": "user"}]
    [note] = job.notes
    assert note.startswith("keyframe 20 matches its frame only loosely")


def _too_many(tmp: Path) -> list[Path]:
    archive = tmp / "many.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for frame in range(MAX_KEYFRAMES + 1):
            z.writestr(f"{frame}.png", b"not read: the count is checked first")
    return [archive]


def _not_an_image(tmp: Path) -> list[Path]:
    path = tmp / "5.png"
    path.write_text("a note, not a picture")
    return [path]


def _greyscale(tmp: Path) -> list[Path]:
    return [save_picture(tmp / "5.png", FILM[5])]


CASES = {
    "past the end": (lambda t: [_keyframe(t, "24.png", 5)], COLORIZE, 422, "keyframe_out_of_range", "keyframe 24"),
    "two for one frame": (lambda t: [_keyframe(t, "5.png", 5), _keyframe(t, "005.jpg", 5)], COLORIZE, 400,
                          "duplicate_keyframe", "frame 5"),
    "not an image": (_not_an_image, COLORIZE, 415, "keyframe_not_image", "keyframe 5"),
    "greyscale": (_greyscale, COLORIZE, 422, "keyframe_greyscale", "keyframe 5"),
    "another frame": (lambda t: [_keyframe(t, "5.png", 9)], COLORIZE, 422, "keyframe_mismatch", "keyframe 5"),
    "without colorize": (lambda t: [_keyframe(t, "5.png", 5)], {"operations": "inpaint", "detect_damage": "dust"}, 400,
                         "keyframes_without_colorize", ""),
    "per-frame mode": (lambda t: [_keyframe(t, "5.png", 5)], {**COLORIZE, "colour_mode": "per-frame"}, 400,
                       "keyframes_without_keyframe_mode", "colour_mode=keyframes"),
    "too many": (_too_many, COLORIZE, 400, "too_many_keyframes", str(MAX_KEYFRAMES)),
    "badly named": (lambda t: [_keyframe(t, "frame5.png", 5)], COLORIZE, 400, "bad_keyframe_name", "frame5.png"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_keyframes_are_refused_and_nothing_is_stored(tmp_path, settings, store, film, case):
    make, form, status, code, words = CASES[case]
    (tmp_path / "k").mkdir()
    with pytest.raises(IntakeError) as refused:
        _submit(film, settings, store, make(tmp_path / "k"), form)
    assert (refused.value.status, refused.value.code) == (status, code), str(refused.value)
    assert words in str(refused.value)
    assert _nothing_stored(settings, store)


def test_keyframes_on_a_photograph_point_to_reference(tmp_path, settings, store):
    photo = save_picture(tmp_path / "photo.png", FILM[0])
    with pytest.raises(IntakeError, match="send a colour picture as 'reference'") as refused:
        _submit(photo, settings, store, [_keyframe(tmp_path / "k", "0.png", 0)])
    assert (refused.value.status, refused.value.code) == (400, "keyframes_for_image")
    assert _nothing_stored(settings, store)


def test_the_pipeline_adds_keyframes_once_and_never_replaces_a_users(tmp_path, settings, store, film):
    job_id = _submit(film, settings, store, [_keyframe(tmp_path / "k", "12.png", 12)])
    auto = [store_keyframe(store, job_id, frame, tinted(FILM[frame]), "auto") for frame in (0, 12)]
    assert jobstate.add_keyframes(settings.database_url, job_id, auto)
    assert jobstate.add_keyframes(settings.database_url, job_id, auto)  # a redelivered task
    job = jobstate.get_job(settings.database_url, job_id)
    assert job.keyframes == [{"frame": 0, "source": "auto"}, {"frame": 12, "source": "user"}]
    assert store.exists(keys.keyframe_key(job_id, 0)) and store.exists(keys.keyframe_thumbnail_key(job_id, 0))
    assert jobstate.cancel(settings.database_url, job_id)
    assert not jobstate.add_keyframes(settings.database_url, job_id, [{"frame": 1, "source": "auto"}])
    with pytest.raises(ValueError, match="source must be one of"):
        store_keyframe(store, job_id, 1, tinted(FILM[1]), "guess")


def test_the_local_store_copies_an_object(tmp_path):
    from tintype.storage.objects import ObjectNotFound

    store = LocalStore(tmp_path / "objects")
    source = tmp_path / "bytes"
    source.write_bytes(np.arange(100, dtype=np.uint8).tobytes())
    store.put_file("jobs/a/input", source)
    store.copy("jobs/a/input", "jobs/b/input")
    assert store.local_path("jobs/b/input").read_bytes() == source.read_bytes()
    with pytest.raises(ObjectNotFound):
        store.copy("jobs/missing/input", "jobs/c/input")


def test_restore_flags_reach_the_job(tmp_path, settings, store, film):
    from tintype import cli

    folder = tmp_path / "keys"
    _keyframe(folder, "000003.png", 3)
    (folder / ".DS_Store").write_bytes(b"finder")
    single = _keyframe(tmp_path / "one", "frame12.jpg", 12)
    args = cli.build_parser().parse_args(["restore", str(film), "-o", str(tmp_path / "out.mp4"),
                                          "--keyframe", f"12={single}", "--keyframes", str(folder)])
    parts = cli.restore_keyframes(args)
    assert [p.name for p in parts] == ["12.jpg", "000003.png"]
    form = cli.restore_form(args)
    assert form["colorize"] == "yes"  # keyframes give colour
    sub = Submission(film, film.name, film.stat().st_size, "0" * 64, parse_options(form, settings), keyframes=parts)
    job_id = create_job(sub, settings, store, settings.database_url, lambda job_id: "task")
    assert jobstate.get_job(settings.database_url, job_id).keyframes == [{"frame": 3, "source": "user"},
                                                                         {"frame": 12, "source": "user"}]


@pytest.mark.parametrize("flag, words", [(["--keyframe", "12:a.png"], "write FRAME=IMAGE"),
                                         (["--keyframe", "12=missing.png"], "missing.png does not exist"),
                                         (["--keyframes", "no-such-folder"], "is not a folder")])
def test_bad_keyframe_flags_are_refused(tmp_path, flag, words):
    from tintype import cli
    from tintype.jobs.errors import IntakeError

    args = cli.build_parser().parse_args(["restore", "in.mp4", "-o", str(tmp_path / "o.mp4"), *flag])
    with pytest.raises(IntakeError, match=words):
        cli.restore_keyframes(args)


def test_a_zip_whose_stream_is_corrupt_is_a_422_not_a_crash(tmp_path, settings, store, film):
    archive = tmp_path / "keys.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("3.png", _png_bytes(FILM[3]) * 4)
    data = bytearray(archive.read_bytes())
    start = data.index(b"3.png") + len("3.png")
    data[start + 10:start + 60] = bytes(range(50))  # the deflate stream, not the headers
    archive.write_bytes(bytes(data))
    with pytest.raises(IntakeError) as refused:
        _submit(film, settings, store, [archive])
    assert (refused.value.status, refused.value.code) == (422, "bad_keyframes_zip"), str(refused.value)
    assert _nothing_stored(settings, store)


def _png_bytes(rgb) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "PNG")
    return out.getvalue()


def test_a_damaged_zip_of_keyframes_is_refused(tmp_path, settings, store, film):
    archive = tmp_path / "keys.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("3.png", b"x" * 4000)
    data = bytearray(archive.read_bytes())
    data[40:60] = b"\xff" * 20  # inside the entry's local header and data
    archive.write_bytes(bytes(data))
    with pytest.raises(IntakeError) as refused:
        _submit(film, settings, store, [archive])
    assert refused.value.code in ("bad_keyframes_zip", "keyframe_not_image"), str(refused.value)
    assert _nothing_stored(settings, store)


def test_the_embedded_app_serves_keyframes_and_shows_them_on_its_pages(tmp_path, settings, film):
    import io

    from tintype.web.app import create_app

    app = create_app(settings)
    client, browser = app.test_client(), app.test_client()  # a page visit makes a session (CSRF applies)
    assert b'class="add-keyframe"' in browser.get("/").data  # the form's "add keyframe" rows
    picture = _keyframe(tmp_path / "k", "12.png", 12).read_bytes()
    response = client.post("/api/v1/jobs", content_type="multipart/form-data",
                           data={"file": (io.BytesIO(film.read_bytes()), "film.mp4"), "operations": "colorize",
                                 "keyframes": [(io.BytesIO(picture), "12.png")]})
    assert response.status_code == 202, response.get_json()
    job = response.get_json()
    assert job["keyframes"] == [{"frame": 12, "source": "user"}] and job["recolour_of"] is None
    [item] = client.get(job["links"]["keyframes"]).get_json()["items"]
    png, thumb = client.get(item["url"]), client.get(item["url"] + "?thumbnail=1")
    assert (png.status_code, png.mimetype, thumb.mimetype) == (200, "image/png", "image/jpeg")
    page = browser.get(job["links"]["page"]).data
    assert b'id="keyframes-strip"' in page and b'id="recolour-form"' in page
    # the recolour form offers exactly the colour options, with the job's own values shown
    assert b'name="temporal_strength"' in page and b'name="colour_mode"' in page and b'name="boxes"' not in page
    assert f'placeholder="{job["options"]["render_size"]}"'.encode() in page
    waiting = client.post(f"/api/v1/jobs/{job['id']}/recolour")  # no worker here: it is still queued
    assert waiting.status_code == 409 and waiting.get_json()["error"]["code"] == "parent_not_succeeded"


NODE_CHECK = r"""
const src = require("fs").readFileSync(process.argv[1], "utf8");
const tintype = new Function("window", "document", src + "; return tintype;")({}, {});
const row = (frame, name) => ({ querySelector: (sel) => sel === ".keyframe-frame" ? { value: frame }
  : { files: name ? [{ name }] : [] } });
const form = (rows) => ({ querySelectorAll: () => rows });
const sent = [];
const data = { append: (field, file, name) => sent.push([field, file.name, name]) };
const ok = tintype.appendKeyframes(form([row("120", "Painted Frame.JPG"), row("", ""), row("7", "seven")]), data);
const bad = tintype.appendKeyframes(form([row("x", "a.png")]), { append: () => {} });
console.log(JSON.stringify({ ok, sent, bad }));
"""


def test_the_form_sends_each_keyframe_as_a_part_named_by_its_frame():
    import json
    import shutil
    import subprocess

    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    script = Path(__file__).resolve().parent.parent / "tintype" / "web" / "static" / "app.js"
    done = subprocess.run(["node", "-e", NODE_CHECK, str(script)], capture_output=True, text=True, timeout=30)
    result = json.loads(done.stdout)
    assert result["ok"] == "" and result["sent"] == [["keyframes", "Painted Frame.JPG", "120.jpg"],
                                                     ["keyframes", "seven", "7.png"]]
    assert "frame number" in result["bad"]


def test_a_recolour_whose_parent_lost_its_input_is_refused_and_leaves_nothing(tmp_path, settings, store, film):
    from tintype.jobs.recolour import Recolour, create_recolour
    from tintype.storage.models import SUCCEEDED

    job_id = _submit(film, settings, store, [])
    parent = jobstate.get_job(settings.database_url, job_id)
    parent.status = SUCCEEDED
    store.delete(keys.input_key(job_id))
    before = sorted(store.list("jobs/"))
    with pytest.raises(IntakeError) as refused:
        create_recolour(Recolour(parent, {"saturation": "2"}, "local"), settings, store, settings.database_url,
                        lambda new_id: "task")
    assert (refused.value.status, refused.value.code) == (409, "parent_files_gone")
    assert sorted(store.list("jobs/")) == before
    assert queries.list_jobs(settings.database_url, queries.JobFilter(None), 1, 10).total == 1
