"""FFMPEG_HWACCEL: NVENC/NVDEC when ffmpeg and a GPU have them, today's libx264 otherwise.

The decision is tested with injected facts (ffmpeg's lists, the GPU count); the real
ffmpeg on this CPU-only machine is only run to show the delivery's arguments are exactly
libx264's when no GPU answers.
"""

from __future__ import annotations

import numpy as np
import pytest

from tintype.media import hwaccel
from tintype.media.hwaccel import HwAccel, HwAccelUnavailable, decide, detect
from tintype.media.probe import VideoFacts
from tintype.media.video import DeliveryEncoder, DeliveryOptions, _decode_args, video_codec_args
from tintype.media.yuv import Yuv420
from tintype.settings import load_settings
from tintype.tasks.finalize import delivery_options

ENCODERS = """Encoders:
 V....D libx264              libx264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (codec h264)
 V....D h264_nvenc           NVIDIA NVENC H.264 encoder (codec h264)
 V....D hevc_nvenc           NVIDIA NVENC hevc encoder (codec hevc)
"""
NO_NVENC = ENCODERS.replace(" V....D h264_nvenc           NVIDIA NVENC H.264 encoder (codec h264)\n", "")
HWACCELS = "Hardware acceleration methods:\nvdpau\ncuda\nvaapi\n"
NO_CUDA = "Hardware acceleration methods:\nvaapi\n"
LIBX264 = ["-c:v", "libx264", "-preset", "superfast", "-crf", "18"]


@pytest.fixture(autouse=True)
def _fresh_detection():
    detect.cache_clear()
    yield
    detect.cache_clear()


def test_auto_uses_what_ffmpeg_and_the_gpu_both_have() -> None:
    assert decide("auto", ENCODERS, HWACCELS, 1) == HwAccel(nvenc=True, nvdec=True)
    assert decide("auto", NO_NVENC, HWACCELS, 2) == HwAccel(nvenc=False, nvdec=True)
    assert decide("auto", ENCODERS, NO_CUDA, 1) == HwAccel(nvenc=True, nvdec=False)
    assert decide("auto", ENCODERS, HWACCELS, 0) == hwaccel.NONE  # ffmpeg built with NVENC, no GPU


def test_off_takes_nothing_and_cuda_names_what_is_missing() -> None:
    assert decide("off", ENCODERS, HWACCELS, 4) == hwaccel.NONE
    assert decide("cuda", ENCODERS, HWACCELS, 1) == HwAccel(nvenc=True, nvdec=True)
    with pytest.raises(HwAccelUnavailable, match="a GPU") as err:
        decide("cuda", NO_NVENC, HWACCELS, 0)
    assert "h264_nvenc" in str(err.value) and "cuda in ffmpeg -hwaccels" not in str(err.value)
    with pytest.raises(ValueError, match="FFMPEG_HWACCEL"):
        decide("vulkan", ENCODERS, HWACCELS, 1)


def test_the_setting_is_read_and_checked() -> None:
    assert load_settings({}).ffmpeg_hwaccel == "auto"
    assert load_settings({"FFMPEG_HWACCEL": "off"}).ffmpeg_hwaccel == "off"
    with pytest.raises(ValueError, match="FFMPEG_HWACCEL"):
        load_settings({"FFMPEG_HWACCEL": "nvidia"})


def test_nvenc_arguments_ask_for_constant_quality() -> None:
    assert video_codec_args(DeliveryOptions()) == LIBX264
    nvenc = video_codec_args(DeliveryOptions(nvenc=True))
    assert nvenc[:2] == ["-c:v", "h264_nvenc"] and nvenc[nvenc.index("-cq") + 1] == "19"
    assert nvenc[nvenc.index("-b:v") + 1] == "0"  # no bitrate cap, as CRF has none


def test_nvdec_only_adds_the_hwaccel_before_the_input() -> None:
    plain = _decode_args("in.mp4", 2.0, 8, None, "yuv420p")
    gpu = _decode_args("in.mp4", 2.0, 8, None, "yuv420p", nvdec=True)
    assert "-hwaccel" not in plain
    assert gpu.index("-hwaccel") < gpu.index("-i") and gpu[gpu.index("-hwaccel") + 1] == "cuda"
    assert [a for a in gpu if a not in ("-hwaccel", "cuda")] == plain  # same filters, same pipe format


def test_without_a_gpu_the_delivery_is_todays_libx264(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU, whatever this host has
    assert detect("auto") == hwaccel.NONE
    with pytest.raises(HwAccelUnavailable, match="nvidia-smi"):
        detect("cuda")
    options = delivery_options(load_settings({"FFMPEG_HWACCEL": "auto"}))
    facts = VideoFacts(container="matroska", video_codec="ffvhuff", width=64, height=48, rotation=0, frames=2,
                       fps_num=25, fps_den=1, constant_rate=True, duration=0.08, start_time=0.0, bytes=None)
    out = bytearray()
    encoder = DeliveryEncoder(facts, None, sink=out.extend, options=options)
    for _ in range(2):
        encoder.write(Yuv420.from_rgb(np.full((48, 64, 3), 128, np.uint8)))
    encoder.close()
    args = list(encoder.proc.args)
    start = args.index("-c:v")
    assert args[start:start + len(LIBX264)] == LIBX264 and "h264_nvenc" not in args
    assert out[4:8] == b"ftyp"  # a real MP4 came out


def test_a_listed_nvenc_that_does_not_work_falls_back_to_libx264(monkeypatch) -> None:
    # This machine's ffmpeg lists h264_nvenc and cuda; CUDA_VISIBLE_DEVICES claims a GPU
    # that is not there, so the facts say yes and only the one-frame trials can say no.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    facts = decide("auto", hwaccel._ffmpeg_lists("-encoders"), hwaccel._ffmpeg_lists("-hwaccels"), 1)
    if not facts.nvenc:
        pytest.skip("this ffmpeg build lists no h264_nvenc")
    assert detect("auto") == HwAccel(nvenc=False, nvdec=False)
    with pytest.raises(HwAccelUnavailable, match="one-frame NVENC encode fails"):
        detect("cuda")
