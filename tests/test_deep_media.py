"""Input at full depth: image sequences checked and wrapped losslessly, and the 16-bit
master of a photograph (tintype.media.sequence, tintype.media.master16)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.media_factory import ffmpeg, grey_video
from tests.test_intake_rules import _objects, _post, _refused_cleanly, _rows
from tintype.media.master16 import LUMA, DeepImage, build_master, read_deep, upright, write_master
from tintype.media.sequence import SequenceError, find_sequence, is_sequence, wrap_sequence

ROOT = Path(__file__).resolve().parent.parent
ENV_KEYS = ("DATABASE_URL", "BROKER_URL", "RESULT_BACKEND", "STORAGE_URL", "S3_ENDPOINT_URL")


def dpx_sequence(folder: Path, frames: int = 6, size: str = "160x120", pix_fmt: str = "gray16le",
                 name: str = "scan_%06d.dpx", start: int = 1) -> Path:
    """A short DPX reel as a scanner writes one: one file per frame, numbered from `start`."""
    folder.mkdir(parents=True, exist_ok=True)
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=24", "-frames:v", str(frames), "-pix_fmt", pix_fmt,
           "-c:v", "dpx", "-start_number", str(start), str(folder / name))
    return folder


def raw16(source: str, pix_fmt: str, *before: str) -> bytes:
    """Every frame decoded to `pix_fmt`, as bytes: what 'the same at its own depth' compares."""
    return subprocess.run(["ffmpeg", "-v", "error", *before, "-i", source, "-f", "rawvideo", "-pix_fmt", pix_fmt,
                           "-"], capture_output=True, check=True).stdout


def test_a_dpx_folder_is_wrapped_losslessly_at_its_own_depth(tmp_path):
    folder = dpx_sequence(tmp_path / "reel")
    assert is_sequence(folder) and is_sequence(folder / "scan_%06d.dpx")
    found = find_sequence(folder)
    assert (found.first, len(found.files), found.width, found.height) == (1, 6, 160, 120)
    assert found.layout == "DPX 16-bit luma" and found.name == "scan"
    assert find_sequence(folder / "scan_%06d.dpx").files == found.files  # the pattern names the same frames
    out = wrap_sequence(found, 24.0, tmp_path / "reel.mkv", 60)
    stream = json.loads(subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json",
                                        str(out)], capture_output=True, check=True).stdout)["streams"][0]
    assert (stream["codec_name"], stream["pix_fmt"], stream["nb_read_frames"]) == ("ffv1", "gray16le", "6")
    scans = raw16(str(folder / "scan_%06d.dpx"), "gray16le", "-start_number", "1")
    assert len(scans) == 6 * 160 * 120 * 2 and raw16(str(out), "gray16le") == scans  # bit for bit, 16 bits


def test_an_exr_folder_is_read_from_its_header_and_wrapped_as_16_bit_rgb(tmp_path):
    """OpenEXR's float samples take one conversion (the sRGB transfer into 16-bit RGB, what
    ffmpeg's decoder gives with apply_trc); from there the wrap is lossless."""
    folder = tmp_path / "comp"
    folder.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=24", "-frames:v", "4",
                    "-vf", "format=gbrpf32le", "-c:v", "exr", str(folder / "comp_%04d.exr")], check=True)
    found = find_sequence(folder)
    assert (len(found.files), found.width, found.height, found.layout) == (4, 96, 64, "EXR float BGR")
    out = wrap_sequence(found, 24.0, tmp_path / "comp.mkv", 60)
    converted = raw16(str(folder / "comp_%04d.exr"), "gbrp16le", "-apply_trc", "iec61966_2_1",
                      "-start_number", "1")
    assert len(converted) == 4 * 96 * 64 * 3 * 2 and raw16(str(out), "gbrp16le") == converted
    assert len(set(converted[1::2])) > 1  # the high bytes vary: a picture, not a flat frame


def test_a_sequence_with_a_gap_is_refused_naming_the_missing_number(tmp_path):
    folder = dpx_sequence(tmp_path / "reel", frames=5)
    (folder / "scan_000003.dpx").unlink()
    with pytest.raises(SequenceError, match=r"frame number 3 is missing \(scan_000003.dpx\)") as err:
        find_sequence(folder)
    assert err.value.code == "sequence_gap"


def test_a_frame_of_another_size_or_depth_is_refused_naming_it(tmp_path):
    folder = dpx_sequence(tmp_path / "reel", frames=3)
    dpx_sequence(tmp_path / "odd", frames=1, size="80x60", start=4)
    (tmp_path / "odd" / "scan_000004.dpx").rename(folder / "scan_000004.dpx")
    with pytest.raises(SequenceError, match=r"scan_000004.dpx is 80x60 DPX 16-bit luma but the first frame "
                                            r"scan_000001.dpx is 160x120"):
        find_sequence(folder)
    (folder / "scan_000004.dpx").unlink()
    dpx_sequence(tmp_path / "rgb", frames=1, pix_fmt="rgb48le", start=4)
    (tmp_path / "rgb" / "scan_000004.dpx").rename(folder / "scan_000004.dpx")
    with pytest.raises(SequenceError, match="scan_000004.dpx is 160x120 DPX 16-bit RGB") as err:
        find_sequence(folder)
    assert err.value.code == "sequence_mismatch"


def test_an_empty_folder_or_two_runs_are_refused(tmp_path):
    with pytest.raises(SequenceError, match="no numbered frames"):
        find_sequence(tmp_path)
    for name in ("a_0001.png", "a_0002.png", "b_0001.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8), np.uint16))
    with pytest.raises(SequenceError, match="more than one numbered sequence"):
        find_sequence(tmp_path)
    found = find_sequence(tmp_path / "a_%04d.png")
    assert len(found.files) == 2 and found.layout == "PNG 16-bit grey"


def _grey16(width: int = 64, height: int = 48) -> np.ndarray:
    """A smooth 16-bit ramp over the whole range, with steps no 8-bit image has."""
    ramp = np.linspace(0, 65535, width * height).reshape(height, width)
    return np.rint(ramp).astype(np.uint16)


def _colour_result(grey16: np.ndarray) -> np.ndarray:
    """What a colorizer might return: the 8-bit lightness with a strong brown cast."""
    light = (grey16 // 257).astype(np.int16)
    cast = np.dstack([light + 40, light, light - 40])
    return np.clip(cast, 0, 255).astype(np.uint8)


def test_a_colorized_master_keeps_the_16_bit_lightness_of_a_grey_input():
    grey = _grey16()
    deep = DeepImage(np.repeat(grey[:, :, None], 3, axis=2), None, 16)
    result = _colour_result(grey)
    master = build_master(deep, result, None, colorized=True)
    assert master.dtype == np.uint16
    luma = master.astype(np.float64) @ LUMA.astype(np.float64)
    # The master's 601 luma is the input's grey, to within the rounding of three channels to 16 bits...
    assert np.abs(luma - grey).max() <= 1.0
    # ...and it has the result's colour: red above blue where the lightness leaves room for it.
    middle = (grey > 16384) & (grey < 49152)
    assert (master[..., 0].astype(int) - master[..., 2])[middle].min() > 40 * 257


def test_an_inpaint_only_master_keeps_unmasked_pixels_bit_identical():
    rng = np.random.default_rng(0)
    rgb16 = rng.integers(0, 65536, (48, 64, 3), dtype=np.uint16)
    result = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    mask = np.zeros((48, 64), np.uint8)
    mask[10:20, 30:40] = 255
    master = build_master(DeepImage(rgb16, None, 16), result, mask, colorized=False)
    assert np.array_equal(master[mask == 0], rgb16[mask == 0])
    assert np.array_equal(master[mask > 0], result[mask > 0].astype(np.uint16) * 257)


def test_a_16_bit_png_is_read_at_its_depth_and_written_back(tmp_path):
    grey = _grey16()
    cv2.imwrite(str(tmp_path / "scan.png"), grey)
    deep = read_deep(tmp_path / "scan.png", np.zeros((48, 64, 3), np.uint8), None, 1)
    assert deep.bits == 16 and np.array_equal(deep.rgb[..., 1], grey)
    write_master(tmp_path / "m.tif", deep.rgb, None)
    back = cv2.imread(str(tmp_path / "m.tif"), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and np.array_equal(back[..., 0], grey)
    eight = read_deep(tmp_path / "none.png", np.full((4, 4, 3), 255, np.uint8), None, 1)
    assert eight.bits == 8 and int(eight.rgb.max()) == 65535  # an 8-bit input is spread, not padded


@pytest.fixture(scope="module")
def front_door(tmp_path_factory):
    """REST v1 on the embedded defaults with no workers: intake's answers only."""
    from tintype.settings import load_settings
    from tintype.web.app import create_app

    environ = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    environ["TINTYPE_DATA_DIR"] = str(tmp_path_factory.mktemp("deep-intake"))
    return create_app(load_settings(environ))


def test_a_master_for_a_video_or_a_bad_choice_is_refused_leaving_nothing(front_door, tmp_path):
    """400 with the option named, no row, no object."""
    app = front_door
    rows, objects = _rows(app), _objects(app)
    film = grey_video(tmp_path / "film.mp4", size="64x48", frames=6, rate="24", audio=False)
    response = _post(app, film.read_bytes(), "film.mp4", operations="colorize", photo_master="png16")
    assert "photo_master is for photographs" in _refused_cleanly(app, response, 400, "photo_master_for_video")
    bad = _post(app, film.read_bytes(), "film.mp4", operations="colorize", photo_master="jpeg16")
    assert "photo_master must be one of none, png16, tiff16" in _refused_cleanly(app, bad, 400, "bad_option")
    assert _rows(app) == rows and _objects(app) == objects


def _zip_of(folder: Path, path: Path) -> bytes:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for frame in sorted(folder.iterdir()):
            archive.write(frame, f"reel/{frame.name}")
    return path.read_bytes()


def test_a_zip_of_dpx_frames_is_taken_as_a_lossless_video_and_one_with_a_gap_refused(front_door, tmp_path):
    app = front_door
    folder = dpx_sequence(tmp_path / "reel", frames=8)
    job = _post(app, _zip_of(folder, tmp_path / "reel.zip"), "reel.zip", operations="colorize", sequence_fps="12")
    assert job.status_code == 202, job.get_data(as_text=True)
    body = job.get_json()
    assert body["kind"] == "video" and body["input"]["name"] == "reel.mkv"
    facts = body["input"]["facts"]
    assert (facts["frames"], facts["width"], facts["height"], facts["fps"]) == (8, 160, 120, "12/1")
    stored = app.test_client().get(f"/api/v1/jobs/{body['id']}/input")
    kept = tmp_path / "kept.mkv"
    kept.write_bytes(stored.get_data())
    assert raw16(str(kept), "gray16le") == raw16(str(folder / "scan_%06d.dpx"), "gray16le", "-start_number", "1")
    rows, objects = _rows(app), _objects(app)
    (folder / "scan_000005.dpx").unlink()
    gap = _post(app, _zip_of(folder, tmp_path / "gap.zip"), "gap.zip", operations="colorize")
    assert "frame number 5 is missing (scan_000005.dpx)" in _refused_cleanly(app, gap, 422, "sequence_gap")
    with zipfile.ZipFile(tmp_path / "notes.zip", "w") as archive:
        archive.writestr("notes.txt", "no frames here")
    empty = _post(app, (tmp_path / "notes.zip").read_bytes(), "notes.zip", operations="colorize")
    message = _refused_cleanly(app, empty, 415, "not_media")  # a ZIP of no frames is no media tintype reads
    assert "holds no numbered frames" in message and str(tmp_path.anchor + "tmp") not in message
    assert _rows(app) == rows and _objects(app) == objects


def _cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env.update(TINTYPE_DATA_DIR=str(data_dir), TORCH_THREADS="1")
    return subprocess.run([sys.executable, "-m", "tintype.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=240)


@pytest.mark.slow
def test_restore_writes_a_16_bit_master_beside_a_photograph(tmp_path):
    """A 16-bit grey scan, colorized by real workers: the JPEG result, and next to it a 16-bit
    TIFF master whose 601 luma is the scan's own to within one step in 65535."""
    grey = _grey16(160, 120)
    cv2.imwrite(str(tmp_path / "scan.png"), grey)
    done = _cli("restore", str(tmp_path / "scan.png"), "-o", str(tmp_path / "out.jpg"), "--colorize",
                "--photo-master", "tiff16", data_dir=tmp_path / "data")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"wrote the 16-bit master (TIFF) to {tmp_path / 'out-master.tif'}" in done.stdout
    master = cv2.imread(str(tmp_path / "out-master.tif"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert master.dtype == np.uint16 and master.shape == (120, 160, 3)
    assert np.abs(master.astype(np.float64) @ LUMA.astype(np.float64) - grey).max() <= 1.0
    assert len(np.unique(master[..., 1])) > 256  # steps an 8-bit result cannot hold
    (tmp_path / "two-master.png").write_bytes(b"kept")
    again = _cli("restore", str(tmp_path / "scan.png"), "-o", str(tmp_path / "two.png"), "--photo-master",
                 "png16", data_dir=tmp_path / "data")
    assert again.returncode == 2 and "two-master.png already exists" in again.stderr  # refused before any work
    assert not (tmp_path / "two.png").exists() and (tmp_path / "two-master.png").read_bytes() == b"kept"


@pytest.mark.slow
def test_restore_takes_a_dpx_sequence_writes_it_back_as_frames_and_refuses_a_gap(tmp_path):
    """A DPX reel through real workers with -o naming a folder: the result comes back as
    DPX frames numbered like the input's, 16-bit RGB; a reel with a gap is refused first."""
    folder = dpx_sequence(tmp_path / "reel", frames=6)
    (tmp_path / "out").mkdir()
    done = _cli("restore", str(folder), "-o", str(tmp_path / "out"), "--sequence-fps", "12",
                data_dir=tmp_path / "data")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "6 frames of scan_%06d.dpx (160x120 DPX 16-bit luma) at 12 fps" in done.stderr
    assert f"wrote 6 frames to {tmp_path / 'out' / 'scan_%06d.dpx'}" in done.stdout
    written = find_sequence(tmp_path / "out")
    assert [p.name for p in written.files] == [p.name for p in find_sequence(folder).files]
    assert (written.width, written.height, written.layout) == (160, 120, "DPX 16-bit RGB")
    manifests = sorted(p.name for p in (tmp_path / "out").glob("scan-c2pa*.json"))  # kept, not lost in a temp
    assert len(manifests) == 1 and f"to {tmp_path / 'out' / manifests[0]}" in done.stdout
    again = _cli("restore", str(folder), "-o", str(tmp_path / "out"), data_dir=tmp_path / "data")
    assert again.returncode == 2 and "scan_000001.dpx already exists" in again.stderr
    (folder / "scan_000004.dpx").unlink()
    gap = _cli("restore", str(folder / "scan_%06d.dpx"), "-o", str(tmp_path / "gap.mp4"), data_dir=tmp_path / "d2")
    assert gap.returncode == 2 and "frame number 4 is missing (scan_000004.dpx)" in gap.stderr
    assert not (tmp_path / "gap.mp4").exists() and not (tmp_path / "d2" / "objects").exists()


def test_a_16_bit_rgba_png_keeps_its_channel_order_and_alpha(tmp_path):
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 65536, (30, 40, 4), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba[..., [2, 1, 0, 3]])  # OpenCV writes BGRA
    deep = read_deep(tmp_path / "rgba.png", np.zeros((30, 40, 3), np.uint8), None, 1)
    assert deep.bits == 16 and np.array_equal(deep.rgb, rgba[..., :3]) and np.array_equal(deep.alpha, rgba[..., 3])
    write_master(tmp_path / "m.png", deep.rgb, deep.alpha)
    assert np.array_equal(cv2.imread(str(tmp_path / "m.png"), cv2.IMREAD_UNCHANGED), rgba[..., [2, 1, 0, 3]])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_deep_read_is_turned_upright_as_pillow_turns_the_8_bit_one(orientation):
    from PIL import Image

    turns = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
             5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
             8: Image.Transpose.ROTATE_90}  # what ImageOps.exif_transpose applies for each EXIF orientation
    picture = (np.arange(7 * 12 * 3) % 251).astype(np.uint8).reshape(7, 12, 3)
    expected = np.asarray(Image.fromarray(picture).transpose(turns[orientation])) if orientation > 1 else picture
    assert np.array_equal(upright(picture, orientation), expected)
