"""Whole collections: `tintype restore DIR -o OUTDIR` (CSV, resume, exit status) and its
parts (items, ledger) on the embedded defaults."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.media_factory import grey_photo, grey_video
from tests.test_cli import _cli
from tintype.collection.items import Item, read_list, result_rel, scan_folder
from tintype.collection.ledger import LEDGER_NAME, Entry, Ledger, item_key


def _collection(folder: Path) -> None:
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(grey_photo(160, 120), "L").save(folder / "a.png")
    Image.fromarray(grey_photo(120, 90), "L").save(folder / "sub" / "b.jpg", quality=90)
    grey_video(folder / "sub" / "film.mov", size="160x120", frames=12, rate="24", audio=False)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"not a photograph" * 8)
    (folder / "notes.txt").write_text("not part of the collection")


def _summary(outdir: Path) -> dict[str, dict[str, str]]:
    with (outdir / "summary.csv").open(newline="") as fh:
        return {row["input"]: row for row in csv.DictReader(fh)}


@pytest.mark.slow
def test_folder_is_restored_summarised_and_resumed(tmp_path):
    source, out = tmp_path / "scans", tmp_path / "restored"
    _collection(source)
    first = _cli("restore", str(source), "-o", str(out), data_dir=tmp_path / "unused")
    assert first.returncode == 1, first.stderr[-3000:]  # the broken file failed; the rest went on
    rows = _summary(out)
    assert set(rows) == {"a.png", "broken.jpg", "sub/b.jpg", "sub/film.mov"}
    assert rows["broken.jpg"]["status"] == "failed" and "cannot be decoded" in rows["broken.jpg"]["reason"]
    for name, result in (("a.png", "a.png"), ("sub/b.jpg", "sub/b.jpg"), ("sub/film.mov", "sub/film.mp4")):
        assert (rows[name]["status"], rows[name]["output"]) == ("succeeded", result), rows[name]
    assert json.loads(rows["sub/film.mov"]["quality"])["frames"] == 12
    with Image.open(out / "a.png") as img:
        assert img.format == "PNG" and img.size == (160, 120)
        rgb = np.asarray(img.convert("RGB")).astype(int)
    assert np.abs(rgb[..., 0] - rgb[..., 2]).mean() > 1  # colorized, not the grey input
    with Image.open(out / "sub" / "b.jpg") as img:
        assert img.format == "JPEG"  # a photograph keeps its format
    assert (out / "sub" / "film.mp4").stat().st_size > 0 and not (out / "notes.txt").exists()
    for stem in ("a", "sub/b", "sub/film"):  # each result's provenance manifest beside it
        assert [json.loads(p.read_text()) for p in out.glob(f"{stem}-c2pa*.json")], stem

    Image.fromarray(grey_photo(100, 80), "L").save(source / "sub" / "b.jpg", quality=90)  # changed since
    second = _cli("restore", str(source), "-o", str(out), data_dir=tmp_path / "unused")
    assert second.returncode == 1, second.stderr[-3000:]
    rows = _summary(out)
    assert {name: row["status"] for name, row in rows.items()} == {
        "a.png": "skipped", "sub/film.mov": "skipped", "sub/b.jpg": "succeeded", "broken.jpg": "failed"}
    with Image.open(out / "sub" / "b.jpg") as img:
        assert img.size == (100, 80)  # the changed item was restored again
    assert "1 succeeded, 2 skipped, 1 failed" in second.stdout

    (source / "broken.jpg").unlink()  # nothing left to do: exit 0, every item skipped, no workers needed
    third = _cli("restore", str(source), "-o", str(out), data_dir=tmp_path / "unused")
    assert third.returncode == 0 and {row["status"] for row in _summary(out).values()} == {"skipped"}


def test_collection_mistakes_are_refused_before_any_work(tmp_path, monkeypatch, capsys):
    from tintype.cli import main

    monkeypatch.setenv("TINTYPE_DATA_DIR", str(tmp_path / "d"))
    source = tmp_path / "scans"
    source.mkdir()
    Image.fromarray(grey_photo(32, 24), "L").save(source / "a.png")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "empty").mkdir()
    cases = [
        (("restore", str(source), "-o", str(tmp_path / "afile")), "is a file"),
        (("restore", str(source), "-o", str(source)), "own folder"),
        (("restore", str(source), "-o", str(tmp_path / "o"), "--keep-masks", str(tmp_path / "m.png")), "one file"),
        (("restore", "--list", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "o")), "does not exist"),
        (("restore", str(tmp_path / "empty"), "-o", str(tmp_path / "o")), "no photographs or films"),
        (("restore", str(source), "-o", str(tmp_path / "o"), "--saturation", "99"), "saturation"),
        (("restore", "-o", str(tmp_path / "o")), "name the file (or folder)"),
        (("restore", str(source), "-o", str(tmp_path / "o"), "--master", "ffv1"), "one file at a time"),
        (("restore", str(source), "-o", str(tmp_path / "o"), "--photo-master", "tiff16"), "one file at a time"),
        (("restore", str(source), "-o", str(tmp_path / "afile" / "o")), "cannot be made"),
    ]
    for argv, said in cases:
        assert main(list(argv)) == 2, argv
        assert said in capsys.readouterr().err, argv
    assert not (tmp_path / "o").exists() and not (tmp_path / "d").exists()


@pytest.mark.slow
def test_ctrl_c_stops_a_collection_with_a_true_ledger(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from tests.test_cli import ROOT

    source, out = tmp_path / "scans", tmp_path / "restored"
    source.mkdir()
    for n in range(8):
        Image.fromarray(grey_photo(96, 72), "L").save(source / f"{n}.png")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL", "STORAGE_URL")}
    env.update(TINTYPE_DATA_DIR=str(tmp_path / "d"), TORCH_THREADS="1")
    cli = subprocess.Popen([sys.executable, "-m", "tintype.cli", "restore", str(source), "-o", str(out)], env=env,
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out.is_dir() and any(p.suffix == ".png" for p in out.iterdir())):
            assert cli.poll() is None and time.monotonic() < deadline, "no result appeared"
            time.sleep(0.1)
        workers = subprocess.run(["pgrep", "-P", str(cli.pid)], capture_output=True, text=True).stdout.split()
        cli.send_signal(signal.SIGINT)
        code = cli.wait(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert code == 130
    rows = _summary(out)
    done = {name for name, row in rows.items() if row["status"] == "succeeded"}
    assert len(rows) == 8 and 0 < len(done) < 8, rows
    assert {row["status"] for name, row in rows.items() if name not in done} == {"not_done"}
    ledger = Ledger(out)
    assert set(ledger.entries) == done and all((out / name).is_file() for name in done)
    time.sleep(0.5)
    assert workers and not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


def test_a_folder_holds_media_by_extension_and_mirrors_sub_folders(tmp_path):
    (tmp_path / "in" / "1950s").mkdir(parents=True)
    (tmp_path / "in" / ".hidden").mkdir()
    for name in ("1950s/x.TIF", "1950s/y.jpeg", "reel.mkv", "readme.md", ".hidden/z.png", ".dot.png"):
        (tmp_path / "in" / name).write_bytes(b"x")
    (tmp_path / "in" / "out").mkdir()
    (tmp_path / "in" / "out" / "old.png").write_bytes(b"x")
    items = scan_folder(tmp_path / "in", tmp_path / "in" / "out")
    assert [i.rel for i in items] == ["reel.mkv", "1950s/x.TIF", "1950s/y.jpeg"]
    assert [result_rel(i, k, None) for i, k in zip(items, ("video", "image", "image"))] == [
        "reel.mp4", "1950s/x.png", "1950s/y.jpeg"]
    assert result_rel(items[2], "image", "png") == "1950s/y.png"


def test_a_list_is_read_from_its_own_folder(tmp_path):
    (tmp_path / "box" / "a").mkdir(parents=True)
    listing = tmp_path / "box" / "files.txt"
    listing.write_text("# reel one\na/one.png\n\n" + str(tmp_path / "box" / "two.jpg") + "\n")
    assert [(i.source, i.rel) for i in read_list(listing)] == [
        (tmp_path / "box" / "a" / "one.png", "a/one.png"), (tmp_path / "box" / "two.jpg", "two.jpg")]


def test_a_list_never_places_a_result_outside_outdir(tmp_path):
    (tmp_path / "box").mkdir()
    listing = tmp_path / "box" / "files.txt"
    listing.write_text("a/one.png\n../elsewhere/two.png\nsub/../three.png\n")
    items = read_list(listing)
    assert [(i.source, i.rel) for i in items] == [
        (tmp_path / "box" / "a" / "one.png", "box/a/one.png"),
        (tmp_path / "elsewhere" / "two.png", "elsewhere/two.png"),
        (tmp_path / "box" / "three.png", "box/three.png")]


class _Bar:
    def update(self, n: int) -> None:
        pass

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        pass


def _runner(tmp_path: Path, names: list[str]):
    """A Runner on its own embedded data folder, with no workers: jobs are made by intake
    and then ended (or deleted) in the database, as workers or the API would."""
    from tintype.collection.runner import Collection, Runner
    from tintype.settings import load_settings
    from tintype.storage.db import upgrade

    settings = load_settings({"TINTYPE_DATA_DIR": str(tmp_path / "data")})
    upgrade(settings.database_url)
    (tmp_path / "in").mkdir()
    for name in names:
        Image.fromarray(grey_photo(32, 24), "L").save(tmp_path / "in" / name)
    run = Collection(settings, tmp_path / "out", {}, "opts", remove_jobs=True)
    (tmp_path / "out").mkdir()
    return Runner(run, scan_folder(tmp_path / "in"), Ledger(tmp_path / "out"))


def test_each_job_ends_as_a_row_with_its_manifest_beside_its_result(tmp_path):
    from tintype.jobs.outputs import Output, record
    from tintype.storage import keys
    from tintype.storage.db import session_scope
    from tintype.storage.models import Job

    runner, bar = _runner(tmp_path, ["a.png", "b.png", "c.png"]), _Bar()
    for item in runner.items:
        runner._start(item, bar)
    jobs = {plan.item.rel: job_id for job_id, plan in runner.active.items()}
    assert set(jobs) == {"a.png", "b.png", "c.png"}
    manifest = keys.extra_output_key(jobs["a.png"], "manifest", "json")
    (tmp_path / "m.json").write_text('{"claim": 1}')
    runner.store.put_file(manifest, tmp_path / "m.json")
    with session_scope(runner.db) as s:
        a, b = s.get(Job, jobs["a.png"]), s.get(Job, jobs["b.png"])
        a.status, a.output_key = "succeeded", keys.input_key(jobs["a.png"])
        a.outputs = record({"manifest": Output(manifest, "application/json", 12, "c2pa-unsigned.json", "Manifest")})
        b.status, b.output_key = "succeeded", "jobs/nothing-there.png"  # its result cannot be fetched
        s.delete(s.get(Job, jobs["c.png"]))  # deleted through the API while in flight
    runner._collect(bar)
    assert not runner.active  # nothing left to wait for: the run ends
    rows = {row.input: row for row in runner.ordered_rows()}
    assert rows["a.png"].status == "succeeded" and (tmp_path / "out" / "a.png").is_file()
    assert (tmp_path / "out" / "a-c2pa-unsigned.json").read_text() == '{"claim": 1}'
    assert rows["b.png"].status == "failed" and "could not be written" in rows["b.png"].reason
    assert rows["c.png"].status == "failed" and rows["c.png"].reason == "the job was removed"


def test_a_ctrl_c_as_a_result_lands_leaves_ledger_and_summary_agreeing(tmp_path):
    """A Ctrl-C pressed just as a result's ledger line is written waits for the row (it once
    made test_ctrl_c_stops_a_collection_with_a_true_ledger fail now and then: the ledger
    named a result its summary called not done)."""
    import signal

    from tintype.storage import keys
    from tintype.storage.db import session_scope
    from tintype.storage.models import Job

    class Pressed(Ledger):
        def record(self, entry: Entry) -> None:
            super().record(entry)
            signal.raise_signal(signal.SIGINT)

    runner, bar = _runner(tmp_path, ["a.png"]), _Bar()
    runner.ledger = Pressed(tmp_path / "out")
    runner._start(runner.items[0], bar)
    [job_id] = runner.active
    with session_scope(runner.db) as s:
        job = s.get(Job, job_id)
        job.status, job.output_key = "succeeded", keys.input_key(job_id)
    with pytest.raises(KeyboardInterrupt):
        runner._collect(bar)
    [row] = runner.ordered_rows()
    assert row.status == "succeeded" and set(Ledger(tmp_path / "out").entries) == {"a.png"}
    assert (tmp_path / "out" / "a.png").is_file()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_item_that_cannot_be_stored_is_a_failed_row(tmp_path):
    from tintype.storage.objects import LocalStore

    runner, bar = _runner(tmp_path, ["a.png"]), _Bar()
    runner.store = LocalStore(tmp_path / "store")
    (tmp_path / "store").rmdir()
    (tmp_path / "store").write_text("a file where the store's folder was (a lost mount, a full disk)")
    runner._start(runner.items[0], bar)
    [row] = runner.ordered_rows()
    assert row.status == "failed" and row.reason and not runner.active


def test_the_ledger_survives_a_torn_line_and_notices_changes(tmp_path):
    photo = tmp_path / "p.png"
    photo.write_bytes(b"1234")
    (tmp_path / "p-out.png").write_bytes(b"r")
    ledger = Ledger(tmp_path)
    key = item_key(photo, "opts")
    ledger.record(Entry("p.png", "p-out.png", key))
    with (tmp_path / LEDGER_NAME).open("a") as fh:
        fh.write('{"rel": "q.png", "outp')  # an interruption mid-line
    again = Ledger(tmp_path)
    assert again.done("p.png", key, tmp_path) is not None and again.made("p-out.png")
    assert again.done("p.png", item_key(photo, "other options"), tmp_path) is None
    photo.write_bytes(b"12345")
    assert again.done("p.png", item_key(photo, "opts"), tmp_path) is None
    (tmp_path / "p-out.png").unlink()
    assert again.done("p.png", key, tmp_path) is None  # the result is gone: restore it again
    assert Item(photo, "p.png").rel == "p.png"
