"""grain=keep end to end (REST v1, real Redis, PostgreSQL, S3 and Celery workers): a box
inpainted on a grainy film gets grain like its surroundings; without the option the
fill is smooth."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tests.media_factory import decode, encode_frames

pytestmark = pytest.mark.integration
W, H, FRAMES = 160, 120, 24
BOX = (96, 24, 40, 40)  # x, y, w, h: on the still part of the picture


def grainy_film(seed: int = 4) -> list[np.ndarray]:
    """Grey frames: a ramp with a square drifting 2 px a frame, under clumped grain of
    std 8 that changes every frame, as film grain does."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    frames = []
    for t in range(FRAMES):
        picture = 70 + 0.5 * xx + 20 * np.sin(yy / 11.0)
        picture[30:70, 10 + 2 * t:40 + 2 * t] = 190
        noise = cv2.GaussianBlur(rng.standard_normal((H, W)).astype(np.float32), (0, 0), 0.7)
        luma = np.clip(picture + 8 * noise / noise.std() + 0.5, 0, 255).astype(np.uint8)
        frames.append(np.repeat(luma[..., None], 3, axis=2))
    return frames


def fine_detail(frame: np.ndarray) -> np.ndarray:
    grey = frame[..., 1].astype(np.float32)
    return grey - cv2.GaussianBlur(grey, (0, 0), 2.0)


def test_an_inpainted_box_gets_grain_like_its_surroundings(stack, tmp_path):
    source = encode_frames(tmp_path / "grainy.mp4", grainy_film())
    boxes = json.dumps([{"x": BOX[0], "y": BOX[1], "w": BOX[2], "h": BOX[3]}])
    form = dict(operations="inpaint", boxes=boxes, mask_dilation="0", inpaint_model="telea")
    submitted = {grain: stack.submit(source, grain=grain, **form) for grain in ("keep", "off")}
    assert all(r.status_code == 202 for r in submitted.values()), {g: r.text for g, r in submitted.items()}
    jobs = {grain: stack.wait(r.json()["id"]) for grain, r in submitted.items()}
    assert all(job["status"] == "succeeded" for job in jobs.values()), jobs
    assert jobs["keep"]["options"]["grain"] == "keep" and jobs["off"]["options"]["grain"] == "off"
    x, y, w, h = BOX
    hole = np.zeros((H, W), bool)
    hole[y:y + h, x:x + w] = True
    ring = np.zeros((H, W), bool)
    ring[y - 6:y + h + 6, x - 6:x + w + 6] = True
    ring &= ~hole
    inner = np.zeros((H, W), bool)
    inner[y + 2:y + h - 2, x + 2:x + w - 2] = True  # away from the box's edge
    ratio = {}
    for grain, job in jobs.items():
        out = decode(stack.download(job, tmp_path / f"{grain}.mp4"), W, H)
        assert len(out) == FRAMES
        detail = [fine_detail(f) for f in out]
        ratio[grain] = float(np.mean([d[inner].std() / d[ring].std() for d in detail]))
    assert 0.75 < ratio["keep"] < 1.3, ratio
    assert ratio["off"] < 0.5, ratio
