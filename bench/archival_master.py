"""Archival masters (issue 24): what `tintype restore --master` keeps of an archive's input.

    python -m bench.archival_master --out bench-results/archival-master [--frames 48]

Generates its own clips (nothing from ../shared/data: the figures are about containers and
samples, not pictures): a 10-bit ProRes 422 HQ grey film whose luma uses all ten bits,
with a 10:00:00:00 timecode and 24-bit PCM sound, and an 8-bit H.264 film tagged BT.601
with 16-bit PCM in QuickTime. Each is colorized by a real `tintype restore --colorize
--master F` (embedded workers, a private data folder) for F in ffv1 and prores, and the
master is compared with its input:

* audio: sha256 of the decoded PCM of every audio stream, in against out (bit-exact copy);
* timecode, frame count and frame rate, in against out;
* luma error of the master against the input, both read at the INPUT's bit depth (the
  master's samples shifted down): max and mean |Δ|. A colorize-only job changes no
  luminance, so FFV1 (lossless) must show 0; ProRes is lossy, its error is the codec's;
* colour tags (primaries/transfer/matrix/range) of the master and of the MP4 delivery.

`measure(out_dir)` returns the figures (and keeps the files under out_dir);
`markdown(result)` renders them; `main` writes results.json and results.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tintype.media.probe import VideoFacts, probe_video

ROOT = Path(__file__).resolve().parent.parent
FORMATS = {"ffv1": "mkv", "prores": "mov"}
SERVICE_VARS = ("DATABASE_URL", "BROKER_URL", "RESULT_BACKEND", "STORAGE_URL", "S3_ENDPOINT_URL")
BT601 = "color_primaries=smpte170m:color_trc=smpte170m:colorspace=smpte170m:range=tv"


def _ffmpeg(args: list[str], stdin: bytes | None = None) -> bytes:
    return subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], input=stdin, capture_output=True,
                          check=True).stdout


def deep_luma(frames: int, width: int, height: int, depth: int = 10) -> np.ndarray:
    """(frames, H, W) limited-range luma at `depth` bits whose low bits vary: a panning
    gradient with fine noise, so a trip through 8 bits would show."""
    scale = 1 << (depth - 8)
    rng = np.random.default_rng(24)
    ramp = np.linspace(16 * scale, 235 * scale, width)[None, :] + 15 * scale * np.cos(np.arange(height) / 7)[:, None]
    planes = [np.roll(ramp, 2 * i, axis=1) + rng.integers(-2 * scale, 2 * scale + 1, (height, width))
              for i in range(frames)]
    return np.clip(np.stack(planes), 16 * scale, 235 * scale).astype(np.uint16)


def make_prores_clip(path: Path, frames: int, size: tuple[int, int] = (320, 240), rate: str = "24000/1001") -> Path:
    """10-bit ProRes 422 HQ, timecode 10:00:00:00, BT.601 tags, 24-bit PCM stereo."""
    width, height = size
    luma = deep_luma(frames, width, height)
    neutral = np.full_like(luma, 512)
    planes = np.stack([luma, neutral, neutral], axis=1).astype("<u2")
    seconds = float(frames / Fraction(rate))
    _ffmpeg(["-f", "rawvideo", "-pix_fmt", "yuv444p10le", "-s", f"{width}x{height}", "-framerate", rate, "-i", "-",
             "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds:.4f}",
             "-map", "0:v", "-map", "1:a", "-ac", "2", "-c:v", "prores_ks", "-profile:v", "3",
             "-pix_fmt", "yuv422p10le", "-vf", f"setparams={BT601}", "-timecode", "10:00:00:00",
             "-c:a", "pcm_s24le", str(path)], planes.tobytes())
    return path


def make_bt601_clip(path: Path, frames: int, size: tuple[int, int] = (320, 240)) -> Path:
    """8-bit H.264 4:2:0 tagged BT.601, 16-bit PCM, in QuickTime, 25 fps, no timecode."""
    width, height = size
    _ffmpeg(["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=25", "-f", "lavfi", "-i",
             f"sine=frequency=330:sample_rate=44100:duration={frames / 25:.4f}", "-frames:v", str(frames),
             "-vf", f"hue=s=0,format=yuv420p,setparams={BT601}", "-c:v", "libx264", "-preset", "ultrafast",
             "-qp", "0", "-c:a", "pcm_s16le", str(path)])
    return path


def restore(source: Path, out: Path, master: str, data_dir: Path) -> float:
    """Run a real `tintype restore --colorize --master`; its seconds."""
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env.update(TINTYPE_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "tintype.cli", "restore", str(source), "-o", str(out), "--colorize",
                           "--master", master, "--force"], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"tintype restore failed ({done.returncode}): {done.stderr[-2000:]}")
    return time.monotonic() - began


def pcm_digests(path: Path, facts: VideoFacts) -> list[str]:
    """sha256 of each audio stream's decoded samples (32-bit little-endian)."""
    return [hashlib.sha256(_ffmpeg(["-i", str(path), "-map", f"0:{a.index}", "-f", "s32le", "-"])).hexdigest()
            for a in facts.audio]


def luma(path: Path, facts: VideoFacts) -> np.ndarray:
    """Every frame's luma as read at 16 bits (the file's samples shifted up to 16)."""
    raw = _ffmpeg(["-i", str(path), "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "gray16le", "-"])
    return np.frombuffer(raw, "<u2").reshape(-1, facts.height, facts.width)


def luma_error(source: Path, source_facts: VideoFacts, master: Path, master_facts: VideoFacts) -> dict[str, float]:
    """|master − input| on the input's own scale (both read at 16 bits, shifted down to
    the input's depth; ffmpeg's up-conversion to 16 bits replicates bits, so the shift is exact)."""
    shift = 16 - source_facts.bit_depth
    a = luma(source, source_facts).astype(np.int64) >> shift
    b = luma(master, master_facts).astype(np.int64) >> shift
    if a.shape != b.shape:
        return {"max": float("nan"), "mean": float("nan")}
    diff = np.abs(a - b)
    return {"max": float(diff.max()), "mean": float(diff.mean())}


def _tags(facts: VideoFacts) -> str:
    return "/".join(x or "-" for x in (facts.color_primaries, facts.color_transfer, facts.color_space,
                                       facts.color_range))


def measure_one(source: Path, master_name: str, work: Path) -> dict[str, Any]:
    out = work / f"{source.stem}-{master_name}.mp4"
    seconds = restore(source, out, master_name, work / f"data-{source.stem}-{master_name}")
    master = out.with_name(f"{out.stem}-master.{FORMATS[master_name]}")
    src, made, delivery = probe_video(str(source)), probe_video(str(master)), probe_video(str(out))
    audio_in, audio_out = pcm_digests(source, src), pcm_digests(master, made)
    return {
        "input": source.name, "master": master_name, "seconds": round(seconds, 1),
        "input_format": f"{src.video_codec} {src.pix_fmt}", "master_format": f"{made.video_codec} {made.pix_fmt}",
        "audio_codecs": [a.codec for a in made.audio], "audio_bit_exact": bool(audio_in) and audio_in == audio_out,
        "timecode_in": src.timecode, "timecode_out": made.timecode,
        "frames_in": src.frames, "frames_out": made.frames, "rate_in": str(src.fps), "rate_out": str(made.fps),
        "luma_error": luma_error(source, src, master, made), "input_depth": src.bit_depth,
        "tags_in": _tags(src), "tags_master": _tags(made), "tags_delivery": _tags(delivery),
    }


def measure(out_dir: Path, frames: int = 48) -> dict[str, Any]:
    """Both clips through both master formats; the files stay under out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tintype-bench-master-") as tmp:
        work = Path(tmp)
        clips = [make_prores_clip(out_dir / "prores10-tc.mov", frames), make_bt601_clip(out_dir / "bt601.mov", frames)]
        rows = [measure_one(clip, name, work) for clip in clips for name in FORMATS]
        for row in rows:  # keep the results beside the inputs
            for made in work.glob(f"{Path(row['input']).stem}-{row['master']}*"):
                if made.is_file():
                    made.replace(out_dir / made.name)
    return {"frames": frames, "rows": rows, "runtime_s": round(time.monotonic() - began, 1)}


def markdown(result: dict[str, Any]) -> str:
    lines = ["# Archival masters", "",
             f"{result['frames']} frames per clip; luma error on the input's own bit depth (0 = the input's "
             "luminance exactly; FFV1 is lossless, ProRes is not).", "",
             "| input | master | audio bit-exact | timecode in → out | frames / rate | luma error max / mean "
             "| tags in → master / delivery | s |", "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        error = r["luma_error"]
        lines.append(
            f"| {r['input']} ({r['input_format']}) | {r['master_format']} | "
            f"{'yes' if r['audio_bit_exact'] else 'NO'} ({', '.join(r['audio_codecs'])}) | "
            f"{r['timecode_in'] or '-'} → {r['timecode_out'] or '-'} | "
            f"{r['frames_in']}→{r['frames_out']} @ {r['rate_in']}→{r['rate_out']} | "
            f"{error['max']:g} / {error['mean']:.3f} ({r['input_depth']}-bit) | "
            f"{r['tags_in']} → {r['tags_master']} / {r['tags_delivery']} | {r['seconds']} |")
    lines += ["", f"Runtime {result['runtime_s']} s.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.archival_master", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for the clips, masters, results.json and .md")
    p.add_argument("--frames", type=int, default=48, help="frames per generated clip (default 48)")
    args = p.parse_args(argv)
    result = measure(args.out, args.frames)
    (args.out / "results.json").write_text(json.dumps(result, indent=2))
    (args.out / "results.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
