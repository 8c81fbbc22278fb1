"""The media library on generated files: probing, frame-exact ranges, delivery encodes, images."""

from __future__ import annotations

import io
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.media_factory import ffmpeg, grey_video, variable_rate_video
from tintype.media.errors import CorruptMedia, MediaTooLarge
from tintype.media.images import load_image, load_mask, save_image
from tintype.media.probe import probe_video
from tintype.media.video import DeliveryEncoder, read_range
from tintype.tasks.probe import plan_chunks


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("clips")
    rotated = tmp / "rotated.mp4"
    grey_video(tmp / "upright.mp4", frames=20, audio=False, rate="25")
    ffmpeg("-i", str(tmp / "upright.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=24", "-frames:v", "40", "-c:v", "mpeg4", "-g", "12",
           str(tmp / "clip.avi"))
    return {"bframes": grey_video(tmp / "b.mp4", frames=60, rate="30000/1001"), "rotated": rotated,
            "avi": tmp / "clip.avi", "vfr": variable_rate_video(tmp / "vfr.mkv")}


@pytest.mark.parametrize("name", ["bframes", "avi", "rotated"])
def test_any_frame_range_decodes_exactly_the_frames_of_a_full_decode(clips, name):
    facts = probe_video(str(clips[name]))
    everything = read_range(str(clips[name]), facts, 0, facts.frames)
    for start in (1, 7, 12, 13, facts.frames - 3):
        part = read_range(str(clips[name]), facts, start, 3)
        assert all(np.array_equal(a, b) for a, b in zip(part, everything[start:start + 3])), start


def test_probe_reads_rate_rotation_and_audio(clips):
    facts = probe_video(str(clips["bframes"]))
    assert (facts.frames, facts.fps, facts.constant_rate) == (60, Fraction(30000, 1001), True)
    assert [a.codec for a in facts.audio] == ["aac"]
    rotated = probe_video(str(clips["rotated"]))
    assert (rotated.width, rotated.height, rotated.rotation % 180) == (64, 96, 90)
    assert read_range(str(clips["rotated"]), rotated, 0, 1)[0].shape == (96, 64, 3)


def test_variable_rate_video_keeps_its_frame_times(clips, tmp_path):
    facts = probe_video(str(clips["vfr"]))
    assert not facts.constant_rate and facts.frames == 30
    frames = read_range(str(clips["vfr"]), facts, 0, facts.frames)
    out = tmp_path / "vfr.mp4"
    encoder = DeliveryEncoder(facts, None, out_path=out)
    for frame in frames:
        encoder.write(frame)
    encoder.close()
    result = probe_video(str(out))
    assert result.frames == 30
    assert np.allclose(result.timestamps, facts.timestamps, atol=0.002)


def test_constant_rate_encode_has_exact_count_and_duration(clips, tmp_path):
    facts = probe_video(str(clips["bframes"]))
    out = tmp_path / "cfr.mp4"
    encoder = DeliveryEncoder(facts, str(clips["bframes"]), out_path=out)
    for frame in read_range(str(clips["bframes"]), facts, 0, facts.frames):
        encoder.write(frame)
    encoder.close()
    result = probe_video(str(out))
    assert (result.frames, result.fps) == (60, Fraction(30000, 1001))
    assert abs(result.timestamps[-1] - facts.timestamps[-1]) < 1001 / 30000
    assert len(result.audio) == 1


def test_truncated_video_is_reported(tmp_path):
    whole = grey_video(tmp_path / "w.mp4", frames=24, extra=("-movflags", "+faststart"))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[:-3000])
    with pytest.raises(CorruptMedia, match="truncated"):
        probe_video(str(cut))


def test_chunk_plan_covers_every_frame_once_with_context(clips):
    facts = probe_video(str(clips["bframes"]))
    plans = plan_chunks(facts, 16, 2)
    assert [p.start for p in plans] == [0, 16, 32, 48] and sum(p.count for p in plans) == 60
    assert plans[1].decode_start == 14 and plans[1].decode_count == 20 and plans[-1].decode_count == 14
    assert plans[0].seek_time is None and plans[1].seek_time > 0


def _roundtrip(img: Image.Image, tmp_path: Path, fmt: str = "PNG", **save) -> Path:
    path = tmp_path / f"img.{fmt.lower()}"
    img.save(path, fmt, **save)
    return path


def test_images_of_every_mode_load_as_upright_rgb(tmp_path):
    grey16 = Image.fromarray((np.linspace(0, 65535, 40 * 30).reshape(30, 40)).astype(np.uint16))
    loaded = load_image(_roundtrip(grey16, tmp_path), 10**6)
    assert loaded.rgb.shape == (30, 40, 3) and loaded.rgb.max() >= 250 and loaded.rgb.min() <= 5

    palette = Image.new("P", (20, 10))
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.paste(1, (0, 0, 10, 10))
    assert tuple(load_image(_roundtrip(palette, tmp_path), 10**6).rgb[5, 5]) == (255, 0, 0)

    rgba = Image.new("RGBA", (10, 10), (10, 20, 30, 128))
    assert load_image(_roundtrip(rgba, tmp_path), 10**6).alpha.mean() == 128

    cmyk = Image.new("CMYK", (10, 10), (0, 255, 255, 0))
    rgb = load_image(_roundtrip(cmyk, tmp_path, "JPEG"), 10**6).rgb
    assert rgb[5, 5, 0] > 200 and rgb[5, 5, 1] < 60

    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    rotated = load_image(_roundtrip(Image.new("RGB", (40, 20)), tmp_path, "JPEG", exif=exif), 10**6)
    assert rotated.rgb.shape == (40, 20, 3) and rotated.facts["exif_orientation"] == 6


def test_pixel_limit_and_alpha_on_output(tmp_path):
    with pytest.raises(MediaTooLarge):
        load_image(_roundtrip(Image.new("L", (200, 200)), tmp_path), 10_000)
    rgb = np.zeros((8, 8, 3), np.uint8)
    alpha = np.full((8, 8), 77, np.uint8)
    save_image(tmp_path / "o.png", rgb, alpha, "png")
    assert Image.open(tmp_path / "o.png").mode == "RGBA"
    save_image(tmp_path / "o.jpg", rgb, alpha, "jpeg")
    assert Image.open(io.BytesIO((tmp_path / "o.jpg").read_bytes())).format == "JPEG"


def test_mask_is_binarised_and_checked(tmp_path):
    img = Image.new("L", (20, 10), 0)
    img.paste(200, (2, 2, 6, 6))
    mask = load_mask(_roundtrip(img, tmp_path), 20, 10, 10**6)
    assert set(np.unique(mask)) == {0, 255} and mask[3, 3] == 255
    with pytest.raises(CorruptMedia, match="20x10"):
        load_mask(_roundtrip(img, tmp_path), 21, 10, 10**6)


def test_ffprobe_agrees_on_delivery_format(clips, tmp_path):
    facts = probe_video(str(clips["avi"]))
    out = tmp_path / "d.mp4"
    encoder = DeliveryEncoder(facts, None, out_path=out)
    for frame in read_range(str(clips["avi"]), facts, 0, facts.frames):
        encoder.write(frame)
    encoder.close()
    fmt = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
                          "stream=codec_name,pix_fmt", "-of", "csv=p=0", str(out)],
                         capture_output=True, check=True).stdout.decode().strip()
    assert fmt == "h264,yuv420p"


@pytest.mark.parametrize("name", ["bframes", "vfr"])
def test_streamed_delivery_is_a_complete_playable_mp4(clips, tmp_path, name):
    facts = probe_video(str(clips[name]))
    received = bytearray()
    encoder = DeliveryEncoder(facts, str(clips[name]), sink=received.extend)
    for frame in read_range(str(clips[name]), facts, 0, facts.frames):
        encoder.write(frame)
    encoder.close()
    out = tmp_path / "streamed.mp4"
    out.write_bytes(bytes(received))
    assert received[4:8] == b"ftyp" and received.find(b"moov") < received.find(b"mdat")
    result = probe_video(str(out))
    assert result.frames == facts.frames and len(result.audio) == len(facts.audio)
    assert np.allclose(result.timestamps, facts.timestamps, atol=0.002)


@pytest.mark.integration
def test_an_unreachable_storage_server_is_a_connection_error_not_bad_media():
    """A worker cut off from S3 must retry its chunk, not fail the job as processing_failed
    (ffmpeg first retries the connection itself, for about half a minute)."""
    from tests.services import free_port
    from tintype.media.errors import SourceUnreachable, ToolFailed
    from tintype.media.video import read_frames
    from tintype.queue.guard import TRANSIENT, classify

    with pytest.raises(SourceUnreachable) as caught:
        read_frames(f"http://127.0.0.1:{free_port()}/bucket/input", 64, 48, None, 4, timeout=60)
    assert isinstance(caught.value, TRANSIENT) and isinstance(caught.value, ToolFailed)
    assert classify(caught.value, "decoding")[0] == "service_unavailable"
    assert classify(ToolFailed("ffmpeg decode exited 1: moov atom not found"), "decoding")[0] == "processing_failed"
