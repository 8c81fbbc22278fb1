"""gpu.plan_colour: one pass over a film coloured from keyframes, before its chunks fan out.

It streams the film at the plan's low resolution twice: once to find shots and pick
automatic keyframes where no user keyframe is near (and, with a colour reference, the
frame of each shot that it fits best: media.reference_fit), once to carry every keyframe's
colour through its shot and keep the chroma at each chunk's first and last frame. The
first pass holds at most a segment of tiny frames, the second the frames between two
keys (at most about 480), and every keyframe is kept only as its small chroma, so memory
does not grow with the film's length; the model colours only the automatic keyframes
(see gpu_workers.keyframe_colour).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from celery import shared_task
from PIL import Image

from tintype.gpu_workers import keyframe_colour as kc
from tintype.gpu_workers.models.registry import models
from tintype.jobs import state as jobstate
from tintype.jobs.facts import load_facts
from tintype.jobs.keyframes import store_keyframe
from tintype.jobs.options import JobOptions
from tintype.media import propagate as pg
from tintype.media.probe import VideoFacts
from tintype.media.reference_fit import MATCH_SHORT_SIDE, ReferenceMatcher
from tintype.media.video import frame_start, iter_frames, read_range
from tintype.queue.messages import PLAN_COLOUR, fan_out
from tintype.queue.task import JobTask
from tintype.settings import Settings
from tintype.storage import keys
from tintype.storage.objects import ObjectNotFound, ObjectStore


class _Ended(Exception):
    """The job ended (was cancelled) while the plan ran."""


@shared_task(name=PLAN_COLOUR, base=JobTask, bind=True)
def plan_colour(self: JobTask, job_id: str) -> str:
    with self.guard(job_id, "planning the film's colour from keyframes"), self.beating(job_id):
        if not jobstate.mark_running(self.db_url, job_id, "planning_colour",
                                     from_stages=("colour_queued", "planning_colour")):
            return "inactive"
        try:
            return _plan(self, job_id)
        except _Ended:
            self.cleanup_work(job_id)
            return self.ended(job_id)


def _plan(task: JobTask, job_id: str) -> str:
    began = time.monotonic()
    job = jobstate.get_job(task.db_url, job_id)
    facts = load_facts(task.store, job_id, job.input_facts)
    keyframes = _keyframes(task, job, facts)
    chunks = jobstate.chunk_ranges(task.db_url, job_id)
    borders = _borders(task.store, job_id, facts, keyframes, kc.border_frames(chunks), task.settings)
    _put_bytes(task.store, keys.colour_borders_key(job_id), kc.borders_to_bytes(borders))
    if not jobstate.is_active(task.db_url, job_id):
        raise _Ended()
    jobstate.add_timing(task.db_url, job_id, "colour plan", time.monotonic() - began)
    fan_out(task.app, task.db_url, job_id, job.chunks_total, task.settings.chunk_window)
    return "sent"


def _low_res(store: ObjectStore, job_id: str, facts: VideoFacts, timeout: float) -> Iterator[np.ndarray]:
    """The film's 8-bit lightness at the plan's resolution, one frame at a time."""
    size = kc.plan_size(facts.width, facts.height)
    source = store.read_url(keys.input_key(job_id))
    filters = frame_start(facts, 0)[1]  # a deinterlaced job's frames
    for frame in iter_frames(source, facts.width, facts.height, None, facts.frames, timeout, size=size,
                             filters=filters):
        yield kc.plan_lightness(frame)


def _keyframes(task: JobTask, job, facts: VideoFacts) -> dict[int, np.ndarray]:
    """Every keyframe of the job as ab at the plan's resolution: the user's; where the
    job has a colour reference, one at the frame it fits best in each shot that shows it;
    and automatic ones wherever no such keyframe of the same shot is near. Keys the plan
    colours are stored and listed on the job; only small ab is kept, so memory does not
    grow with their number."""
    store, size = task.store, kc.plan_size(facts.width, facts.height)
    listed = {e["frame"]: e["source"] for e in (job.keyframes or [])}
    user = sorted(t for t, source in listed.items() if source == "user")
    colourist = _Colourist(task, job, facts)
    fits: dict[int, float] = {}
    shots, auto = kc.shots_and_keyframes(colourist.lights(fits))
    placed = kc.reference_keys(shots, fits, user)
    keyframes = {t: _plan_ab(_load_rgb(store, keys.keyframe_key(job.id, t)), size) for t in user}
    needed = {t: "reference" for t in placed}
    needed |= {t: "auto" for t in kc.automatic_keys_needed(shots, auto, [*user, *placed])}
    for t in sorted(needed):
        if t in listed:  # a redelivered plan reuses the keyframes it already coloured and listed
            rgb = _load_rgb(store, keys.keyframe_key(job.id, t))
        else:
            in_reference_shot = any(t in shot for shot in placed.values())
            rgb = colourist.colour(t, needed[t], in_reference_shot)
        keyframes[t] = _plan_ab(rgb, size)
    return keyframes


def _plan_ab(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return pg.resize_ab(kc.keyframe_ab(rgb), size[1], size[0])


class _Colourist:
    """Colours the plan's keyframes with the model: the job's options, model, colour
    reference and input read once for all of them (the model only when a key needs it)."""

    def __init__(self, task: JobTask, job, facts: VideoFacts) -> None:
        self.task, self.job, self.facts = task, job, facts
        self.options = JobOptions.of(job, task.settings)
        self.reference = _load_rgb(task.store, keys.reference_key(job.id)) if job.has_reference else None
        self.matcher = ReferenceMatcher(self.reference) if self.reference is not None else None
        self.source = task.store.read_url(keys.input_key(job.id))
        self.model = None

    def lights(self, fits: dict[int, float]) -> Iterator[np.ndarray]:
        """The film's low-resolution lightness for finding shots; with a colour reference,
        also tries the reference on every REFERENCE_STRIDE-th frame on the way, recording
        in `fits` the frames where it fits and how well (`Fit.score`)."""
        timeout = self.task.settings.finalize_time_limit
        if self.matcher is None:
            yield from _low_res(self.task.store, self.job.id, self.facts, timeout)
            return
        facts, size = self.facts, kc.plan_size(self.facts.width, self.facts.height)
        h, w = pg.working_size(facts.height, facts.width, MATCH_SHORT_SIDE)
        for t, frame in enumerate(iter_frames(self.source, facts.width, facts.height, None, facts.frames,
                                              timeout, size=(w - w % 2, h - h % 2),
                                              filters=frame_start(facts, 0)[1])):
            fit = self.matcher.fit(frame) if t % kc.REFERENCE_STRIDE == 0 else None
            if fit is not None:
                fits[t] = fit.score
            yield kc.plan_lightness(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))

    def colour(self, frame: int, source: str, in_reference_shot: bool) -> np.ndarray:
        """One keyframe, stored and listed on the job at once (so a plan cut short keeps
        what it coloured). The reference colours only keys of shots that show it."""
        task, job_id = self.task, self.job.id
        self.model = self.model or models().colorizer(self.options.colorize_model)
        rgb = read_range(self.source, self.facts, frame, 1, task.settings.ffmpeg_timeout_seconds)[0]
        reference = self.reference if in_reference_shot else None
        fit = self.matcher.fit(rgb) if source == "reference" else None
        coloured = kc.colour_keyframe(self.model, rgb, self.options.render_size, self.options.saturation,
                                      reference, fit)
        entry = store_keyframe(task.store, job_id, frame, coloured, source)
        if not jobstate.add_keyframes(task.db_url, job_id, [entry]):
            task.store.delete(keys.keyframe_key(job_id, frame))
            task.store.delete(keys.keyframe_thumbnail_key(job_id, frame))
            raise _Ended()
        return coloured


def _borders(store: ObjectStore, job_id: str, facts: VideoFacts, keyframes: dict[int, np.ndarray],
             wanted: list[int], settings: Settings) -> dict[int, np.ndarray]:
    lights = _low_res(store, job_id, facts, settings.finalize_time_limit)
    return dict(pg.shot_chroma(lights, keyframes, wanted))


def _load_rgb(store: ObjectStore, key: str) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="tintype-key-") as tmp:
        path = Path(tmp) / "key.png"
        store.get_file(key, path)
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))


def _put_bytes(store: ObjectStore, key: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="tintype-borders-") as tmp:
        path = Path(tmp) / "borders.npz"
        path.write_bytes(data)
        store.put_file(key, path, "application/octet-stream")


def load_borders(store: ObjectStore, job_id: str, wanted: list[int]) -> dict[int, np.ndarray]:
    """The plan's border chroma for the frames a chunk needs; none for a job planned by an
    older version (its chunks then colour from their own keys and the model)."""
    with tempfile.TemporaryDirectory(prefix="tintype-borders-") as tmp:
        path = Path(tmp) / "borders.npz"
        try:
            store.get_file(keys.colour_borders_key(job_id), path)
        except ObjectNotFound:
            return {}
        return kc.borders_from_bytes(path.read_bytes(), wanted)
