"""Restore a collection with one set of workers: a bounded number of jobs in flight,
each result written as it finishes, one progress bar over the items.

Jobs are submitted through the same intake as a single `tintype restore`, at most
`in_flight` at a time: enough that the GPU pool always has the next item waiting, few
enough that thousands of items never sit in the queue or the database at once (and a
Ctrl-C has little to cancel). A file intake refuses, one that cannot be read, a job that
fails or is removed, a result that cannot be written: each is a failed row, and the run
goes on.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tintype.cli import output_path, write_object
from tintype.collection.items import Item, photo_format, result_rel
from tintype.collection.ledger import Entry, Ledger, item_key
from tintype.collection.summary import FAILED, NOT_DONE, SKIPPED, SUCCEEDED, Row
from tintype.jobs import outputs as job_outputs
from tintype.jobs import queries
from tintype.jobs import state as jobstate
from tintype.jobs.intake import IntakeError, Submission, create_job, parse_options
from tintype.jobs.options import JobOptions
from tintype.jobs.removal import remove_finished
from tintype.media.errors import MediaError
from tintype.provenance.record import SIGNED_SUFFIX, UNSIGNED_SUFFIX
from tintype.queue.app import make_celery
from tintype.queue.guard import cleanup_work
from tintype.queue.messages import PROBE, send
from tintype.restore_paths import input_kind
from tintype.settings import Settings
from tintype.storage.models import TERMINAL, Job
from tintype.storage.objects import StorageError, store_from_settings

POLL_SECONDS = 0.1  # how often the jobs in flight are read (one query for all of them)
# What one item can raise without the others being affected: a file intake refuses, one that
# cannot be read or stored, a result that cannot be written. Each becomes the item's failed row.
ITEM_ERRORS = (IntakeError, MediaError, StorageError, OSError)


@dataclass
class Planned:
    """An item about to be submitted: its kind, its result's place and its ledger key."""

    item: Item
    kind: str | None
    output: str
    key: str
    job_id: str | None = None


@dataclass
class Collection:
    """What every item of a run shares."""

    settings: Settings
    outdir: Path
    form: dict[str, Any]  # the job options, as for one restore (output_format decided per item)
    options_digest: str
    reference: Path | None = None
    force: bool = False
    in_flight: int = 4
    remove_jobs: bool = True  # a private data folder: each job is removed once its result is written
    _parsed: dict[str | None, JobOptions] = field(default_factory=dict)

    def options(self, fmt: str | None) -> JobOptions:
        """The parsed options for a result format (None: a film); raises IntakeError."""
        if fmt not in self._parsed:
            self._parsed[fmt] = parse_options({**self.form, "output_format": fmt}, self.settings)
        return self._parsed[fmt]


class Runner:
    """One pass over the items; `rows` holds the outcome of each, in the items' order."""

    def __init__(self, run: Collection, items: list[Item], ledger: Ledger) -> None:
        self.run, self.items, self.ledger = run, items, ledger
        self.rows: dict[str, Row] = {}
        self.store = store_from_settings(run.settings)
        self.celery = make_celery(run.settings)
        self.db = run.settings.database_url
        self.active: dict[str, Planned] = {}
        self._claimed: dict[str, str] = {}  # result path -> the item it belongs to

    def execute(self, gone: Callable[[], str | None]) -> list[Row]:
        """Every item: skipped, failed before a job, or run; on Ctrl-C or a lost worker,
        the jobs in flight are cancelled and the items left are rows of their own."""
        from tqdm import tqdm

        waiting = deque(self.items)
        try:
            with tqdm(total=len(self.items), unit="item", desc="collection", dynamic_ncols=True) as bar:
                while waiting or self.active:
                    while waiting and len(self.active) < self.run.in_flight:
                        self._start(waiting.popleft(), bar)
                    self._collect(bar)
                    problem = gone() if self.active else None
                    if problem is not None:
                        self._abandon(waiting, FAILED, problem)
                        break
                    if self.active:
                        time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            self._abandon(waiting, NOT_DONE, "interrupted")
            raise
        finally:
            self._cancel_active()
        return self.ordered_rows()

    def needs_jobs(self) -> bool:
        """Whether any item is not yet done and unchanged: a resumed run with nothing left
        to do starts no workers."""
        return any(not item.source.is_file()
                   or self.ledger.done(item.rel, item_key(item.source, self.run.options_digest), self.run.outdir)
                   is None for item in self.items)

    def ordered_rows(self) -> list[Row]:
        return [self.rows[item.rel] for item in self.items if item.rel in self.rows]

    def _start(self, item: Item, bar: Any) -> None:
        try:
            outcome = self._plan(item)
            if isinstance(outcome, Row):
                self._finish(item, outcome, bar)
                return
            outcome.job_id = self._submit(outcome)
        except ITEM_ERRORS as exc:
            self._finish(item, Row(item.rel, "", FAILED, _reason(exc)), bar)
            return
        self.active[outcome.job_id] = outcome

    def _plan(self, item: Item) -> Planned | Row:
        """The item's result path and key, or its row when no job is needed or possible."""
        settings, outdir = self.run.settings, self.run.outdir
        if not item.source.is_file():
            return Row(item.rel, "", FAILED, f"{item.source} does not exist")
        # As if asked for an MP4: a file with a video container's signature is taken as a film
        # without running ffprobe (intake probes it anyway); a photograph is sniffed, not decoded.
        kind = input_kind(item.source, settings.max_image_pixels, settings.ffmpeg_timeout_seconds, Path("x.mp4"))
        asked = self.run.form.get("output_format")
        output = result_rel(item, kind, asked if kind != "video" else None)
        key = item_key(item.source, self.run.options_digest)
        if (done := self.ledger.done(item.rel, key, outdir)) is not None and done.output == output:
            return Row(item.rel, output, SKIPPED, "done and unchanged since an earlier run", done.quality)
        for claim in (output, *_beside(output)):
            owner = self._claimed.setdefault(claim, item.rel)
            if owner != item.rel:
                return Row(item.rel, output, FAILED, f"{owner} has the same result name; rename one of them")
        target = outdir / output
        if target.exists() and _same_file(target, item.source):
            return Row(item.rel, output, FAILED, "the result would replace its input; choose another OUTDIR")
        if (target.exists() or target.is_symlink()) and not (self.run.force or self.ledger.made(output)):
            return Row(item.rel, output, FAILED, f"{output} already exists in the output folder and no earlier "
                                                 "run made it; add --force to replace it")
        return Planned(item, kind, output, key)

    def _submit(self, plan: Planned) -> str:
        fmt = None if plan.kind == "video" else photo_format(plan.output)
        with plan.item.source.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        sub = Submission(plan.item.source, plan.item.source.name, plan.item.source.stat().st_size, digest,
                         self.run.options(fmt), reference_path=self.run.reference)
        return create_job(sub, self.run.settings, self.store, self.db, lambda job_id: send(self.celery, PROBE, job_id))

    def _collect(self, bar: Any) -> None:
        """Write the results of the jobs that ended; show the frames of those running."""
        if not self.active:
            return
        jobs = queries.jobs_by_id(self.db, list(self.active))
        for job_id in set(self.active) - {job.id for job in jobs}:  # deleted (through the API) in flight
            plan = self.active.pop(job_id)
            self._finish(plan.item, Row(plan.item.rel, plan.output, FAILED, "the job was removed"), bar)
        running_done = running_total = 0
        for job in jobs:
            if job.status not in TERMINAL:
                running_done, running_total = running_done + job.chunks_done, running_total + job.chunks_total
                continue
            plan = self.active.pop(job.id)
            try:
                self._deliver(plan, job, bar)
            except (StorageError, OSError) as exc:
                row = Row(plan.item.rel, plan.output, FAILED, f"the result could not be written: {_reason(exc)}")
                self._finish(plan.item, row, bar)
            self._forget(job.id)
        bar.set_postfix_str(f"chunks {running_done}/{running_total}, failed {self._count(FAILED)}", refresh=False)

    def _deliver(self, plan: Planned, job: Job, bar: Any) -> None:
        """The ended job's row; a result is renamed into place together with its ledger line
        and its row, so a Ctrl-C never leaves the three disagreeing."""
        if job.status != "succeeded":
            self._finish(plan.item, Row(plan.item.rel, plan.output, FAILED,
                                        f"job {job.status}: {job.error or ''}".strip()), bar)
            return
        target = self.run.outdir / plan.output
        target.parent.mkdir(parents=True, exist_ok=True)
        for made in job_outputs.of(job).values():  # its provenance manifest, before the job is removed
            write_object(self.store, made.key, output_path(target, made.suffix))
        quality = json.dumps(job.quality, sort_keys=True, separators=(",", ":")) if job.quality else ""

        def recorded() -> None:
            self.ledger.record(Entry(plan.item.rel, plan.output, plan.key, quality))
            self._finish(plan.item, Row(plan.item.rel, plan.output, SUCCEEDED, "", quality), bar)

        write_object(self.store, job.output_key, target, then=recorded)

    def _forget(self, job_id: str) -> None:
        """A private folder keeps nothing of an ended job (its disk is freed as the run goes);
        a kept one keeps the job, as a single restore does, without its work objects."""
        if self.run.remove_jobs:
            remove_finished(self.db, self.store, job_id)
        else:
            cleanup_work(self.store, job_id)

    def _finish(self, item: Item, row: Row, bar: Any) -> None:
        self.rows[item.rel] = row
        bar.update(1)

    def _count(self, status: str) -> int:
        return sum(1 for row in self.rows.values() if row.status == status)

    def _abandon(self, waiting: deque[Item], status: str, reason: str) -> None:
        """Rows for every item that will not finish in this run."""
        for plan in self.active.values():
            self.rows[plan.item.rel] = Row(plan.item.rel, plan.output, status, reason)
        for item in waiting:
            self.rows.setdefault(item.rel, Row(item.rel, "", status, reason))
        waiting.clear()

    def _cancel_active(self) -> None:
        """Jobs still in flight are cancelled (a `tintype run` in use stops working on them)."""
        for job_id in list(self.active):
            jobstate.cancel(self.db, job_id)
            cleanup_work(self.store, job_id)
        self.active.clear()


def _beside(output: str) -> list[str]:
    """The manifests an item's result may have beside it: claimed with the result, so two
    results of one stem (`a.png`, `a.jpg`) never write the same manifest."""
    return [output_path(Path(output), suffix).as_posix() for suffix in (SIGNED_SUFFIX, UNSIGNED_SUFFIX)]


def _reason(exc: BaseException) -> str:
    """An error's words for the summary (an OSError's own words name the file)."""
    return str(exc) or type(exc).__name__


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
