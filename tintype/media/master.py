"""The archival master: the processed film at the input's own depth, with its sound,
timecode and colour tags, in FFV1 (Matroska) or ProRes 422 HQ (QuickTime).

The models see 8-bit 4:2:0 (media.yuv); an archive wants what it gave. So the master
takes, frame by frame, the input's LUMA at its native depth, decoded a second time beside
the processed frames, and the processed frame's CHROMA scaled to the master's depth and
subsampling. Where a job changed luminance (inpainting), the processed luma is used for the
pixels it changed. The input's audio streams are copied as they are (PCM stays PCM).

Frames arrive one at a time from the delivery's loop (media.delivery), the native decoder
runs one frame ahead and the encoder streams to a sink, so memory stays bounded.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Iterator

import cv2
import numpy as np

from tintype.media.errors import MediaError, ToolFailed
from tintype.media.ffmpeg import FFMPEG, finish_tool, input_options, kill_tool, pump_stdout, start_tool
from tintype.media.picture import colour_tags, planar_format
from tintype.media.probe import VideoFacts
from tintype.media.yuv import Yuv420

Sink = Callable[[bytes], None]
Masks = Iterator[np.ndarray]
# Pixels around a filled mask that also take the processed luma: a fill may blend a little
# past its mask's edge.
FILL_MARGIN = 2


class MasterUnfit(MediaError):
    """The input holds more than the asked master format can (e.g. 12-bit into ProRes 422)."""

    code = "master_unfit"
    status = 422


@dataclass(frozen=True)
class MasterFormat:
    """One kind of master: its encoder, container and what it can hold."""

    name: str
    label: str
    extension: str
    content_type: str
    muxer: str
    codec_args: tuple[str, ...]
    chromas: tuple[str, ...]  # subsamplings it can hold, in the order it prefers them
    max_depth: int
    min_depth: int = 10
    mux_args: tuple[str, ...] = ()
    audio: frozenset[str] | None = None  # audio codecs it can take as they are (None: all but REFUSED_AUDIO)


# Audio an input may carry that no master container takes without re-encoding it.
REFUSED_AUDIO = frozenset({"pcm_bluray", "pcm_dvd"})
MOV_AUDIO = frozenset({"pcm_u8", "pcm_s8", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be", "pcm_s32le",
                       "pcm_s32be", "pcm_f32le", "pcm_f32be", "pcm_f64le", "pcm_f64be", "pcm_alaw", "pcm_mulaw",
                       "aac", "mp3", "ac3", "eac3", "alac"})


FORMATS = {
    "ffv1": MasterFormat("ffv1", "Archival master (FFV1, Matroska)", "mkv", "video/x-matroska", "matroska",
                         ("-c:v", "ffv1", "-level", "3", "-g", "1", "-slicecrc", "1"),
                         ("4:2:0", "4:2:2", "4:4:4"), 16),
    # Fragmented (index first, 2 s fragments) so it streams to the store like the delivery.
    # Not frag_keyframe: every ProRes frame is a keyframe, which would make a fragment each.
    "prores": MasterFormat("prores", "Archival master (ProRes 422 HQ, QuickTime)", "mov", "video/quicktime", "mov",
                           ("-c:v", "prores_ks", "-profile:v", "3", "-vendor", "apl0"), ("4:2:2",), 10,
                           mux_args=("-movflags", "+write_colr+empty_moov+default_base_moof",
                                     "-frag_duration", "2000000"), audio=MOV_AUDIO),
}


@dataclass(frozen=True)
class MasterPlan:
    """How a given input becomes a master: the sample layout in and out."""

    format: MasterFormat
    source_pix_fmt: str  # what the input's luma is decoded as (planar, its own depth)
    source_depth: int
    pix_fmt: str  # the master's
    depth: int
    chroma: str
    full_range: bool

    @property
    def shift(self) -> int:
        return self.depth - self.source_depth


def plan_master(facts: VideoFacts, name: str) -> MasterPlan:
    """The master of format `name` for this input, or MasterUnfit saying why it cannot
    hold it (deeper samples or finer chroma than the format has)."""
    fmt = FORMATS[name]
    if not facts.constant_rate and facts.frames > 1:
        raise MasterUnfit("an archival master needs a constant-frame-rate input; this video's frame rate varies")
    source_chroma = facts.chroma if facts.chroma in ("4:2:0", "4:2:2", "4:4:4") else "4:4:4"
    if facts.bit_depth > fmt.max_depth:
        raise MasterUnfit(f"the input has {facts.bit_depth}-bit samples; a {fmt.name} master holds at most "
                          f"{fmt.max_depth} bits: choose master=ffv1")
    chroma = next((c for c in fmt.chromas if _fits(source_chroma, c)), None)
    if chroma is None:
        raise MasterUnfit(f"the input's chroma is {facts.chroma}; a {fmt.name} master holds only "
                          f"{', '.join(fmt.chromas)}: choose master=ffv1")
    _check_audio(facts, fmt)
    depth = max(fmt.min_depth, facts.bit_depth)
    full = facts.color_range == "pc"
    own = facts.pix_fmt if facts.pix_fmt.startswith("yuvj") else planar_format(source_chroma, facts.bit_depth)
    return MasterPlan(fmt, own, facts.bit_depth, planar_format(chroma, depth), depth, chroma, full)


def _check_audio(facts: VideoFacts, fmt: MasterFormat) -> None:
    """The master copies every audio stream as it is, so each must fit its container."""
    refused = [a.codec for a in facts.audio
               if a.codec in REFUSED_AUDIO or (fmt.audio is not None and a.codec not in fmt.audio)]
    if refused:
        other = " or choose master=ffv1" if fmt.name != "ffv1" and not set(refused) & REFUSED_AUDIO else ""
        raise MasterUnfit(f"the input's audio ({', '.join(refused)}) cannot be copied as it is into a {fmt.name} "
                          f"master; convert it to PCM first (ffmpeg -i in -c:v copy -c:a pcm_s24le out.mov){other}")


def _fits(source: str, target: str) -> bool:
    """Target chroma is at least as fine as the source's (4:2:0 < 4:2:2 < 4:4:4)."""
    order = ("4:2:0", "4:2:2", "4:4:4")
    return order.index(target) >= order.index(source)


def _samples(plane: np.ndarray, shift: int) -> np.ndarray:
    return plane.astype(np.uint16) << shift if shift else plane.astype(np.uint16)


class MasterEncoder:
    """Raw planar frames of the master's format in, the master file out to `sink`, with
    the audio streams of `audio_source` copied, the timecode and the colour tags.
    `filters` (video filters) run before the colour tags are set; `field_order` (tt, bb,
    tb, bt; None: progressive as ffmpeg infers) marks an interlaced master."""

    def __init__(self, plan: MasterPlan, facts: VideoFacts, audio_source: str | None, sink: Sink,
                 filters: tuple[str, ...] = (), timeout: float = 6 * 3600, field_order: str | None = None) -> None:
        self.plan, self.facts, self.sink, self.timeout = plan, facts, sink, timeout
        args = [FFMPEG, "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", plan.pix_fmt,
                "-s", f"{facts.width}x{facts.height}", "-framerate", f"{facts.fps_num}/{facts.fps_den}", "-i", "-"]
        if audio_source and facts.audio:
            args += [*input_options(audio_source), "-i", audio_source, "-map", "0:v:0"]
            args += [arg for track in facts.audio for arg in ("-map", f"1:{track.index}")] + ["-c:a", "copy"]
        tag_filter, tag_options = colour_tags(facts, plan.full_range)
        chain = [*filters, *([tag_filter] if tag_filter else [])]
        args += (["-vf", ",".join(chain)] if chain else []) + tag_options
        args += [*plan.format.codec_args, "-pix_fmt", plan.pix_fmt, "-fps_mode", "passthrough"]
        if field_order:  # interlaced pictures: coded as fields where the codec can (ProRes)
            args += ["-flags", "+ildct+ilme", "-field_order", field_order]
        if facts.timecode:
            args += ["-timecode", facts.timecode]
        args += [*plan.format.mux_args, "-f", plan.format.muxer, "pipe:1"]
        self.proc = start_tool(args, stdin=True, stdout=True)
        self.pump_error: BaseException | None = None
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        pump_stdout(self.proc, self.sink, self._pump_failed)

    def _pump_failed(self, exc: BaseException) -> None:
        self.pump_error = exc  # reported by write() and close()

    def write(self, data: bytes) -> None:
        try:
            self.proc.stdin.write(data)
        except (BrokenPipeError, ValueError) as exc:
            raise ToolFailed("ffmpeg master encode stopped reading frames") from exc

    def close(self) -> None:
        self.proc.stdin.close()
        self.pump.join()
        if self.pump_error is not None:
            raise self.pump_error
        finish_tool(self.proc, "ffmpeg master encode", self.timeout)

    def abort(self) -> None:
        kill_tool(self.proc)
        self.pump.join(timeout=30)


def native_luma(source: str, plan: MasterPlan, facts: VideoFacts, timeout: float = 6 * 3600,
                filters: tuple[str, ...] = ()) -> Iterator[np.ndarray]:
    """The input's luma planes in frame order, exactly as stored (decoded to planar YUV of
    its own subsampling and depth, which repacks but does not convert). `filters` are the
    job's own (a deinterlace: media.deinterlace), run at the input's depth, so frame i is
    the frame the job worked on; bwdif keeps each field's own lines as they are."""
    args = [FFMPEG, "-v", "error", "-nostdin", *input_options(source), "-i", source, "-map", "0:v:0",
            *(["-vf", ",".join(filters)] if filters else []),
            "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", plan.source_pix_fmt, "-"]
    wide = plan.source_depth > 8
    luma_bytes = facts.width * facts.height * (2 if wide else 1)
    cw, ch = _chroma_size(plan.source_pix_fmt, facts.width, facts.height)
    frame_bytes = luma_bytes + 2 * cw * ch * (2 if wide else 1)
    proc = start_tool(args, stdout=True)
    try:
        while len(raw := _read_exact(proc.stdout, frame_bytes)) == frame_bytes:
            plane = np.frombuffer(raw, "<u2" if wide else np.uint8, count=facts.width * facts.height)
            yield plane.reshape(facts.height, facts.width)
    except BaseException:  # abandoned (an abort) or failed: stop the decoder now, never wait on it
        kill_tool(proc)
        raise
    proc.stdout.close()
    finish_tool(proc, "ffmpeg master decode", timeout)


def _chroma_size(pix_fmt: str, width: int, height: int) -> tuple[int, int]:
    if "420" in pix_fmt:
        return (width + 1) // 2, (height + 1) // 2
    if "422" in pix_fmt:
        return (width + 1) // 2, height
    return width, height


def _read_exact(stream, nbytes: int) -> bytes:
    data = bytearray()
    while len(data) < nbytes and (block := stream.read(nbytes - len(data))):
        data.extend(block)
    return bytes(data)


def compose(frame: Yuv420, native: np.ndarray, plan: MasterPlan, changed: np.ndarray | None = None) -> bytes:
    """One master frame: the input's luma, except where `changed` (a bool mask of the
    pixels the job filled, grown by FILL_MARGIN for a fill's soft edge) takes the processed
    luma scaled up; and the processed chroma, at the master's layout."""
    height, width = native.shape
    luma = _samples(native, plan.shift)
    if changed is not None and changed.any():
        grown = cv2.dilate(changed.astype(np.uint8), np.ones((2 * FILL_MARGIN + 1,) * 2, np.uint8)) > 0
        luma = np.where(grown, _filled_luma(frame.y[:height, :width], plan), luma)
    cw, ch = _chroma_size(plan.pix_fmt, width, height)
    planes = [luma] + [_chroma(c, cw, ch, plan) for c in (frame.cb, frame.cr)]
    return b"".join(np.ascontiguousarray(p, dtype="<u2").tobytes() for p in planes)


def _filled_luma(plane: np.ndarray, plan: MasterPlan) -> np.ndarray:
    """Processed (8-bit limited-range) luma at the master's depth and range: a full-range
    master spreads 16..235 over the whole code range, as the input's own luma around it is."""
    if not plan.full_range:
        return _samples(plane, plan.depth - 8)
    top = float((1 << plan.depth) - 1)
    values = (plane.astype(np.float32) - 16.0) * (top / 219.0)
    return np.clip(values + 0.5, 0, top).astype(np.uint16)


def _chroma(plane: np.ndarray, width: int, height: int, plan: MasterPlan) -> np.ndarray:
    """An 8-bit limited-range chroma plane at the master's size, depth and range."""
    values = plane.astype(np.float32)
    if values.shape != (height, width):
        values = cv2.resize(values, (width, height), interpolation=cv2.INTER_LINEAR)
    scale = float(1 << (plan.depth - 8))
    if plan.full_range:  # 16..240 around 128 spans the full code range
        top = float((1 << plan.depth) - 1)
        return np.clip((values - 128.0) * (255.0 / 224.0) * scale + 128.0 * scale + 0.5, 0, top).astype(np.uint16)
    return (values * scale + 0.5).astype(np.uint16)


class MasterWriter:
    """The delivery's second consumer: each processed frame, in output order, is paired
    with the input's frame of the same number (and, for a job that filled pixels, the
    frame's mask from `changed`, in the same order) and written to the master."""

    def __init__(self, plan: MasterPlan, facts: VideoFacts, source: str, sink: Sink, changed: Masks | None = None,
                 filters: tuple[str, ...] = (), timeout: float = 6 * 3600, field_order: str | None = None,
                 decode_filters: tuple[str, ...] = ()) -> None:
        self.plan, self.facts, self.changed = plan, facts, changed
        self.luma = native_luma(source, plan, facts, timeout, decode_filters)
        self.encoder = MasterEncoder(plan, facts, source, sink, filters, timeout, field_order)
        self.count, self.aborted = 0, False

    def write(self, frame: Yuv420) -> None:
        native = next(self.luma, None)
        if native is None:
            raise MediaError(f"the input gave {self.count} frames for the master; the job has {self.facts.frames}")
        mask = None if self.changed is None else next(self.changed, None)
        if self.changed is not None and mask is None:
            raise MediaError(f"the job's masks end at frame {self.count}; the film has {self.facts.frames}")
        self.encoder.write(compose(frame, native, self.plan, mask))
        self.count += 1

    def close(self) -> None:
        if next(self.luma, None) is not None:
            raise MediaError(f"the input has more frames than the {self.count} the job made")
        self.encoder.close()

    def abort(self) -> None:
        if self.aborted:
            return
        self.aborted = True
        self.encoder.abort()
        try:
            self.luma.close()
        except ToolFailed:  # its ffmpeg was stopped mid-stream: that is the point
            pass


__all__ = ["FORMATS", "MasterEncoder", "MasterFormat", "MasterPlan", "MasterUnfit", "MasterWriter",
           "compose", "native_luma", "plan_master"]
