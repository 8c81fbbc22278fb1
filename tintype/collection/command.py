"""`tintype restore DIR -o OUTDIR` and `tintype restore --list FILE -o OUTDIR`.

Checks everything that can be checked before any work (the flags, the options, OUTDIR,
that the collection holds anything): a mistake there is exit 2 and nothing started. Then
one set of workers (or the running `tintype run` of the data folder) restores every
item; summary.csv is written in OUTDIR at the end, on Ctrl-C too. Exit 0 when every item
succeeded or was already done, 1 when any failed, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tintype import cli, processes
from tintype.collection.items import CollectionError, Item, read_list, scan_folder
from tintype.collection.ledger import Ledger, options_digest
from tintype.collection.runner import Collection, Runner
from tintype.collection.summary import FAILED, NOT_DONE, SKIPPED, SUCCEEDED, Row, write_summary
from tintype.jobs.intake import IntakeError, parse_options
from tintype.restore_paths import VIDEO_FORMATS, PathRefused, check_folder
from tintype.settings import Settings, load_settings
from tintype.storage.db import upgrade

SINGLE_ONLY = (("inpaint_mask", "--inpaint-mask"), ("masks", "--masks"), ("keep_masks", "--keep-masks"),
               ("keyframes", "--keyframes"), ("keyframe", "--keyframe"))
# Masters are refused too: a collection delivers each result and its manifest, and a
# film's --master would fail every photograph beside it.
MASTERS = (("master", "--master"), ("photo_master", "--photo-master"))
FILM_FRAME_FORMATS = (".dpx", ".exr")  # only ever frames of a film scan
IN_FLIGHT_PER_GPU_PROCESS = 2  # one running, one waiting behind it, per model process
IN_FLIGHT_EXTRA = 2  # and some in the CPU pool's probe and finalize


def is_collection(args: argparse.Namespace) -> bool:
    """A list file, or a folder whose results go to a folder, is a collection. Two folders
    are films scanned as frames instead (tintype.media.sequence): one restored into a
    video (`-o reel.mp4`), and one whose files are all numbered frames of a film-only
    format (DPX, EXR), whose results go back out as frames. Numbered TIFFs or PNGs restored
    into a folder are a collection of photographs (a scanner names its files so); a
    pattern (`reel_%06d.tif`) makes them a sequence."""
    if args.list is not None:
        return True
    if args.input is None or not args.input.is_dir() or args.output.suffix.lower() in VIDEO_FORMATS:
        return False
    return not _film_frames(args.input)


def _film_frames(folder: Path) -> bool:
    names = [p.suffix.lower() for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    return bool(names) and all(suffix in FILM_FRAME_FORMATS for suffix in names)


def restore_collection(args: argparse.Namespace) -> int:
    try:
        items, outdir = _check(args)
    except (CollectionError, PathRefused, IntakeError) as exc:
        print(f"tintype: {exc}", file=sys.stderr)
        return cli.EXIT_BAD_INPUT
    kept = cli._served_folder() if args.data_dir is None else args.data_dir.resolve()
    data_dir = Path(tempfile.mkdtemp(prefix="tintype-cli-")) if kept is None else kept
    try:
        return _restore_in(data_dir, args, items, outdir, kept is None)
    finally:
        if kept is None:
            with processes.sigint_ignored():
                shutil.rmtree(data_dir, ignore_errors=True)


def _check(args: argparse.Namespace) -> tuple[list[Item], Path]:
    """The items and OUTDIR (made if missing), or why not: raises."""
    if args.list is not None and args.input is not None:
        raise CollectionError("give a folder or --list FILE, not both")
    for name, flag in SINGLE_ONLY:
        if getattr(args, name):
            raise CollectionError(f"{flag} is for one file; a collection takes only options every item shares")
    for name, flag in MASTERS:
        if getattr(args, name, None) not in (None, "none"):
            raise CollectionError(f"{flag}: masters are made one file at a time (tintype restore FILE -o OUT "
                                  f"{flag} ...), not for a collection")
    if args.reference is not None and not args.reference.is_file():
        raise CollectionError(f"reference {args.reference} does not exist")
    outdir = args.output
    if outdir.exists() and not outdir.is_dir():
        raise PathRefused(f"-o {outdir} is a file; a collection's results go in a folder")
    if args.list is not None:
        if not args.list.is_file():
            raise CollectionError(f"the list {args.list} does not exist")
        items = read_list(args.list)
    else:
        if outdir.resolve() == args.input.resolve():
            raise PathRefused(f"-o {outdir} is the collection's own folder; choose another, results never "
                              "go beside their originals")
        items = scan_folder(args.input, outdir)
    if not items:
        raise CollectionError("the collection holds no photographs or films")
    parse_options(_form(args, "png"), load_settings())  # a bad option: refused before any work
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PathRefused(f"-o {outdir}: the folder cannot be made ({exc.strerror or exc})") from None
    check_folder(outdir, "-o")
    return items, outdir


def _form(args: argparse.Namespace, fmt: str | None) -> dict:
    form = cli.restore_form(_as_single(args))
    return {**form, "output_format": fmt if args.output_format is None else args.output_format}


def _as_single(args: argparse.Namespace) -> argparse.Namespace:
    """restore_form reads a single restore's flags: the collection's, with no file-only ones."""
    return argparse.Namespace(**{**vars(args), "output": Path("x.png"), "keyframe": [], "keyframes": None})


def _restore_in(data_dir: Path, args: argparse.Namespace, items: list[Item], outdir: Path, private: bool) -> int:
    own_folder = {"TINTYPE_DATA_DIR": str(data_dir), **(cli._private_cache() if private else {})}
    settings = load_settings({**os.environ, **own_folder})
    running = cli._reusable(settings)
    if running is None:
        upgrade(settings.database_url)
    processes.exit_on_sigterm()
    processes.adopt_orphans()
    procs: list[subprocess.Popen] = []
    form = {**cli.restore_form(_as_single(args)), "output_format": args.output_format}
    run = Collection(settings, outdir, form, options_digest(form, _digest(args.reference)), args.reference,
                     args.force, _in_flight(settings), remove_jobs=private)
    runner = Runner(run, items, Ledger(outdir))
    try:
        if not runner.needs_jobs():
            gone = lambda: None  # noqa: E731 - every item is done: nothing to start or follow
        elif running is None:
            procs = cli._start_workers(settings, own_folder)
            gone = cli._workers_gone(procs, data_dir / "logs")
        else:
            print(f"tintype: using the running tintype (pid {running.pid}, {running.url}) of {data_dir}",
                  file=sys.stderr)
            gone = cli._instance_gone(running, data_dir / "logs")
        rows = runner.execute(gone)
    finally:
        with processes.sigint_ignored():  # a second Ctrl-C must not leave a worker running
            processes.kill(procs)
            _report(outdir, runner.ordered_rows(), items)
    return cli.EXIT_JOB_FAILED if any(row.status == FAILED for row in rows) else 0


def _in_flight(settings: Settings) -> int:
    return IN_FLIGHT_PER_GPU_PROCESS * processes.gpu_plan(settings).processes + IN_FLIGHT_EXTRA


def _digest(path: Path | None) -> str:
    if path is None:
        return ""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _report(outdir: Path, rows: list[Row], items: list[Item]) -> None:
    """summary.csv (items without a row yet: not done) and one line of counts."""
    seen = {row.input for row in rows}
    rows = rows + [Row(item.rel, "", NOT_DONE, "interrupted") for item in items if item.rel not in seen]
    path = write_summary(outdir, rows)
    counts = {status: sum(1 for row in rows if row.status == status)
              for status in (SUCCEEDED, SKIPPED, FAILED, NOT_DONE)}
    said = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in counts.items() if n)
    print(f"{len(rows)} items: {said}; summary in {path}")
