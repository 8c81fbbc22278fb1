"""Where `tintype restore` may write, decided before any work is done.

A result never replaces its input (a user's only scan), nor any other existing file
unless `--force` says so; its format is the one its extension names; and its folder
exists and takes files. Refused here, a mistake costs a message; found after the job, it
cost the whole job, and before these checks, sometimes the original.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from tintype.media.containers import container_signature
from tintype.media.errors import MediaError, ToolFailed
from tintype.media.ffmpeg import FFPROBE, input_options, run_tool
from tintype.media.images import sniff_image

# The result's format by the output's extension: what the pipeline writes for each kind.
PHOTO_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg"}
VIDEO_FORMATS = {".mp4": "mp4"}
MASTER_EXTENSIONS = {".mov": "ProRes 422 HQ (.mov) use --master prores",
                     ".mkv": "FFV1 (.mkv) use --master ffv1"}
_KINDS = {"image": ("a photograph", "an image", PHOTO_FORMATS), "video": ("a video", "an MP4 video", VIDEO_FORMATS)}


class PathRefused(Exception):
    """A destination tintype will not write to; the message says why and what to do."""


def input_kind(path: Path, max_pixels: int, timeout: float, output: Path | None = None) -> str | None:
    """"image" or "video" by content, as intake decides it, or None for neither (intake
    then refuses the file in its own words). Cheap: nothing is decoded.

    A video container asked for as an MP4 `output` is taken as a video without running
    ffprobe: intake probes it anyway (the job's one probe) and refuses it if it is not.
    ffprobe runs here only to word a refusal (an extension that does not fit) or for a
    file whose first bytes name no container."""
    try:
        if sniff_image(path, max_pixels) is not None:
            return "image"
    except MediaError:
        return "image"  # an image intake will refuse (too large, unsupported): still an image
    if output is not None and output.suffix.lower() in VIDEO_FORMATS and container_signature(str(path)):
        return "video"
    args = [FFPROBE, "-v", "error", *input_options(str(path)), "-select_streams", "v", "-show_entries",
            "stream=codec_type", "-of", "csv=p=0", str(path)]
    try:
        return "video" if b"video" in run_tool(args, timeout) else None
    except ToolFailed:
        return None


def result_format(kind: str, source: Path, output: Path, asked: str | None) -> str:
    """The result's format, named by the output's extension; an extension that does not
    fit the input, or an `--output-format` that contradicts it, is refused."""
    what, result, formats = _KINDS[kind]
    fmt = formats.get(output.suffix.lower())
    if fmt is None:
        *most, last = formats
        names = f"{', '.join(most)} or {last}" if most else last
        hint = ""
        if kind == "video" and output.suffix.lower() in MASTER_EXTENSIONS:
            hint = (f"; for an archival master in {MASTER_EXTENSIONS[output.suffix.lower()]}, written beside "
                    f"the MP4 (-o {output.stem}.mp4 makes {output.stem}-master{output.suffix.lower()})")
        raise PathRefused(f"{source.name} is {what}, so its result is {result}: name the output {names}, "
                          f"not {output.name}{hint}")
    if asked is not None and kind == "video":
        raise PathRefused(f"--output-format is for photographs; a video's result is an MP4 video (-o {output.name})")
    if asked is not None and asked != fmt:
        raise PathRefused(f"-o {output.name} names a {fmt.upper()} file but --output-format asks for "
                          f"{asked}; give one or the other")
    return fmt


def check_destination(output: Path, inputs: Iterable[Path], force: bool, flag: str = "-o") -> None:
    """Refuse to write over an input (under any spelling: links, `..`, hard links), over
    an existing file without `force`, or into a folder that is missing or takes no files."""
    for given in inputs:
        if _same_file(output, given):
            raise PathRefused(f"{flag} {output} is the input {given}; tintype never writes over its input: "
                              "choose another name")
    if output.is_dir():
        raise PathRefused(f"{flag} {output} is a folder; name the file to write in it")
    if (output.exists() or output.is_symlink()) and not force:
        raise PathRefused(f"{flag} {output} already exists; choose another name, or add --force to replace it")
    check_folder(output.parent if str(output.parent) else Path("."), flag)


def check_folder(folder: Path, flag: str) -> None:
    """The folder exists and a file can be made in it (tried, not inferred from mode
    bits: root passes those everywhere, yet not on a read-only mount or in /sys)."""
    if not folder.exists():
        raise PathRefused(f"{flag}: the folder {folder} does not exist; create it first or choose another")
    if not folder.is_dir():
        raise PathRefused(f"{flag}: {folder} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".tintype-write-test-")
    except OSError as exc:
        raise PathRefused(f"{flag}: cannot write in the folder {folder}: {exc.strerror}") from None
    os.close(fd)
    os.unlink(probe)


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False
