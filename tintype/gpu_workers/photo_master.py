"""Storing a photograph's 16-bit master (job option `photo_master`) as the job's output `master`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tintype.jobs.options import JobOptions
from tintype.jobs.outputs import Output
from tintype.media.images import LoadedImage
from tintype.media.master16 import FORMATS, build_master, read_deep, write_master
from tintype.storage import keys
from tintype.storage.objects import ObjectStore


def store_master(store: ObjectStore, job_id: str, source: Path, loaded: LoadedImage, result: np.ndarray,
                 mask: np.ndarray | None, options: JobOptions, tmp: Path) -> dict[str, Output]:
    """The master the job asked for, stored under its prefix, by output name (none asked: {})."""
    if options.photo_master == "none":
        return {}
    extension, content_type, label = FORMATS[options.photo_master]
    deep = read_deep(source, loaded.rgb, loaded.alpha, loaded.facts.get("exif_orientation", 1))
    master = build_master(deep, result, mask, options.colorize)
    path = tmp / f"master.{extension}"
    write_master(path, master, deep.alpha)
    key = keys.extra_output_key(job_id, "master", extension)
    store.put_file(key, path, content_type)
    if deep.bits < 16:
        label += ", from an 8-bit input"
    return {"master": Output(key, content_type, path.stat().st_size, f"master.{extension}", label)}
