"""The `tintype` command: restore a file from the terminal, or run the whole system."""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from tintype import evaluate, instance, keys_cli, processes, workers_cli
from tintype.jobs import outputs as job_outputs
from tintype.jobs import state as jobstate
from tintype.jobs.intake import IntakeError, KeyframePart, Submission, create_job, parse_options
from tintype.jobs.options import FIELDS, Field, OptionError, parse_value
from tintype.media.errors import MediaError, ToolFailed
from tintype.media.master import FORMATS as VIDEO_MASTERS
from tintype.media.master16 import FORMATS as PHOTO_MASTERS
from tintype.media.sequence import FRAME_WRITERS, ImageSequence, find_sequence, is_sequence, unwrap_video, wrap_sequence
from tintype.provenance.record import SIGNED_SUFFIX, UNSIGNED_SUFFIX
from tintype.queue.app import make_celery
from tintype.queue.guard import cleanup_work
from tintype.queue.messages import PROBE, send
from tintype.restore_paths import (
    PHOTO_FORMATS,
    PathRefused,
    check_destination,
    check_folder,
    input_kind,
    result_format,
)
from tintype.settings import Settings, load_settings
from tintype.storage.db import upgrade
from tintype.storage.models import Job
from tintype.storage.objects import ObjectStore, store_from_settings

EXIT_BAD_INPUT, EXIT_JOB_FAILED = 2, 1
EXIT_INTERRUPTED = 128 + 2  # what shells report for a command ended by Ctrl-C (SIGINT)
FOLLOW_SECONDS = 0.1  # how often `restore` reads its job's row (a SQLite read: cheap)
FIELD_BY_NAME = {spec.name: spec for spec in FIELDS}


def main(argv: list[str] | None = None) -> int:
    """Run one command; Ctrl-C ends any of them with a line and 130, never a traceback
    (each command has already stopped what it started on the way out)."""
    args = build_parser().parse_args(argv)
    command = {"restore": cmd_restore, "run": cmd_run, "worker": cmd_worker, "migrate": cmd_migrate,
               "eval": evaluate.run, "keys": keys_cli.run, "workers": workers_cli.run_workers,
               "drain": workers_cli.run_drain}[args.command]
    try:
        return command(args)
    except KeyboardInterrupt:
        print("tintype: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def entry() -> None:
    """The `tintype` program: main(), then out at once.

    Everything a command does is done when main() returns (results renamed into place,
    workers killed, folders removed), yet the interpreter's teardown of the modules a
    restore loads (SQLAlchemy, Celery, numpy, OpenCV) took another 0.5-1 s before the shell
    got its prompt back. Streams and logs are flushed, then the process ends."""
    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tintype", description="Restore historical photographs and film.")
    sub = parser.add_subparsers(dest="command", required=True)
    restore = sub.add_parser("restore", help="colorize and/or inpaint an image, a video, an image sequence, "
                             "or a whole folder of photographs and films")
    restore.add_argument("input", type=Path, nargs="?",
                         help="a photograph or a video; an image sequence: a pattern such as "
                              "scans/reel_%%06d.dpx, or a folder of numbered frames (DPX, TIFF, PNG) restored into "
                              "an .mp4 or into a folder of frames; or a folder of photographs and films (a "
                              "collection, restored into a folder)")
    restore.add_argument("-o", "--output", type=Path, required=True,
                         help="the result: .png, .jpg or .jpeg for a photograph, .mp4 for a video or a sequence "
                              "(or, for a sequence, an existing folder: frames named like the input's); files "
                              "made beside it (a --master or --photo-master) go next to it as NAME-master.mkv ...; "
                              "for a collection, the folder of results (mirroring the input's sub-folders, with "
                              "summary.csv and the resume ledger)")
    restore.add_argument("--list", type=Path, metavar="FILE",
                         help="a collection named by a file: one path per line (relative to the file's folder)")
    restore.add_argument("--force", action="store_true", help="replace the output (and --keep-masks) if it exists; "
                         "for a collection, results in OUTDIR that no earlier run made; the input is never replaced")
    restore.add_argument("--inpaint-mask", type=Path, help="mask image for every frame, white = pixels to replace")
    restore.add_argument("--masks", type=Path,
                         help="one mask per frame: a mask video, a ZIP of images, or a folder of images")
    restore.add_argument("--keep-masks", type=Path, help="also save the masks the job filled here")
    restore.add_argument("--reference", type=Path, help="colour reference image guiding colorization")
    restore.add_argument("--keyframe", action="append", default=[], metavar="FRAME=IMAGE",
                         help="a colour picture of frame FRAME (from 0) of a video, any size; its colour is "
                              "carried through the shot (repeatable; implies --colorize)")
    restore.add_argument("--keyframes", type=Path, metavar="DIR",
                         help="a folder of colour pictures named by frame number (120.png, 000120.jpg)")
    add_option_flags(restore)
    restore.add_argument("--data-dir", type=Path, help="keep the job's database and objects here")
    sub.add_parser("run", help="start web server, CPU and GPU workers (embedded defaults)")
    worker = sub.add_parser("worker", help="start one worker pool")
    worker.add_argument("pool", choices=["cpu", "gpu"])
    worker.add_argument("-c", "--concurrency", type=int, default=None,
                        help="pool processes (cpu: 1; gpu: GPU_PROCESSES, by default one per GPU or per core)")
    sub.add_parser("migrate", help="bring the database schema up to date")
    keys_cli.add_arguments(sub.add_parser("keys", help="create, list and revoke API keys"))
    evaluate.add_arguments(sub.add_parser("eval", help="quality measures of a result: a table and JSON"))
    workers_cli.add_workers_arguments(sub.add_parser("workers", help="list worker processes: host, pool, what "
                                                                     "each runs, last heartbeat"))
    workers_cli.add_drain_arguments(sub.add_parser("drain", help="let the workers on a host finish their running "
                                                                 "work and exit"))
    return parser


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per job option (tintype.jobs.options.FIELDS): what the form and the API
    take, with the same names, choices and help; bounds are checked where the API
    checks them."""
    for spec in FIELDS:
        if spec.kind == "tristate":
            _add_tristate(parser, spec)
            continue
        parser.add_argument(*spec.cli_flags, dest=spec.name, help=_flag_help(spec), **_flag_kind(spec))


def _add_tristate(parser: argparse.ArgumentParser, spec: Field) -> None:
    """`--colorize` (yes) and `--no-colorize` (no); neither: auto, or no beside inpainting flags."""
    yes, no = spec.cli_flags
    parser.add_argument(yes, dest=spec.name, action="store_const", const="yes", default=None,
                        help="colorize, even an input that already has colour (without --colorize or "
                             "--no-colorize: a black-and-white input is colorized, one with colour is kept; "
                             "with inpainting flags alone, nothing is colorized)")
    parser.add_argument(no, dest=spec.name, action="store_const", const="no", help="never colorize")


def _flag_kind(spec: Field) -> dict[str, Any]:
    if spec.kind == "flag":
        return {"action": "store_true", "default": None}
    if spec.kind in ("int", "float"):
        return {"type": int if spec.kind == "int" else float, "metavar": spec.kind.upper()}
    if spec.kind == "choice":
        return {"choices": spec.choices}
    return {"metavar": "JSON" if spec.kind == "boxes" else "KINDS"}


def _flag_help(spec: Field) -> str:
    bounds = f" ({spec.low:g}..{spec.high:g})" if spec.low is not None else ""
    if spec.setting:
        bounds += f"; default: the {spec.setting.upper()} setting"
    elif spec.kind in ("int", "float", "choice"):
        bounds += f"; default: {spec.default}"
    return (spec.help + bounds).replace("%", "%%")


def cmd_migrate(_args: argparse.Namespace) -> int:
    upgrade(load_settings().database_url)
    print("database schema is up to date")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = load_settings()
    env = processes.child_env(settings)
    concurrency = args.concurrency or 1
    if args.pool == "gpu":
        plan = processes.gpu_plan(settings, args.concurrency)
        concurrency, env = plan.processes, processes.gpu_env(plan, env)
    cmd = processes.worker_command(args.pool, settings, concurrency, beat=args.pool == "cpu")
    if settings.metrics_dir is None:  # a directory of this process's own (its pid survives the exec)
        env.update(processes.metrics_env(settings.data_dir / "metrics" / f"{args.pool}-{os.getpid()}",
                                         settings.metrics_port))
    os.execvpe(cmd[0], cmd, env)
    return 0  # not reached


def cmd_run(_args: argparse.Namespace) -> int:
    settings = load_settings()
    address = f"{settings.web_host}:{settings.web_port}"
    try:
        processes.check_can_listen(settings.web_host, settings.web_port)
    except OSError as exc:
        print(f"tintype: cannot serve on {address}: {exc.strerror or exc}; stop what uses it or set WEB_PORT "
              "to another port", file=sys.stderr)
        return EXIT_BAD_INPUT
    running = instance.find_running(settings.data_dir)
    if running is not None:
        print(f"tintype: a tintype run (pid {running.pid}) already serves {settings.data_dir} at {running.url}; "
              "use it, or give this one another TINTYPE_DATA_DIR", file=sys.stderr)
        return EXIT_BAD_INPUT
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    plan = processes.gpu_plan(settings)
    env = processes.gpu_env(plan, processes.child_env(settings))
    logs = settings.data_dir / "logs"
    logs.mkdir(exist_ok=True)
    processes.exit_on_sigterm()
    # Worker metrics on the two ports after the web's (docs/metrics.md).
    metrics = settings.metrics_dir or settings.data_dir / "metrics"
    supervisor = processes.Supervisor(env, logs)  # a worker that exits is started again
    try:
        # CPU_WORKER_SLOTS processes: a streaming finalize holds one for its whole job, and
        # probes of other jobs and the reconciler need the others.
        supervisor.start("cpu-worker", processes.worker_command("cpu", settings, settings.cpu_worker_slots,
                                                                beat=True), restart=True,
                         env={**env, **processes.metrics_env(metrics / "cpu", settings.web_port + 1)})
        supervisor.start("gpu-worker", processes.worker_command("gpu", settings, plan.processes), restart=True,
                         env={**env, **processes.metrics_env(metrics / "gpu", settings.web_port + 2)})
        web = supervisor.start("web", processes.web_command(settings),
                               env={**env, **processes.metrics_env(metrics / "web")})
        return _serve(supervisor, web, settings, logs)
    except KeyboardInterrupt:
        return 0
    finally:
        instance.remove_record(settings.data_dir)
        supervisor.stop()


def _serve(supervisor: processes.Supervisor, web: subprocess.Popen, settings: Settings, logs: Path) -> int:
    """Say where tintype answers once it does, then supervise until a process that is not
    restarted (the web server) exits."""
    address = f"{settings.web_host}:{settings.web_port}"
    if not processes.wait_listening(web, settings.web_host, settings.web_port):
        print(f"tintype: the web server did not start on {address}; see {logs / 'web.log'}", file=sys.stderr)
        return 1
    instance.write_record(settings, instance.web_url(settings.web_host, settings.web_port))  # for `restore`
    print(f"tintype is running: http://{address}/  (logs in {logs}; Ctrl-C stops)", flush=True)
    failed = supervisor.watch()
    print(f"a tintype process exited ({failed}); see {logs}", file=sys.stderr)
    return 1


def cmd_restore(args: argparse.Namespace) -> int:
    from tintype.collection import command as collection

    if collection.is_collection(args):
        return collection.restore_collection(args)
    if args.input is None:
        print("tintype: name the file (or folder) to restore, or give --list FILE", file=sys.stderr)
        return EXIT_BAD_INPUT
    problem = _check_inputs(args) or _check_outputs(args, load_settings())
    if problem:
        print(f"tintype: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    kept = _served_folder() if args.data_dir is None else args.data_dir.resolve()
    private = kept is None  # removed afterwards
    if args.masks is not None and args.masks.is_dir():
        args.masks = _zip_folder(args.masks)
    wrapped = Path(tempfile.mkdtemp(prefix="tintype-sequence-")) if args.sequence is not None else None
    data_dir = Path(tempfile.mkdtemp(prefix="tintype-cli-")) if kept is None else kept
    try:
        if wrapped is not None:
            problem = _wrap(args, wrapped, load_settings())
            if problem:
                print(f"tintype: {problem}", file=sys.stderr)
                return EXIT_BAD_INPUT
        if args.frames_out is not None:
            args.output = wrapped / "result.mp4"
        code = _restore_in(data_dir, args, _private_cache() if private else {})
        return _unwrap(args, load_settings()) if code == 0 and args.frames_out is not None else code
    finally:
        with processes.sigint_ignored():
            if private:
                shutil.rmtree(data_dir, ignore_errors=True)
            if wrapped is not None:
                shutil.rmtree(wrapped, ignore_errors=True)


def _unwrap(args: argparse.Namespace, settings: Settings) -> int:
    """A sequence's result written back as frames in the folder -o named."""
    sequence: ImageSequence = args.sequence
    try:
        made = unwrap_video(args.output, sequence, args.frames_out, settings.ffmpeg_timeout_seconds)
    except (MediaError, ToolFailed) as exc:
        print(f"tintype: writing the frames failed: {exc}", file=sys.stderr)
        return EXIT_JOB_FAILED
    print(f"wrote {len(made)} frames to {args.frames_out / sequence.pattern.name}")
    return 0


def _frames_destination(args: argparse.Namespace) -> None:
    """-o names a folder for a sequence's frames: not the input's own, and no frame there
    already unless --force (checked before any work)."""
    sequence: ImageSequence = args.sequence
    folder = args.output
    if folder.resolve() == sequence.files[0].parent.resolve():
        raise PathRefused(f"-o {folder} is the input's folder; tintype never writes over its input: choose another")
    for flag in ("master", "photo_master"):
        if getattr(args, flag, None) not in (None, "none"):
            raise PathRefused(f"--{flag.replace('_', '-')} is written beside an MP4 result: frames written into "
                              f"the folder {folder} have no master; name an .mp4 with -o to keep one")
    taken = next((folder / f.name for f in sequence.files if (folder / f.name).exists()), None)
    if taken is not None and not args.force:
        raise PathRefused(f"-o {taken} already exists; choose another folder, or add --force to replace it")
    if sequence.pattern.suffix.lower() not in FRAME_WRITERS:
        raise PathRefused(f"a result cannot be written as {sequence.pattern.suffix} frames; name an MP4 with -o")
    check_folder(folder, "-o")
    args.frames_out = folder
    args.beside = folder / f"{sequence.name}.mp4"  # the manifest: <folder>/<sequence name>-c2pa.json


def _wrap(args: argparse.Namespace, folder: Path, settings: Settings) -> str | None:
    """An image sequence becomes the job's input: one lossless video at its own depth
    (tintype.media.sequence), named after the sequence; what went wrong, if anything."""
    sequence: ImageSequence = args.sequence
    if len(sequence.files) > settings.max_video_frames:
        return f"{sequence.pattern.name}: {len(sequence.files)} frames; the limit is {settings.max_video_frames}"
    try:
        args.input = wrap_sequence(sequence, args.sequence_fps, folder / f"{sequence.name}.mkv",
                                   settings.ffmpeg_timeout_seconds)
    except ToolFailed as exc:
        return f"{sequence.pattern.name}: ffmpeg could not read the sequence: {exc}"
    print(f"tintype: {len(sequence.files)} frames of {sequence.pattern.name} ({sequence.width}x{sequence.height} "
          f"{sequence.layout}) at {args.sequence_fps:g} fps", file=sys.stderr)
    return None


def _served_folder() -> Path | None:
    """Without --data-dir a restore keeps nothing, in a private folder, unless a `tintype
    run` serves TINTYPE_DATA_DIR: then the job goes to it (and stays in its job list)."""
    named = os.environ.get("TINTYPE_DATA_DIR")
    if not named:
        return None
    folder = Path(named).resolve()
    return folder if instance.find_running(folder) is not None else None


def _check_inputs(args: argparse.Namespace) -> str | None:
    """What is wrong with the files the job reads, if anything; sets `args.keyframe_parts`
    and `args.sequence` (the checked image sequence the input names, or None)."""
    args.sequence = None
    if is_sequence(args.input):
        try:
            args.sequence_fps = parse_value(FIELD_BY_NAME["sequence_fps"], args.sequence_fps) \
                if args.sequence_fps is not None else FIELD_BY_NAME["sequence_fps"].default
            args.sequence = find_sequence(args.input)
        except OptionError as exc:
            return str(exc)
        except MediaError as exc:
            return f"{args.input}: {exc}"
    elif not args.input.is_file():
        return f"input {args.input} does not exist"
    for label, path in (("mask", args.inpaint_mask), ("reference", args.reference)):
        if path is not None and not path.is_file():
            return f"{label} {path} does not exist"
    if args.masks is not None and not args.masks.exists():
        return f"masks {args.masks} do not exist"
    try:
        args.keyframe_parts = restore_keyframes(args)
    except IntakeError as exc:
        return str(exc)
    return None


def _check_outputs(args: argparse.Namespace, settings: Settings) -> str | None:
    """What is wrong with where the results go, found before any work (see
    tintype.restore_paths); sets `args.output_format` to what the extension names."""
    inputs = _input_paths(args)
    args.frames_out = None
    args.beside = args.output  # what files made beside the result are named after (output_path)
    try:
        if args.sequence is not None and args.output.is_dir():
            _frames_destination(args)
            _check_beside(args, inputs, [args.frames_out / f.name for f in args.sequence.files])
            return None
        check_destination(args.output, inputs, args.force)
        _check_beside(args, inputs, [args.output])
        kind = "video" if args.sequence is not None else \
            input_kind(args.input, settings.max_image_pixels, settings.ffmpeg_timeout_seconds, args.output)
        if kind is not None:  # neither an image nor a video: intake refuses it in its words
            fmt = result_format(kind, args.input, args.output, args.output_format)
            args.output_format = fmt if kind == "image" else None
        if kind == "image" and args.master not in (None, "none"):
            raise PathRefused(f"--master is for a video; {args.input.name} is a photograph (--photo-master keeps "
                              "a 16-bit master of one)")
    except PathRefused as exc:
        return str(exc)
    return None


def _check_beside(args: argparse.Namespace, inputs: list[Path], results: list[Path]) -> None:
    """--keep-masks and every file made beside the result (`results`: the result file, or
    the frames a sequence is written back as): none an input, a result, or an existing
    file without --force."""
    if args.keep_masks is not None:
        if any(args.keep_masks.resolve() == r.resolve() for r in results):
            raise PathRefused(f"--keep-masks {args.keep_masks} is one of the results; choose another name")
        check_destination(args.keep_masks, inputs, args.force, "--keep-masks")
    for flag, path in _made_beside(args):
        check_destination(path, inputs, args.force, flag)


def _input_paths(args: argparse.Namespace) -> list[Path]:
    """Every file the job reads: none of them may be an output."""
    given = [args.input, args.inpaint_mask, args.reference, args.masks, args.keyframes]
    given += [part.path for part in args.keyframe_parts]
    if args.sequence is not None:
        given += list(args.sequence.files)
    for folder in (args.masks, args.keyframes):
        if folder is not None and folder.is_dir():
            given += [p for p in folder.iterdir() if p.is_file()]
    return [p for p in given if p is not None]


def _private_cache() -> dict[str, str]:
    """A private folder is removed after the job, and the traced models with it: they are
    kept in the user's cache instead (MODEL_CACHE_DIR, when set, decides)."""
    if os.environ.get("MODEL_CACHE_DIR"):
        return {}
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return {"MODEL_CACHE_DIR": str(base / "tintype" / "model-cache")}


def _restore_in(data_dir: Path, args: argparse.Namespace, extra: dict[str, str]) -> int:
    own_folder = {"TINTYPE_DATA_DIR": str(data_dir), **extra}
    settings = load_settings({**os.environ, **own_folder})
    running = _reusable(settings)
    if running is None:
        upgrade(settings.database_url)
    form = restore_form(args)
    processes.exit_on_sigterm()
    procs: list[subprocess.Popen] = []
    job_id = job = None
    processes.adopt_orphans()
    try:
        if running is None:
            procs = _start_workers(settings, own_folder)
            gone = _workers_gone(procs, data_dir / "logs")
        else:
            print(f"tintype: using the running tintype (pid {running.pid}, {running.url}) of {data_dir}",
                  file=sys.stderr)
            gone = _instance_gone(running, data_dir / "logs")
        job_id = _submit(args, form, settings)
        if job_id is None:
            return EXIT_BAD_INPUT
        job = _follow(job_id, settings, gone)
    finally:
        with processes.sigint_ignored():  # a second Ctrl-C must not leave a worker running
            processes.kill(procs)
            if job_id is not None:
                _tidy(job_id, settings)
    return _deliver(job, settings, args)


def _reusable(settings: Settings) -> instance.Instance | None:
    """The `tintype run` serving this data folder with these services, if one is live.
    One on other services (another DATABASE_URL, BROKER_URL or STORAGE_URL) would never
    see the job: then this restore starts workers of its own, and says why."""
    running = instance.find_running(settings.data_dir)
    if running is not None and not running.same_services(settings):
        print(f"tintype: the tintype run (pid {running.pid}) of {settings.data_dir} uses other services "
              "(DATABASE_URL, BROKER_URL or STORAGE_URL); starting workers of this restore's own", file=sys.stderr)
        return None
    return running


def _start_workers(settings: Settings, own_folder: dict[str, str]) -> list[subprocess.Popen]:
    """One worker per pool, each in a process group of its own (killed with it at the end);
    the GPU pool with as many model processes as the machine suits (processes.gpu_plan),
    the CPU pool with two: the job's streaming finalize holds one while the job runs, and
    the reconciler must still be able to run beside it."""
    plan = processes.gpu_plan(settings)
    env = processes.gpu_env(plan, processes.child_env(settings, own_folder))
    logs = settings.data_dir / "logs"
    logs.mkdir(exist_ok=True)
    return [processes.start(processes.worker_command(pool, settings, concurrency),
                            {**env, **processes.metrics_env(settings.data_dir / "metrics" / pool)},
                            logs / f"{pool}-worker.log")
            for pool, concurrency in (("cpu", 2), ("gpu", plan.processes))]


def _workers_gone(procs: list[subprocess.Popen], logs: Path) -> Callable[[], str | None]:
    """What to say when one of this restore's workers has exited, else None."""
    return lambda: f"a worker exited; see {logs}" if any(p.poll() is not None for p in procs) else None


def _instance_gone(running: instance.Instance, logs: Path) -> Callable[[], str | None]:
    """What to say when the `tintype run` this restore uses has stopped, else None."""
    said = f"the tintype run (pid {running.pid}) stopped; see {logs}"
    return lambda: None if instance.pid_alive(running.pid) else said


def _tidy(job_id: str, settings: Settings) -> None:
    """The workers were killed, not asked to stop (the CLI's own, with nothing left worth
    waiting 5-15 s for), so their clean-up is done here: a job left unfinished (Ctrl-C, a
    dead worker) is cancelled (a running `tintype run` then stops working on it), and no
    job keeps its work objects in a kept --data-dir."""
    jobstate.cancel(settings.database_url, job_id)  # changes only a job still active
    cleanup_work(store_from_settings(settings), job_id)


def restore_form(args: argparse.Namespace) -> dict[str, Any]:
    """The job's options from the flags, in the form the front door takes: inpainting
    when anything marks what to remove; colorizing when asked (--colorize, keyframes), never
    with --no-colorize, and otherwise as intake decides (auto: a black-and-white input is
    colorized, one with colour kept) unless inpainting flags alone were given."""
    form: dict[str, Any] = {spec.name: getattr(args, spec.name) for spec in FIELDS}
    inpaint = any((args.inpaint_mask, args.masks, args.boxes, args.detect_damage))
    keyframes = bool(getattr(args, "keyframe", None) or getattr(args, "keyframes", None))
    form["colorize"] = args.colorize or ("yes" if keyframes else "no" if inpaint else "auto")
    form["inpaint"] = "1" if inpaint else None
    if form["output_format"] is None:
        form["output_format"] = PHOTO_FORMATS.get(args.output.suffix.lower())
    return form


def restore_keyframes(args: argparse.Namespace) -> list[KeyframePart]:
    """The keyframes of `--keyframe FRAME=IMAGE` and `--keyframes DIR`, as the front door
    takes them (files named by frame number); intake checks the rest."""
    parts = []
    for given in args.keyframe:
        frame, sep, name = given.partition("=")
        if not sep or not frame.strip().isdigit():
            raise IntakeError(f"--keyframe {given!r}: write FRAME=IMAGE, e.g. 120=frame120.png", "bad_keyframe_name")
        path = Path(name)
        if not path.is_file():
            raise IntakeError(f"keyframe {int(frame)}: {path} does not exist", "missing_keyframe")
        parts.append(KeyframePart(f"{int(frame)}{path.suffix or '.png'}", path))
    if args.keyframes is not None:
        if not args.keyframes.is_dir():
            raise IntakeError(f"--keyframes {args.keyframes} is not a folder", "missing_keyframe")
        parts += [KeyframePart(p.name, p) for p in sorted(args.keyframes.iterdir())
                  if p.is_file() and not p.name.startswith(".")]
    return parts


def _submit(args: argparse.Namespace, form: dict, settings: Settings) -> str | None:
    with args.input.open("rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    try:
        options = parse_options(form, settings)
        sub = Submission(args.input, args.input.name, args.input.stat().st_size, digest, options,
                         args.inpaint_mask, args.reference, args.masks, keyframes=args.keyframe_parts)
        celery = make_celery(settings)
        return create_job(sub, settings, store_from_settings(settings), settings.database_url,
                          lambda job_id: send(celery, PROBE, job_id))
    except IntakeError as exc:
        print(f"tintype: {args.input.name}: {exc}", file=sys.stderr)
        return None


def _follow(job_id: str, settings: Settings, gone: Callable[[], str | None]) -> Job | None:
    """The job once it has ended, with a progress bar meanwhile; None if what runs it is
    gone (`gone()` says what)."""
    from tqdm import tqdm

    shown = None
    with tqdm(total=1, unit="chunk", desc="queued", dynamic_ncols=True) as bar:
        while True:
            job = jobstate.get_job(settings.database_url, job_id)
            state = (job.stage, job.chunks_done, job.chunks_total)
            if state != shown:
                bar.total, bar.n = max(1, job.chunks_total), job.chunks_done
                bar.set_description(job.stage)
                bar.refresh()
                shown = state
            if job.status in ("succeeded", "failed", "cancelled"):
                return job
            problem = gone()
            if problem is not None:
                print(f"tintype: {problem}", file=sys.stderr)
                return None
            time.sleep(FOLLOW_SECONDS)


def _deliver(job: Job | None, settings: Settings, args: argparse.Namespace) -> int:
    """Write what a finished job made where the user asked, or say why it failed."""
    if job is None:
        return EXIT_JOB_FAILED
    if job.status != "succeeded":
        print(f"tintype: job {job.status}: {job.error or ''}", file=sys.stderr)
        return EXIT_JOB_FAILED
    store = store_from_settings(settings)
    write_object(store, job.output_key, args.output)
    for made, path in _write_outputs(store, job, getattr(args, "beside", None) or args.output):
        print(f"wrote the {_in_a_sentence(made.label)} to {path}")
    if args.keep_masks is not None and job.used_masks_key:
        write_object(store, job.used_masks_key, args.keep_masks)
        print(f"wrote the masks used to {args.keep_masks}")
    for note in job.notes or []:
        print(f"note: {note}")
    if getattr(args, "frames_out", None) is None:  # else the frames are written from it next (_unwrap)
        print(f"wrote {args.output} ({job.output_bytes} bytes)")
    return 0


def _in_a_sentence(label: str) -> str:
    """"Archival master (...)" → "archival master (...)"; "C2PA manifest" stays as it is."""
    return label[:1].lower() + label[1:] if label[1:2].islower() else label


def output_path(result: Path, suffix: str) -> Path:
    """Where a file made beside the result goes: next to it, `<result stem>-<suffix>`."""
    return result.with_name(f"{result.stem}-{suffix}")


def _made_beside(args: argparse.Namespace) -> list[tuple[str, Path]]:
    """The files this restore may write next to the result (`args.beside`), known before
    the job runs, with what asks for each: the masters asked for, and the C2PA manifests
    (tintype.provenance). A manifest's name, signed or unsigned, is decided by the workers'
    settings (a `tintype run`'s, not this command's) and by the master's format (an FFV1 or
    TIFF master gets an unsigned sidecar even with a key), so both names are checked."""
    base = getattr(args, "beside", None) or args.output
    made = [("its C2PA manifest", output_path(base, m)) for m in (SIGNED_SUFFIX, UNSIGNED_SUFFIX)]
    if (photo := PHOTO_MASTERS.get(getattr(args, "photo_master", None) or "none")) is not None:
        made.append(("--photo-master", output_path(base, f"master.{photo[0]}")))
    if (video := VIDEO_MASTERS.get(getattr(args, "master", None) or "none")) is not None:
        made.append(("--master", output_path(base, f"master.{video.extension}")))
    if photo is not None or video is not None:
        made += [("the master's C2PA manifest", output_path(base, f"master-{m}"))
                 for m in (SIGNED_SUFFIX, UNSIGNED_SUFFIX)]
    return made


def _write_outputs(store: ObjectStore, job: Job, result: Path) -> list[tuple[job_outputs.Output, Path]]:
    """Every output a job recorded beside its result (tintype.jobs.outputs), written next
    to the result; each with where it went."""
    written = []
    for made in job_outputs.of(job).values():
        written.append((made, output_path(result, made.suffix)))
        write_object(store, made.key, written[-1][1])
    return written


def write_object(store: ObjectStore, key: str, path: Path, then: Callable[[], None] | None = None) -> None:
    """Copy through a hidden file renamed into place: an interrupted copy leaves no half
    file under the user's name, and --force replaces a link instead of writing through it.
    `then` (what records the result) runs with the rename, Ctrl-C held back until both
    are done."""
    part = path.with_name(f".{path.name}.part")
    try:
        store.get_file(key, part)
        with processes.sigint_deferred():
            os.replace(part, path)
            if then is not None:
                then()
    finally:
        part.unlink(missing_ok=True)


def _zip_folder(folder: Path) -> Path:
    """A folder of per-frame mask images becomes a ZIP, the form the front door takes."""
    import zipfile

    out = Path(tempfile.mkdtemp(prefix="tintype-masks-")) / "masks.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
            archive.write(path, path.name)
    return out


if __name__ == "__main__":
    entry()
