"""What a video's samples are: bit depth, chroma subsampling, colour tags and timecode.

The pipeline's models work on 8-bit 4:2:0; an archival master (media.master) must keep
what the input had instead, so intake records it (VideoFacts) from ffprobe's stream
fields, and the master and the delivery carry the colour tags on.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

_PLANAR = re.compile(r"^yuva?j?(420|422|444|440|411|410)p(\d+)?(le|be)?$")
# Packed and semi-planar formats, by chroma layout (their depth is in the name or 8).
_LAYOUTS = {"nv12": "4:2:0", "nv21": "4:2:0", "p010": "4:2:0", "p012": "4:2:0", "p016": "4:2:0",
            "nv16": "4:2:2", "nv20": "4:2:2", "p210": "4:2:2", "p216": "4:2:2", "yuyv422": "4:2:2",
            "uyvy422": "4:2:2", "yvyu422": "4:2:2", "y210": "4:2:2", "v210": "4:2:2",
            "nv24": "4:4:4", "p410": "4:4:4", "p416": "4:4:4"}
_DEPTH_IN_NAME = re.compile(r"(\d+)(le|be)?$")
COLOUR_TAGS = ("color_primaries", "color_transfer", "color_space", "color_range")


def chroma_of(pix_fmt: str) -> str:
    """The chroma subsampling of an ffmpeg pixel format ("4:0:0" for grey, "4:4:4" for
    RGB and anything unknown, so nothing is ever thought to hold less than it does)."""
    base = pix_fmt.removesuffix("le").removesuffix("be")
    planar = _PLANAR.match(pix_fmt)
    if planar:
        sub = planar.group(1)
        return {"420": "4:2:0", "422": "4:2:2"}.get(sub, "4:4:4")
    if base.startswith(("gray", "ya")) or base in ("monow", "monob"):
        return "4:0:0"
    return _LAYOUTS.get(base, "4:4:4")


def depth_of(pix_fmt: str, raw_bits: Any = None) -> int:
    """Bits per sample: the decoder's own figure (bits_per_raw_sample) when it gives
    one, else the number in the format's name, else 8."""
    if str(raw_bits or "").isdigit() and 8 <= int(raw_bits) <= 16:
        return int(raw_bits)
    planar = _PLANAR.match(pix_fmt)
    if planar:
        return int(planar.group(2) or 8)
    named = _DEPTH_IN_NAME.search(pix_fmt.removeprefix("yuv").removeprefix("nv"))
    if named and pix_fmt[:1] in "pgyr" and 8 <= int(named.group(1)) <= 16:
        return int(named.group(1))
    if pix_fmt in ("v210", "y210le", "p210le", "p410le"):
        return 10
    return 16 if pix_fmt.startswith(("rgb48", "bgr48", "rgba64", "bgra64")) else 8


def planar_format(chroma: str, depth: int) -> str:
    """The planar little-endian YUV format of this subsampling and depth (grey and rare
    layouts as 4:4:4): how the master reads an input's luma without changing it."""
    sub = {"4:2:0": "420", "4:2:2": "422"}.get(chroma, "444")
    return f"yuv{sub}p" if depth <= 8 else f"yuv{sub}p{depth}le"


def timecode_of(video: Mapping[str, Any], streams: list[Mapping[str, Any]], fmt: Mapping[str, Any]) -> str:
    """The start timecode: on the video stream (MOV, MXF), a timecode track (tmcd) or the
    container (Matroska's TIMECODE tag)."""
    places = [video, *[s for s in streams if s.get("codec_type") == "data"], fmt]
    for place in places:
        for name, value in (place.get("tags") or {}).items():
            if name.lower() == "timecode" and value:
                return str(value)
    return ""


def picture_facts(video: Mapping[str, Any], streams: list[Mapping[str, Any]],
                  fmt: Mapping[str, Any]) -> dict[str, Any]:
    """The VideoFacts fields about samples, tags and timecode, from ffprobe's JSON."""
    pix_fmt = str(video.get("pix_fmt") or "")
    tags = {name: str(video.get(name) or "") for name in COLOUR_TAGS}
    tags = {name: "" if value in ("unknown", "reserved", "unspecified") else value for name, value in tags.items()}
    if not tags["color_range"] and "j" in pix_fmt.split("p")[0]:
        tags["color_range"] = "pc"  # yuvj formats are full range by definition
    return {"pix_fmt": pix_fmt, "bit_depth": depth_of(pix_fmt, video.get("bits_per_raw_sample")),
            "chroma": chroma_of(pix_fmt), "timecode": timecode_of(video, streams, fmt), **tags}


RGB_TO_YUV_MATRIX = "smpte170m"  # what swscale converts RGB to YUV with unless told otherwise


def colour_tags(facts: Any, full_range: bool | None = None) -> tuple[str | None, list[str]]:
    """The input's colour tags as a `setparams` filter (ffmpeg 5 takes a frame's own tags
    over the encoder options, and raw frames on a pipe have none) and as encoder options.
    `full_range` overrides the range (the delivery is always limited range). An RGB input
    (matrix "gbr": DPX, TIFF and EXR sequences) reaches the encoders as YUV made with
    swscale's default matrix, BT.601, so that is the matrix they are tagged with."""
    space = RGB_TO_YUV_MATRIX if facts.color_space == "gbr" else facts.color_space
    values = {"color_primaries": facts.color_primaries, "color_trc": facts.color_transfer, "colorspace": space}
    values = {key: value for key, value in values.items() if value}
    rng = facts.color_range if full_range is None else ("pc" if full_range else "tv")
    params = [f"{key}={value}" for key, value in values.items()] + ([f"range={rng}"] if rng else [])
    options = [arg for key, value in values.items() for arg in (f"-{key}", value)]
    options += ["-color_range", rng] if rng else []
    return ("setparams=" + ":".join(params) if params else None), options


__all__ = ["COLOUR_TAGS", "chroma_of", "colour_tags", "depth_of", "picture_facts", "planar_format", "timecode_of"]
