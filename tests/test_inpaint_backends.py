"""Inpainting backends and mask plumbing without the services: the TorchScript slot, the
registry's video and image backends, mask sources and their checks, and box tracking on
a real decoded video."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.media_factory import encode_frames, mask_zip, moving_square, textured_frames
from tintype.gpu_workers.masks import ChunkMasks, frame_masks
from tintype.gpu_workers.models.contracts import Inpainter
from tintype.gpu_workers.models.errors import ModelError, WeightsError
from tintype.gpu_workers.models.registry import ModelRegistry
from tintype.gpu_workers.processing import apply_operations
from tintype.jobs.mask_intake import (
    MaskError,
    check_boxes,
    normalise_frame_masks,
)
from tintype.jobs.options import parse_options
from tintype.media.errors import CorruptMedia
from tintype.media.inpaint.damage import dilate
from tintype.media.maskvideo import MaskVideoWriter, iter_masks
from tintype.media.probe import probe_video
from tintype.settings import load_settings


class MeanFill(torch.nn.Module):
    """A stand-in for an exported inpainter: holes take the mean colour of the known pixels."""

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        known = 1 - mask
        mean = (image * known).sum(dim=(2, 3), keepdim=True) / known.sum(dim=(2, 3), keepdim=True)
        return image * known + mean * mask


class WrongShape(torch.nn.Module):
    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return image[:, :1]


@pytest.fixture
def scripted(tmp_path, monkeypatch):
    def make(module: torch.nn.Module, sha: str | None = None) -> Path:
        path = tmp_path / f"{type(module).__name__}.pt"
        torch.jit.script(module).save(str(path))
        monkeypatch.setenv("TORCHSCRIPT_INPAINT_PATH", str(path))
        monkeypatch.setenv("TORCHSCRIPT_INPAINT_SHA256", sha if sha is not None
                           else hashlib.sha256(path.read_bytes()).hexdigest())
        return path

    return make


def _torchscript() -> Inpainter:
    """Model `torchscript` from a registry built from the environment as it is now."""
    return ModelRegistry(load_settings()).inpainter("torchscript")


def test_torchscript_slot_runs_an_exported_module_on_the_hole_only(scripted):
    scripted(MeanFill())
    frame = textured_frames(1, 61, 45)[0]  # odd size: padded to a multiple of 8 and cropped back
    mask = np.zeros((45, 61), np.uint8)
    mask[10:30, 20:40] = 255
    out = _torchscript().inpaint(frame, mask)
    hole = mask > 0
    assert np.array_equal(out[~hole], frame[~hole])
    expected = frame[~hole].reshape(-1, 3).mean(axis=0)
    assert np.abs(out[hole].reshape(-1, 3).mean(axis=0) - expected).max() < 6  # reflect padding shifts it a little
    assert out[hole].std(axis=0).max() < 1.0  # one flat colour


def test_torchscript_slot_names_the_file_on_bad_sha_and_bad_output(scripted):
    path = scripted(MeanFill(), sha="0" * 64)
    with pytest.raises(WeightsError, match=str(path)) as err:
        _torchscript()
    assert "0" * 64 in str(err.value)
    scripted(WrongShape())
    mask = np.zeros((32, 32), np.uint8)
    mask[4:12, 4:12] = 255
    with pytest.raises(ModelError, match="expected"):
        _torchscript().inpaint(textured_frames(1, 32, 32)[0], mask)


def test_flow_backend_fills_a_window_and_keeps_only_the_chunk_frames(monkeypatch):
    background = textured_frames(10, 96, 64, pan=2)
    frames, boxes = moving_square(background, side=12, start=(8, 20), step=3)
    masks = []
    for x, y, w, h in boxes:
        mask = np.zeros((64, 96), np.uint8)
        mask[y - 1:y + h + 1, x - 1:x + w + 1] = 255
        masks.append(mask)
    options = parse_options({"operations": "inpaint", "inpaint_model": "flow"}, load_settings())
    out = apply_operations(frames, options, masks, keep=slice(3, 7))
    assert len(out) == 4
    for k, t in enumerate(range(3, 7)):
        x, y, w, h = boxes[t]
        hole = (slice(y, y + h), slice(x, x + w))
        assert np.abs(out[k][hole].astype(int) - background[t][hole]).mean() < 12
        outside = masks[t] == 0
        assert np.array_equal(out[k][outside], frames[t][outside])


def test_mask_sources_are_unioned_dilated_and_a_full_frame_is_refused():
    frames = textured_frames(3, 40, 30)
    fixed = np.zeros((30, 40), bool)
    fixed[2, 2] = True
    per_frame = [np.zeros((30, 40), bool) for _ in frames]
    per_frame[1][20, 30] = True
    masks = frame_masks(ChunkMasks(0, fixed=fixed, per_frame=per_frame,
                                   boxes=[[], [{"x": 5, "y": 5, "w": 4, "h": 3}], []],
                                   dilation=1), frames)
    assert masks[0][2, 2] == 255 and masks[0][2, 3] == 255 and masks[0][20, 30] == 0  # fixed, grown by 1
    assert masks[1][20, 31] == 255 and masks[1][5:8, 5:9].all() and masks[1][4, 6] == 255
    assert dilate(np.zeros((5, 5), bool), 3).sum() == 0
    with pytest.raises(CorruptMedia, match="frame 7 covers the whole frame"):
        frame_masks(ChunkMasks(6, boxes=[[], [{"x": 0, "y": 0, "w": 40, "h": 30}]]), frames[:2])


def test_boxes_must_lie_inside_the_picture():
    with pytest.raises(MaskError, match="outside the 20x10 picture"):
        check_boxes([{"x": 15, "y": 0, "w": 6, "h": 2}], 20, 10, 5)


def test_per_frame_masks_from_a_zip_and_a_video_round_trip(tmp_path):
    settings = load_settings()
    rng = np.random.default_rng(0)
    masks = [rng.random((24, 32)) > 0.9 for _ in range(5)]
    from_zip = normalise_frame_masks(mask_zip(tmp_path / "m.zip", masks), 32, 24, 5, settings, tmp_path / "a.mkv")
    assert all(np.array_equal(a, b) for a, b in zip(iter_masks(str(from_zip), 32, 24), masks))
    assert [m.sum() for m in iter_masks(str(from_zip), 32, 24, 2, 2)] == [masks[2].sum(), masks[3].sum()]
    video = tmp_path / "masks.mkv"
    with MaskVideoWriter(video, 32, 24) as writer:
        for mask in masks:
            writer.write(mask)
    again = normalise_frame_masks(video, 32, 24, 5, settings, tmp_path / "b.mkv")
    assert all(np.array_equal(a, b) for a, b in zip(iter_masks(str(again), 32, 24), masks))
    with pytest.raises(MaskError, match="has 5 frames but the video has 6"):
        normalise_frame_masks(video, 32, 24, 6, settings, tmp_path / "c.mkv")


def test_box_tracking_streams_a_real_video_and_reports_the_loss(tmp_path):
    from tintype.tasks.track import tracked_boxes

    frames, boxes = moving_square(textured_frames(24, 128, 96, pan=0, seed=2), step=2, until=16)
    path = encode_frames(tmp_path / "t.mp4", frames)
    x, y, w, h = boxes[0]
    per_frame, notes = tracked_boxes(str(path), probe_video(str(path)), [{"x": x - 2, "y": y - 2, "w": w + 4,
                                                                       "h": h + 4, "first": 0, "last": 23}])
    assert len(per_frame) == 24 and all(len(b) == 1 for b in per_frame)
    for t in (4, 10, 14):
        b, (sx, sy, sw, sh) = per_frame[t][0], boxes[t]
        assert b["x"] <= sx + 2 and b["x"] + b["w"] >= sx + sw - 2, (t, b, boxes[t])
        assert b["y"] <= sy + 2 and b["y"] + b["h"] >= sy + sh - 2, (t, b, boxes[t])
    [note] = notes
    assert "tracking was lost at frame" in note
    lost = int(note.split("lost at frame ")[1].split(";")[0])
    assert 15 <= lost <= 17


def test_torchscript_slot_pads_to_the_multiple_the_settings_give(scripted, monkeypatch):
    scripted(MeanFill())
    monkeypatch.setenv("TORCHSCRIPT_INPAINT_MULTIPLE", "16")
    assert _torchscript().multiple == 16
