"""Running ffmpeg and ffprobe as bounded subprocesses.

Untrusted media goes through these tools, so every call has a wall-clock limit and
an address-space limit, and its stderr is kept for the error message.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import tempfile
from typing import Callable, Sequence

from tintype.media.errors import SourceUnreachable, ToolFailed

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
FFPROBE = shutil.which("ffprobe") or "ffprobe"
MEMORY_LIMIT_BYTES = 8 * 1024**3


HTTP_RETRIES = ["-reconnect", "1", "-reconnect_streamed", "1", "-reconnect_on_network_error", "1",
                "-reconnect_on_http_error", "5xx", "-reconnect_delay_max", "30", "-rw_timeout", "60000000"]


# Demuxers an untrusted file may be read with. Playlists and scripts (hls, dash, concat,
# ffconcat, image2 patterns...) would make ffmpeg open other files or URLs on the server's
# behalf, so a playlist renamed .mp4 is simply not media.
CONTAINERS = ("mov,matroska,avi,mpegts,mpeg,mpegvideo,m4v,h264,hevc,flv,dv,mxf,ogg,asf,nut,rm,ivf,gif,"
              "yuv4mpegpipe,wtv")


def input_options(source: str) -> list[str]:
    """Options to put before `-i source` of untrusted media: only real containers, only the
    protocol the source itself needs, and objects read over HTTP (presigned S3 URLs) ride
    out a storage server's 5xx answers and dropped connections, as boto3 does."""
    options = ["-format_whitelist", CONTAINERS]
    if source.startswith(("http://", "https://")):
        return options + ["-protocol_whitelist", "http,https,tcp,tls,crypto", *HTTP_RETRIES]
    return options + ["-protocol_whitelist", "file,pipe"]


# What ffmpeg's network protocols print when a server cannot be reached (never said of a file).
UNREACHABLE = ("Connection refused", "No route to host", "Network is unreachable", "Connection reset by peer",
               "Connection timed out", "Server returned 5")


def _failed(what: str, returncode: int, tail: list[str]) -> ToolFailed:
    """The error for a tool that exited non-zero: SourceUnreachable when its input's server
    could not be reached (a network blip or a partition), ToolFailed otherwise."""
    message = f"{what} exited {returncode}: " + " | ".join(tail)
    if any(marker in line for line in tail for marker in UNREACHABLE):
        return SourceUnreachable(message)
    return ToolFailed(message)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))


def run_tool(args: Sequence[str], timeout: float, input_bytes: bytes | None = None) -> bytes:
    """Run ffmpeg/ffprobe to completion and return stdout; raise ToolFailed with stderr."""
    try:
        proc = subprocess.run(
            list(args), input=input_bytes, capture_output=True, timeout=timeout,
            preexec_fn=_limit_memory, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolFailed(f"{args[0]} did not finish within {timeout:.0f} s") from exc
    except FileNotFoundError as exc:
        raise ToolFailed(f"{args[0]} is not installed (apt-get install ffmpeg)") from exc
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-6:]
        raise _failed(args[0], proc.returncode, tail)
    return proc.stdout


def start_tool(args: Sequence[str], stdin: bool = False, stdout: bool = False) -> subprocess.Popen:
    """Start a streaming ffmpeg process; the caller owns it and must wait for it.

    stderr goes to a temporary file, not a pipe: a stream full of decode errors must
    not fill a pipe nobody reads until the end and stall the process."""
    errors = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        list(args),
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
        stderr=errors,
        preexec_fn=_limit_memory,
    )
    proc.error_file = errors  # type: ignore[attr-defined]
    return proc


def finish_tool(proc: subprocess.Popen, what: str, timeout: float) -> None:
    """Wait for a streaming process and raise ToolFailed if it did not exit cleanly."""
    if proc.stdin is not None and proc.stdin.closed:
        proc.stdin = None  # communicate() would flush it
    try:
        proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        proc.communicate()
        raise ToolFailed(f"{what} did not finish within {timeout:.0f} s") from exc
    errors = proc.error_file  # type: ignore[attr-defined]
    errors.seek(0)
    err = errors.read()[-4000:]
    errors.close()
    if proc.returncode != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-6:]
        raise _failed(what, proc.returncode, tail)


def kill_tool(proc: subprocess.Popen) -> None:
    """Stop a streaming process that is no longer wanted (an error upstream)."""
    proc.kill()
    if proc.stdin is not None and proc.stdin.closed:
        proc.stdin = None
    proc.communicate()
    error_file = getattr(proc, "error_file", None)
    if error_file is not None:
        error_file.close()


def pump_stdout(proc: subprocess.Popen, sink: Callable[[bytes], None],
                failed: Callable[[BaseException], None]) -> None:
    """Copy a streaming encoder's output to `sink` until it ends (run in a thread). An
    error is handed to `failed` before the encoder is killed, so a writer that then finds
    the pipe closed can report the cause rather than the broken pipe."""
    try:
        while block := proc.stdout.read(1 << 20):
            sink(block)
    except BaseException as exc:
        failed(exc)
        proc.kill()
