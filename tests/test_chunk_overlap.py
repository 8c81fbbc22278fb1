"""A chunk's decode, model and lossless write overlap (gpu_workers.tasks, media.overlap)
and its result is the same, to the byte, as the whole-chunk path that came before:
decode every frame, then process them, then write them. Embedded defaults: SQLite,
local objects, the folder broker, the real model and ffmpeg; no worker process."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.media_factory import encode_frames, grey_film, rect_mask, save_picture, tinted
from tintype.gpu_workers import tasks
from tintype.gpu_workers.masks import frame_masks, load_chunk_masks
from tintype.gpu_workers.processing import STREAM_BATCH, apply_operations, streams, works_in_yuv
from tintype.jobs import state as jobstate
from tintype.jobs.facts import load_facts
from tintype.jobs.intake import Submission, create_job, parse_options
from tintype.jobs.options import JobOptions
from tintype.media.ffmpeg import ToolFailed
from tintype.media.overlap import WriteBehind
from tintype.media.video import LosslessWriter, iter_lossless, read_frames, read_yuv_frames
from tintype.queue.app import make_celery
from tintype.queue.task import ended_answer
from tintype.storage import keys
from tintype.tasks.probe import plan_chunks

CHUNK_FRAMES, CONTEXT = 20, 2  # a middle chunk: 20 own frames (batches of 8, 8, 4), 2 context each side
WIDTH, HEIGHT = 96, 64


class Worker:
    """What `_process_chunk` reads from the JobTask it runs in, made as a worker makes it:
    the settings, their object store and database, a Celery app on their broker."""

    def __init__(self, settings, store) -> None:
        self.settings, self.store, self.db_url = settings, store, settings.database_url
        self.app = make_celery(settings)

    def ended(self, job_id: str) -> str:
        return ended_answer(self.db_url, job_id)


@pytest.fixture()
def film(tmp_path) -> Path:
    return encode_frames(tmp_path / "film.mp4", grey_film(50, WIDTH, HEIGHT), lossless=False)


def _job(settings, store, film: Path, tmp_path: Path, form: dict, reference: bool = False) -> str:
    ref = save_picture(tmp_path / "ref.png", tinted(grey_film(1, WIDTH, HEIGHT)[0])) if reference else None
    mask = rect_mask(tmp_path / "mask.png", WIDTH, HEIGHT, (20, 10, 40, 30)) if form.get("inpaint") else None
    sub = Submission(film, film.name, film.stat().st_size, hashlib.sha256(film.read_bytes()).hexdigest(),
                     parse_options(form, settings), mask_path=mask, reference_path=ref)
    job_id = create_job(sub, settings, store, settings.database_url, lambda job_id: "task-" + job_id)
    facts = load_facts(store, job_id, jobstate.get_job(settings.database_url, job_id).input_facts)
    jobstate.plan_chunks(settings.database_url, job_id, plan_chunks(facts, CHUNK_FRAMES, CONTEXT))
    return job_id


def _run_chunk(worker: Worker, job_id: str, index: int) -> str:
    chunk = jobstate.get_chunk(worker.db_url, job_id, index)
    attempt = jobstate.chunk_attempt(worker.db_url, job_id, index)
    return tasks._process_chunk(worker, job_id, index, chunk, keys.chunk_key(job_id, index), attempt)


def _whole_chunk_path(worker: Worker, job_id: str, index: int, tmp_path: Path) -> Path:
    """The chunk as tintype made it before the stages overlapped: decode every frame (as
    4:2:0 planes when the chunk only colorizes), process them all, then write them."""
    job = jobstate.get_job(worker.db_url, job_id)
    chunk = jobstate.get_chunk(worker.db_url, job_id, index)
    options = JobOptions.of(job, worker.settings)
    decode = read_yuv_frames if works_in_yuv(options, job.has_reference) else read_frames
    frames = decode(worker.store.read_url(keys.input_key(job_id)), WIDTH, HEIGHT, chunk.seek_time,
                    chunk.decode_count)
    fixed, reference = tasks._job_images(worker.store, job, tmp_path)
    masks = None
    if options.inpaint:
        sources = load_chunk_masks(worker.store, job, options, chunk.decode_start, chunk.decode_count, fixed, tmp_path)
        masks = frame_masks(sources, frames)
    first = chunk.start - chunk.decode_start
    processed = apply_operations(frames, options, masks, reference, keep=slice(first, first + chunk.count))
    path = tmp_path / f"whole-{index}.mkv"
    with LosslessWriter(path, WIDTH, HEIGHT) as writer:
        for frame in processed:
            writer.write(frame)
    return path


def _samples(path: Path) -> list[bytes]:
    return [frame.tobytes() for frame in iter_lossless(path, WIDTH, HEIGHT)]


def _stored_samples(worker: Worker, job_id: str, index: int, tmp_path: Path) -> list[bytes]:
    path = tmp_path / f"stored-{index}.mkv"
    worker.store.get_file(keys.chunk_key(job_id, index), path)
    return _samples(path)


@pytest.mark.parametrize("form, reference, streamed", [
    ({"colorize": "yes", "colour_mode": "per-frame"}, False, True),
    ({"colorize": "yes", "colour_mode": "per-frame"}, True, False),  # one grade for the whole chunk
    ({"colorize": "yes", "colour_mode": "per-frame", "inpaint": "1"}, False, False),  # the whole window
])
def test_an_overlapped_chunk_is_the_whole_chunk_path_to_the_byte(settings, store, film, tmp_path, form, reference,
                                                                 streamed):
    worker = Worker(settings, store)
    job_id = _job(settings, store, film, tmp_path, form, reference)
    job = jobstate.get_job(settings.database_url, job_id)
    options = JobOptions.of(job, settings)
    assert streams(options, object() if reference else None, None) is streamed
    assert options.inpaint == ("inpaint" in form)
    assert _run_chunk(worker, job_id, 1) == "done"
    stored = _stored_samples(worker, job_id, 1, tmp_path)
    expected = _samples(_whole_chunk_path(worker, job_id, 1, tmp_path))
    assert len(stored) == CHUNK_FRAMES and CHUNK_FRAMES % STREAM_BATCH != 0  # a short last batch too
    assert stored == expected
    chunk = jobstate.get_chunk(settings.database_url, job_id, 1)
    assert chunk.status == "done"


def test_a_decode_that_ends_early_fails_the_chunk_and_leaves_no_thread(settings, store, film, tmp_path):
    """The reader thread's error is the task's error, as read_frames raised it before."""
    worker = Worker(settings, store)
    job_id = _job(settings, store, film, tmp_path, {"colorize": "yes", "colour_mode": "per-frame"})
    chunk = jobstate.get_chunk(settings.database_url, job_id, 2)
    longer = SimpleNamespace(start=chunk.start, count=chunk.count, decode_start=chunk.decode_start,
                             decode_count=chunk.decode_count + 5, seek_time=chunk.seek_time)  # past the end
    before = set(threading.enumerate())
    with pytest.raises(ToolFailed, match=f"expected {longer.decode_count} frames"):
        tasks._process_chunk(worker, job_id, 2, longer, keys.chunk_key(job_id, 2), 1)
    assert set(threading.enumerate()) <= before
    assert not store.exists(keys.chunk_key(job_id, 2))


def test_a_model_failure_mid_chunk_stops_the_decoder_and_the_encoder(settings, store, film, tmp_path, monkeypatch):
    worker = Worker(settings, store)
    job_id = _job(settings, store, film, tmp_path, {"colorize": "yes", "colour_mode": "per-frame"})
    calls = []

    def failing(frames, options, keep, batch=STREAM_BATCH):
        for position, frame in enumerate(frames):
            calls.append(position)
            if position == 5:
                raise RuntimeError("the model ran out of memory")
            yield frame

    monkeypatch.setattr(tasks, "apply_in_batches", failing)
    before = set(threading.enumerate())
    with pytest.raises(RuntimeError, match="out of memory"):
        _run_chunk(worker, job_id, 0)
    assert calls == list(range(6))
    assert set(threading.enumerate()) <= before
    assert not store.exists(keys.chunk_key(job_id, 0))


def test_write_behind_writes_in_order_and_raises_the_writers_error():
    written: list[int] = []
    with WriteBehind(written.append, depth=2) as out:
        for n in range(10):
            out.put(n)
    assert written == list(range(10))

    def broken(item: int) -> None:
        if item == 3:
            raise BrokenPipeError("ffmpeg exited")
        written.append(item)

    written.clear()
    with pytest.raises(BrokenPipeError, match="ffmpeg exited"):
        with WriteBehind(broken, depth=2) as out:
            for n in range(50):
                out.put(n)
    assert written == [0, 1, 2]


def test_write_behind_holds_at_most_its_depth():
    gate = threading.Event()
    seen: list[int] = []
    out = WriteBehind(lambda item: (gate.wait(), seen.append(item)), depth=3)
    for n in range(4):  # one taken by the thread, three waiting
        out.put(n)
    assert out.queue.qsize() <= 3 and seen == []
    gate.set()
    out.finish()
    assert seen == [0, 1, 2, 3]
