"""Per-frame masks as lossless greyscale video (FFV1, every frame a keyframe).

Masks are mostly black, so FFV1 stores a film's worth in little space, and since every
frame is intra-coded a chunk can read its own range without decoding the ones before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from tintype.media.errors import ToolFailed
from tintype.media.ffmpeg import FFMPEG, finish_tool, input_options, kill_tool, start_tool
from tintype.media.probe import VideoFacts

MASK_FPS = 25  # the rate mask videos are written at: frame n starts at n / 25 s


class MaskVideoWriter:
    """Bool or 0/255 (H, W) masks in, a Matroska FFV1 `gray` file out."""

    def __init__(self, path: Path, width: int, height: int, timeout: float = 600) -> None:
        self.width, self.height, self.timeout, self.count = width, height, timeout, 0
        self.proc = start_tool([FFMPEG, "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "gray",
                                "-s", f"{width}x{height}", "-framerate", str(MASK_FPS), "-i", "-",
                                "-c:v", "ffv1", "-g", "1", "-pix_fmt", "gray", "-f", "matroska", str(path)],
                               stdin=True)

    def write(self, mask: np.ndarray) -> None:
        if mask.shape != (self.height, self.width):
            raise ValueError(f"mask {mask.shape} is not {self.height}x{self.width}")
        data = mask.astype(np.uint8) * 255 if mask.dtype == bool else np.where(mask > 127, 255, 0).astype(np.uint8)
        self.proc.stdin.write(data.tobytes())
        self.count += 1

    def close(self) -> None:
        self.proc.stdin.close()
        finish_tool(self.proc, "ffmpeg mask encode", self.timeout)

    def abort(self) -> None:
        kill_tool(self.proc)

    def __enter__(self) -> "MaskVideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def iter_masks(source: str, width: int, height: int, start: int = 0, count: int | None = None,
               timeout: float = 600) -> Iterator[np.ndarray]:
    """Bool masks of frames [start, start + count) of a mask video (any readable video)."""
    args = [FFMPEG, "-v", "error", "-nostdin", *input_options(source), "-i", source, "-map", "0:v:0"]
    if start or count is not None:
        end = f"{start + count - 1}" if count is not None else "1e12"
        args += ["-vf", f"select='between(n,{start},{end})'"]
    args += ["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "gray", "-"]
    proc = start_tool(args, stdout=True)
    size = width * height
    got = 0
    try:
        while (count is None or got < count) and len(raw := proc.stdout.read(size)) == size:
            got += 1
            yield np.frombuffer(raw, np.uint8).reshape(height, width) > 127
    finally:
        proc.stdout.close()
        finish_tool(proc, "ffmpeg mask decode", timeout)
    if count is not None and got != count:
        raise ToolFailed(f"expected {count} masks from frame {start}, read {got}")


def mask_video_facts(width: int, height: int, frames: int) -> VideoFacts:
    """What a mask video written here is, without probing it: `frames` masks of width ×
    height at MASK_FPS from time 0, so media.frame_at can seek to any one of them (every
    frame is a keyframe) the way it seeks in a film."""
    return VideoFacts(container="matroska", video_codec="ffv1", width=width, height=height, rotation=0,
                      frames=frames, fps_num=MASK_FPS, fps_den=1, constant_rate=True,
                      duration=frames / MASK_FPS, start_time=0.0, bytes=None, pix_fmt="gray", chroma="4:0:0")


def concat_masks(parts: list[Path], out: Path, timeout: float = 600) -> None:
    """Join chunk mask files in order without re-encoding (they share one format)."""
    listing = out.with_suffix(".txt")
    listing.write_text("".join(f"file '{p.resolve()}'\n" for p in parts))
    proc = start_tool([FFMPEG, "-v", "error", "-nostdin", "-y", "-f", "concat", "-safe", "0",
                       "-i", str(listing), "-c", "copy", "-f", "matroska", str(out)])
    finish_tool(proc, "ffmpeg mask concat", timeout)
    listing.unlink()
