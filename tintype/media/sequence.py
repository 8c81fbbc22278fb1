"""Numbered image sequences (film scans: DPX, 16-bit TIFF, PNG) as one lossless video.

A scanner writes a reel as one file per frame. The pipeline takes videos, so a sequence is
checked (numbers without a gap, one size and one sample layout for every frame, read from
each file's header only) and then wrapped, at its own depth, into FFV1 in Matroska by
ffmpeg's image2 demuxer, which streams the frames: none is held in memory here. A gap or
an odd frame is refused before anything is written, naming the number or the file, since
a wrapped reel with a frame missing or scaled would look whole and be wrong.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tintype.media.errors import CorruptMedia, MediaError, MediaTooLarge, NotMedia
from tintype.media.ffmpeg import FFMPEG, ToolFailed, run_tool

NUMBERED = re.compile(r"^(?P<stem>.*?)(?P<digits>\d+)(?P<ext>\.[A-Za-z0-9]+)$")
PRINTF = re.compile(r"%(0(?P<width>\d+))?d")
FRAME_EXTENSIONS = {".dpx", ".tif", ".tiff", ".png", ".exr"}
# Writing a result back as frames: the encoder and its 16-bit RGB sample format, by extension.
FRAME_WRITERS = {".dpx": ("dpx", "rgb48le"), ".tif": ("tiff", "rgb48le"), ".tiff": ("tiff", "rgb48le"),
                 ".png": ("png", "rgb48be")}


EXR_MAGIC = b"v/1\x01"
EXR_HEADER_BYTES = 64 * 1024  # an EXR header is a list of attributes; DPX and PNG need 1 KiB
EXR_SAMPLES = {0: "uint", 1: "half", 2: "float"}
EXR_DECODE = ("-apply_trc", "iec61966_2_1")  # the decoder's own linear -> sRGB, before 16-bit integers


class SequenceError(MediaError):
    code = "bad_sequence"
    status = 422


@dataclass(frozen=True)
class ImageSequence:
    pattern: Path  # printf pattern ffmpeg reads: scans/reel_%06d.dpx
    first: int  # the first frame's number
    files: tuple[Path, ...]  # in frame order
    width: int
    height: int
    layout: str  # the sample layout every frame shares, e.g. "DPX 16-bit luma"

    @property
    def name(self) -> str:
        """A plain name for the job: the pattern's stem, or its folder's name."""
        stem = PRINTF.sub("", self.pattern.stem).strip("_-. ")
        return stem or self.pattern.parent.resolve().name or "sequence"


def is_sequence(given: Path) -> bool:
    """Whether a restore input names a sequence: a folder, or a printf pattern. An existing
    file is never a pattern, whatever its name (100%done.jpg)."""
    return given.is_dir() or (not given.is_file() and PRINTF.search(given.name) is not None)


def find_sequence(given: Path) -> ImageSequence:
    """The sequence a folder holds or a printf pattern names, checked; SequenceError says
    what is wrong (no frames, a gap, a frame of another size or depth)."""
    pattern, numbered = _pattern_files(given) if given.is_dir() else _matching(given)
    if not numbered:
        raise SequenceError(f"no numbered frames (DPX, TIFF or PNG named like reel_000001.dpx) in {given.name}",
                            "empty_sequence")
    numbers = sorted(numbered)
    missing = next((n for n in range(numbers[0], numbers[-1] + 1) if n not in numbered), None)
    if missing is not None:
        raise SequenceError(f"frame number {missing} is missing ({_printf(pattern.name, missing)}): the "
                            f"sequence runs {numbers[0]}..{numbers[-1]} with a gap; supply the frame or "
                            "renumber", "sequence_gap")
    files = tuple(numbered[n] for n in numbers)
    width, height, layout = _same_frames(files)
    return ImageSequence(pattern, numbers[0], files, width, height, layout)


def _pattern_files(folder: Path) -> tuple[Path, dict[int, Path]]:
    """A folder's one run of numbered frames (name, number, extension) and its pattern."""
    runs: dict[tuple[str, str, int], dict[int, Path]] = {}
    for path in folder.iterdir():
        found = NUMBERED.match(path.name)
        if path.name.startswith(".") or not path.is_file() or found is None:
            continue
        if found["ext"].lower() not in FRAME_EXTENSIONS:
            continue
        digits = found["digits"]
        width = len(digits) if digits.startswith("0") and len(digits) > 1 else 0
        runs.setdefault((found["stem"], found["ext"], width), {})[int(digits)] = path
    runs = _merge_unpadded(runs)
    if len(runs) > 1:
        names = ", ".join(sorted(f"{stem}%{'0' + str(w) if w else ''}d{ext}" for stem, ext, w in runs))
        raise SequenceError(f"there is more than one numbered sequence ({names}); give one at a time",
                            "mixed_sequences")
    if not runs:
        return folder / "frame_%d.dpx", {}
    (stem, ext, width), numbered = next(iter(runs.items()))
    return folder / f"{stem}%{'0' + str(width) if width else ''}d{ext}", numbered


def _merge_unpadded(runs: dict[tuple[str, str, int], dict[int, Path]]) -> dict[tuple[str, str, int], dict[int, Path]]:
    """Numbers too large to need a leading zero (1000 in a %04d run) belong to the padded run."""
    merged = dict(runs)
    for (stem, ext, width), numbered in runs.items():
        loose = merged.get((stem, ext, 0))
        if width and loose is not None and all(len(str(n)) >= width for n in loose):
            numbered.update(merged.pop((stem, ext, 0)))
    return merged


def _matching(pattern: Path) -> tuple[Path, dict[int, Path]]:
    """The files a printf pattern (reel_%06d.dpx) names, by number."""
    spec = PRINTF.search(pattern.name)
    if spec is None:
        raise SequenceError(f"{pattern.name} is not a pattern: write the number as %d or %06d", "empty_sequence")
    digits = rf"(\d{{{int(spec['width'])},}})" if spec["width"] else r"([1-9]\d*|0)"
    shape = re.compile(re.escape(pattern.name[:spec.start()]) + digits + re.escape(pattern.name[spec.end():]) + "$")
    folder = pattern.parent if str(pattern.parent) else Path(".")
    if not folder.is_dir():
        raise SequenceError(f"the folder {folder} of {pattern.name} does not exist", "empty_sequence")
    numbered: dict[int, Path] = {}
    for path in folder.iterdir():
        found = shape.match(path.name)
        if found and path.is_file():
            numbered[int(found[1])] = path
    return pattern, numbered


def _printf(name: str, number: int) -> str:
    spec = PRINTF.search(name)
    if spec is None:
        return name
    text = str(number).zfill(int(spec["width"] or 0))
    return name[:spec.start()] + text + name[spec.end():]


def _same_frames(files: tuple[Path, ...]) -> tuple[int, int, str]:
    """Every frame's size and layout, from its header, equal to the first frame's."""
    first = frame_header(files[0])
    for path in files[1:]:
        header = frame_header(path)
        if header != first:
            raise SequenceError(f"{path.name} is {_shown(header)} but the first frame {files[0].name} is "
                                f"{_shown(first)}; every frame of a sequence must match", "sequence_mismatch")
    return first


def _shown(header: tuple[int, int, str]) -> str:
    return f"{header[0]}x{header[1]} {header[2]}"


def frame_header(path: Path) -> tuple[int, int, str]:
    """(width, height, layout) of one frame, from its first bytes: DPX and PNG headers are
    read directly (Pillow reports a 16-bit RGB frame as 8-bit RGB), TIFF by its tags."""
    with open(path, "rb") as fh:
        head = fh.read(EXR_HEADER_BYTES)
    try:
        if head[:4] in (b"SDPX", b"XPDS"):
            return _dpx(head)
        if head[:4] == EXR_MAGIC:
            return _exr(head)
        if head[:8] == b"\x89PNG\r\n\x1a\n":
            width, height, depth, colour = struct.unpack(">IIBB", head[16:26])
            return width, height, f"PNG {depth}-bit {_PNG_COLOURS.get(colour, colour)}"
        return _pillow(path)
    except (struct.error, IndexError) as exc:
        raise CorruptMedia(f"{path.name}: the header is cut short", "corrupt_frame") from exc


_PNG_COLOURS = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}
_DPX_ELEMENTS = {6: "luma", 50: "RGB", 51: "RGBA", 52: "ABGR", 100: "CbYCrY", 102: "CbYCr"}


def _dpx(head: bytes) -> tuple[int, int, str]:
    """DPX's image header: size at 772, the first element's descriptor and bit size at 800."""
    order = ">" if head[:4] == b"SDPX" else "<"
    width, height = struct.unpack(order + "II", head[772:780])
    descriptor, bits = head[800], head[803]
    return width, height, f"DPX {bits}-bit {_DPX_ELEMENTS.get(descriptor, descriptor)}"


def _exr(head: bytes) -> tuple[int, int, str]:
    """OpenEXR's header: attributes (name, type, size, value) until an empty name; the size
    is the data window's, the layout its channels and their sample type. Every size is
    checked against the bytes read: a crafted negative one would otherwise loop for ever."""
    pos, size, channels = 8, None, ""
    while head[pos] != 0:
        name_end = _nul(head, pos)
        type_end = _nul(head, name_end + 1)
        (length,) = struct.unpack("<i", head[type_end + 1:type_end + 5])
        end = type_end + 5 + length
        if length < 0 or end > len(head):
            raise CorruptMedia(f"an OpenEXR attribute of {length} bytes does not fit the header", "corrupt_frame")
        value = head[type_end + 5:end]
        if head[pos:name_end] == b"dataWindow":
            x0, y0, x1, y1 = struct.unpack("<4i", value[:16])
            size = (x1 - x0 + 1, y1 - y0 + 1)
        elif head[pos:name_end] == b"channels":
            channels = _exr_channels(value)
        pos = end  # past the name and type: always forward
    if size is None:
        raise CorruptMedia("an OpenEXR header without a data window", "corrupt_frame")
    return size[0], size[1], f"EXR {channels}"


def _exr_channels(value: bytes) -> str:
    """"half RGB", "float BGR"...: each channel's name and sample type (uint, half, float);
    each entry moves 17 bytes or more forward, and a list without its end is cut short."""
    names, kinds, pos = [], set(), 0
    while value[pos] != 0:
        end = _nul(value, pos)
        names.append(value[pos:end].decode("latin-1"))
        kinds.add(EXR_SAMPLES.get(struct.unpack("<i", value[end + 1:end + 5])[0], "?"))
        pos = end + 17  # name, then pixel type, pLinear + 3 reserved, x and y sampling
    return f"{'/'.join(sorted(kinds))} {''.join(names)}"


def _nul(data: bytes, start: int) -> int:
    """Where the NUL ending a string that starts at `start` is; a string without one is a
    header cut short (bytes.index's ValueError would pass for a bad value)."""
    end = data.find(b"\0", start)
    if end < 0:
        raise IndexError("no NUL")
    return end


def _pillow(path: Path) -> tuple[int, int, str]:
    try:
        with Image.open(path) as img:
            bits = img.tag_v2.get(258) if hasattr(img, "tag_v2") else None
            depth = "/".join(str(b) for b in bits) + "-bit " if isinstance(bits, tuple) else ""
            return img.width, img.height, f"{img.format} {depth}{img.mode}"
    except Image.DecompressionBombError as exc:  # a frame this large would be refused when decoded
        raise MediaTooLarge(f"{path.name}: {exc}", "media_too_large") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise NotMedia(f"{path.name}: not an image tintype can read as a frame (DPX, TIFF or PNG)",
                       "bad_frame") from exc


def wrap_sequence(sequence: ImageSequence, fps: float, out: Path, timeout: float) -> Path:
    """The sequence as FFV1 (every frame a keyframe) in Matroska at `fps`, in the sample
    format ffmpeg decodes it to (16-bit grey, 10-bit or 16-bit RGB planes...): lossless.
    OpenEXR's float samples are scene-linear and FFV1 holds integers: they are encoded with
    the sRGB transfer into 16-bit RGB (values above 1.0 clip), the one conversion made."""
    exr = sequence.pattern.suffix.lower() == ".exr"
    args = [FFMPEG, "-v", "error", "-nostdin", "-y", "-f", "image2", "-framerate", f"{fps:g}",
            *(EXR_DECODE if exr else ()), "-start_number", str(sequence.first), "-i", str(sequence.pattern),
            "-frames:v", str(len(sequence.files)), "-map", "0:v:0", "-c:v", "ffv1", "-level", "3", "-g", "1",
            "-slicecrc", "1", *(_exr_samples(sequence.layout) if exr else ()), str(out)]
    try:
        run_tool(args, timeout)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return out


def _exr_samples(layout: str) -> tuple[str, ...]:
    channels = layout.split()[-1]
    return ("-pix_fmt", "gbrap16le" if "A" in channels else "gray16le" if channels == "Y" else "gbrp16le")


def unwrap_video(video: Path, sequence: ImageSequence, folder: Path, timeout: float) -> list[Path]:
    """A result video written into `folder` as frames named and numbered like `sequence`'s,
    in its file format, 16-bit RGB when its frames are deeper than 8 bits. Frames are made
    in a hidden folder there and moved into place only once ffmpeg has made all of them."""
    writer = FRAME_WRITERS.get(sequence.pattern.suffix.lower())
    if writer is None:
        raise SequenceError(f"a result cannot be written as {sequence.pattern.suffix} frames; name an MP4 "
                            "with -o", "unsupported_frames")
    codec, deep = writer
    depth = re.search(r"(\d+)(?:/\d+)*-bit", sequence.layout)
    sample = deep if depth is None or int(depth[1]) > 8 else "rgb24"
    part = Path(tempfile.mkdtemp(dir=folder, prefix=".tintype-frames-"))
    try:
        run_tool([FFMPEG, "-v", "error", "-nostdin", "-y", "-i", str(video), "-map", "0:v:0", "-c:v", codec,
                  "-pix_fmt", sample, "-start_number", str(sequence.first), str(part / sequence.pattern.name)],
                 timeout)
        made = sorted(part.iterdir())
        if sorted(p.name for p in made) != sorted(p.name for p in sequence.files):
            raise ToolFailed(f"ffmpeg wrote {len(made)} frames of the result for {len(sequence.files)} in the input")
        for frame in made:
            os.replace(frame, folder / frame.name)
        return [folder / frame.name for frame in made]
    finally:
        shutil.rmtree(part, ignore_errors=True)


__all__ = ["ImageSequence", "SequenceError", "find_sequence", "frame_header", "is_sequence", "unwrap_video",
           "wrap_sequence"]
