"""How well intake's keyframe check tells a frame's own picture from others, on real clips.

    python -m bench.likeness --out bench-results/likeness [--data ../shared/data]

For every sequence in DATA/clips (true colour JPEG frames): encode its greyscale version
to H.264 (what a black-and-white film looks like to intake), decode frames 5, 25 and 45
the way intake does (`jobs.facts.frame_seek`, `media.video.read_frames`), and score with
`media.likeness.structure_score` against: the true colour frame; the same after gamma
0.6 and 1.6, a strong tint, JPEG q30 at 25 %, a 64 px thumbnail, a 2 % shift and a 3 %
crop; a frame 20 frames away; the same frame number of every other clip. Prints the
range per kind and the share refused (below `REFUSE_BELOW`) or noted (below
`WARN_BELOW`), and writes OUT/results.json and OUT/results.md. These numbers are the ones
`tintype/media/likeness.py` quotes and `tintype/jobs/keyframes.py` sets its thresholds from.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from PIL import Image

from bench.report import write_results
from tintype.jobs.facts import frame_seek
from tintype.jobs.keyframes import REFUSE_BELOW, WARN_BELOW
from tintype.media.likeness import fit_to_frame, structure_score
from tintype.media.probe import probe_video
from tintype.media.video import read_frames

ROOT = Path(__file__).resolve().parent.parent
FRAMES = (5, 25, 45)


def _jpeg(rgb: np.ndarray, quality: int, scale: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    small = cv2.resize(rgb, (max(8, int(width * scale)), max(8, int(height * scale))), interpolation=cv2.INTER_AREA)
    buffer = io.BytesIO()
    Image.fromarray(small).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def _tint(rgb: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.int16)
    lab[..., 1] += 25
    lab[..., 2] -= 20
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def _shift(rgb: np.ndarray, share: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    move = np.float32([[1, 0, width * share], [0, 1, height * share]])
    return cv2.warpAffine(rgb, move, (width, height), borderMode=cv2.BORDER_REFLECT)


def _crop(rgb: np.ndarray, share: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    return rgb[int(height * share):height - int(height * share), int(width * share):width - int(width * share)]


def _gamma(value: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda rgb: (255 * (rgb / 255.0) ** value).astype(np.uint8)


EDITS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "true frame": lambda rgb: rgb, "gamma 0.6": _gamma(0.6), "gamma 1.6": _gamma(1.6), "strong tint": _tint,
    "JPEG q30 at 25 %": lambda rgb: _jpeg(rgb, 30, 0.25),
    "64 px thumbnail": lambda rgb: _jpeg(rgb, 80, 64 / rgb.shape[1]),
    "shifted 2 %": lambda rgb: _shift(rgb, 0.02), "cropped 3 %": lambda rgb: _crop(rgb, 0.03),
}


def _load(clip: Path, index: int) -> np.ndarray:
    return np.asarray(Image.open(clip / "frames" / f"{index:05d}.jpg").convert("RGB"))


def _grey_film(clip: Path, out: Path) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-framerate", "24",
                    "-i", str(clip / "frames" / "%05d.jpg"), "-vf", "hue=s=0,format=yuv420p",
                    "-c:v", "libx264", "-crf", "23", "-preset", "veryfast", str(out)],
                   check=True)
    return out


def _scorer(frame: np.ndarray) -> Callable[[np.ndarray], float]:
    """Likeness of any picture, scaled to the frame as intake scales it, to `frame`."""
    height, width = frame.shape[:2]
    return lambda rgb: structure_score(fit_to_frame(rgb, width, height), frame) or 0.0


def measure(clips: list[Path], tmp: Path) -> dict[str, list[float]]:
    scores: dict[str, list[float]] = {name: [] for name in [*EDITS, "20 frames away", "another clip"]}
    for clip in clips:
        film = _grey_film(clip, tmp / f"{clip.name}.mp4")
        facts = probe_video(str(film))
        for index in (i for i in FRAMES if i < facts.frames):
            frame = read_frames(str(film), facts.width, facts.height, frame_seek(facts, index), 1)[0]
            score = _scorer(frame)
            for name, edit in EDITS.items():
                scores[name].append(score(edit(_load(clip, index))))
            far = index + 20 if index + 20 < facts.frames else index - 20
            scores["20 frames away"].append(score(_load(clip, far)))
            scores["another clip"] += [score(_load(other, index)) for other in clips if other != clip]
    return scores


def report(scores: dict[str, list[float]]) -> tuple[dict, str]:
    rows = {name: {"n": len(v), "min": min(v), "median": float(np.median(v)), "max": max(v),
                   "refused": float(np.mean(np.array(v) < REFUSE_BELOW)),
                   "noted": float(np.mean((np.array(v) >= REFUSE_BELOW) & (np.array(v) < WARN_BELOW)))}
            for name, v in scores.items()}
    lines = [f"Keyframe likeness (refused below {REFUSE_BELOW}, noted below {WARN_BELOW})", "",
             "| picture | n | min | median | max | refused | noted |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {name} | {r['n']} | {r['min']:.3f} | {r['median']:.3f} | {r['max']:.3f} | {r['refused']:.0%} | "
              f"{r['noted']:.0%} |" for name, r in rows.items()]
    return {"refuse_below": REFUSE_BELOW, "warn_below": WARN_BELOW, "rows": rows}, "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "keyframes")
    args = parser.parse_args(argv)
    clips = sorted(p.parent for p in (args.data / "clips").glob("*/frames"))
    if len(clips) < 2:
        print(f"bench.likeness: no clips under {args.data / 'clips'}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-likeness-") as tmp:
        results, markdown = report(measure(clips, Path(tmp)))
    write_results(args.out, results, markdown, lambda line: print(line, file=sys.stderr))
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
