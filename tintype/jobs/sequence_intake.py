"""A ZIP of numbered frames sent as a job's file: unpacked, checked and wrapped into the
lossless video the pipeline takes (tintype.media.sequence), before anything is stored.

The REST API and the form take one file; a scanned reel is many. A ZIP carries them, and
intake turns it into what `tintype restore DIR` makes of a folder, so both front doors run a
sequence the same way. The unpacked bytes are capped as they are written (a ZIP's declared
sizes may lie), and everything lives in intake's scratch folder, removed whatever happens.
"""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from tintype.jobs.errors import IntakeError
from tintype.media.errors import MediaError, ToolFailed
from tintype.media.sequence import find_sequence, wrap_sequence
from tintype.settings import Settings

if TYPE_CHECKING:
    from tintype.jobs.intake import Submission

ZIP_MAGIC = b"PK\x03\x04"
UNPACK_RATIO = 4  # a ZIP of frames may unpack to this many times the upload limit, no more
COPY_BLOCK = 1 << 20


def is_zip(path: Path) -> bool:
    """A ZIP by its first bytes (not by a central directory at the end, which a photograph
    with something appended may also carry)."""
    with open(path, "rb") as fh:
        return fh.read(4) == ZIP_MAGIC and zipfile.is_zipfile(path)


def unpack_sequence(sub: "Submission", settings: Settings, scratch: Path) -> "Submission":
    """`sub` itself, or for a ZIP of frames the submission of its wrapped video."""
    if not is_zip(sub.path):
        return sub
    folder = scratch / "frames"
    folder.mkdir()
    _unpack(sub.path, folder, settings)
    try:
        sequence = find_sequence(folder)
    except MediaError as exc:
        if exc.code == "empty_sequence":  # a ZIP of anything else is no media tintype reads
            raise IntakeError("a ZIP is taken as an image sequence, and this one holds no numbered frames (DPX, "
                              "TIFF, PNG or EXR named like reel_000001.dpx)", "not_media", 415) from exc
        raise IntakeError.from_media(exc, "the ZIP's frames: ") from exc
    name = f"{Path(sub.filename).stem or sequence.name}.mkv"
    try:
        wrapped = wrap_sequence(sequence, sub.options.sequence_fps, scratch / name, settings.ffmpeg_timeout_seconds)
    except ToolFailed as exc:
        raise IntakeError(f"the ZIP's frames ({sequence.layout}) cannot be read as a sequence: {exc}",
                          "bad_sequence", 422) from exc
    shutil.rmtree(folder)
    return replace(sub, path=wrapped, filename=name)


def _unpack(path: Path, folder: Path, settings: Settings) -> None:
    """Each frame by its own name (folders inside the ZIP flattened), within the limits."""
    budget = settings.max_upload_bytes * UNPACK_RATIO
    try:
        with zipfile.ZipFile(path) as archive:
            entries = [i for i in archive.infolist() if _is_frame_entry(i)]
            if len(entries) > settings.max_video_frames:
                raise IntakeError(f"the ZIP holds {len(entries)} frames; the limit is {settings.max_video_frames}",
                                  "media_too_large", 413)
            for info in entries:
                budget -= _extract(archive, info, folder / PurePosixPath(info.filename).name, budget)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise IntakeError("the ZIP cannot be read: it is damaged or cut short", "corrupt_media", 422) from exc
    except (RuntimeError, NotImplementedError) as exc:
        raise unsupported_zip(exc) from exc


def unsupported_zip(exc: Exception) -> IntakeError:
    """zipfile's RuntimeError (an encrypted entry: no password is asked for) and
    NotImplementedError (a method it lacks, such as Deflate64) are the ZIP's fault, not the
    server's: a 422 saying to pack the frames again."""
    what = "an encrypted entry" if isinstance(exc, RuntimeError) else "a compression method tintype cannot read"
    return IntakeError(f"the ZIP holds {what} ({exc}); pack the frames again without a password, stored or "
                       "deflated", "unsupported_zip", 422)


def _is_frame_entry(info: zipfile.ZipInfo) -> bool:
    parts = PurePosixPath(info.filename).parts
    return not info.is_dir() and bool(parts) and not any(p.startswith((".", "__MACOSX")) for p in parts)


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int) -> int:
    """One entry, copied block by block and stopped at `budget` bytes; its size."""
    if target.exists():
        raise IntakeError(f"the ZIP holds two frames named {target.name}; put one sequence in it",
                          "bad_sequence", 422)
    written = 0
    with archive.open(info) as source, open(target, "wb") as out:
        while block := source.read(COPY_BLOCK):
            written += len(block)
            if written > budget:
                raise IntakeError(f"the ZIP unpacks to more than {UNPACK_RATIO}x the upload limit",
                                  "media_too_large", 413)
            out.write(block)
    return written


__all__ = ["is_zip", "unpack_sequence"]
