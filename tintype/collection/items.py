"""What a collection holds, and where each item's result goes under OUTDIR.

A folder is walked for photographs and films by extension (anything else beside them,
notes or scans' sidecars, is not part of the collection); a list file names its items
one per line and every one listed is an item, readable or not. Results mirror each
item's path relative to the folder (or to the listed files' common folder).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".m4v", ".mpg", ".mpeg", ".webm", ".wmv", ".dv",
                            ".mts", ".m2ts", ".ts", ".3gp", ".ogv", ".mxf"})
KEPT_PHOTO_SUFFIXES = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg"}  # what the pipeline writes as it is
FORMAT_SUFFIXES = {"png": ".png", "jpeg": ".jpg"}


@dataclass(frozen=True)
class Item:
    """One file of the collection: where it is, and its path relative to the collection."""

    source: Path
    rel: str  # posix, relative; the summary's `input` and the result's place under OUTDIR


class CollectionError(Exception):
    """The collection cannot be read at all (no folder, no list, nothing in it), or names
    an item whose result would leave OUTDIR."""


def scan_folder(folder: Path, skip: Path | None = None) -> list[Item]:
    """Photographs and films under `folder` (hidden files and folders left out, and the
    `skip` folder, OUTDIR when it lies inside), in a stable order."""
    found = []
    skip_resolved = skip.resolve() if skip is not None else None
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (here / d).resolve() != skip_resolved)
        for name in sorted(files):
            path = here / name
            if not name.startswith(".") and path.suffix.lower() in PHOTO_SUFFIXES | VIDEO_SUFFIXES:
                found.append(Item(path, path.relative_to(folder).as_posix()))
    return found


def read_list(list_file: Path) -> list[Item]:
    """The files a list names, one per line (blank lines and `#` comments skipped),
    relative paths taken from the list's own folder; each is placed under OUTDIR by its
    path below the listed files' common folder."""
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CollectionError(f"cannot read the list {list_file}: {exc}") from None
    # Normalised before their common folder is taken: `a/../../b.png` must not place a
    # result above OUTDIR (commonpath compares `..` as if it were a folder's name).
    paths = [Path(os.path.abspath(list_file.parent / line.strip())) for line in lines
             if line.strip() and not line.strip().startswith("#")]
    if not paths:
        return []
    base = Path(os.path.commonpath([p.parent for p in paths]))
    return [Item(p, _inside(p.relative_to(base).as_posix(), p)) for p in paths]


def _inside(rel: str, source: Path) -> str:
    """`rel`, when it stays below OUTDIR; raises CollectionError when it would leave it."""
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or ".." in parts or rel == ".":
        raise CollectionError(f"{source}: its result would be written outside the output folder")
    return rel


def result_rel(item: Item, kind: str | None, fmt: str | None) -> str:
    """Where the item's result goes under OUTDIR: a film as .mp4; a photograph in its own
    format when the pipeline writes it (PNG, JPEG), as `fmt` when one was asked for, else
    PNG (lossless: a TIFF master loses nothing)."""
    rel = PurePosixPath(item.rel)
    if kind == "video":
        return rel.with_suffix(".mp4").as_posix()
    if fmt is not None:
        return rel.with_suffix(FORMAT_SUFFIXES[fmt]).as_posix()
    if rel.suffix.lower() in KEPT_PHOTO_SUFFIXES:
        return rel.as_posix()
    return rel.with_suffix(".png").as_posix()


def photo_format(result: str) -> str:
    """The output_format option that writes `result` (a photograph's result path)."""
    return KEPT_PHOTO_SUFFIXES[PurePosixPath(result).suffix.lower()]
