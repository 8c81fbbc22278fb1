"""What an inpainting job should remove: checked at intake, before anything is stored.

A job may combine several sources, and the GPU worker unions them per frame:

* `mask` — one image for every frame (a fixed logo or scratch);
* `masks` — one mask per frame: a mask video or a ZIP of images (sorted by name),
  normalised here into a lossless greyscale video;
* `boxes` — JSON rectangles, each on a frame range, or with `"track": true` (or the
  job option track_boxes, for all of them) followed by an OpenCV tracker from the frame
  it is drawn on;
* `detect_damage` — automatic detection of dust, line scratches (film) and
  scratches/creases (photographs).

`mask_dilation` grows every mask by that many pixels, since a fill that starts exactly
on the edge of a scratch leaves its halo behind.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from tintype.media.errors import CorruptMedia, MediaError, NotMedia
from tintype.media.images import load_mask
from tintype.media.inpaint.damage import KINDS as DAMAGE_KINDS
from tintype.media.maskvideo import MaskVideoWriter, iter_masks
from tintype.media.probe import probe_video
from tintype.settings import Settings

VIDEO_ONLY_KINDS = ("dust", "lines")
MAX_BOXES = 32


class MaskError(MediaError):
    """A mask source is unusable; carries the HTTP status and code for the client."""

    def __init__(self, message: str, code: str = "bad_mask", status: int = 400) -> None:
        super().__init__(message, code=code, status=status)


def parse_damage_kinds(raw: Any) -> list[str]:
    """The damage kinds to detect, from a comma list or a list, in their canonical order."""
    kinds = raw if isinstance(raw, (list, tuple)) else [k.strip() for k in str(raw).split(",") if k.strip()]
    unknown = [k for k in kinds if k not in DAMAGE_KINDS]
    if unknown:
        raise MaskError(f"detect_damage: unknown kind(s) {', '.join(map(str, unknown))}; "
                        f"choose among {', '.join(DAMAGE_KINDS)}", "bad_option")
    return [k for k in DAMAGE_KINDS if k in kinds]


def parse_boxes(raw: Any) -> list[dict[str, int]]:
    try:
        items = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise MaskError(f"boxes is not valid JSON: {exc.msg} at character {exc.pos}", "bad_boxes") from None
    if not isinstance(items, list) or not items:
        raise MaskError('boxes must be a non-empty JSON list like [{"x": 10, "y": 20, "w": 64, "h": 32}]',
                        "bad_boxes")
    if len(items) > MAX_BOXES:
        raise MaskError(f"at most {MAX_BOXES} boxes, got {len(items)}", "bad_boxes")
    return [_box(item, n) for n, item in enumerate(items)]


def _box(item: Any, n: int) -> dict[str, int]:
    if isinstance(item, list) and len(item) == 4:
        item = dict(zip("xywh", item))
    if not isinstance(item, dict):
        raise MaskError(f"box {n} must be an object with x, y, w, h", "bad_boxes")
    box: dict[str, int] = {}
    for name in ("x", "y", "w", "h", "first", "last"):
        if name in item:
            value = item[name]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value != int(value):
                raise MaskError(f"box {n}: {name} must be a whole number, got {value!r}", "bad_boxes")
            box[name] = int(value)
    if "track" in item:  # follow this box with the tracker (the job's track_boxes follows them all)
        if not isinstance(item["track"], (bool, int)) or item["track"] not in (0, 1):
            raise MaskError(f"box {n}: track must be true or false, got {item['track']!r}", "bad_boxes")
        if item["track"]:
            box["track"] = 1
    if any(k not in box for k in "xywh") or box["w"] <= 0 or box["h"] <= 0 or box["x"] < 0 or box["y"] < 0:
        raise MaskError(f"box {n} needs x, y >= 0 and w, h > 0", "bad_boxes")
    return box


def check_boxes(boxes: list[dict[str, int]], width: int, height: int, frames: int) -> None:
    """Boxes must lie inside the picture and their frame ranges inside the video."""
    for n, b in enumerate(boxes):
        if b["x"] + b["w"] > width or b["y"] + b["h"] > height:
            raise MaskError(f"box {n} ({b['x']},{b['y']} {b['w']}x{b['h']}) reaches outside the "
                            f"{width}x{height} picture", "bad_boxes", 422)
        if b["w"] >= width and b["h"] >= height:
            raise MaskError(f"box {n} covers the whole frame, so nothing is left to fill from",
                            "mask_covers_frame", 422)
        first, last = b.get("first", 0), b.get("last", frames - 1)
        if not 0 <= first <= last < frames:
            raise MaskError(f"box {n}: frames {first}..{last} are outside the video's 0..{frames - 1}",
                            "bad_boxes", 422)


def check_detection(kinds: list[str], kind: str) -> None:
    if kind == "image":
        video_only = [k for k in kinds if k in VIDEO_ONLY_KINDS]
        if video_only:
            raise MaskError(f"detect_damage {', '.join(video_only)} needs a video (it compares "
                            "neighbouring frames or whole film columns); use scratches for photographs",
                            "bad_option")


# ---------------------------------------------------------------------------- per-frame masks


def normalise_frame_masks(path: Path, width: int, height: int, frames: int, settings: Settings,
                          out: Path) -> Path:
    """A mask video or ZIP of images → a lossless greyscale video of masks, one per frame."""
    masks = _zip_masks(path, width, height, frames, settings) if zipfile.is_zipfile(path) \
        else _video_masks(path, width, height, frames, settings)
    marked = False
    with MaskVideoWriter(out, width, height, settings.ffmpeg_timeout_seconds) as writer:
        for index, mask in enumerate(masks):
            if mask.all():
                raise MaskError(f"masks: the mask of frame {index} covers the whole frame, so nothing is "
                                "left to fill from", "mask_covers_frame", 422)
            marked = marked or bool(mask.any())
            writer.write(mask)
    if writer.count != frames:
        raise MaskError(f"masks: {writer.count} masks for a video of {frames} frames; give one per frame",
                        "mask_count_mismatch", 422)
    if not marked:
        raise MaskError("masks: no mask marks any pixel (white = replace)", "empty_mask", 422)
    return out


def _zip_masks(path: Path, width: int, height: int, frames: int, settings: Settings) -> Iterator[np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        names = sorted(i.filename for i in archive.infolist() if not i.is_dir()
                       and not i.filename.rsplit("/", 1)[-1].startswith("."))
        if len(names) != frames:
            raise MaskError(f"masks: the ZIP holds {len(names)} files for a video of {frames} frames; "
                            "give one image per frame", "mask_count_mismatch", 422)
        limit = width * height * 4 + (1 << 20)  # no mask image needs more than raw RGBA
        for name in names:
            info = archive.getinfo(name)
            if info.file_size > limit:
                raise MaskError(f"masks: {name} unpacks to {info.file_size} bytes, too large for a "
                                f"{width}x{height} mask", "mask_too_large", 413)
            scratch = path.with_name("zip-entry")
            scratch.write_bytes(archive.read(name))
            try:
                yield _mask_or_empty(scratch, width, height, settings, f"masks: {name}: ")
            finally:
                scratch.unlink(missing_ok=True)


def _mask_or_empty(path: Path, width: int, height: int, settings: Settings, prefix: str) -> np.ndarray:
    """One frame's mask; an all-black frame is allowed here (nothing to remove there)."""
    try:
        return load_mask(path, width, height, settings.max_image_pixels) > 0
    except CorruptMedia as exc:
        if exc.code == "empty_mask":
            return np.zeros((height, width), bool)
        raise MaskError(prefix + str(exc), exc.code, exc.status) from exc
    except MediaError as exc:
        raise MaskError(prefix + str(exc), exc.code, exc.status) from exc


def _video_masks(path: Path, width: int, height: int, frames: int, settings: Settings) -> Iterator[np.ndarray]:
    try:
        facts = probe_video(str(path), settings.ffmpeg_timeout_seconds)
    except NotMedia:
        raise MaskError("masks: the file is neither a video nor a ZIP of images", "bad_mask", 415) from None
    except MediaError as exc:
        raise MaskError(f"masks: {exc}", exc.code, exc.status) from exc
    if (facts.width, facts.height) != (width, height):
        raise MaskError(f"masks: the mask video is {facts.width}x{facts.height} but the video is "
                        f"{width}x{height}", "mask_size_mismatch", 422)
    if facts.frames != frames:
        raise MaskError(f"masks: the mask video has {facts.frames} frames but the video has {frames}",
                        "mask_count_mismatch", 422)
    yield from iter_masks(str(path), width, height, timeout=settings.ffmpeg_timeout_seconds)
