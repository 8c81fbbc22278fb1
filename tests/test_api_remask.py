"""Inpainting again with painted masks, end to end on the real stack: the new job reuses the
parent's stored input, unions per-frame masks with a box followed one by one ("track": true)
and keeps the masks it filled."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from tests.media_factory import encode_frames, mask_zip, moving_square, textured_frames

pytestmark = pytest.mark.integration
W, H = 128, 96


def test_a_new_job_inpaints_the_stored_input_with_new_masks_and_a_followed_box(stack, tmp_path):
    frames, boxes = moving_square(textured_frames(12, W, H))
    made = stack.submit(encode_frames(tmp_path / "film.mp4", frames), operations="inpaint", boxes="[[1,1,6,6]]",
                        inpaint_model="telea")
    assert made.status_code == 202, made.text
    parent = made.json()["id"]
    stack.http.delete(f"{stack.base}/api/v1/jobs/{parent}")  # cancelled: its input stays
    masks = [np.zeros((H, W), bool) for _ in range(12)]
    masks[3][50:60, 90:100] = True
    x, y, w, h = boxes[0]
    response = stack.http.post(
        f"{stack.base}/api/v1/jobs/{parent}/inpaint",
        files={"masks": ("m.zip", mask_zip(tmp_path / "m.zip", masks).read_bytes())},
        data={"boxes": json.dumps([{"x": x, "y": y, "w": w, "h": h, "track": True}]), "mask_dilation": "0"},
        timeout=60)
    assert response.status_code == 202, response.text
    job = stack.wait(response.json()["id"])
    assert job["status"] == "succeeded", job
    assert "track" in job["timings"], "the followed box sent the job through the tracker"
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", "-", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                         input=stack.http.get(job["masks"]["url"], timeout=30).content, check=True,
                         capture_output=True).stdout
    used = np.frombuffer(raw, np.uint8).reshape(-1, H, W) > 127
    assert used[3, 52:58, 92:98].all() and not used[4, 52:58, 92:98].any(), "frame 3's own mask, only there"
    assert not used[:, 1:6, 1:6].any(), "the parent's box is not kept"
    for t in (0, 6, 11):
        bx, by, bw, bh = boxes[t]
        assert used[t, by + 3:by + bh - 3, bx + 3:bx + bw - 3].all(), f"the square, followed to frame {t}"
