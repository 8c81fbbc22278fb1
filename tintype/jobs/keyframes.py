"""Keyframes: colour pictures of single frames of a video, checked once, stored at fixed keys.

A keyframe pins colour to one frame; the pipeline carries it through the shot and keeps
the film's own lightness, so only its colour matters and any size will do (it is scaled
to the frame). A user sends them with a job (REST `keyframes` parts, the form's rows,
`tintype restore --keyframe`), or with a recolour of a finished job; the pipeline adds
automatic ones later through `store_keyframe` and `jobs.state.add_keyframes`.

Every refusal happens here, before anything is stored: a photograph (its colour guide is
`reference`), a job that does not colorize, a badly named file, too many, two for one
frame, a frame past the end, a file that is not an image, a greyscale picture, and a
picture whose lightness structure is not its frame's (`media.likeness`: below
`REFUSE_BELOW` it is refused; below `WARN_BELOW` the job gets a note).
"""

from __future__ import annotations

import logging
import re
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tintype.jobs.errors import IntakeError
from tintype.jobs.options import JobOptions
from tintype.media.errors import MediaError, NotMedia, ToolFailed
from tintype.media.images import load_image
from tintype.media.likeness import fit_to_frame, mean_chroma, structure_score
from tintype.media.probe import VideoFacts
from tintype.media.video import read_range
from tintype.settings import Settings
from tintype.storage import keys
from tintype.storage.objects import ObjectStore

log = logging.getLogger(__name__)

MAX_KEYFRAMES = 256
SOURCES = ("user", "auto", "reference")
# Likeness thresholds from the measurements in media.likeness: every frame of another clip
# scored below 0.26, so 0.4 refuses wrong pictures with a margin and never a true frame
# (0.994 and up), even shifted or cropped (0.6 and up); those, and a near frame of a still
# shot, fall between 0.4 and 0.85 and are accepted with a note.
REFUSE_BELOW, WARN_BELOW = 0.4, 0.85
# Mean Lab chroma: greyscale pictures measure below 0.1, the real colour clips 4.7 and up.
MIN_CHROMA = 2.0
THUMBNAIL_SIDE = 240
_FRAME_NAME = re.compile(r"^(\d{1,9})\.[A-Za-z0-9]{1,5}$")


@dataclass(frozen=True)
class KeyframePart:
    """One uploaded file: an image named by its frame number (`120.png`), or a ZIP of them."""

    name: str
    path: Path


@dataclass(frozen=True)
class CheckedKeyframe:
    frame: int
    png: Path  # RGB at the frame's size, upright
    thumbnail: Path
    score: float | None  # likeness to its frame; None for a frame too flat to tell


@dataclass
class CheckedKeyframes:
    items: list[CheckedKeyframe] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # warnings for the job's notes

    def entries(self, source: str = "user") -> list[dict[str, Any]]:
        return [entry(k.frame, source) for k in self.items]


def frame_of(name: str) -> int:
    """The frame number a keyframe's file name gives: `120.png`, `000120.jpg`."""
    match = _FRAME_NAME.match(name.rsplit("/", 1)[-1])
    if match is None:
        raise IntakeError(f"keyframe file {name[:80]!r} must be named by its frame number, like 120.png or "
                          "000120.jpg (frames count from 0)", "bad_keyframe_name")
    return int(match.group(1))


def check_keyframes(parts: list[KeyframePart], kind: str, options: JobOptions, facts: VideoFacts | None,
                    source: str, settings: Settings, scratch: Path) -> CheckedKeyframes:
    """Every keyframe of a submission checked against the video it is for (`source`:
    a path or URL ffmpeg reads, `facts` its probe); nothing is stored here."""
    if not parts:
        return CheckedKeyframes()
    _check_job(kind, options)
    named = named_files(parts, scratch / "keyframes-in", settings.max_upload_bytes, settings.max_image_pixels)
    _check_frames([frame for frame, _ in named], facts.frames)
    out, checked = scratch / "keyframes", CheckedKeyframes()
    out.mkdir(exist_ok=True)
    for frame, path in sorted(named):
        item = _check_one(frame, path, facts, source, settings, out)
        checked.items.append(item)
        if (note := likeness_note(item.frame, item.score)) is not None:
            checked.notes.append(note)
    return checked


def _check_job(kind: str, options: JobOptions) -> None:
    if kind != "video":
        raise IntakeError("keyframes are for videos; to guide the colour of a photograph send a colour picture "
                          "as 'reference'", "keyframes_for_image")
    if not options.colorize:
        raise IntakeError("keyframes give colour, so they need the colorize operation", "keyframes_without_colorize")
    if not options.keyframe_colour:
        raise IntakeError("keyframes are carried through their shots only with colour_mode=keyframes; with "
                          "per-frame the model colours every frame on its own and would ignore them",
                          "keyframes_without_keyframe_mode")


def named_files(parts: list[KeyframePart], folder: Path, limit: int, max_pixels: int) -> list[tuple[int, Path]]:
    """(frame, file) for every keyframe, ZIPs unpacked, at most MAX_KEYFRAMES. A ZIP may
    unpack to no more than the upload limit, and no entry to more than raw RGBA of the
    largest image accepted."""
    folder.mkdir(parents=True, exist_ok=True)
    named: list[tuple[int, Path]] = []
    for part in parts:
        if zipfile.is_zipfile(part.path):
            try:
                named += _unzip(part.path, folder, min(limit, max_pixels * 4 + (1 << 20)), limit,
                                MAX_KEYFRAMES - len(named))
            # Encrypted members raise RuntimeError, a corrupt deflate stream zlib.error.
            except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, RuntimeError,
                    zlib.error, OSError) as exc:
                log.info("keyframes ZIP %s refused: %r", part.name[:80], exc)
                raise IntakeError(f"keyframes: {part.name[:80]} is a damaged, encrypted or unsupported ZIP; send "
                                  "the pictures as separate files or a plain ZIP", "bad_keyframes_zip", 422) from None
        else:
            named.append((frame_of(part.name), part.path))
        _check_count(len(named))
    return named


def _check_count(count: int) -> None:
    if count > MAX_KEYFRAMES:
        raise IntakeError(f"at most {MAX_KEYFRAMES} keyframes per job, got more; colour carries through a shot, so "
                          "one or two per shot is enough", "too_many_keyframes")


def _unzip(archive_path: Path, folder: Path, limit: int, total: int, room: int) -> list[tuple[int, Path]]:
    with zipfile.ZipFile(archive_path) as archive:
        members = [i for i in archive.infolist() if not i.is_dir() and not _hidden(i.filename)]
        _check_count(len(members) + MAX_KEYFRAMES - room)
        if sum(i.file_size for i in members) > total:
            raise IntakeError(f"keyframes: the ZIP unpacks to more than the upload limit of {total} bytes",
                              "upload_too_large", 413)
        named = []
        for info in members:
            frame = frame_of(info.filename)
            if info.file_size > limit:
                raise IntakeError(f"keyframe {frame}: {info.filename} unpacks to {info.file_size} bytes, over the "
                                  f"limit of {limit}", "upload_too_large", 413)
            path = folder / f"zip-{len(named)}-{frame}"
            path.write_bytes(archive.read(info))
            named.append((frame, path))
        return named


def _hidden(name: str) -> bool:
    return name.startswith("__MACOSX/") or name.rsplit("/", 1)[-1].startswith(".")


def _check_frames(frames: list[int], total: int) -> None:
    seen: set[int] = set()
    for frame in frames:
        if frame in seen:
            raise IntakeError(f"two keyframes for frame {frame}; send one picture per frame", "duplicate_keyframe")
        seen.add(frame)
        if frame >= total:
            raise IntakeError(f"keyframe {frame} is past the end of the video, whose frames are 0..{total - 1}",
                              "keyframe_out_of_range", 422)


def _check_one(frame: int, path: Path, facts: VideoFacts, source: str, settings: Settings,
               out: Path) -> CheckedKeyframe:
    picture = _colour_picture(frame, path, settings)
    picture = fit_to_frame(picture, facts.width, facts.height)
    score = structure_score(picture, _film_frame(frame, facts, source, settings))
    if score is not None and score < REFUSE_BELOW:
        raise IntakeError(f"keyframe {frame} does not look like frame {frame} of the video (likeness {score:.2f}, "
                          f"at least {REFUSE_BELOW} is needed): check its frame number (frames count from 0) and "
                          "that it is a picture of this film", "keyframe_mismatch", 422)
    png, thumbnail = write_keyframe_files(picture, out, frame)
    return CheckedKeyframe(frame, png, thumbnail, score)


def _colour_picture(frame: int, path: Path, settings: Settings) -> np.ndarray:
    try:
        rgb = load_image(path, settings.max_image_pixels).rgb
    except NotMedia:
        raise IntakeError(f"keyframe {frame} is not an image; send PNG, JPEG, TIFF, BMP or WebP",
                          "keyframe_not_image", 415) from None
    except MediaError as exc:
        raise IntakeError(f"keyframe {frame}: {exc}", exc.code, exc.status) from exc
    chroma = mean_chroma(rgb)
    if chroma < MIN_CHROMA:
        raise IntakeError(f"keyframe {frame} is greyscale (mean colour {chroma:.1f}, at least {MIN_CHROMA} is "
                          "needed): a keyframe gives the frame its colour, so send a coloured picture",
                          "keyframe_greyscale", 422)
    return rgb


def _film_frame(frame: int, facts: VideoFacts, source: str, settings: Settings) -> np.ndarray:
    try:
        return read_range(source, facts, frame, 1, settings.ffmpeg_timeout_seconds)[0]
    except (ToolFailed, MediaError) as exc:
        log.info("decoding frame %d to check its keyframe failed: %s", frame, exc)
        raise IntakeError(f"frame {frame} of the video cannot be decoded to check keyframe {frame}: the video "
                          "is damaged there", "corrupt_media", 422) from exc


def likeness_note(frame: int, score: float | None) -> str | None:
    """The job's warning for a keyframe that was accepted but may be misplaced."""
    if score is None:
        return f"keyframe {frame}: the frame is too flat to check that the picture matches it"
    if score < WARN_BELOW:
        return (f"keyframe {frame} matches its frame only loosely (likeness {score:.2f}; a picture of the frame "
                f"itself scores above {WARN_BELOW}): check the frame number, and that the picture is neither "
                "cropped nor shifted, or its colour lands beside the things it belongs to")
    return None


def write_keyframe_files(rgb: np.ndarray, folder: Path, frame: int) -> tuple[Path, Path]:
    """The stored forms of a keyframe: lossless RGB PNG and a small JPEG thumbnail."""
    image = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    png, thumbnail = folder / f"{frame:06d}.png", folder / f"{frame:06d}.jpg"
    image.save(png, "PNG")
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    image.save(thumbnail, "JPEG", quality=85)
    return png, thumbnail


def put_keyframe(store: ObjectStore, job_id: str, frame: int, png: Path, thumbnail: Path) -> None:
    store.put_file(keys.keyframe_key(job_id, frame), png, "image/png")
    store.put_file(keys.keyframe_thumbnail_key(job_id, frame), thumbnail, "image/jpeg")


def store_keyframe(store: ObjectStore, job_id: str, frame: int, rgb: np.ndarray, source: str) -> dict[str, Any]:
    """Store one keyframe (uint8 RGB at the frame's size, upright) and return its entry for
    the job row; record it with `jobs.state.add_keyframes`. Intake stores users' keyframes;
    the pipeline stores automatic ones ("auto") and those it takes from a reference."""
    if source not in SOURCES:
        raise ValueError(f"keyframe source must be one of {', '.join(SOURCES)}, got {source!r}")
    with tempfile.TemporaryDirectory(prefix="tintype-keyframe-") as tmp:
        put_keyframe(store, job_id, frame, *write_keyframe_files(rgb, Path(tmp), frame))
    return entry(frame, source)


def entry(frame: int, source: str) -> dict[str, Any]:
    return {"frame": int(frame), "source": source}

