"""`tintype eval OUTPUT [--reference REF]`: quality measures of a result, as a table and JSON.

With a reference (the true colour, same frame count and size): PSNR and SSIM per frame,
averaged. Always, for a video: the no-reference measures of `media.metrics` — warping
error (Lai et al. 2018), chroma warping error, chroma flicker — with flow on the
lightness of the reference when there is one, else of OUTPUT itself; and colourfulness
(Hasler–Süsstrunk). Videos stream through ffmpeg one frame at a time, so a whole film
is measured in bounded memory. Bad input (missing, not media, a reference that does not
match) ends with a message and exit status 2.

Heavy modules (numpy, OpenCV, the media package) are imported when the command runs,
so the rest of the CLI starts as fast as before.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

EXIT_OK, EXIT_BAD_INPUT = 0, 2
MEASURES = [  # key, label, format
    ("psnr", "PSNR (dB)", "{:.3f}"),
    ("ssim", "SSIM", "{:.4f}"),
    ("warping_error", "warping error", "{:.6f}"),
    ("chroma_warping_error", "chroma warping error (a,b)", "{:.6f}"),
    ("chroma_flicker", "chroma flicker (Lab units)", "{:.4f}"),
    ("colourfulness", "colourfulness", "{:.2f}"),
]


class BadInput(Exception):
    """Something about the files the user gave: reported, exit status 2."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", type=Path, help="the result to measure (image or video)")
    parser.add_argument("--reference", type=Path, help="the true colour: same frame count and size")
    parser.add_argument("--json", type=Path, help="where to write the JSON (default OUTPUT.eval.json)")
    parser.add_argument("--max-width", type=int, default=0,
                        help="measure at most this wide (both files scaled alike); 0: full size")


@dataclass
class Source:
    """An image or a video, as a stream of RGB frames at the measuring size."""

    path: Path
    kind: str  # "image" or "video"
    width: int
    height: int
    frames: int
    open_frames: Callable[[int, int], Iterator[Any]]  # (width, height) → frames

    def describe(self) -> str:
        what = "image" if self.kind == "image" else f"video, {self.frames} frames"
        return f"{self.path} ({what}, {self.width}x{self.height})"


def open_source(path: Path) -> Source:
    """Recognise an image (by content) or a video (by ffprobe); BadInput otherwise."""
    from tintype.media.errors import MediaError
    from tintype.media.images import load_image, sniff_image
    from tintype.media.probe import probe_video
    from tintype.settings import load_settings

    if not path.is_file():
        raise BadInput(f"{path} does not exist")
    settings = load_settings()
    limit = settings.max_image_pixels
    try:
        facts = sniff_image(path, limit)
        if facts is not None and facts["frames"] == 1:
            def still(width: int, height: int) -> Iterator[Any]:
                import cv2

                rgb = load_image(path, limit).rgb
                if rgb.shape[:2] != (height, width):
                    rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
                yield rgb

            return Source(path, "image", facts["width"], facts["height"], 1, still)
        video = probe_video(str(path), settings.ffmpeg_timeout_seconds)
    except MediaError as exc:
        raise BadInput(f"{path}: {exc}") from exc
    return Source(path, "video", video.width, video.height, video.frames,
                  lambda width, height: _stream(path, video.width, video.height, width, height))


def _stream(path: Path, width: int, height: int, out_width: int, out_height: int) -> Iterator[Any]:
    """Every frame of a video as uint8 RGB (out_height, out_width, 3), one at a time."""
    import numpy as np

    from tintype.media.ffmpeg import FFMPEG, finish_tool, kill_tool, start_tool

    args = [FFMPEG, "-v", "error", "-nostdin", "-i", str(path), "-map", "0:v:0", "-fps_mode", "passthrough"]
    if (out_width, out_height) != (width, height):
        args += ["-vf", f"scale={out_width}:{out_height}:flags=area"]
    proc = start_tool(args + ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"], stdout=True)
    size = out_width * out_height * 3
    finished = False
    try:
        while True:
            raw = proc.stdout.read(size)
            while raw and len(raw) < size:
                more = proc.stdout.read(size - len(raw))
                if not more:
                    break
                raw += more
            if len(raw) < size:
                break
            yield np.frombuffer(raw, np.uint8).reshape(out_height, out_width, 3)
        finished = True
    finally:
        if finished:
            proc.stdout.close()
            finish_tool(proc, f"ffmpeg decode of {path.name}", 24 * 3600)
        else:  # the consumer stopped early (an error, or a shorter reference)
            kill_tool(proc)


def measuring_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    if max_width <= 0 or width <= max_width:
        return width, height
    return max_width, max(1, round(height * max_width / width))


def evaluate(output: Source, reference: Source | None, max_width: int = 0,
             progress: bool = True) -> dict[str, Any]:
    """Stream OUTPUT (and REFERENCE) once and return the report."""
    from tqdm import tqdm

    from tintype.media.metrics import ReferenceMeter, TemporalMeter

    if reference is not None:
        if (reference.width, reference.height) != (output.width, output.height):
            raise BadInput(f"the reference is {reference.width}x{reference.height} but the output is "
                           f"{output.width}x{output.height}; they must be the same size")
        if reference.frames != output.frames:
            raise BadInput(f"the reference has {reference.frames} frames but the output has "
                           f"{output.frames}; they must have the same frame count")
    width, height = measuring_size(output.width, output.height, max_width)
    temporal, paired = TemporalMeter(), ReferenceMeter() if reference is not None else None
    frames = output.open_frames(width, height)
    truths = reference.open_frames(width, height) if reference is not None else None
    count = 0
    with tqdm(total=output.frames, unit="frame", desc="measuring", dynamic_ncols=True,
              disable=not progress or output.kind == "image", file=sys.stderr) as bar:
        try:
            for frame in frames:
                truth = None
                if truths is not None:
                    truth = next(truths, None)
                    if truth is None:
                        raise BadInput(f"the reference ended after {count} frames; the output has more")
                    paired.push(frame, truth)
                temporal.push(frame, truth)
                count += 1
                bar.update(1)
            if truths is not None and next(truths, None) is not None:
                raise BadInput(f"the reference has more frames than the output's {count}")
        finally:
            frames.close()
            if truths is not None:
                truths.close()
    no_ref = temporal.summary()
    measures: dict[str, Any] = {}
    if paired is not None:
        with_ref = paired.summary()
        measures.update(psnr=with_ref["psnr"], ssim=with_ref["ssim"])
    for key in ("warping_error", "chroma_warping_error", "chroma_flicker", "colourfulness"):
        measures[key] = no_ref[key]
    return {
        "output": str(output.path),
        "reference": str(reference.path) if reference is not None else None,
        "kind": output.kind,
        "frames": count,
        "size": [output.width, output.height],
        "measured_size": [width, height],
        "flow_source": "reference" if reference is not None else "output",
        "measures": measures,
        "details": {
            "pairs_measured": no_ref["pairs_measured"],
            "scene_cuts": no_ref["scene_cuts"],
            "identical_frames": paired.identical_frames if paired is not None else None,
            "warping_units": "mean squared difference, RGB and ab scaled to [0, 1]; "
                             "pairs across scene cuts and occluded pixels excluded",
        },
    }


def _shown(value: Any, fmt: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf (identical)"
    return fmt.format(value)


def table(report: dict[str, Any]) -> str:
    rows = [(label, _shown(report["measures"][key], fmt))
            for key, label, fmt in MEASURES if key in report["measures"]]
    width = max(len(label) for label, _ in rows)
    lines = [f"{'measure'.ljust(width)}  value", f"{'-' * width}  {'-' * 15}"]
    lines += [f"{label.ljust(width)}  {value}" for label, value in rows]
    notes = []
    if report["kind"] == "video" and report["details"]["pairs_measured"] == 0:
        notes.append("flow measures need two frames of one scene; none could be measured")
    if report["kind"] == "image":
        notes.append("flow measures apply to video only")
    if report["details"]["scene_cuts"]:
        notes.append(f"{len(report['details']['scene_cuts'])} scene cut(s) left out of the flow measures")
    if report["measured_size"] != report["size"]:
        notes.append("measured at {}x{}".format(*report["measured_size"]))
    return "\n".join(lines + [f"note: {n}" for n in notes])


def _json_safe(value: Any) -> Any:
    """Strict JSON: an infinite PSNR (identical frames) is written as the string "inf"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def run(args: argparse.Namespace) -> int:
    """The `eval` subcommand."""
    from tintype.media.errors import ToolFailed

    try:
        output = open_source(args.output)
        reference = open_source(args.reference) if args.reference is not None else None
        if args.max_width < 0:
            raise BadInput(f"--max-width must be 0 or more, got {args.max_width}")
        report = evaluate(output, reference, args.max_width)
    except BadInput as exc:
        print(f"tintype: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ToolFailed as exc:  # probed fine, but the frames do not decode: corrupt media
        print(f"tintype: {args.output.name}: the video cannot be decoded ({exc})", file=sys.stderr)
        return EXIT_BAD_INPUT
    target = args.json if args.json is not None else args.output.with_name(args.output.name + ".eval.json")
    print(f"{output.describe()}" + (f" against {reference.path}" if reference is not None else ""))
    print(table(report))
    target.write_text(json.dumps(_json_safe(report), indent=2, allow_nan=False) + "\n")
    print(f"wrote {target}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tintype eval", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
