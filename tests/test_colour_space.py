"""Colour work in the delivery's 4:2:0: lightness from luma by a table, chroma formed at
chroma resolution, and a colorize-only chunk that delivers its source's luma bit for bit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.media_factory import encode_frames, grey_film, grey_video, painted_pan
from tintype.gpu_workers import keyframe_colour as kc
from tintype.gpu_workers.colorize import colorize_frames, colorize_yuv
from tintype.gpu_workers.processing import apply_operations, works_in_yuv
from tintype.jobs.options import parse_options
from tintype.media.color import rgb_to_lab
from tintype.media.probe import probe_video
from tintype.media.video import LosslessWriter, iter_lossless, read_frames, read_yuv_frames
from tintype.media.yuv import Yuv420, chroma_planes, grey_lightness, grey_lightness_table, planes_to_rgb
from tintype.settings import load_settings


def raw_planes(path: Path, width: int, height: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every frame's (Y, Cb, Cr) as ffmpeg itself decodes the file to yuv420p."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"],
                         capture_output=True, check=True).stdout
    cw, ch = (width + 1) // 2, (height + 1) // 2
    size = width * height + 2 * cw * ch
    frames = []
    for start in range(0, len(raw), size):
        flat = np.frombuffer(raw[start:start + size], np.uint8)
        frames.append((flat[:width * height].reshape(height, width),
                       flat[width * height:width * height + cw * ch].reshape(ch, cw),
                       flat[width * height + cw * ch:].reshape(ch, cw)))
    return frames


def test_the_table_is_the_exact_conversion_on_every_luma_code():
    table = grey_lightness_table()
    for code in range(256):
        y = np.full((2, 2), code, np.uint8)
        rgb = planes_to_rgb(y, np.full((2, 2), 128, np.uint8), np.full((2, 2), 128, np.uint8))
        assert rgb[0, 0, 0] == rgb[0, 0, 1] == rgb[0, 0, 2]  # neutral chroma is grey
        assert table[code] == rgb_to_lab(rgb)[0, 0, 0], code
    assert table[16] == 0 and table[235] == pytest.approx(100, abs=1e-3)
    assert np.all(np.diff(table[16:236]) > 0) and np.all(table[:16] == 0) and np.all(table[235:] == table[235])
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert np.array_equal(grey_lightness(ramp), table[ramp])


def test_the_table_agrees_with_ffmpegs_own_rgb_on_a_grey_film(tmp_path):
    """Lightness from luma is exactly what ffmpeg's correctly rounded RGB decode gives, and
    within two grey levels of its default (fast-rounding) rgb24, which the RGB path read."""
    path = grey_video(tmp_path / "grey.mp4", size="98x66", frames=6, audio=False)
    facts = probe_video(str(path))
    yuv = read_yuv_frames(str(path), facts.width, facts.height, None, 6)
    for frame, planes in zip(yuv, raw_planes(path, facts.width, facts.height)):
        assert np.array_equal(frame.y, planes[0])  # the source's own luma samples
    flags = "bicubic+accurate_rnd+full_chroma_int"
    exact = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-sws_flags", flags, "-f", "rawvideo",
                            "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    exact = np.frombuffer(exact, np.uint8).reshape(-1, facts.height, facts.width, 3)
    fast = read_frames(str(path), facts.width, facts.height, None, 6)
    for f, e, r in zip(yuv, exact, fast):
        new = grey_lightness(f.y)
        assert np.array_equal(new, rgb_to_lab(np.ascontiguousarray(e))[..., 0])
        assert np.abs(rgb_to_lab(r)[..., 0] - new).max() < 1.2  # two grey levels at most


def test_an_odd_sized_decode_is_padded_like_the_rgb_conversion(tmp_path):
    frames = grey_film(4, 67, 37)
    path = encode_frames(tmp_path / "odd.mkv", frames)
    yuv = read_yuv_frames(str(path), 67, 37, None, 4)
    assert [(f.width, f.height, f.padded_size, f.cb.shape) for f in yuv[:1]] == [(67, 37, (68, 38), (19, 34))]
    planes = raw_planes(path, 67, 37)
    assert np.array_equal(yuv[2].y[:37, :67], planes[2][0])
    assert np.array_equal(yuv[2].y[37], yuv[2].y[36]) and np.array_equal(yuv[2].y[:, 67], yuv[2].y[:, 66])
    assert np.array_equal(yuv[2].cb, planes[2][1])


def test_chroma_planes_match_the_rgb_conversion_of_the_same_colour():
    truth = painted_pan(1, 96, 64, seed=3)[0]
    lab = rgb_to_lab(truth)
    reference = Yuv420.from_rgb(truth)
    half = (lab[0::2, 0::2] + lab[1::2, 0::2] + lab[0::2, 1::2] + lab[1::2, 1::2]) / 4
    half_l, half_ab = half[..., 0], half[..., 1:]
    cb, cr = chroma_planes(half_l, half_ab)
    assert cb.shape == reference.cb.shape and cb.dtype == np.uint8
    assert np.abs(cb.astype(int) - reference.cb).mean() < 1.0 and np.abs(cr.astype(int) - reference.cr).mean() < 1.0
    grey_cb, grey_cr = chroma_planes(half_l, np.zeros_like(half_ab))
    assert np.all(np.abs(grey_cb.astype(int) - 128) <= 1) and np.all(np.abs(grey_cr.astype(int) - 128) <= 1)


def test_a_colorize_only_chunk_delivers_its_sources_luma_bit_for_bit(tmp_path):
    """decode → apply_operations → lossless intermediate, as gpu.process_chunk runs them,
    for a per-frame and a keyframe-coloured chunk: Y out is Y in, and colour was added."""
    path = grey_video(tmp_path / "film.mp4", size="130x74", frames=10, audio=False)
    facts = probe_video(str(path))
    source = raw_planes(path, facts.width, facts.height)
    settings = load_settings()
    per_frame = parse_options({"operations": "colorize", "colour_mode": "per-frame"}, settings)
    keyed = parse_options({"operations": "colorize", "colour_mode": "keyframes"}, settings)
    assert works_in_yuv(per_frame, has_reference=False) and works_in_yuv(keyed, has_reference=True)
    assert not works_in_yuv(per_frame, has_reference=True)
    assert not works_in_yuv(parse_options({"operations": "inpaint,colorize"}, settings), has_reference=False)
    frames = read_yuv_frames(str(path), facts.width, facts.height, None, facts.frames)
    key = kc.ColourWindow(first=0, keyframes={4: painted_pan(1, facts.width, facts.height)[0]})
    for options, window in ((per_frame, None), (keyed, key)):
        out = apply_operations(frames, options, None, keep=slice(2, 8), window=window)
        assert all(o.y is f.y for o, f in zip(out, frames[2:8]))
        written = tmp_path / "chunk.mkv"
        with LosslessWriter(written, facts.width, facts.height) as writer:
            for frame in out:
                writer.write(frame)
        back = list(iter_lossless(written, facts.width, facts.height))
        assert len(back) == 6
        for frame, (y, _, _) in zip(back, source[2:8]):
            assert np.array_equal(frame.y[:facts.height, :facts.width], y)
        chroma = np.abs(np.stack([f.cb for f in back]).astype(int) - 128).mean()
        assert chroma > 1.0, (options.colour_mode, chroma)  # the grey film got colour


class SlopeColorizer:
    """A stand-in model: chroma that varies smoothly across the picture and with lightness."""

    def predict_ab(self, light: torch.Tensor) -> torch.Tensor:
        _, _, h, w = light.shape
        x = torch.linspace(-1, 1, w).expand(h, w)
        y = torch.linspace(-1, 1, h)[:, None].expand(h, w)
        a = 30 * x + 0.2 * (light[:, 0] - 50)
        return torch.stack([a, 25 * y.expand_as(a)], 1)


@pytest.mark.parametrize("size", [(128, 96), (67, 37)])
def test_colour_formed_at_chroma_resolution_is_the_rgb_paths_delivered_colour(size):
    """The 4:2:0 path's chroma is the chroma the RGB path delivered (after its 4:2:0
    conversion): within a level on average, a few levels at the sharpest colour edges; its luma is the input's."""
    width, height = size
    greys = grey_film(3, width, height)
    model = SlopeColorizer()
    old = [Yuv420.from_rgb(o) for o in colorize_frames(model, greys, 32)]
    inputs = [Yuv420.from_rgb(g) for g in greys]
    new = colorize_yuv(model, inputs, 32)
    for o, n, i in zip(old, new, inputs):
        assert n.y is i.y and (n.width, n.height) == size
        for a, b in ((o.cb, n.cb), (o.cr, n.cr)):
            assert np.abs(a.astype(int) - b).mean() < 1.0 and np.percentile(np.abs(a.astype(int) - b), 95) <= 3
        assert np.abs(o.cr.astype(int) - 128).mean() > 5  # there was colour to compare


def test_a_window_of_yuv_frames_takes_its_keyframes_colour():
    truth = painted_pan(24, 96, 64, pan=1, seed=5)
    grey = [Yuv420.from_rgb(np.repeat((rgb_to_lab(f)[..., :1] * 2.55).clip(0, 255).astype(np.uint8), 3, 2))
            for f in truth]
    window = kc.ColourWindow(first=16, keyframes={20: truth[20]})
    out = kc.colour_window_yuv(grey[16:24], window)
    assert all(o.y is g.y for o, g in zip(out, grey[16:24]))
    error = [float(np.abs(rgb_to_lab(o.rgb())[..., 1:] - rgb_to_lab(Yuv420.from_rgb(t).rgb())[..., 1:]).mean())
             for o, t in zip(out, truth[16:24])]
    assert error[4] < 2.5 and max(error) < 6.0 and np.argmin(error) == 4
    old = kc.colour_window([g.rgb() for g in grey[16:24]], window)
    assert all(np.abs(Yuv420.from_rgb(o).cr.astype(int) - n.cr).mean() < 1.5 for o, n in zip(old, out))
