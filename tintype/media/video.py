"""Frame-accurate decoding of a frame range, lossless chunk files, and the H.264 delivery encode.

Each function holds at most one chunk of frames in memory; the delivery encoder takes
frames one at a time, so a film of any length streams through in bounded memory.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from tintype.media.deinterlace import Deinterlace
from tintype.media.errors import MediaError
from tintype.media.ffmpeg import FFMPEG, ToolFailed, finish_tool, input_options, kill_tool, pump_stdout, start_tool
from tintype.media.mkvraw import RawMatroskaWriter
from tintype.media.picture import colour_tags
from tintype.media.probe import MP4_AUDIO_CODECS, VideoFacts
from tintype.media.yuv import Yuv420


def seek_time(facts: VideoFacts, index: int) -> float | None:
    """A time that lands between frame index-1 and frame index (None for the first)."""
    if index <= 0:
        return None
    stamps = facts.timestamps
    return (stamps[index - 1] + stamps[index]) / 2.0


def _read_exact(stream, nbytes: int) -> bytes:
    data = bytearray()
    while len(data) < nbytes:
        block = stream.read(nbytes - len(data))
        if not block:
            break
        data.extend(block)
    return bytes(data)


def read_frames(source: str, width: int, height: int, seek: float | None, count: int,
                timeout: float = 600) -> list[np.ndarray]:
    """Decode `count` frames as uint8 RGB (H, W, 3), rotation applied, starting with the
    first frame whose timestamp is at or after the absolute time `seek` (None: the first)."""
    return _exactly(iter_frames, source, width, height, seek, count, timeout)


def _exactly(decode: Callable[..., Iterator], source: str, width: int, height: int, seek: float | None,
             count: int, timeout: float) -> list:
    """All `count` frames `decode` gives from `seek`; fewer is an error (a cut or damaged file)."""
    if count <= 0:
        raise ValueError(f"frame count must be positive, got {count}")
    frames = list(decode(source, width, height, seek, count, timeout))
    if len(frames) != count:
        raise ToolFailed(f"expected {count} frames from t={seek}, decoded {len(frames)}")
    return frames


def iter_frames(source: str, width: int, height: int, seek: float | None, count: int | None = None,
                timeout: float = 600, size: tuple[int, int] | None = None,
                nvdec: bool = False, filters: Sequence[str] = ()) -> Iterator[np.ndarray]:
    """Frames one at a time, as `read_frames` selects them; `size` (w, h) scales them;
    `nvdec` decodes on the GPU (media.hwaccel decides when it may); `filters` run on the
    selected frames first (a deinterlacer: media.deinterlace)."""
    if size is not None:
        width, height = size
    args = _decode_args(source, seek, count, size, "rgb24", nvdec, filters)
    for raw in _raw_frames(args, width * height * 3, timeout):
        yield np.frombuffer(raw, np.uint8).reshape(height, width, 3)


def read_yuv_frames(source: str, width: int, height: int, seek: float | None, count: int,
                    timeout: float = 600) -> list[Yuv420]:
    """The frames `read_frames` selects, as BT.601 limited-range 4:2:0 planes: what a chunk
    that only colorizes works on (see iter_yuv_frames)."""
    return _exactly(iter_yuv_frames, source, width, height, seek, count, timeout)


def iter_yuv_frames(source: str, width: int, height: int, seek: float | None, count: int | None = None,
                    timeout: float = 600, nvdec: bool = False, filters: Sequence[str] = ()) -> Iterator[Yuv420]:
    """`iter_frames` as 4:2:0 planes. A limited-range 4:2:0 source arrives as its own
    samples (no conversion at all, so its luma can be delivered bit for bit); other formats
    and full-range sources are converted to limited-range yuv420p by ffmpeg."""
    args = _decode_args(source, seek, count, None, "yuv420p", nvdec, filters)
    frame_bytes = width * height + 2 * ((width + 1) // 2) * ((height + 1) // 2)
    for raw in _raw_frames(args, frame_bytes, timeout):
        yield Yuv420.from_decoded(raw, width, height)


def _decode_args(source: str, seek: float | None, count: int | None, size: tuple[int, int] | None,
                 pix_fmt: str, nvdec: bool = False, extra: Sequence[str] = ()) -> list[str]:
    args = [FFMPEG, "-v", "error", "-nostdin"]
    if nvdec:
        # NVDEC decodes, the frames come back to system memory (no -hwaccel_output_format),
        # so the filters and the pipe format below are the same as a software decode;
        # a codec NVDEC lacks falls back to software inside ffmpeg.
        args += ["-hwaccel", "cuda"]
    if seek is not None:
        # Jump to a keyframe well before the range, keep the source's own timestamps,
        # and drop frames by timestamp: exact for every demuxer, unlike -ss trimming.
        args += ["-noaccurate_seek", "-ss", f"{max(0.0, seek - 1.0):.6f}", "-copyts"]
    args += [*input_options(source), "-i", source, "-map", "0:v:0"]
    filters = [f"select=gte(t\\,{seek:.6f})"] if seek is not None else []
    filters += extra
    if size is not None:
        filters.append(f"scale={size[0]}:{size[1]}:flags=area")
    if pix_fmt == "yuv420p":
        filters.append("scale=out_range=tv")  # full-range sources to the delivery's range
    if filters:
        args += ["-vf", ",".join(filters)]
    if count is not None:
        args += ["-frames:v", str(count)]
    return args + ["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", pix_fmt, "-"]


def _raw_frames(args: list[str], frame_bytes: int, timeout: float) -> Iterator[bytes]:
    proc = start_tool(args, stdout=True)
    try:
        while len(raw := _read_exact(proc.stdout, frame_bytes)) == frame_bytes:
            yield raw
    finally:
        proc.stdout.close()
        finish_tool(proc, "ffmpeg decode", timeout)


def frame_start(facts: VideoFacts, index: int) -> tuple[float | None, list[str]]:
    """Where a decode that starts at frame `index` of a job's facts seeks (absolute; None:
    from the start) and the filters it runs: a deinterlaced job's frames are bwdif's
    (media.deinterlace), counted as its facts count them."""
    plan = Deinterlace.of_facts({"interlaced": facts.interlaced})
    if plan is not None:
        seek = plan.start(facts, index)
        return (None if seek is None else seek + facts.start_time), plan.filters(index)
    if index <= 0:
        return None, []
    if facts.timestamps:
        return seek_time(facts, index) + facts.start_time, []
    return facts.start_time + (index - 0.5) * facts.fps_den / facts.fps_num, []  # constant rate, times not kept


def read_range(source: str, facts: VideoFacts, start: int, count: int,
               timeout: float = 600) -> list[np.ndarray]:
    """Decode frames [start, start+count) of a probed video (or of a job's facts: see
    frame_start)."""
    if start < 0 or start + count > facts.frames:
        raise ValueError(f"frame range {start}+{count} is outside 0..{facts.frames}")
    seek, filters = frame_start(facts, start)
    frames = list(iter_frames(source, facts.width, facts.height, seek, count, timeout, filters=filters))
    if len(frames) != count:
        raise ToolFailed(f"expected {count} frames from t={seek}, decoded {len(frames)}")
    return frames


def even_size(width: int, height: int) -> tuple[int, int]:
    return width + (width % 2), height + (height % 2)


class LosslessWriter:
    """Writes frames to a lossless Matroska file of 4:2:0 planes: the chunk intermediate.

    It holds exactly the samples the delivery will encode (RGB results are converted
    once, here, on the GPU workers), so the reduce step decodes half the bytes of RGB and
    converts nothing. HuffYUV (ffvhuff) rather than FFV1: larger files, but decoding costs
    a fraction of the CPU, and the reduce step decodes every frame of the film on one
    machine (bench-temporal)."""

    def __init__(self, path: Path, width: int, height: int, timeout: float = 600) -> None:
        self.path, self.width, self.height, self.timeout = path, width, height, timeout
        self.count = 0
        padded_w, padded_h = even_size(width, height)
        self.proc = start_tool([
            FFMPEG, "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p",
            "-s", f"{padded_w}x{padded_h}", "-framerate", "25", "-i", "-",
            "-c:v", "ffvhuff", "-pix_fmt", "yuv420p", "-f", "matroska", str(path),
        ], stdin=True)

    def write(self, frame: np.ndarray | Yuv420) -> None:
        if isinstance(frame, np.ndarray):
            if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
                raise ValueError(f"frame {frame.dtype} {frame.shape} is not uint8 {self.height}x{self.width}x3")
            frame = Yuv420.from_rgb(frame)
        if (frame.width, frame.height) != (self.width, self.height):
            raise ValueError(f"frame {frame.width}x{frame.height} is not {self.width}x{self.height}")
        self.proc.stdin.write(frame.tobytes())
        self.count += 1

    def close(self) -> None:
        self.proc.stdin.close()
        finish_tool(self.proc, "ffmpeg lossless encode", self.timeout)

    def __enter__(self) -> "LosslessWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            kill_tool(self.proc)


def iter_lossless(path: Path, width: int, height: int, timeout: float = 600) -> Iterator[Yuv420]:
    """Yield the frames of a chunk intermediate one at a time."""
    proc = start_tool([FFMPEG, "-v", "error", "-nostdin", "-i", str(path), "-map", "0:v:0",
                       "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"],
                      stdout=True)
    padded_w, padded_h = even_size(width, height)
    frame_bytes = padded_w * padded_h * 3 // 2
    try:
        while True:
            raw = _read_exact(proc.stdout, frame_bytes)
            if len(raw) < frame_bytes:
                break
            yield Yuv420.from_bytes(raw, width, height)
    finally:
        proc.stdout.close()
        finish_tool(proc, "ffmpeg lossless decode", timeout)


@dataclass(frozen=True)
class DeliveryOptions:
    crf: int = 18
    preset: str = "superfast"  # same size as veryfast at CRF 18 here, 27% less CPU
    nvenc: bool = False  # h264_nvenc on the GPU instead of libx264 (media.hwaccel decides)


# NVENC's counterpart of libx264 CRF 18: constant quality (VBR, no bitrate cap) at CQ 19
# with a high-quality preset. Unmeasured until a GPU is lent: bench/precision.py's
# operator notes (docs/operations.md) say how to compare sizes and PSNR on one.
NVENC_PRESET = "p5"
NVENC_CQ_OFFSET = 1


def video_codec_args(options: DeliveryOptions) -> list[str]:
    """The H.264 encoder and its quality settings: libx264 at the options' CRF and preset,
    or h264_nvenc at the matching constant quality."""
    if options.nvenc:
        return ["-c:v", "h264_nvenc", "-preset", NVENC_PRESET, "-tune", "hq", "-rc", "vbr",
                "-cq", str(options.crf + NVENC_CQ_OFFSET), "-b:v", "0"]
    return ["-c:v", "libx264", "-preset", options.preset, "-crf", str(options.crf)]


def _audio_args(facts: VideoFacts, audio_input: int) -> list[str]:
    args: list[str] = []
    for k, track in enumerate(facts.audio):
        args += ["-map", f"{audio_input}:{track.index}"]
        codec = "copy" if track.codec in MP4_AUDIO_CODECS else "aac"
        args += [f"-c:a:{k}", codec]
        if codec == "aac":
            args += [f"-b:a:{k}", "192k"]
    return args


class DeliveryEncoder:
    """Streams frames into H.264 yuv420p MP4 with the source's audio tracks.

    Frames arrive as `Yuv420` (or RGB, converted here) and reach ffmpeg as planar 4:2:0,
    so the encoder does no colour conversion. A feeder thread writes them to ffmpeg from a
    short queue, so the caller computes the next frame while the pipe drains. Constant-rate
    sources are fed as raw video at the exact rational rate; variable-rate sources as a
    Matroska stream that carries each frame's own source timestamp. With a
    `sink`, the MP4 is fragmented with its index first (it plays while downloading, like
    +faststart) and flows to the sink as it is made, so no film ever sits on local disk
    whole; without one, a +faststart file is written to `out_path`.
    """

    def __init__(self, facts: VideoFacts, audio_source: str | None, out_path: Path | None = None,
                 sink: Callable[[bytes], None] | None = None,
                 options: DeliveryOptions = DeliveryOptions(), timeout: float = 6 * 3600) -> None:
        if (out_path is None) == (sink is None):
            raise ValueError("give exactly one of out_path and sink")
        self.facts, self.timeout, self.sink = facts, timeout, sink
        self.width, self.height = even_size(facts.width, facts.height)
        self.count = 0
        self.variable = not facts.constant_rate and facts.frames > 1
        audio = audio_source if facts.audio else None
        args = [FFMPEG, "-v", "error", "-nostdin", "-y"] + self._input_args()
        if audio:
            args += [*input_options(audio), "-i", audio]
        tag_filter, tag_options = colour_tags(facts, full_range=False)  # the input's tags, carried on
        args += ["-map", "0:v:0", *(["-vf", tag_filter] if tag_filter else []), *tag_options,
                 *video_codec_args(options), "-pix_fmt", "yuv420p", "-fps_mode", "passthrough"]
        if audio:
            args += _audio_args(facts, 1)
        if sink is not None:
            # Fragments carry no edit list: without B-frames and with the audio's priming
            # left as it is, the picture starts exactly with the sound.
            args += ["-bf", "0", "-avoid_negative_ts", "disabled",
                     "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", "pipe:1"]
        else:
            args += ["-movflags", "+faststart", "-f", "mp4", str(out_path)]
        self.proc = start_tool(args, stdin=True, stdout=sink is not None)
        self.frames_in = RawMatroskaWriter(self.proc.stdin, self.width, self.height) if self.variable else None
        self.pump = threading.Thread(target=self._pump, daemon=True) if sink is not None else None
        self.pump_error: BaseException | None = None
        if self.pump:
            self.pump.start()
        self.queue: queue.Queue[Yuv420 | None] = queue.Queue(maxsize=4)
        self.feed_error: BaseException | None = None
        self.feeder = threading.Thread(target=self._feed, daemon=True)
        self.feeder.start()

    def _input_args(self) -> list[str]:
        if self.variable:
            return ["-f", "matroska", "-i", "-"]
        return ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{self.width}x{self.height}",
                "-framerate", f"{self.facts.fps_num}/{self.facts.fps_den}", "-i", "-"]

    def _pump(self) -> None:
        pump_stdout(self.proc, self.sink, self._pump_failed)

    def _pump_failed(self, exc: BaseException) -> None:
        self.pump_error = exc  # reported by write() and close()

    def write(self, frame: Yuv420 | np.ndarray) -> None:
        if self.count >= self.facts.frames:
            raise MediaError(f"more frames than the source's {self.facts.frames}")
        if isinstance(frame, np.ndarray):
            frame = Yuv420.from_rgb(frame)
        if frame.padded_size != (self.width, self.height):
            raise MediaError(f"frame of {frame.padded_size} for a {self.width}x{self.height} encode")
        self._put(frame)
        self.count += 1

    def _put(self, item: Yuv420 | None) -> None:
        while True:
            self._check_feeder()
            try:
                return self.queue.put(item, timeout=0.5)
            except queue.Full:
                continue

    def _feed(self) -> None:
        sent = 0
        try:
            while (frame := self.queue.get()) is not None:
                if self.frames_in is not None:
                    stamps = self.facts.timestamps
                    self.frames_in.write(frame, stamps[sent] - stamps[0])
                else:
                    self.proc.stdin.write(frame.tobytes())
                sent += 1
        except BaseException as exc:  # reported by write() and close()
            self.feed_error = exc

    def _check_feeder(self) -> None:
        if self.feed_error is None:
            return
        self._raise_pump_error()
        finish_tool(self.proc, "ffmpeg delivery encode", 10)
        raise ToolFailed("ffmpeg delivery encode stopped reading frames") from self.feed_error

    def _raise_pump_error(self) -> None:
        if self.pump_error is not None:
            raise self.pump_error

    def close(self) -> None:
        if self.proc.returncode is not None:
            return  # already closed
        self._put(None)
        self.feeder.join()
        self._check_feeder()
        self.proc.stdin.close()
        if self.pump:
            self.pump.join()
            self._raise_pump_error()
        finish_tool(self.proc, "ffmpeg delivery encode", self.timeout)
        if self.count != self.facts.frames:
            raise MediaError(f"encoded {self.count} frames but the source has {self.facts.frames}")

    def abort(self) -> None:
        kill_tool(self.proc)  # a feeder blocked on the pipe fails and ends
        try:
            self.queue.put_nowait(None)  # one waiting for frames ends here
        except queue.Full:
            pass
        self.feeder.join(timeout=30)
        if self.pump:
            self.pump.join()
