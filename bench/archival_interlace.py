"""Interlaced material: detection, exact chunked deinterlacing, and the re-weave for a master.

    measure(out_dir) -> dict; markdown(result) -> str   (driven by `make bench-archival`)

Detection (`media.interlace.detect_interlacing`: the stream's field_order checked with
idet on at most 200 sampled frames) on clips made here with ffmpeg: a moving test pattern
shot at 50 pictures/s, woven top- or bottom-field first and coded as interlaced H.264;
the same woven frames flagged progressive (interlacing a flag hides), flagged bb while
top-field first (a wrong flag), and the pattern progressive at 25 and 29.97 fps. Where
../shared/data/clips exists, real footage too: a clip's consecutive frames woven as the
two fields of one frame (either order), and the clip itself, progressive.

Then, on the top-field-first clip: whether chunks of 7 working frames decode to the bytes
of one whole-film decode (frame and field rate); the PSNR of each field after field-rate
bwdif and the re-weave (`media.deinterlace.reweave_filters`), straight and through an
H.264 CRF 18 encode of the field-rate frames; and bwdif's decode speed at 720x576.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from tintype.media.deinterlace import Deinterlace, reweave_filters, working_facts
from tintype.media.interlace import detect_interlacing
from tintype.media.probe import probe_video
from tintype.media.video import iter_yuv_frames
from tintype.tasks.probe import plan_chunks

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "clips"
REAL_CLIPS = ("bear", "running-car", "skateboard")
SIZE = (320, 240)
FRAMES = 60


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True)


def _coding(flag: str) -> list[str]:
    if flag == "progressive":
        return ["-field_order", "progressive"]
    first = "bff=1" if flag in ("bb", "tb") else "tff=1"
    return ["-x264-params", first, "-flags", "+ilme+ildct", "-field_order", flag]


def _pattern(out: Path, weave: str | None, flag: str, rate: str = "50", size: tuple[int, int] = SIZE,
             frames: int = FRAMES) -> Path:
    """The test pattern drawn at 4x and scaled down (its own fine lines would look combed)."""
    w, h = size
    steps = [f"scale={w}:{h}:flags=area"] + ([f"tinterlace=mode={weave}"] if weave else []) + ["format=yuv420p"]
    _ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={w * 4}x{h * 4}:rate={rate}", "-vf", ",".join(steps),
            "-frames:v", str(frames), "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", *_coding(flag), str(out))
    return out


def _real(out: Path, clip: Path, weave: str | None, flag: str) -> Path:
    """A clip's JPEG frames; woven, each pair of frames becomes one frame's two fields."""
    woven = [f"tinterlace=mode={weave}"] if weave else []
    steps = ["scale=trunc(iw/2)*2:trunc(ih/4)*4", *woven, "format=yuv420p"]  # interlaced 4:2:0: height in 4s
    _ffmpeg("-framerate", "30", "-i", str(clip / "frames" / "%05d.jpg"), "-vf", ",".join(steps), "-c:v", "libx264",
            "-preset", "veryfast", "-crf", "16", *_coding(flag), str(out))
    return out


def _cases(out: Path) -> list[tuple[str, Path, str | None]]:
    """(name, clip, the field order it really has: tff, bff or None for progressive)."""
    cases = [("pattern tt", _pattern(out / "tt.mp4", "interleave_top", "tt"), "tff"),
             ("pattern bb", _pattern(out / "bb.mp4", "interleave_bottom", "bb"), "bff"),
             ("pattern tff flagged progressive", _pattern(out / "hidden.mp4", "interleave_top", "progressive"), "tff"),
             ("pattern tff flagged bb", _pattern(out / "wrong.mp4", "interleave_top", "bb"), "tff"),
             ("pattern progressive 25", _pattern(out / "p25.mp4", None, "progressive", "25"), None),
             ("pattern progressive 29.97", _pattern(out / "p30.mp4", None, "progressive", "30000/1001"), None)]
    for name in REAL_CLIPS:
        clip = DATA / name
        if (clip / "frames").is_dir():
            cases += [(f"{name} woven tt", _real(out / f"{name}-tt.mp4", clip, "interleave_top", "tt"), "tff"),
                      (f"{name} woven bb", _real(out / f"{name}-bb.mp4", clip, "interleave_bottom", "bb"), "bff"),
                      (f"{name} progressive", _real(out / f"{name}-p.mp4", clip, None, "progressive"), None)]
    return cases


def _deinterlaced_by_default(truth: str | None, stream: str) -> bool:
    """What detection should decide: interlaced content is deinterlaced unless its stream
    says progressive (then only reported, with its field order: media.interlace)."""
    return truth is not None and stream != "progressive"


def _detection(out: Path) -> list[dict[str, Any]]:
    rows = []
    for name, path, truth in _cases(out):
        facts = probe_video(str(path))
        began = time.perf_counter()
        found = detect_interlacing(str(path), facts)
        seconds = time.perf_counter() - began
        rows.append({"clip": name, "frames": facts.frames, "stream": facts.field_order, **found.to_json(),
                     "truth": truth or "progressive", "seconds": round(seconds, 3),
                     "correct": found.interlaced == _deinterlaced_by_default(truth, facts.field_order)
                     and found.field_order == truth})
    return rows


def _chunks_exact(source: Path, mode: str) -> bool:
    plan = Deinterlace(mode, "tff")
    facts = working_facts(probe_video(str(source)), plan)
    whole = [f.tobytes() for f in iter_yuv_frames(str(source), facts.width, facts.height, None,
                                                  filters=plan.filters(0))]
    for chunk in plan_chunks(facts, 7, 2, plan):
        part = [f.tobytes() for f in iter_yuv_frames(str(source), facts.width, facts.height, chunk.seek_time,
                                                     chunk.decode_count, filters=plan.filters(chunk.decode_start))]
        if part != whole[chunk.decode_start:chunk.decode_start + chunk.decode_count]:
            return False
    return len(whole) == facts.frames


def _gray(path: Path, filters: list[str], size: tuple[int, int]) -> np.ndarray:
    args = ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path)] + (["-vf", ",".join(filters)] if filters else [])
    raw = subprocess.run(args + ["-f", "rawvideo", "-pix_fmt", "gray", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, size[1], size[0]).astype(np.float64)


def _field_psnr(a: np.ndarray, b: np.ndarray) -> dict[str, float | str]:
    out: dict[str, float | str] = {}
    for name, first in (("top", 0), ("bottom", 1)):
        mse = float(((a[:, first::2] - b[:, first::2]) ** 2).mean())
        out[name] = "inf" if mse == 0 else round(10 * np.log10(255 ** 2 / mse), 2)
    return out


def _round_trip(source: Path, out: Path) -> dict[str, Any]:
    original = _gray(source, [], SIZE)
    bwdif = Deinterlace("field", "tff").bwdif()
    straight = _gray(source, [bwdif, *reweave_filters("tff")], SIZE)
    coded = out / "fields-crf18.mp4"
    _ffmpeg("-i", str(source), "-vf", bwdif, "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", str(coded))
    through = _gray(coded, reweave_filters("tff"), SIZE)
    return {"straight": _field_psnr(original, straight), "h264_crf18": _field_psnr(original, through)}


def _speed(out: Path) -> dict[str, float]:
    source = _pattern(out / "pal.mp4", "interleave_top", "tt", size=(720, 576), frames=100)
    speeds = {}
    for mode in ("off", "frame", "field"):
        filters = Deinterlace(mode, "tff").filters(0) if mode != "off" else ()
        began = time.perf_counter()
        count = sum(1 for _ in iter_yuv_frames(str(source), 720, 576, None, filters=filters))
        speeds[mode] = round(count / (time.perf_counter() - began), 1)
    return speeds


def measure(out_dir: Path) -> dict[str, Any]:
    """Make the clips under `out_dir` and measure (about a minute on two cores)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    detection = _detection(out_dir)
    tt = out_dir / "tt.mp4"
    result = {"detection": detection, "correct": sum(r["correct"] for r in detection), "cases": len(detection),
              "chunks_exact": {mode: _chunks_exact(tt, mode) for mode in ("frame", "field")},
              "reweave_field_psnr_db": _round_trip(tt, out_dir), "decode_fps_720x576": _speed(out_dir)}
    straight = result["reweave_field_psnr_db"]["straight"]
    result["targets"] = [
        {"name": "interlace detection", "measured": f"{result['correct']}/{result['cases']} clips",
         "met": result["correct"] == result["cases"]},
        {"name": "interlace chunks exact", "measured": str(result["chunks_exact"]),
         "met": all(result["chunks_exact"].values())},
        {"name": "interlace re-weave gives the fields back", "measured": f"{straight['top']} / {straight['bottom']} dB",
         "met": straight == {"top": "inf", "bottom": "inf"}},
    ]
    return result


def markdown(result: dict[str, Any]) -> str:
    """The results as a markdown section."""
    lines = ["## Interlaced material", "",
             f"Detection correct on {result['correct']} of {result['cases']} clips (stream flag checked with "
             "idet's multi-frame counts on at most 200 frames).", "",
             "| clip | frames | stream flag | idet tff / bff / progressive / undetermined | decision | truth | s |",
             "|---|---|---|---|---|---|---|"]
    for row in result["detection"]:
        idet = row["idet"]
        decision = f"interlaced {row['field_order'] or '(order unknown)'}" if row["interlaced"] else "progressive"
        mark = "" if row["correct"] else " **wrong**"
        lines.append(f"| {row['clip']} | {row['frames']} | {row['stream']} | {idet['tff']} / {idet['bff']} / "
                     f"{idet['progressive']} / {idet['undetermined']} | {decision}{mark} | {row['truth']} | "
                     f"{row['seconds']} |")
    exact, psnr, fps = result["chunks_exact"], result["reweave_field_psnr_db"], result["decode_fps_720x576"]
    lines += ["", f"Chunks of 7 working frames give the bytes of one whole decode: frame rate {exact['frame']}, "
                  f"field rate {exact['field']}.", "",
              "Field PSNR (dB, luma) after field-rate bwdif and the re-weave: straight "
              f"{psnr['straight']['top']} / {psnr['straight']['bottom']} (top / bottom); with the field-rate "
              f"frames through H.264 CRF 18 {psnr['h264_crf18']['top']} / {psnr['h264_crf18']['bottom']}.", "",
              f"Decode to 4:2:0 at 720x576 (frames/s out): no deinterlace {fps['off']}, bwdif frame rate "
              f"{fps['frame']}, field rate {fps['field']}.", ""]
    return "\n".join(lines)
