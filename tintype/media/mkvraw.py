"""A minimal Matroska writer for raw 4:2:0 frames with their own timestamps.

ffmpeg's rawvideo input knows only a constant rate. Variable-rate sources must keep
each frame's time, so their frames reach the encoder as a Matroska stream (one cluster
per frame, microsecond timestamps, codec V_UNCOMPRESSED) written straight to a pipe.
"""

from __future__ import annotations

from typing import BinaryIO

from tintype.media.yuv import Yuv420

_EBML = b"\x1a\x45\xdf\xa3"
_SEGMENT = b"\x18\x53\x80\x67"
_UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"
MICROSECOND_NS = 1000


def _size(n: int) -> bytes:
    return b"\x01" + n.to_bytes(7, "big")  # 8-byte EBML length


def _element(element_id: bytes, data: bytes) -> bytes:
    return element_id + _size(len(data)) + data


def _uint(element_id: bytes, value: int) -> bytes:
    return _element(element_id, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def _header(width: int, height: int) -> bytes:
    ebml = _element(_EBML, _uint(b"\x42\x86", 1) + _uint(b"\x42\xf7", 1) + _uint(b"\x42\xf2", 4)
                    + _uint(b"\x42\xf3", 8) + _element(b"\x42\x82", b"matroska")
                    + _uint(b"\x42\x87", 4) + _uint(b"\x42\x85", 2))
    info = _element(b"\x15\x49\xa9\x66", _uint(b"\x2a\xd7\xb1", MICROSECOND_NS)
                    + _element(b"\x4d\x80", b"tintype") + _element(b"\x57\x41", b"tintype"))
    video = _element(b"\xe0", _uint(b"\xb0", width) + _uint(b"\xba", height)
                     + _element(b"\x2e\xb5\x24", b"I420"))  # ColourSpace: planar 4:2:0
    track = _element(b"\xae", _uint(b"\xd7", 1) + _uint(b"\x73\xc5", 1) + _uint(b"\x83", 1)
                     + _element(b"\x86", b"V_UNCOMPRESSED") + video)
    return ebml + _SEGMENT + _UNKNOWN_SIZE + info + _element(b"\x16\x54\xae\x6b", track)


class RawMatroskaWriter:
    """Writes 4:2:0 frames of one (even) size, each with a timestamp in seconds, to a byte stream."""

    def __init__(self, stream: BinaryIO, width: int, height: int) -> None:
        self.stream, self.width, self.height = stream, width, height
        self.stream.write(_header(width, height))

    def write(self, frame: Yuv420, seconds: float) -> None:
        if frame.padded_size != (self.width, self.height):
            raise ValueError(f"frame {frame.padded_size} is not {self.width}x{self.height}")
        block = b"\x81\x00\x00\x80" + frame.tobytes()  # track 1, keyframe
        micros = max(0, int(round(seconds * 1_000_000)))
        self.stream.write(_element(b"\x1f\x43\xb6\x75", _uint(b"\xe7", micros) + _element(b"\xa3", block)))
