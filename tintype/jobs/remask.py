"""Inpaint again with new masks: a new job made from a job's stored input — the mask
painter's correction loop.

The user paints masks or draws boxes on the frames of a job they already submitted; the
new job takes the parent's stored input (nothing is uploaded again) and the parent's
options, with the new mask sources and inpainting on. Everything is checked as a new
submission is (`jobs.intake.create_job`: the masks fit the frames, boxes lie inside, the
quota admits it), because it is one: the input is fetched from the store into a scratch
folder and submitted with the new parts, so a mask refused here is refused for the same
reason with the same message. The new job says which job it redoes in its notes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

from tintype.jobs import state as jobstate
from tintype.jobs.errors import IntakeError
from tintype.jobs.intake import Submission, create_job, parse_options
from tintype.jobs.options import JobOptions
from tintype.settings import Settings
from tintype.storage import keys
from tintype.storage.apikeys import Limits
from tintype.storage.models import Job
from tintype.storage.objects import ObjectNotFound, ObjectStore

MASK_OPTIONS = ("boxes", "track_boxes", "detect_damage", "mask_dilation", "inpaint_model")
REMASK_FILES = ("mask", "masks")


def remask_options(parent: Job, form: Mapping[str, Any], settings: Settings) -> JobOptions:
    """The parent's options and operations, inpainting on, with the mask options given
    (and none of the parent's boxes or detection: the painter sends what it wants)."""
    other = sorted(k for k, v in form.items() if k not in MASK_OPTIONS and k != "csrf_token" and v not in (None, ""))
    if other:
        raise IntakeError(f"inpainting again changes only the masks ({', '.join(MASK_OPTIONS)}, and the files "
                          f"mask and masks); it keeps the parent's other options, so leave out {', '.join(other)}",
                          "not_a_mask_option")
    given = {name: form[name] for name in MASK_OPTIONS if form.get(name) not in (None, "")}
    operations = sorted({*parent.operations, "inpaint"})
    return parse_options({**(parent.options or {}), "boxes": [], "track_boxes": False, "detect_damage": [],
                          **given, "operations": ",".join(operations),
                          "colorize": "yes" if "colorize" in parent.operations else "no"}, settings)


def create_remask(parent: Job, form: Mapping[str, Any], mask: Path | None, masks: Path | None, owner: str,
                  settings: Settings, store: ObjectStore, db_url: str, enqueue: Callable[[str], str],
                  limits: Limits | None = None, idempotency_key: str | None = None) -> str:
    """The new job's id, queued; nothing is kept when any check fails."""
    options = remask_options(parent, form, settings)
    with tempfile.TemporaryDirectory(prefix="tintype-remask-") as tmp:
        source = Path(tmp) / ("input" + Path(parent.input_name).suffix.lower()[:8])
        try:
            store.get_file(keys.input_key(parent.id), source)
        except ObjectNotFound:
            raise IntakeError(f"job {parent.id} no longer has its input; submit the file again",
                              "parent_files_gone", 409) from None
        sub = Submission(source, parent.input_name, source.stat().st_size, parent.input_sha256, options,
                         mask_path=mask, masks_path=masks, owner=owner, idempotency_key=idempotency_key)
        job_id = create_job(sub, settings, store, db_url, enqueue, limits)
    jobstate.add_note(db_url, job_id, f"inpainted again with new masks, from job {parent.id}")
    return job_id


__all__ = ["MASK_OPTIONS", "REMASK_FILES", "create_remask", "remask_options"]
