"""Finalize's archival master (tintype.media.master): which one a job asks for, how it
meets a deinterlaced job's frames, and its own upload beside the delivery's.

The master is fed the same output frames as the delivery (`deliver(..., also=)`), before
any visible mark, and streams into its own multipart upload, so it costs no more disk or
memory than the delivery does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from tintype.jobs.options import JobOptions
from tintype.jobs.outputs import Output
from tintype.media.deinterlace import Deinterlace, reweave_filters
from tintype.media.maskvideo import iter_masks
from tintype.media.master import MasterWriter, plan_master
from tintype.media.probe import VideoFacts
from tintype.queue.task import JobTask
from tintype.storage import keys
from tintype.storage.objects import ObjectWriter


def master_output(job, facts: VideoFacts, options: JobOptions) -> Output | None:
    """The master the job asked for (its size filled in once it is stored), or None."""
    if options.master == "none":
        return None
    plan = plan_master(facts, options.master)
    label = plan.format.label.replace(" (", f" ({plan.depth}-bit {plan.chroma}, ", 1)
    return Output(keys.extra_output_key(job.id, "master", plan.format.extension), plan.format.content_type, 0,
                  f"master.{plan.format.extension}", label)


def master_fields(job, options: JobOptions) -> dict[str, Any]:
    """How a deinterlaced job's master meets its frames: the input is decoded through the
    job's own bwdif, and with master_interlaced the field-rate frames are woven back into
    the input's interlaced frames and field order (media.deinterlace)."""
    plan = Deinterlace.of_facts(job.input_facts)
    if plan is None:
        return {}
    fields: dict[str, Any] = {"decode_filters": tuple(plan.filters(0))}
    if options.master_interlaced:
        fields.update(filters=tuple(reweave_filters(plan.parity)), field_order="tt" if plan.parity == "tff" else "bb")
    return fields


def master_frames(job, facts: VideoFacts, options: JobOptions) -> int:
    """Frames the master holds: the job's, or the input's own when woven back into fields."""
    plan = Deinterlace.of_facts(job.input_facts)
    if options.master_interlaced and plan is not None and plan.mode == "field":
        return int(job.input_facts["interlaced"]["source_frames"])
    return facts.frames


@dataclass
class OpenMaster:
    """A master being written: the frames' consumer and the upload it streams into."""

    output: Output
    frames: MasterWriter
    upload: ObjectWriter
    digest: "hashlib._Hash"  # of the bytes stored, for its manifest (tasks.provenance)

    def commit(self) -> Output:
        return replace(self.output, bytes=self.upload.commit())

    def abort(self) -> None:
        self.frames.abort()  # (again, if deliver already did: that is harmless)
        self.upload.abort()


def open_master(task: JobTask, job, facts: VideoFacts, options: JobOptions, master: Output | None,
                tmp: Path) -> OpenMaster | None:
    """Start the master's upload and encoder (None when the job asked for no master)."""
    if master is None:
        return None
    upload, digest = task.store.open_writer(master.key, master.content_type), hashlib.sha256()

    def write(data: bytes) -> None:
        digest.update(data)
        upload.write(data)

    try:
        changed = _filled_masks(task, job, facts, tmp) if options.inpaint else None
        frames = MasterWriter(plan_master(facts, options.master), facts, task.store.read_url(keys.input_key(job.id)),
                              write, changed, timeout=task.settings.finalize_time_limit, **master_fields(job, options))
    except BaseException:
        upload.abort()
        raise
    return OpenMaster(master, frames, upload, digest)


def _filled_masks(task: JobTask, job, facts: VideoFacts, tmp: Path) -> Iterator[np.ndarray]:
    """The masks the chunks filled, frame by frame in order, for the master (it keeps the
    input's own luma elsewhere). A frame reaches the master only after its chunk was
    fetched done, so its used-mask object is there; the objects stay for _verify_and_keep."""
    for index in range(job.chunks_total):
        part = tmp / f"filled-{index}.mkv"
        task.store.get_file(keys.used_mask_chunk_key(job.id, index), part)
        yield from iter_masks(str(part), facts.width, facts.height)
        part.unlink()


__all__ = ["OpenMaster", "master_fields", "master_frames", "master_output", "open_master"]
