"""Workers on other machines: each GPU worker and the CPU worker in its own network
namespace (tests/netns.py), reaching Redis, PostgreSQL and S3 only across a bridge whose
links the test cuts, heals, slows and makes lossy while a video is processed.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest

from tests import netns
from tests.media_factory import grey_video
from tests.stack import BUCKET, PREFIX, TERMINAL, Stack, running_stack
from tests.test_chaos import FAST_RECOVERY, _wait_for, assert_nothing_lost
from tintype.queue.messages import CHUNK

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.timeout(600)]
DELAY_MS, LOSS_PERCENT = 50, 2.5  # each way: 100 ms more round trip, ~5 % of round trips lose a frame
# moto's request log: `10.213.7.3 - - [date] "PUT /bucket/it/jobs/<id>/work/chunk-000002.mkv HTTP/1.1" 200 -`
S3_WRITE = re.compile(r'^(\S+) .*"(PUT|POST) /' + BUCKET + "/" + PREFIX + r'/jobs/([0-9a-f-]+)/work/'
                      r'chunk-(\d+)\.mkv(\?\S*)? HTTP/[\d.]+" (\d+)')


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return grey_video(tmp_path_factory.mktemp("hosts") / "clip.mp4", size="320x240", frames=72, audio=True)


@pytest.fixture()
def network(tmp_path) -> Iterator[netns.Network]:
    """A bridge for this test's hosts; every namespace and link it made is removed after."""
    reason = netns.refusal()
    if reason is not None:
        print(f"skipped: {reason}")
        pytest.skip(reason)
    left = netns.clean_leftovers()
    if left:
        print(f"removed namespaces and links left by a crashed run: {left}")
    network = netns.Network(logs=tmp_path)
    try:
        yield network.up()
    finally:
        network.close()


def _chunk_writes(stack: Stack, job_id: str) -> dict[int, list[str]]:
    """The hosts that stored each chunk's result, one entry per completed write
    (a PUT, or the POST that completes a multipart upload), from the S3 server's log."""
    writes: dict[int, list[str]] = {}
    for line in (stack.logs / "s3.log").read_text(errors="replace").splitlines():
        m = S3_WRITE.match(line)
        if not m or m.group(3) != job_id or not m.group(6).startswith("2"):
            continue
        method, query = m.group(2), m.group(5) or ""
        if (method == "PUT" and "partNumber=" not in query) or (method == "POST" and "uploadId=" in query):
            writes.setdefault(int(m.group(4)), []).append(m.group(1))
    return writes


def _task_ends(log: Path, since: int) -> tuple[set[str], set[str]]:
    """Chunk task ids received, and those that ended for good (not a retry: the retry runs
    again under the same id; a reject without requeue is an end: the message is dropped and
    the reconciler's re-send is the chunk's next run), in a worker log from byte `since`."""
    text = log.read_bytes()[since:].decode(errors="replace")
    received = set(re.findall(rf"Task {re.escape(CHUNK)}\[([0-9a-f-]+)\] received", text))
    ends = "succeeded|raised|failed|reject requeue=False"
    ended = set(re.findall(rf"Task {re.escape(CHUNK)}\[([0-9a-f-]+)\] (?:{ends})", text))
    return received, ended


def test_workers_on_other_hosts_survive_a_cut_link_and_a_lossy_one(network, clip, tmp_path, reliability):
    reliability.injected("workers as separate hosts (own network namespace and address on a bridge): one GPU "
                         "worker's link cut mid-chunk and healed once its chunk was redone elsewhere; the other "
                         f"GPU worker's link delayed {DELAY_MS} ms and losing {LOSS_PERCENT} % of frames each way")
    cut = network.add_host("gpu1")
    slow = network.add_shapable_host("gpu2", DELAY_MS, LOSS_PERCENT)
    cpu = network.add_host("cpu")
    wrap = {"gpu-worker": cut.prefix, "gpu-worker-2": slow.prefix, "cpu-worker": cpu.prefix}
    with running_stack(tmp_path / "stack", FAST_RECOVERY, private_postgres=True, host=network.gateway,
                       gpu_workers=2, wrap=wrap) as stack:
        calm = stack.wait(stack.submit(clip, operations="colorize").json()["id"], timeout=300)
        assert calm["status"] == "succeeded", stack.tail()
        calm_writes = _chunk_writes(stack, calm["id"])
        assert {h for hosts in calm_writes.values() for h in hosts} <= {cut.address, slow.address}, calm_writes
        reference = _output_sha(stack, calm["id"])

        network.shape("gpu2")
        gpu1_log = stack.logs / "gpu-worker.log"
        for _ in range(3):  # a job whose chunks all end before the cut can land is tried again
            job_id, stale = _cut_mid_chunk(stack, network, clip, gpu1_log)
            cut_at = time.monotonic()
            _wait_for("the cut worker's chunk to be redone elsewhere, or the job to end",
                      lambda j=job_id: _redone(stack, j) is not None or _status(stack, j) in TERMINAL,
                      timeout=240, every=0.5)
            victim = _redone(stack, job_id)
            if victim is not None:
                break
            network.heal("gpu1")  # gpu1 finished its chunk just before the cut: nothing to redo
        else:
            raise AssertionError(f"no cut landed mid-chunk in 3 jobs\n{stack.tail()}")
        network.heal("gpu1")
        healed_after = time.monotonic() - cut_at
        job = stack.wait(job_id, timeout=300)
        checked = assert_nothing_lost(stack, job_id, job)
        # The cut worker comes back: wait for the chunk task it held to end. A retry of it goes
        # back to the GPU queue, so either GPU worker may be the one that runs and ends it.
        gpu_logs = [gpu1_log, stack.logs / "gpu-worker-2.log"]
        _wait_for("the healed worker's stale chunk task to end (on either GPU worker)",
                  lambda: stale <= _ended(gpu_logs), timeout=240, every=0.5)
        stack.check_alive()
        assert _output_sha(stack, job_id) == reference
        writes = _chunk_writes(stack, job_id)
        chunks = stack.db("SELECT index, attempts, status FROM chunks WHERE job_id = :j ORDER BY index", j=job_id)
        total = stack.db("SELECT chunks_total, chunks_done FROM jobs WHERE id = :j", j=job_id)[0]
        assert sorted(writes) == [row[0] for row in chunks], (writes, chunks)
        twice = {index: hosts for index, hosts in writes.items() if len(hosts) != 1}
        assert not twice, f"chunk results written more than once: {twice}"
        assert writes[victim] == [slow.address], writes
        assert total[0] == total[1] == len(chunks), total
        assert all(status == "done" for _, _, status in chunks), chunks
        assert {i: a for i, a, _ in chunks}[victim] == 2, chunks
        stale_end = _stale_answer(gpu_logs, stale)
    by_host = Counter(h for hosts in writes.values() for h in hosts)
    reliability.saw(f"links: gpu1 {cut.address}, gpu2 {slow.address} (shaped by {slow.shaping}), cpu {cpu.address}; "
                    f"services on {network.gateway}")
    reliability.saw(f"chunk {victim} was running on gpu1 when its link went down; the reconciler re-sent it after "
                    f"the lease and gpu2 redid it; the link was healed {healed_after:.0f} s after the cut; gpu1's "
                    f"stale task then ended: {stale_end}")
    reliability.saw(f"chunk results stored by host: {dict(by_host)}; job {job['progress']['done']}/"
                    f"{job['progress']['total']} chunks")
    reliability.check("output SHA-256 identical to the undisturbed run of the same clip on the same hosts")
    reliability.check("each chunk result PUT to S3 exactly once (S3 server request log), by one host, before and "
                      "after the heal; chunks_done counted once per chunk; the cut chunk attempted exactly twice")
    reliability.check(checked[0] + "; every worker process still alive")


def _output_sha(stack: Stack, job_id: str) -> str:
    body = stack.s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/jobs/{job_id}/output.mp4")["Body"].read()
    return hashlib.sha256(body).hexdigest()


def _cut_mid_chunk(stack: Stack, network: netns.Network, clip: Path, log: Path) -> tuple[str, set[str]]:
    """Submit a job and cut gpu1's link while it runs a chunk: its log shows a chunk task in
    flight and the database has as many running chunks as both workers have tasks in flight
    (so gpu1's chunk is marked running, not just received). Returns the job and that task's id."""
    other = log.with_name("gpu-worker-2.log")
    seen, seen_other = log.stat().st_size, other.stat().st_size
    job_id = stack.submit(clip, operations="colorize").json()["id"]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        received, ended = _task_ends(log, seen)
        mine = received - ended
        if mine:
            theirs = len(set.difference(*_task_ends(other, seen_other)))
            if _running(stack, job_id) >= len(mine) + theirs:
                network.cut("gpu1")
                return job_id, mine
        time.sleep(0.01)
    raise AssertionError(f"gpu1 ran no chunk of job {job_id} in 240 s\n{stack.tail()}")


def _running(stack: Stack, job_id: str) -> int:
    return stack.db("SELECT count(*) FROM chunks WHERE job_id = :j AND status = 'running'", j=job_id)[0][0]


def _status(stack: Stack, job_id: str) -> str:
    return stack.db("SELECT status FROM jobs WHERE id = :j", j=job_id)[0][0]


def _redone(stack: Stack, job_id: str) -> int | None:
    rows = stack.db("SELECT index FROM chunks WHERE job_id = :j AND attempts >= 2 AND status = 'done'", j=job_id)
    return rows[0][0] if rows else None


def _ended(logs: list[Path]) -> set[str]:
    """Chunk task ids that ended for good in any of these worker logs (task ids are unique to
    one send and its retries: the reconciler's re-send of a chunk is a new id)."""
    return set().union(*(_task_ends(log, 0)[1] for log in logs))


def _stale_answer(logs: list[Path], stale: set[str]) -> str:
    """What became of the task the cut worker held: each outcome logged for it, by any of
    these workers, in time order (each log line starts with its timestamp)."""
    answers = []
    for log in logs:
        text = log.read_bytes().decode(errors="replace")
        answers += [(m.group(1), log.stem, m.group(2)) for task_id in stale for m in re.finditer(
            rf"^\[([\d-]+ [\d:,]+):[^\]]*\] Task {re.escape(CHUNK)}\[{task_id}\] (succeeded in [\d.]+s: '[^']*'"
            rf"|retry: .{{0,100}}|raised .{{0,100}}|reject requeue=\w+: .{{0,100}})", text, re.MULTILINE)]
    return " → ".join(f"{answer} ({worker})" for _, worker, answer in sorted(answers)) or "no answer logged"
