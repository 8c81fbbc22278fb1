"""The chaos-test tools themselves work against real services: FaultProxy in front of moto's
S3 server (boto3 and ffmpeg as clients), a private PostgreSQL that survives restarts and
crashes, and a durable Redis that keeps its data across a SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
import redis
from botocore.config import Config
from botocore.exceptions import ClientError

from tests import services
from tests.faults import FaultProxy

pytestmark = pytest.mark.integration

BUCKET = "fault-tools"


def s3_client(endpoint: str, **config: Any) -> Any:
    """A boto3 S3 client for moto; `config` goes into botocore's Config (retries, timeouts)."""
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test", config=Config(**config))


@pytest.fixture(scope="module")
def moto_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    work = tmp_path_factory.mktemp("moto")
    proc, port = services.start_moto(work / "s3.log")
    try:
        s3_client(f"http://127.0.0.1:{port}").create_bucket(Bucket=BUCKET)
        yield port
    finally:
        services.stop(proc)


@pytest.fixture
def proxy(moto_port: int) -> Iterator[FaultProxy]:
    with FaultProxy(moto_port) as running:
        yield running


def test_boto3_round_trip_through_proxy(proxy: FaultProxy) -> None:
    s3 = s3_client(proxy.endpoint)
    s3.put_object(Bucket=BUCKET, Key="a/one.bin", Body=b"x" * 200_000)
    s3.put_object(Bucket=BUCKET, Key="a/empty", Body=b"")
    assert s3.get_object(Bucket=BUCKET, Key="a/one.bin")["Body"].read() == b"x" * 200_000
    part = s3.get_object(Bucket=BUCKET, Key="a/one.bin", Range="bytes=10-19")
    assert part["Body"].read() == b"x" * 10 and part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.head_object(Bucket=BUCKET, Key="a/one.bin")["ContentLength"] == 200_000
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="a/")["Contents"]]
    assert keys == ["a/empty", "a/one.bin"]
    s3.delete_object(Bucket=BUCKET, Key="a/empty")
    assert proxy.injected == 0 and proxy.requests >= 7
    assert set(proxy.outcomes()) == {"forwarded"}


def test_injected_failures_are_retried(proxy: FaultProxy) -> None:
    s3 = s3_client(proxy.endpoint, retries={"mode": "standard", "total_max_attempts": 3})
    proxy.fail_next(2, methods={"PUT"})
    s3.put_object(Bucket=BUCKET, Key="retried", Body=b"payload")
    assert proxy.injected == 2
    assert proxy.outcomes("PUT") == ["failed 500", "failed 500", "forwarded"]
    assert s3.get_object(Bucket=BUCKET, Key="retried")["Body"].read() == b"payload"


def test_injected_failure_reaches_client_without_retries(proxy: FaultProxy) -> None:
    s3 = s3_client(proxy.endpoint, retries={"mode": "standard", "total_max_attempts": 1})
    s3.put_object(Bucket=BUCKET, Key="fails", Body=b"1")
    proxy.fail_next(1)
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket=BUCKET, Key="fails")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert caught.value.response["Error"]["Code"] == "InternalError"
    proxy.fail_next(1, status=503, methods={"HEAD"})
    with pytest.raises(ClientError) as caught:
        s3.head_object(Bucket=BUCKET, Key="fails")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert s3.head_object(Bucket=BUCKET, Key="fails")["ContentLength"] == 1  # connection still usable


def test_stall_makes_client_time_out_and_retry(proxy: FaultProxy) -> None:
    s3 = s3_client(proxy.endpoint, read_timeout=1, connect_timeout=2,
                   retries={"mode": "standard", "total_max_attempts": 3})
    s3.put_object(Bucket=BUCKET, Key="stalled", Body=b"slow")
    proxy.stall_next(1, 3, methods={"GET"})
    started = time.monotonic()
    assert s3.get_object(Bucket=BUCKET, Key="stalled")["Body"].read() == b"slow"
    assert 1 <= time.monotonic() - started < 3
    assert proxy.outcomes("GET") == ["stalled 3", "forwarded"]


def test_outage_window(proxy: FaultProxy) -> None:
    s3 = s3_client(proxy.endpoint, retries={"mode": "standard", "total_max_attempts": 1})
    proxy.fail_for(0.5, status=503)
    with pytest.raises(ClientError):
        s3.list_objects_v2(Bucket=BUCKET)
    time.sleep(0.6)
    s3.list_objects_v2(Bucket=BUCKET)
    assert proxy.outcomes() == ["failed 503", "forwarded"]


def test_ffmpeg_reads_presigned_url_through_proxy(proxy: FaultProxy, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"  # moov atom at the end, so the demuxer has to seek (Range)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=12",
                    "-frames:v", "12", "-pix_fmt", "yuv420p", str(clip)], check=True, timeout=30)
    s3 = s3_client(proxy.endpoint)
    s3.upload_file(str(clip), BUCKET, "clips/clip.mp4")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "clips/clip.mp4"},
                                    ExpiresIn=300)
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                            "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", url],
                           capture_output=True, text=True, timeout=30)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "12"
    decode = subprocess.run(["ffmpeg", "-v", "error", "-i", url, "-f", "null", "-"],
                            capture_output=True, text=True, timeout=30)
    assert decode.returncode == 0, decode.stderr
    assert proxy.outcomes("GET").count("forwarded") >= 2


def test_private_postgres_survives_restart_and_crash(tmp_path: Path) -> None:
    server = services.start_private_postgres(tmp_path)
    try:
        server.create_database("chaos")
        with server.connect("chaos") as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE t (v text)")
            cur.execute("INSERT INTO t VALUES ('kept')")
        conn.close()
        server.restart()
        assert _rows(server) == [("kept",)]
        server.kill()
        server.start()
        assert _rows(server) == [("kept",)]
        assert server.url("chaos") == f"postgresql+psycopg2://postgres@127.0.0.1:{server.port}/chaos"
    finally:
        server.close()


def _rows(server: services.PrivatePostgres) -> list[tuple[Any, ...]]:
    conn = server.connect("chaos")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT v FROM t")
            return cur.fetchall()
    finally:
        conn.close()


def test_durable_redis_keeps_data_across_sigkill(tmp_path: Path) -> None:
    proc, port = services.start_redis_durable(tmp_path)
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        client.rpush("queue", b"message")
        client.close()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc, same_port = services.start_redis_durable(tmp_path, port)
        assert same_port == port
        client = redis.Redis(host="127.0.0.1", port=port)
        assert client.lrange("queue", 0, -1) == [b"message"]
        client.close()
    finally:
        services.stop(proc)
