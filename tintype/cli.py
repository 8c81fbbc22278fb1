"""The `tintype` command: restore a file from the terminal, or run the whole system."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tintype import evaluate, keys_cli, processes, workers_cli
from tintype.jobs import state as jobstate
from tintype.jobs.intake import IntakeError, KeyframePart, Submission, create_job, parse_options
from tintype.jobs.options import FIELDS, Field
from tintype.queue.app import make_celery
from tintype.queue.messages import PROBE, send
from tintype.settings import Settings, load_settings
from tintype.storage.db import upgrade
from tintype.storage.objects import store_from_settings

EXIT_BAD_INPUT, EXIT_JOB_FAILED = 2, 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return {"restore": cmd_restore, "run": cmd_run, "worker": cmd_worker, "migrate": cmd_migrate,
            "eval": evaluate.run, "keys": keys_cli.run, "workers": workers_cli.run_workers,
            "drain": workers_cli.run_drain}[args.command](args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tintype", description="Restore historical photographs and film.")
    sub = parser.add_subparsers(dest="command", required=True)
    restore = sub.add_parser("restore", help="colorize and/or inpaint one image or video")
    restore.add_argument("input", type=Path)
    restore.add_argument("-o", "--output", type=Path, required=True)
    restore.add_argument("--colorize", action="store_true", help="colorize (the default if no operation is given)")
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
    worker.add_argument("-c", "--concurrency", type=int, default=1)
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
        parser.add_argument(*spec.cli_flags, dest=spec.name, help=_flag_help(spec), **_flag_kind(spec))


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
    cmd = processes.worker_command(args.pool, settings, args.concurrency, beat=args.pool == "cpu")
    os.execvpe(cmd[0], cmd, processes.child_env(settings))
    return 0  # not reached


def cmd_run(_args: argparse.Namespace) -> int:
    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    env = processes.child_env(settings)
    logs = settings.data_dir / "logs"
    logs.mkdir(exist_ok=True)
    processes.exit_on_sigterm()
    supervisor = processes.Supervisor(env, logs)  # a worker that exits is started again
    supervisor.start("cpu-worker", processes.worker_command("cpu", settings, 2, beat=True), restart=True)
    supervisor.start("gpu-worker", processes.worker_command("gpu", settings, 1), restart=True)
    supervisor.start("web", processes.web_command(settings))
    print(f"tintype is running: http://{settings.web_host}:{settings.web_port}/  (logs in {logs}; Ctrl-C stops)",
          flush=True)
    try:
        failed = supervisor.watch()
        print(f"a tintype process exited ({failed}); see {logs}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        supervisor.stop()


def cmd_restore(args: argparse.Namespace) -> int:
    if not args.input.is_file():
        print(f"tintype: input {args.input} does not exist", file=sys.stderr)
        return EXIT_BAD_INPUT
    for label, path in (("mask", args.inpaint_mask), ("reference", args.reference)):
        if path is not None and not path.is_file():
            print(f"tintype: {label} {path} does not exist", file=sys.stderr)
            return EXIT_BAD_INPUT
    if args.masks is not None and not args.masks.exists():
        print(f"tintype: masks {args.masks} do not exist", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        args.keyframe_parts = restore_keyframes(args)
    except IntakeError as exc:
        print(f"tintype: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    private = args.data_dir is None
    if args.masks is not None and args.masks.is_dir():
        args.masks = _zip_folder(args.masks)
    data_dir = Path(tempfile.mkdtemp(prefix="tintype-cli-")) if private else args.data_dir.resolve()
    try:
        return _restore_in(data_dir, args)
    finally:
        if private:
            shutil.rmtree(data_dir, ignore_errors=True)


def _restore_in(data_dir: Path, args: argparse.Namespace) -> int:
    own_folder = {"TINTYPE_DATA_DIR": str(data_dir)}
    settings = load_settings({**os.environ, **own_folder})
    upgrade(settings.database_url)
    form = restore_form(args)
    env = processes.child_env(settings, own_folder)
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)
    processes.exit_on_sigterm()
    procs = [processes.start(processes.worker_command("cpu", settings, 1), env, logs / "cpu-worker.log"),
             processes.start(processes.worker_command("gpu", settings, 1), env, logs / "gpu-worker.log")]
    try:
        job_id = _submit(args, form, settings)
        if job_id is None:
            return EXIT_BAD_INPUT
        return _follow(job_id, settings, args, procs, logs)
    finally:
        processes.stop(procs)


def restore_form(args: argparse.Namespace) -> dict[str, Any]:
    """The job's options from the flags, in the form the front door takes: inpainting
    when anything marks what to remove, colorizing when asked or when nothing else is."""
    form: dict[str, Any] = {spec.name: getattr(args, spec.name) for spec in FIELDS}
    inpaint = any((args.inpaint_mask, args.masks, args.boxes, args.detect_damage))
    keyframes = bool(getattr(args, "keyframe", None) or getattr(args, "keyframes", None))
    form["colorize"] = "1" if args.colorize or keyframes or not inpaint else None
    form["inpaint"] = "1" if inpaint else None
    if form["output_format"] is None:
        form["output_format"] = "jpeg" if args.output.suffix.lower() in (".jpg", ".jpeg") else "png"
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


def _follow(job_id: str, settings: Settings, args: argparse.Namespace, procs: list[subprocess.Popen],
            logs: Path) -> int:
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
                break
            if any(p.poll() is not None for p in procs):
                print(f"tintype: a worker exited; see {logs}", file=sys.stderr)
                return EXIT_JOB_FAILED
            time.sleep(0.5)
    if job.status != "succeeded":
        print(f"tintype: job {job.status}: {job.error or ''}", file=sys.stderr)
        return EXIT_JOB_FAILED
    store = store_from_settings(settings)
    store.get_file(job.output_key, args.output)
    if args.keep_masks is not None and job.used_masks_key:
        store.get_file(job.used_masks_key, args.keep_masks)
        print(f"wrote the masks used to {args.keep_masks}")
    for note in job.notes or []:
        print(f"note: {note}")
    print(f"wrote {args.output} ({job.output_bytes} bytes)")
    return 0


def _zip_folder(folder: Path) -> Path:
    """A folder of per-frame mask images becomes a ZIP, the form the front door takes."""
    import zipfile

    out = Path(tempfile.mkdtemp(prefix="tintype-masks-")) / "masks.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
            archive.write(path, path.name)
    return out


if __name__ == "__main__":
    sys.exit(main())
