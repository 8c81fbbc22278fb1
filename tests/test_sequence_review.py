"""Hostile or odd input to the sequence code: crafted EXR headers, ZIPs zipfile cannot
unpack, frames too large to open, and where `tintype restore` writes around a folder of
frames (checked before any work, so these tests never start a worker)."""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from tests.test_deep_media import ENV_KEYS, dpx_sequence, front_door  # noqa: F401 (a fixture)
from tests.test_intake_rules import _objects, _post, _refused_cleanly, _rows
from tintype import cli
from tintype.media.errors import CorruptMedia
from tintype.media.sequence import EXR_MAGIC, frame_header, is_sequence
from tintype.restore_paths import PathRefused, result_format
from tintype.settings import load_settings


def _exr(tmp_path: Path, attributes: bytes) -> Path:
    path = tmp_path / "comp_0001.exr"
    path.write_bytes(EXR_MAGIC + b"\x02\0\0\0" + attributes)
    return path


def _attribute(name: bytes, kind: bytes, value: bytes, length: int | None = None) -> bytes:
    return name + b"\0" + kind + b"\0" + struct.pack("<i", len(value) if length is None else length) + value


@pytest.mark.timeout(10)
@pytest.mark.parametrize("attributes", [
    _attribute(b"a", b"b", b"", length=-8),  # would send the parser back to the first attribute for ever
    _attribute(b"a", b"b", b"xyz", length=-1),
    _attribute(b"a", b"b", b"xyz", length=1 << 30),  # runs past the bytes read
    b"dataWindow",  # a name without its NUL
    _attribute(b"channels", b"chlist", b"R"),  # a channel list without its end
    _attribute(b"channels", b"chlist", b"R\0\x01\0\0\0"),  # a channel entry cut short
])
def test_a_crafted_exr_header_is_refused_as_a_corrupt_frame(tmp_path, attributes):
    with pytest.raises(CorruptMedia) as refused:
        frame_header(_exr(tmp_path, attributes))
    assert refused.value.code == "corrupt_frame"


def test_a_well_formed_exr_header_still_reads(tmp_path):
    window = _attribute(b"dataWindow", b"box2i", struct.pack("<4i", 0, 0, 95, 63))
    channel = b"R\0" + struct.pack("<i", 1) + b"\0" * 12
    chlist = _attribute(b"channels", b"chlist", channel + b"\0")
    assert frame_header(_exr(tmp_path, window + chlist + b"\0")) == (96, 64, "EXR half R")


def test_an_existing_file_with_a_percent_in_its_name_is_no_pattern(tmp_path):
    photo = tmp_path / "100%done.jpg"
    photo.write_bytes(b"x")
    assert not is_sequence(photo) and is_sequence(tmp_path / "reel_%04d.dpx")


def test_the_master_hint_names_the_file_restore_makes(tmp_path):
    with pytest.raises(PathRefused) as refused:
        result_format("video", tmp_path / "in.mp4", tmp_path / "x.mkv", None)
    assert "makes x-master.mkv" in str(refused.value)


def _patched_zip(tmp_path: Path, flags: int = 0, method: int | None = None) -> bytes:
    """A ZIP of two frames whose headers (local and central) say what zipfile refuses:
    the encrypted flag bit, or another compression method."""
    dpx_sequence(tmp_path / "reel", frames=2, size="32x24")
    with zipfile.ZipFile(tmp_path / "reel.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for frame in sorted((tmp_path / "reel").iterdir()):
            archive.write(frame, frame.name)
    data = bytearray((tmp_path / "reel.zip").read_bytes())
    for signature, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = data.find(signature)
        while start >= 0:
            data[start + at] |= flags
            if method is not None:
                data[start + at + 2:start + at + 4] = struct.pack("<H", method)
            start = data.find(signature, start + 1)
    return bytes(data)


@pytest.mark.parametrize("flags, method", [(0x1, None), (0, 9)], ids=["encrypted", "deflate64"])
def test_a_zip_zipfile_cannot_unpack_is_a_422_leaving_nothing(front_door, tmp_path, flags, method):  # noqa: F811
    app = front_door
    rows, objects = _rows(app), _objects(app)
    response = _post(app, _patched_zip(tmp_path, flags, method), "reel.zip", operations="colorize")
    message = _refused_cleanly(app, response, 422, "unsupported_zip")
    assert ("encrypted" in message) if flags else ("compression" in message)
    assert _rows(app) == rows and _objects(app) == objects


def test_a_zip_of_frames_too_large_to_open_is_a_413_leaving_nothing(front_door, tmp_path, monkeypatch):  # noqa: F811
    app = front_door
    for n in (1, 2):
        Image.new("L", (64, 48)).save(tmp_path / f"scan_{n:04d}.tif")
    with zipfile.ZipFile(tmp_path / "big.zip", "w") as archive:
        for n in (1, 2):
            archive.write(tmp_path / f"scan_{n:04d}.tif", f"scan_{n:04d}.tif")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 64x48 is then a decompression bomb
    rows, objects = _rows(app), _objects(app)
    response = _post(app, (tmp_path / "big.zip").read_bytes(), "big.zip", operations="colorize")
    assert "scan_0001.tif" in _refused_cleanly(app, response, 413, "media_too_large")
    assert _rows(app) == rows and _objects(app) == objects


@pytest.fixture()
def reel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("TINTYPE_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "out").mkdir()
    return dpx_sequence(tmp_path / "reel", frames=2, size="32x24")


def _checked(*argv: str) -> tuple[str | None, object]:
    """What `tintype restore` says about its paths before any work, and its arguments."""
    args = cli.build_parser().parse_args(["restore", *argv])
    return cli._check_inputs(args) or cli._check_outputs(args, load_settings()), args


def test_keep_masks_beside_a_frames_folder_is_checked(reel, tmp_path):
    problem, _ = _checked(str(reel), "-o", str(tmp_path / "out"), "--keep-masks", str(reel / "scan_000001.dpx"))
    assert problem is not None and "never writes over its input" in problem
    (tmp_path / "masks.mkv").write_bytes(b"kept")
    problem, _ = _checked(str(reel), "-o", str(tmp_path / "out"), "--keep-masks", str(tmp_path / "masks.mkv"))
    assert problem is not None and "masks.mkv already exists" in problem
    problem, _ = _checked(str(reel), "-o", str(tmp_path / "out"), "--keep-masks",
                          str(tmp_path / "out" / "scan_000002.dpx"))
    assert problem is not None and "is one of the results" in problem


def test_a_master_with_a_frames_folder_is_refused(reel, tmp_path):
    problem, _ = _checked(str(reel), "-o", str(tmp_path / "out"), "--master", "ffv1")
    assert problem is not None and "--master" in problem and "name an .mp4" in problem


def test_a_frames_folders_manifest_goes_into_it_and_is_checked_first(reel, tmp_path):
    problem, args = _checked(str(reel), "-o", str(tmp_path / "out"))
    assert problem is None and cli.output_path(args.beside, "c2pa.json") == tmp_path / "out" / "scan-c2pa.json"
    (tmp_path / "out" / "scan-c2pa-unsigned.json").write_text("{}")
    problem, _ = _checked(str(reel), "-o", str(tmp_path / "out"))
    assert problem is not None and "scan-c2pa-unsigned.json already exists" in problem
    assert _checked(str(reel), "-o", str(tmp_path / "out"), "--force")[0] is None


@pytest.mark.parametrize("name", ["out-c2pa.json", "out-c2pa-unsigned.json", "out-master-c2pa.json",
                                  "out-master-c2pa-unsigned.json"])
def test_both_manifest_names_are_checked_whoever_signs(reel, tmp_path, name):
    """The workers' settings (a `tintype run`'s) and the master's format decide which name
    a manifest gets, not this command's: an existing file under either is kept."""
    (tmp_path / name).write_text("{}")
    problem, _ = _checked(str(reel), "-o", str(tmp_path / "out.mp4"), "--master", "ffv1")
    assert problem is not None and f"{name} already exists" in problem
    assert os.environ["TINTYPE_DATA_DIR"] == str(tmp_path / "data")
