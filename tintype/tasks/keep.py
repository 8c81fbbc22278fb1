"""What a finished video job keeps beside its output: the before/after poster and, for
inpainting, the masks it filled (one lossless file) with one of them drawn on its frame."""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from tintype.media.images import save_image
from tintype.media.maskvideo import concat_masks, iter_masks
from tintype.media.overlay import mask_overlay
from tintype.media.probe import VideoFacts
from tintype.media.video import read_range
from tintype.media.yuv import Yuv420
from tintype.storage import keys
from tintype.storage.objects import ObjectStore

COMPARE_WIDTH = 1600  # pixels: the side-by-side poster is for a web page


def input_frame(store: ObjectStore, job_id: str, facts: VideoFacts, index: int) -> np.ndarray:
    """Frame `index` of the job's input, as RGB (deinterlaced as the job was)."""
    return read_range(store.read_url(keys.input_key(job_id)), facts, index, 1)[0]


def store_compare(store: ObjectStore, job_id: str, facts: VideoFacts, index: int, result: Yuv420) -> str:
    """A before/after poster: the input frame and the result frame side by side."""
    pair = np.hstack([input_frame(store, job_id, facts, index), result.rgb()])
    if pair.shape[1] > COMPARE_WIDTH:
        scale = COMPARE_WIDTH / pair.shape[1]
        pair = cv2.resize(pair, (COMPARE_WIDTH, max(2, round(pair.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    with tempfile.TemporaryDirectory(prefix="tintype-compare-") as tmp:
        path = Path(tmp) / "compare.jpg"
        save_image(path, pair, None, "jpeg")
        store.put_file(keys.compare_key(job_id), path, "image/jpeg")
    return keys.compare_key(job_id)


def store_used_masks(store: ObjectStore, job, facts: VideoFacts, index: int, tmp: Path,
                     timeout: float) -> dict[str, str]:
    """Join the chunks' used masks into one lossless file kept with the job, and draw
    frame `index`'s mask on its input frame for the job page."""
    parts = []
    for chunk in range(job.chunks_total):
        part = tmp / f"mask-{chunk:06d}.mkv"
        store.get_file(keys.used_mask_chunk_key(job.id, chunk), part)
        parts.append(part)
    joined = tmp / "masks-used.mkv"
    concat_masks(parts, joined, timeout)
    mask = list(iter_masks(str(joined), facts.width, facts.height, index, 1))[0]
    save_image(tmp / "masks-used.jpg", mask_overlay(input_frame(store, job.id, facts, index), mask), None, "jpeg")
    used, poster = keys.used_masks_key(job.id, "mkv"), keys.mask_poster_key(job.id)
    store.put_file(used, joined, "video/x-matroska")
    store.put_file(poster, tmp / "masks-used.jpg", "image/jpeg")
    return {"used_masks_key": used, "mask_poster_key": poster}
