"""What a video is: frames, exact frame rate, size, rotation and audio, from ffprobe.

Frame timestamps come from the demuxer's packets (no decoding), so probing a long
film costs seconds; they drive frame-accurate seeking for each chunk.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

from tintype.media.containers import container_signature, declared_size
from tintype.media.errors import CorruptMedia, MediaTooLarge, NotMedia, UnsupportedMedia
from tintype.media.ffmpeg import (
    FFMPEG,
    FFPROBE,
    ToolFailed,
    finish_tool,
    input_options,
    kill_tool,
    run_tool,
    start_tool,
)
from tintype.media.picture import picture_facts

log = logging.getLogger(__name__)

# Codecs ffmpeg can copy into MP4 without re-encoding the audio.
MP4_AUDIO_CODECS = {"aac", "mp3", "ac3", "eac3", "alac", "opus"}
# Containers whose header states how long the film is (ffprobe's format names), so a file
# whose data stops well before that length has lost its tail.
HEADER_LENGTH = ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi", "asf", "flv")
TAIL_SECONDS = 1.0  # how much of the end intake decodes
# ffprobe's format name -> media type; MP4/QuickTime and Matroska/WebM share a demuxer, so
# the file name's extension picks between them (VIDEO_EXTENSION_TYPES).
VIDEO_TYPES = {"mov,mp4,m4a,3gp,3g2,mj2": "video/mp4", "matroska,webm": "video/x-matroska", "avi": "video/x-msvideo",
               "asf": "video/x-ms-asf", "flv": "video/x-flv", "mpegts": "video/mp2t", "mpeg": "video/mpeg",
               "ogg": "video/ogg", "mxf": "application/mxf"}
VIDEO_EXTENSION_TYPES = {"mov,mp4,m4a,3gp,3g2,mj2": {".mov": "video/quicktime"},
                         "matroska,webm": {".webm": "video/webm"}}


@dataclass
class AudioStream:
    index: int
    codec: str
    channels: int
    sample_rate: int
    duration: float | None


@dataclass
class VideoFacts:
    container: str
    video_codec: str
    width: int  # as displayed, rotation applied
    height: int
    rotation: int
    frames: int
    fps_num: int
    fps_den: int
    constant_rate: bool
    duration: float
    start_time: float
    bytes: int | None
    audio: list[AudioStream] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list, repr=False)
    field_order: str = "unknown"  # the stream's flag: tt, bb, tb, bt, progressive or unknown
    # Set at intake (tintype.jobs.interlace): what detection found and how the job deinterlaces.
    interlaced: dict[str, Any] | None = None
    # The picture's samples (media.picture): what an archival master must keep. Defaults
    # are what facts stored before these were probed mean: 8-bit 4:2:0, untagged.
    pix_fmt: str = ""
    bit_depth: int = 8
    chroma: str = "4:2:0"  # 4:2:0, 4:2:2, 4:4:4 or 4:0:0 (grey)
    color_primaries: str = ""  # ffmpeg's names (bt709, smpte170m, ...); "" when untagged
    color_transfer: str = ""
    color_space: str = ""
    color_range: str = ""  # tv (limited) or pc (full)
    timecode: str = ""  # the first frame's SMPTE timecode, e.g. 10:00:00:00

    @property
    def fps(self) -> Fraction:
        return Fraction(self.fps_num, self.fps_den)

    @classmethod
    def from_json(cls, data: dict[str, Any], timestamps: list[float] | None = None) -> "VideoFacts":
        fields = {k: v for k, v in data.items() if k not in ("fps", "audio", "timestamps")}
        return cls(**fields, audio=[AudioStream(**a) for a in data.get("audio", [])],
                   timestamps=list(timestamps or []))

    def to_json(self) -> dict[str, Any]:
        """Facts for the job row and the API (without the per-frame timestamps)."""
        data = asdict(self)
        data.pop("timestamps")
        data["fps"] = f"{self.fps_num}/{self.fps_den}"
        return data


def video_content_type(container: str, name: str) -> str:
    """The media type of a video file tintype probed as `container` (application/octet-stream
    for a container without one)."""
    extension = os.path.splitext(name)[1].lower()
    by_name = VIDEO_EXTENSION_TYPES.get(container, {}).get(extension)
    return by_name or VIDEO_TYPES.get(container, "application/octet-stream")


def _ffprobe_json(source: str, timeout: float) -> dict[str, Any]:
    args = [FFPROBE, "-v", "error", *input_options(source), "-print_format", "json", "-show_format",
            "-show_streams", source]
    try:
        return json.loads(run_tool(args, timeout))
    except ToolFailed as exc:
        log.info("ffprobe cannot read %s: %s", source, exc)
        container = container_signature(source)
        if container is None:
            raise NotMedia("the file is neither an image nor a video tintype can read") from exc
        raise CorruptMedia(f"the file is {container} video, but it cannot be read: its index or header is "
                           "missing or damaged, usually because the file was cut short while it was "
                           "uploaded or copied; send the complete file") from exc


def _packet_times(source: str, timeout: float, max_frames: int | None = None) -> list[tuple[float, int, int]]:
    """(pts seconds, byte position, size) of every video packet, in presentation order.
    Reading stops as soon as there are more than `max_frames`: a file of a million tiny
    frames is refused without listing them all."""
    args = [FFPROBE, "-v", "error", *input_options(source), "-select_streams", "v:0", "-show_entries",
            "packet=pts_time,dts_time,pos,size", "-of", "csv=p=0", source]
    lines = _tool_lines(args, timeout, max_frames)
    packets = []
    for line in lines:
        parts = line.strip().split(",")
        if len(parts) < 4:
            continue
        pts, dts, size, pos = parts[0], parts[1], parts[2], parts[3]
        stamp = pts if pts not in ("", "N/A") else dts
        if stamp in ("", "N/A"):
            continue
        packets.append((float(stamp), int(pos) if pos.isdigit() else -1, int(size or 0)))
    packets.sort(key=lambda p: p[0])
    return packets


def _tool_lines(args: list[str], timeout: float, limit: int | None) -> list[str]:
    proc = start_tool(args, stdout=True)
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        for raw in proc.stdout:
            lines.append(raw.decode("utf-8", "replace"))
            if (limit is not None and len(lines) > limit) or time.monotonic() > deadline:
                break
    except BaseException:
        kill_tool(proc)
        raise
    if limit is not None and len(lines) > limit:
        kill_tool(proc)
        raise MediaTooLarge(f"the video has more than {limit} frames, the limit")
    if time.monotonic() > deadline:
        kill_tool(proc)
        raise CorruptMedia(f"listing the video's frames took longer than {timeout:.0f} s")
    try:
        proc.stdout.close()
        finish_tool(proc, "ffprobe", max(1.0, deadline - time.monotonic()))
    except ToolFailed as exc:
        log.info("listing the packets of %s failed: %s", args[-1], exc)
        raise CorruptMedia("the video's frames cannot be listed: the file is damaged") from exc
    return lines


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            return int(round(float(side["rotation"]))) % 360
    tag = (stream.get("tags") or {}).get("rotate")
    return (-int(tag)) % 360 if tag else 0


def _rate(text: str | None) -> Fraction | None:
    if not text or text in ("0/0", "N/A"):
        return None
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def _choose_rate(stream: dict[str, Any], stamps: list[float]) -> tuple[Fraction, bool]:
    """The output frame rate, and whether the source is constant-rate."""
    diffs = [b - a for a, b in zip(stamps, stamps[1:])]
    candidates = [r for r in (_rate(stream.get("avg_frame_rate")), _rate(stream.get("r_frame_rate"))) if r]
    if not diffs:
        return (candidates[0] if candidates else Fraction(25)), True
    mean = (stamps[-1] - stamps[0]) / len(diffs)
    tolerance = max(0.002, 0.02 * mean)
    constant = all(abs(d - mean) <= tolerance for d in diffs)
    for rate in candidates:
        if abs(1 / float(rate) - mean) <= tolerance / 4:
            return rate, constant
    return Fraction(1 / mean).limit_denominator(1001), constant


def probe_video(source: str, timeout: float = 120, max_frames: int | None = None) -> VideoFacts:
    """Probe a path or URL; raise a MediaError that says what is wrong with it (with
    `max_frames`, MediaTooLarge as soon as the header or the packets show more)."""
    info = _ffprobe_json(source, timeout)
    streams = info.get("streams") or []
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not (s.get("disposition") or {}).get("attached_pic")), None)
    if video is None:
        raise UnsupportedMedia("the file has no video stream")
    if not video.get("width") or not video.get("height"):
        # ffprobe guesses a demuxer from the file name; a text file called x.png gets a
        # 0x0 "video". Content decides: this is not media.
        raise NotMedia("the file is neither an image nor a video tintype can read")
    indexed = str(video.get("nb_frames", ""))
    if max_frames is not None and indexed.isdigit() and int(indexed) > max_frames:
        raise MediaTooLarge(f"the video has {indexed} frames; the limit is {max_frames}")
    packets = _packet_times(source, timeout, max_frames)
    if not packets:
        raise CorruptMedia("the video stream has no frames")
    fmt = info.get("format") or {}
    start = float(fmt.get("start_time") or 0.0)
    stamps = [p[0] - start for p in packets]
    rate, constant = _choose_rate(video, stamps)
    rotation = _rotation(video)
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if rotation in (90, 270):
        width, height = height, width
    frame_span = stamps[-1] - stamps[0] + float(1 / rate)
    size = int(fmt["size"]) if str(fmt.get("size", "")).isdigit() else None
    if indexed.isdigit() and int(indexed) > len(packets) and not _avi(fmt):
        raise CorruptMedia(f"the video is truncated: its index lists {indexed} frames "
                           f"but only {len(packets)} are in the file")
    if size is not None and os.path.isfile(source):
        _check_not_truncated(packets, size)
        _check_declared_size(source, size, stamps)
    return VideoFacts(
        container=str(fmt.get("format_name", "")), video_codec=str(video.get("codec_name", "")),
        width=width, height=height, rotation=rotation, frames=len(packets),
        fps_num=rate.numerator, fps_den=rate.denominator, constant_rate=constant,
        duration=float(fmt.get("duration") or frame_span), start_time=start, bytes=size,
        audio=[_audio(s) for s in streams if s.get("codec_type") == "audio"],
        timestamps=stamps, field_order=_field_order(video), **picture_facts(video, streams, fmt),
    )


def _field_order(stream: dict[str, Any]) -> str:
    """ffprobe's field_order, or unknown when it gives none or an unexpected word."""
    order = str(stream.get("field_order") or "unknown")
    return order if order in ("tt", "bb", "tb", "bt", "progressive") else "unknown"


def _audio(stream: dict[str, Any]) -> AudioStream:
    duration = stream.get("duration")
    return AudioStream(
        index=int(stream["index"]), codec=str(stream.get("codec_name", "")),
        channels=int(stream.get("channels") or 0), sample_rate=int(stream.get("sample_rate") or 0),
        duration=float(duration) if duration not in (None, "N/A") else None,
    )


def _check_not_truncated(packets: list[tuple[float, int, int]], size: int) -> None:
    end = max((pos + length for _, pos, length in packets if pos >= 0), default=0)
    if end > size:
        raise CorruptMedia(
            f"the video is truncated: its frames need {end} bytes but the file has {size}"
        )


def _check_declared_size(source: str, size: int, stamps: list[float]) -> None:
    """A file cut short still opens and plays until its data stops; its container's
    structure still declares the whole length."""
    declared = declared_size(source)
    if declared is not None and declared > size:
        raise CorruptMedia(f"the file is cut short: it should hold {declared} bytes but has {size}, usually "
                           f"because an upload or copy was interrupted; its frames stop at about {stamps[-1]:.2f} s "
                           f"(frame {len(stamps)}); send the complete file, or trim it to that point first")


def _avi(fmt: dict[str, Any]) -> bool:
    """AVI indexes list empty "dropped frame" entries that no demuxer returns, so its frame
    count is not a truncation test (the length and tail checks below are)."""
    return fmt.get("format_name") == "avi"


def check_decodes(source: str, facts: VideoFacts, timeout: float = 60) -> None:
    """Decode the first frame and every frame of the last second, and compare the data's end
    with the length the header states, so a broken codec or a file cut short fails at intake
    rather than at the end of the job. Cheap: the tail is reached by seeking."""
    try:
        first = _decode_gray(source, None, 1, timeout)
    except ToolFailed as exc:
        log.info("decoding %s failed: %s", source, exc)
        raise UnsupportedMedia(f"the video stream ({facts.video_codec}) cannot be decoded; convert it to "
                               "H.264, e.g. ffmpeg -i in -c:v libx264 -crf 16 out.mp4") from exc
    if len(first) != 1:
        raise CorruptMedia(f"the first frame of the video ({facts.video_codec}) cannot be decoded")
    _check_length(source, facts, timeout)
    _check_tail(source, facts, timeout)


def _decode_gray(source: str, seek: float | None, count: int, timeout: float) -> list[bytes]:
    """Up to `count` frames as 8x8 grey, chosen as the pipeline chooses them
    (media.video.iter_frames): the first frames, or those at or after the absolute time `seek`."""
    args = [FFMPEG, "-v", "error", "-nostdin"]
    filters = "scale=8:8"
    if seek is not None:
        args += ["-noaccurate_seek", "-ss", f"{max(0.0, seek - 1.0):.6f}", "-copyts"]
        filters = f"select=gte(t\\,{seek:.6f}),{filters}"
    args += [*input_options(source), "-i", source, "-map", "0:v:0", "-vf", filters, "-frames:v", str(count),
             "-fps_mode", "passthrough", "-pix_fmt", "gray", "-f", "rawvideo", "-"]
    pixels = run_tool(args, timeout)
    return [pixels[i:i + 64] for i in range(0, len(pixels) - 63, 64)]


def _check_tail(source: str, facts: VideoFacts, timeout: float) -> None:
    """Every frame of the last second decodes, reached by a seek like a chunk's."""
    stamps = facts.timestamps
    if len(stamps) < 2:
        return
    first = max(1, next(i for i, t in enumerate(stamps) if t >= stamps[-1] - TAIL_SECONDS))
    seek = (stamps[first - 1] + stamps[first]) / 2 + facts.start_time
    try:
        decoded = len(_decode_gray(source, seek, len(stamps) - first, timeout))
    except ToolFailed as exc:
        log.info("decoding the end of %s failed: %s", source, exc)
        decoded = 0
    if decoded == 0:
        raise CorruptMedia("the video cannot be read from the middle: seeking into it finds no frames, and "
                           "tintype works on a film in parts; copy it into a new container first, e.g. "
                           "ffmpeg -i in -c copy out.mkv")
    if decoded < len(stamps) - first:
        readable = first + decoded  # frames that decode, counting from the start
        raise CorruptMedia(f"the end of the video cannot be decoded: it plays up to {stamps[readable - 1]:.2f} s "
                           f"(frame {readable} of {len(stamps)}) and the rest is damaged or missing; send the "
                           "complete file, or trim it to the part that plays")


def _check_length(source: str, facts: VideoFacts, timeout: float) -> None:
    """The data of every stream reaches the length the container's header states."""
    if facts.container not in HEADER_LENGTH or not facts.timestamps:
        return
    frame = float(1 / facts.fps)
    tolerance = max(0.05, 1.5 * frame)
    video_end = facts.timestamps[-1] + frame
    if facts.duration - video_end <= tolerance:
        return
    if facts.duration - _data_end(source, facts, video_end, timeout) > tolerance:
        raise CorruptMedia(f"the video is cut short: its header says it lasts {facts.duration:.2f} s but its "
                           f"frames end at {video_end:.2f} s (frame {facts.frames}), usually because the file "
                           f"was cut short while it was uploaded or copied; send the complete file, or trim it "
                           f"to its first {video_end:.2f} s")


def _data_end(source: str, facts: VideoFacts, video_end: float, timeout: float) -> float:
    """Where the last packet of any stream ends (the sound may outlast the picture), read
    from a second before the picture's end; seconds from the start."""
    start = facts.start_time + max(0.0, video_end - TAIL_SECONDS)
    args = [FFPROBE, "-v", "error", *input_options(source), "-read_intervals", f"{start:.6f}%",
            "-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0", source]
    try:
        lines = run_tool(args, timeout).decode("utf-8", "replace").splitlines()
    except ToolFailed as exc:
        log.info("reading the end of %s failed: %s", source, exc)
        return video_end
    ends = [video_end]
    for line in lines:
        pts, _, duration = line.strip().partition(",")
        if (at := _seconds(pts)) is not None:
            ends.append(at - facts.start_time + (_seconds(duration) or 0.0))
    return max(ends)


def _seconds(text: str) -> float | None:
    """A time ffprobe printed, or None for N/A and anything else that is not a number."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
