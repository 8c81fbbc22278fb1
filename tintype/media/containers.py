"""What a video file's own structure says about it, read from a few bytes, without ffmpeg.

Two questions ffprobe answers badly: is a file it cannot open a video at all (an MP4
whose index never arrived is corrupt media, a text file is not media), and is a file it
can open complete (a Matroska or AVI file cut short still opens, and plays until the
data stops). The container's first bytes answer the first; the sizes its top-level
elements declare answer the second.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO, Callable

# (offset, magic, how the message names it)
_SIGNATURES = (
    (4, b"ftyp", "an MP4/QuickTime"), (4, b"moov", "a QuickTime"), (4, b"mdat", "a QuickTime"),
    (4, b"wide", "a QuickTime"), (4, b"free", "a QuickTime"), (0, b"\x1a\x45\xdf\xa3", "a Matroska/WebM"),
    (8, b"AVI ", "an AVI"), (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "an ASF/WMV"), (0, b"FLV\x01", "an FLV"),
    (0, b"\x00\x00\x01\xba", "an MPEG"), (0, b"\x06\x0e\x2b\x34", "an MXF"), (0, b"OggS", "an Ogg"),
)
MAX_ELEMENTS = 200_000  # top-level boxes or chunks walked before giving up (a fragmented MP4 has many)
_ASF_FILE_PROPERTIES = bytes.fromhex("a1dcab8c47a9cf118ee400c00c205365")


def container_signature(path: str) -> str | None:
    """The container a local file's first bytes announce ("an MP4/QuickTime"), or None."""
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as fh:
        head = fh.read(16)
    return next((name for offset, magic, name in _SIGNATURES if head[offset:offset + len(magic)] == magic), None)


def declared_size(path: str) -> int | None:
    """The bytes the container's structure says the file holds, or None when it does not
    say (a stream written to a pipe, a container read here not at all). A complete file
    declares at most its own size; a file cut short declares more."""
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as fh:
        head = fh.read(16)
        reader = _reader_for(head)
        if reader is None:
            return None
        try:
            return reader(fh)
        except (struct.error, ValueError):
            return None


def _reader_for(head: bytes) -> Callable[[BinaryIO], int | None] | None:
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free"):
        return _iso_boxes
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return _matroska_segment
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return _riff_chunks
    if head[:8] == b"\x30\x26\xb2\x75\x8e\x66\xcf\x11":
        return _asf_file_size
    if head[:3] == b"FLV":
        return _flv_file_size
    return None


def _iso_boxes(fh: BinaryIO) -> int | None:
    """MP4/QuickTime: the end of the last top-level box."""
    end = fh.seek(0, os.SEEK_END)
    offset = 0
    for _ in range(MAX_ELEMENTS):
        if offset >= end:
            return offset
        fh.seek(offset)
        header = fh.read(16)
        if len(header) < 8:
            return offset + 8
        size = struct.unpack(">I", header[:4])[0]
        if size == 1:
            size = struct.unpack(">Q", header[8:16])[0] if len(header) == 16 else 16
        if size == 0:  # the last box runs to the end of the file
            return end
        if size < 8:
            return None
        offset += size
    return None


def _matroska_segment(fh: BinaryIO) -> int | None:
    """Matroska/WebM: where the Segment ends, unless it was written with an unknown size."""
    fh.seek(4)
    offset = 4 + _skip_vint_sized(fh)
    fh.seek(offset)
    if fh.read(4) != b"\x18\x53\x80\x67":
        return None
    size, known = _vint(fh)
    return fh.tell() + size if known else None


def _vint(fh: BinaryIO) -> tuple[int, bool]:
    """An EBML variable-length size, and whether it is known (all ones means unknown)."""
    first = fh.read(1)[0]
    length = 9 - first.bit_length()
    if not 1 <= length <= 8:
        raise ValueError("bad EBML size")
    value = first & ((1 << (8 - length)) - 1)
    for byte in fh.read(length - 1):
        value = (value << 8) | byte
    return value, value != (1 << (7 * length)) - 1


def _skip_vint_sized(fh: BinaryIO) -> int:
    """The EBML header's size field and body, in bytes, read from just after its ID."""
    start = fh.tell()
    size, _ = _vint(fh)
    return fh.tell() - start + size


def _riff_chunks(fh: BinaryIO) -> int | None:
    """AVI (and OpenDML's extra RIFF AVIX chunks): the end of the last RIFF chunk."""
    end = fh.seek(0, os.SEEK_END)
    offset = 0
    for _ in range(MAX_ELEMENTS):
        fh.seek(offset)
        header = fh.read(8)
        if offset >= end or header[:4] != b"RIFF":
            return offset
        size = struct.unpack("<I", header[4:8])[0]
        offset += 8 + size + (size & 1)
    return None


def _asf_file_size(fh: BinaryIO) -> int | None:
    """ASF/WMV: the file size its File Properties object records (not for broadcasts)."""
    fh.seek(16)
    header_size = struct.unpack("<Q", fh.read(8))[0]
    fh.seek(0)
    header = fh.read(min(header_size, 1 << 20))
    at = header.find(_ASF_FILE_PROPERTIES)
    if at < 0 or len(header) < at + 92:
        return None
    size = struct.unpack("<Q", header[at + 40:at + 48])[0]
    broadcast = struct.unpack("<I", header[at + 88:at + 92])[0] & 1
    return None if broadcast or size == 0 else size


def _flv_file_size(fh: BinaryIO) -> int | None:
    """FLV: the `filesize` of its onMetaData script tag (a recorded file has one, a live
    stream does not)."""
    fh.seek(0)
    head = fh.read(1 << 16)
    at = head.find(b"\x00\x08filesize\x00")
    if at < 0 or len(head) < at + 19:
        return None
    size = struct.unpack(">d", head[at + 11:at + 19])[0]
    return int(size) if 0 < size < 2**62 else None
