"""Bad input gets a clear 4xx JSON error, leaves nothing behind, and the workers keep going."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.media_factory import grey_video, rect_mask

pytestmark = pytest.mark.integration


def _truncated_mp4(tmp: Path) -> Path:
    whole = grey_video(tmp / "whole.mp4", frames=24, extra=("-movflags", "+faststart"))
    data = whole.read_bytes()
    path = tmp / "truncated.mp4"
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def _cut(path: Path, fraction: float) -> Path:
    cut = path.with_name(f"cut-{path.name}")
    data = path.read_bytes()
    cut.write_bytes(data[:int(len(data) * fraction)])
    return cut


def _mp4_cut_before_its_index(tmp: Path) -> Path:
    """An ordinary MP4 keeps its index (moov) at the end: cut anywhere, the index is gone."""
    return _cut(grey_video(tmp / "camera.mp4", frames=24), 0.8)


def _truncated_mkv(tmp: Path) -> Path:
    return _cut(grey_video(tmp / "reel.mkv", frames=48), 0.6)


def _truncated_webm(tmp: Path) -> Path:
    path = tmp / "clip.webm"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=24", "-frames:v",
                    "48", "-c:v", "libvpx-vp9", "-deadline", "realtime", str(path)], check=True)
    return _cut(path, 0.6)


def _truncated_avi(tmp: Path) -> Path:
    path = tmp / "clip.avi"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=24", "-frames:v",
                    "48", "-c:v", "mpeg4", str(path)], check=True)
    return _cut(path, 0.6)


def _png_bomb(tmp: Path) -> Path:
    path = tmp / "bomb.png"
    Image.new("1", (6000, 6000)).save(path)  # 36 Mpx in a few kB; the test limit is 4 Mpx
    return path


def _unknown_codec(tmp: Path) -> Path:
    source = tmp / "mpeg4.avi"
    os.system(f"ffmpeg -v error -y -f lavfi -i testsrc=size=64x48:rate=10 -frames:v 10 -c:v mpeg4 "
              f"-vtag FMP4 {source}")
    data = source.read_bytes().replace(b"FMP4", b"QQQQ")
    path = tmp / "unknown.avi"
    path.write_bytes(data)
    return path


def _text(tmp: Path) -> Path:
    path = tmp / "notes.mp4"
    path.write_text("these are not the frames you are looking for\n" * 50)
    return path


def _zip_named_mp4(tmp: Path) -> Path:
    """A ZIP archive holding a real PNG, renamed .mp4: the type comes from content, not names."""
    import io
    import zipfile

    picture = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 100, 50)).save(picture, "PNG")
    path = tmp / "holiday.mp4"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("frame.png", picture.getvalue())
    return path


def _empty(tmp: Path) -> Path:
    path = tmp / "empty.png"
    path.write_bytes(b"")
    return path


def _playlist(tmp: Path) -> Path:
    """An HLS playlist named .mp4 whose segment is a real video elsewhere on the server."""
    segment = grey_video(tmp / "elsewhere.mp4", frames=8, audio=False)
    path = tmp / "playlist.mp4"
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1.0,\n{segment}\n#EXT-X-ENDLIST\n")
    return path


def _concat_list(tmp: Path) -> Path:
    segment = grey_video(tmp / "elsewhere.mp4", frames=8, audio=False)
    path = tmp / "list.mp4"
    path.write_text(f"ffconcat version 1.0\nfile '{segment}'\n")
    return path


def _million_frames(tmp: Path) -> Path:
    """10^6 frames of 2x2 pixels: 4 MB on disk, 16 minutes of video at 1000 fps."""
    path = tmp / "million.mov"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "gray", "-s", "2x2", "-r", "1000",
                    "-i", "/dev/zero", "-frames:v", "1000000", "-c:v", "rawvideo", str(path)], check=True)
    return path


def _oversized(tmp: Path) -> Path:
    path = tmp / "big.mp4"
    path.write_bytes(os.urandom(9 * 1024**2))  # the stack's limit is 8 MiB
    return path


CASES = {
    "not media": (_text, {}, 415, "not_media"),
    "a ZIP renamed .mp4": (_zip_named_mp4, {}, 415, "not_media"),
    "empty file": (_empty, {}, 400, "empty_file"),
    "truncated video": (_truncated_mp4, {}, 422, "corrupt_media"),
    "an MP4 cut before its index": (_mp4_cut_before_its_index, {}, 422, "corrupt_media"),
    "a truncated MKV": (_truncated_mkv, {}, 422, "corrupt_media"),
    "a truncated WebM": (_truncated_webm, {}, 422, "corrupt_media"),
    "a truncated AVI": (_truncated_avi, {}, 422, "corrupt_media"),
    "decompression bomb": (_png_bomb, {}, 413, "media_too_large"),
    "unsupported codec": (_unknown_codec, {}, 415, "unsupported_media"),
    "over the upload limit": (_oversized, {}, 413, None),
    "10^6 tiny frames": (_million_frames, {}, 413, "media_too_large"),
    "an HLS playlist renamed .mp4 pointing at a file on the server": (_playlist, {}, 415, "not_media"),
    "an ffconcat list renamed .mp4": (_concat_list, {}, 415, "not_media"),
}


@pytest.mark.reliability
@pytest.mark.parametrize("case", list(CASES))
def test_bad_upload_is_refused_and_nothing_is_stored(stack, tmp_path, case, reliability):
    make, form, status, code = CASES[case]
    reliability.injected(f"hostile upload: {case}")
    upload = make(tmp_path)
    jobs_before, objects_before = stack.db("select count(*) from jobs")[0][0], stack.objects()
    began = time.monotonic()
    response = stack.submit(upload, operations="colorize", **form)
    reliability.saw(f"answered {response.status_code} {response.json()['error'].get('code', '')} "
                    f"in {time.monotonic() - began:.1f} s")
    reliability.check("a JSON error with a message; no job row; no stored object")
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    assert stack.db("select count(*) from jobs")[0][0] == jobs_before
    assert stack.stray_objects(objects_before) == []


@pytest.mark.reliability
def test_path_traversal_filename_is_refused(stack, tmp_path, reliability):
    reliability.injected("hostile upload: file name '../../etc/clip.mp4'")
    source = grey_video(tmp_path / "clip.mp4", frames=8, audio=False)
    before = stack.objects()
    response = stack.submit(source, filename="../../etc/clip.mp4", operations="colorize")
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_filename"
    assert stack.stray_objects(before) == []
    reliability.saw("answered 400 bad_filename")
    reliability.check("no stored object; names are never used as paths (keys are jobs/<uuid>/...)")


@pytest.mark.parametrize("mask_kind, code", [("wrong size", "mask_size_mismatch"), ("not an image", "bad_mask"),
                                             ("empty", "empty_mask"), ("whole frame", "mask_covers_frame")])
def test_bad_masks_are_refused(stack, tmp_path, mask_kind, code):
    source = grey_video(tmp_path / "clip.mp4", frames=8, audio=False)
    mask = tmp_path / "mask.png"
    if mask_kind == "wrong size":
        rect_mask(mask, 50, 50, (10, 10, 20, 20))
    elif mask_kind == "not an image":
        mask.write_text("hello")
    elif mask_kind == "empty":
        Image.new("L", (96, 64), 0).save(mask)
    else:
        rect_mask(mask, 96, 64, (0, 0, 95, 63))
    jobs_before = stack.db("select count(*) from jobs")[0][0]
    response = stack.submit(source, mask=mask, operations="inpaint")
    assert 400 <= response.status_code < 500 and response.json()["error"]["code"] == code, response.text
    assert stack.db("select count(*) from jobs")[0][0] == jobs_before


def test_invalid_options_are_refused(stack, tmp_path):
    source = grey_video(tmp_path / "clip.mp4", frames=8, audio=False)
    assert stack.submit(source, colorize="no").json()["error"]["code"] == "no_operation"
    assert stack.submit(source, operations="colorize", colour="blue").json()["error"]["code"] == "unknown_field"
    assert stack.submit(source, operations="sharpen").status_code == 400
    assert stack.submit(source, operations="inpaint").json()["error"]["code"] == "mask_required"
    assert stack.submit(source, operations="colorize", render_size="9").status_code == 400


def test_workers_still_run_after_bad_input(stack, tmp_path):
    source = grey_video(tmp_path / "after.mp4", frames=12, audio=False)
    mask = rect_mask(tmp_path / "m.png", 96, 64, (10, 10, 30, 30))
    job = stack.wait(stack.submit(source, mask=mask, operations="inpaint").json()["id"])
    assert job["status"] == "succeeded", job
    stack.check_alive()
