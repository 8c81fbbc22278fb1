"""4:2:0 frames: conversion, lossless intermediates, and agreement with ffmpeg's colours."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from tintype.media.probe import VideoFacts
from tintype.media.video import DeliveryEncoder, LosslessWriter, iter_lossless
from tintype.media.yuv import Yuv420


def picture(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 3)


def facts(width: int, height: int, frames: int) -> VideoFacts:
    return VideoFacts(container="matroska", video_codec="rawvideo", width=width, height=height, rotation=0,
                      frames=frames, fps_num=25, fps_den=1, constant_rate=True, duration=frames / 25,
                      start_time=0.0, bytes=None)


def decode_rgb(path: Path, width: int, height: int) -> list[np.ndarray]:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
    return list(frames)


@pytest.mark.parametrize("size", [(64, 48), (65, 47)])
def test_round_trip_keeps_the_picture_and_its_size(size):
    width, height = size
    rgb = picture(height, width)
    frame = Yuv420.from_rgb(rgb)
    assert (frame.width, frame.height) == size
    assert frame.padded_size == (width + width % 2, height + height % 2)
    back = frame.rgb()
    assert back.shape == rgb.shape
    assert np.abs(back.astype(int) - rgb).mean() < 1.5


def test_luma_is_bt601_limited_range_and_chroma_is_the_block_mean():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:, 0::2] = (255, 0, 0)
    rgb[:, 1::2] = (0, 0, 255)
    frame = Yuv420.from_rgb(rgb)
    assert frame.y[0, 0] in (81, 82) and frame.y[0, 1] in (40, 41)  # red, blue in BT.601 video range
    # The mean of red and blue, not one of them (which is what sampling one pixel gives).
    mean = Yuv420.from_rgb(np.full((2, 2, 3), (127.5, 0, 127.5)).round().astype(np.uint8))
    assert abs(int(frame.cr[0, 0]) - int(mean.cr[0, 0])) <= 1 and abs(int(frame.cb[0, 0]) - int(mean.cb[0, 0])) <= 1
    white = Yuv420.from_rgb(np.full((2, 2, 3), 255, np.uint8))
    assert (white.y[0, 0], white.cb[0, 0], white.cr[0, 0]) == (235, 128, 128)


def test_bytes_round_trip_and_chroma_shift_keeps_luma():
    frame = Yuv420.from_rgb(picture(40, 30))
    again = Yuv420.from_bytes(frame.tobytes(), 30, 40)
    assert all(np.array_equal(a, b) for a, b in ((frame.y, again.y), (frame.cb, again.cb), (frame.cr, again.cr)))
    shifted = frame.with_chroma_shift(np.full((10, 8, 2), (6.0, -4.0), np.float32))
    assert shifted.y is frame.y
    inner = (slice(2, -2), slice(2, -2))  # away from saturation at the edges of the range
    assert np.abs(shifted.cr.astype(int) - frame.cr)[inner].min() >= 5
    assert np.abs(shifted.cb.astype(int) - frame.cb)[inner].min() >= 3
    with pytest.raises(ValueError, match="4:2:0"):
        Yuv420.from_bytes(frame.tobytes()[:-1], 30, 40)


def test_the_intermediate_is_lossless(tmp_path):
    width, height = 67, 37  # odd: padded to even inside, cropped by the reader
    frames = [Yuv420.from_rgb(picture(height, width, seed)) for seed in range(5)]
    path = tmp_path / "chunk.mkv"
    with LosslessWriter(path, width, height) as writer:
        for frame in frames:
            writer.write(frame)
    decoded = list(iter_lossless(path, width, height))
    assert len(decoded) == len(frames)
    for a, b in zip(frames, decoded):
        assert (b.width, b.height) == (width, height)
        assert np.array_equal(a.y, b.y) and np.array_equal(a.cb, b.cb) and np.array_equal(a.cr, b.cr)


def test_players_see_the_colours_we_meant(tmp_path):
    """ffmpeg, decoding the delivery to RGB with its default (BT.601 video-range) rules,
    gets back what went in: the planes carry the colour convention players assume."""
    width, height = 96, 64
    rgb = [picture(height, width, seed) for seed in range(3)]
    out = tmp_path / "out.mp4"
    encoder = DeliveryEncoder(facts(width, height, len(rgb)), None, out_path=out)
    for frame in rgb:
        encoder.write(Yuv420.from_rgb(frame))
    encoder.close()
    for ours, theirs in zip(rgb, decode_rgb(out, width, height)):
        error = np.abs(theirs.astype(int) - ours)
        assert error.mean() < 3.0, error.mean()
        assert abs(float(theirs.mean()) - float(ours.mean())) < 1.5  # no range or matrix mix-up


def test_a_frame_of_the_wrong_size_is_refused(tmp_path):
    encoder = DeliveryEncoder(facts(32, 32, 2), None, out_path=tmp_path / "x.mp4")
    try:
        with pytest.raises(Exception, match="32x32"):
            encoder.write(Yuv420.from_rgb(picture(16, 16)))
    finally:
        encoder.abort()
