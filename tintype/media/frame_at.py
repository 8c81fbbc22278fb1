"""One frame of a stored input, decoded on demand and scaled for a browser.

The mask painter shows any frame of a film without the browser decoding the film: the
server seeks with the job's stored facts (frame times, deinterlacing: `video.frame_start`),
decodes just that frame (or a few around it, for the damage preview) at a bounded size,
and answers a small JPEG or PNG. A photograph has one frame, read with Pillow, upright.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from tintype.media.errors import MediaError
from tintype.media.probe import VideoFacts
from tintype.media.video import frame_start, iter_frames

DEFAULT_SIDE = 1024  # pixels: the longer side a frame is served at unless asked otherwise
MIN_SIDE, MAX_SIDE = 64, 2048
FORMATS = {"jpeg": ("image/jpeg", ".jpg"), "png": ("image/png", ".png")}


class FrameError(MediaError):
    """A frame that cannot be served: past the end (422), a bad size or format (400)."""

    def __init__(self, message: str, code: str = "bad_frame", status: int = 422) -> None:
        super().__init__(message, code=code, status=status)


@dataclass(frozen=True)
class Source:
    """What a frame is read from: a path or URL ffmpeg (or Pillow) reads, and its facts."""

    readable: str
    kind: str  # image or video
    width: int
    height: int
    frames: int
    video: VideoFacts | None = None


def scaled_size(width: int, height: int, side: int) -> tuple[int, int]:
    """The size that fits the longer side in `side` (never enlarged), even-free: any size."""
    if not MIN_SIDE <= side <= MAX_SIDE:
        raise FrameError(f"size must be between {MIN_SIDE} and {MAX_SIDE} pixels, got {side}", "bad_query", 400)
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def check_index(source: Source, index: int) -> None:
    if not 0 <= index < source.frames:
        raise FrameError(f"frame {index} is past the end: the {source.kind} has frames 0..{source.frames - 1}",
                         "frame_out_of_range", 422)


def frames_at(source: Source, first: int, count: int, side: int, timeout: float = 60) -> list[np.ndarray]:
    """Frames [first, first + count) as uint8 RGB at the served size; a range reaching past
    either end is cut to the frames there are."""
    check_index(source, first)
    count = max(1, min(count, source.frames - first))
    size = scaled_size(source.width, source.height, side)
    if source.kind != "video" or source.video is None:
        return [_picture(Path(source.readable), size)]
    seek, filters = frame_start(source.video, first)
    frames = list(iter_frames(source.readable, source.width, source.height, seek, count, timeout, size,
                              filters=filters))
    if not frames:
        raise FrameError(f"frame {first} could not be decoded (the file ends early?)", "frame_out_of_range", 422)
    return frames


def mask_at(source: Source, index: int, side: int, timeout: float = 60) -> np.ndarray:
    """One frame of a job's kept masks (a mask video, media.maskvideo, or a photo's PNG) as
    bool at the served size: decoded like any frame, so a film's masks seek the same way."""
    return frames_at(source, index, 1, side, timeout)[0].max(axis=2) > 127


# EXIF orientation → the transposition that makes the picture upright (as ImageOps.exif_transpose).
_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
            5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90}
_REDUCIBLE = ("L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "I", "F")


def _picture(path: Path, size: tuple[int, int]) -> np.ndarray:
    """The photograph upright at `size`. Each painter request decodes it again, so it is
    made small first: a JPEG is decoded at a fraction of its size (draft), anything else
    reduced by a whole factor before it is converted, turned and resized."""
    with Image.open(path) as img:
        turn = _UPRIGHT.get(img.getexif().get(0x0112, 1))
        stored = (size[1], size[0]) if turn in (Image.Transpose.TRANSPOSE, Image.Transpose.ROTATE_270,
                                                 Image.Transpose.TRANSVERSE, Image.Transpose.ROTATE_90) else size
        img.draft("RGB", stored)
        factor = max(1, min(img.width // stored[0], img.height // stored[1]))
        small = img.reduce(factor) if factor > 1 and img.mode in _REDUCIBLE else img
        upright = small.convert("RGB")
        if turn is not None:
            upright = upright.transpose(turn)
        return np.asarray(upright.resize(size, Image.Resampling.BOX))


def encode(rgb: np.ndarray, fmt: str) -> tuple[bytes, str]:
    """The frame as JPEG or PNG bytes, and its content type."""
    if fmt not in FORMATS:
        raise FrameError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}", "bad_query", 400)
    content_type, ext = FORMATS[fmt]
    params = [cv2.IMWRITE_JPEG_QUALITY, 88] if fmt == "jpeg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, data = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise FrameError("the frame could not be encoded", "encode_failed", 500)
    return data.tobytes(), content_type


def encode_mask(mask: np.ndarray) -> bytes:
    """A bool mask as a greyscale PNG, white = damage (what the API's `mask` part takes)."""
    ok, data = cv2.imencode(".png", mask.astype(np.uint8) * 255)
    if not ok:
        raise FrameError("the mask could not be encoded", "encode_failed", 500)
    return data.tobytes()


__all__ = ["DEFAULT_SIDE", "FORMATS", "FrameError", "Source", "check_index", "encode", "encode_mask", "frames_at",
           "mask_at", "scaled_size"]
