"""Test media made on the spot with ffmpeg's lavfi sources and Pillow (nothing copied)."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True)


def grey_video(path: Path, size: str = "96x64", rate: str = "30000/1001", frames: int = 48,
               audio: bool = True, extra: tuple[str, ...] = ()) -> Path:
    """A black-and-white test pattern with moving parts, with a sine tone."""
    args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
    args += ["-frames:v", str(frames), "-vf", "hue=s=0,format=yuv420p", "-c:v", "libx264", "-preset",
             "ultrafast", "-bf", "2", "-g", "12"]
    if audio:
        args += ["-c:a", "aac", "-shortest"]
    ffmpeg(*args, *extra, str(path))
    return path


def two_track_mkv(path: Path, size: str = "161x121", frames: int = 36) -> Path:
    """Odd-sized video with two audio tracks: AAC and FLAC (FLAC must be re-encoded for MP4)."""
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24", "-f", "lavfi", "-i",
           "sine=frequency=300:sample_rate=48000", "-f", "lavfi", "-i", "sine=frequency=500:sample_rate=48000",
           "-map", "0:v", "-map", "1:a", "-map", "2:a", "-frames:v", str(frames), "-t", str(frames / 24),
           "-vf", f"scale={size.replace('x', ':')},format=yuv444p",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p", "-c:a:0", "aac", "-c:a:1", "flac",
           str(path))
    return path


def variable_rate_video(path: Path, frames: int = 30) -> Path:
    """First 12 frames at 24 fps, the rest at 12 fps, in Matroska."""
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=24", "-frames:v", str(frames),
           "-vf", "setpts='if(lt(N,12),N/24,0.5+(N-12)/12)/TB'", "-fps_mode", "passthrough",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))
    return path


def rect_mask(path: Path, width: int, height: int, box: tuple[int, int, int, int]) -> Path:
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).rectangle(box, fill=255)
    mask.save(path)
    return path


def decode(path: Path, width: int, height: int) -> np.ndarray:
    """All frames of a video as (N, H, W, 3) uint8."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "-fps_mode", "passthrough", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def grey_photo(width: int = 120, height: int = 90) -> np.ndarray:
    """A greyscale 'photograph': sky gradient, a house, a tree, as uint8 (H, W)."""
    img = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(img)
    for y in range(height):
        draw.line([(0, y), (width, y)], fill=int(200 - 80 * y / height))
    draw.rectangle([20, 40, 60, 80], fill=90)
    draw.polygon([(15, 40), (40, 20), (65, 40)], fill=60)
    draw.ellipse([75, 30, 105, 70], fill=110)
    return np.asarray(img)


def textured_frames(count: int, width: int = 128, height: int = 96, pan: int = 1, seed: int = 0) -> list[np.ndarray]:
    """A smooth random colour texture panning `pan` px per frame: trackable, and every
    pixel is seen in some other frame (what flow-guided inpainting relies on)."""
    rng = np.random.default_rng(seed)
    canvas_w = width + pan * count + 16
    small = rng.random((height // 6 + 2, canvas_w // 6 + 2, 3)).astype(np.float32)
    big = np.asarray(Image.fromarray((small * 255).astype(np.uint8)).resize((canvas_w, height + 16),
                                                                            Image.Resampling.BICUBIC))
    return [np.ascontiguousarray(big[8:8 + height, 8 + pan * t:8 + pan * t + width]) for t in range(count)]


def moving_square(frames: list[np.ndarray], side: int = 16, start: tuple[int, int] = (10, 30), step: int = 3,
                  until: int | None = None) -> tuple[list[np.ndarray], list[tuple[int, int, int, int]]]:
    """A white square with a dark cross moving right `step` px per frame, present for
    frames [0, until); returns the frames and the square's box on each frame it shows."""
    out, boxes = [], []
    for t, frame in enumerate(frames):
        frame = frame.copy()
        if until is None or t < until:
            x, y = start[0] + step * t, start[1]
            frame[y:y + side, x:x + side] = 255
            frame[y + side // 2 - 1:y + side // 2 + 1, x:x + side] = 20
            frame[y:y + side, x + side // 2 - 1:x + side // 2 + 1] = 20
            boxes.append((x, y, side, side))
        out.append(frame)
    return out, boxes


def encode_frames(path: Path, frames: list[np.ndarray], rate: int = 24, lossless: bool = True) -> Path:
    """RGB frames to a video file (x264 at CRF 0 in yuv444p by default: nearly exact)."""
    height, width = frames[0].shape[:2]
    proc = subprocess.Popen(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                             "-s", f"{width}x{height}", "-framerate", str(rate), "-i", "-", "-c:v", "libx264",
                             "-preset", "ultrafast", *(("-qp", "0", "-pix_fmt", "yuv444p") if lossless
                                                       else ("-pix_fmt", "yuv420p")), str(path)],
                            stdin=subprocess.PIPE)
    for frame in frames:
        proc.stdin.write(frame.tobytes())
    proc.stdin.close()
    assert proc.wait() == 0
    return path


def mask_zip(path: Path, masks: list[np.ndarray]) -> Path:
    """Per-frame masks (bool) as a ZIP of PNGs named in frame order."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for index, mask in enumerate(masks):
            buffer = io.BytesIO()
            Image.fromarray(mask.astype(np.uint8) * 255, "L").save(buffer, "PNG")
            archive.writestr(f"frame-{index:04d}.png", buffer.getvalue())
    return path


def grey_film(count: int = 24, width: int = 96, height: int = 64, pan: int = 2, seed: int = 0) -> list[np.ndarray]:
    """Black-and-white frames (grey RGB) of a panning texture: each frame differs from the
    next by `pan` pixels, so a keyframe pinned one frame off matches loosely and one pinned
    a few frames off does not match."""
    from tintype.media.color import rgb_to_lab

    return [np.repeat(rgb_to_lab(f)[..., :1] * 2.55, 3, 2).clip(0, 255).astype(np.uint8)
            for f in textured_frames(count, width, height, pan, seed)]


def tinted(grey: np.ndarray) -> np.ndarray:
    """A colour picture of a grey frame, as a colourist would paint it: its lightness kept,
    colour added (red to green across, blue to yellow down)."""
    from tintype.media.color import lab_to_rgb, rgb_to_lab

    lab = rgb_to_lab(grey)
    height, width = grey.shape[:2]
    lab[..., 1] = np.linspace(-30, 30, width, dtype=np.float32)[None, :]
    lab[..., 2] = np.linspace(25, -25, height, dtype=np.float32)[:, None]
    return lab_to_rgb(lab)


def save_picture(path: Path, rgb: np.ndarray, size: tuple[int, int] | None = None) -> Path:
    """An RGB array as an image file (format from the suffix), optionally resized to (w, h)."""
    image = Image.fromarray(rgb)
    if size is not None:
        image = image.resize(size, Image.Resampling.LANCZOS)
    image.save(path)
    return path


def painted_pan(count: int, width: int = 128, height: int = 96, pan: int = 2, seed: int = 0) -> list[np.ndarray]:
    """A colour film panning `pan` px per frame: fine lightness texture (for the flow) under
    broad patches of colour (chroma that survives the delivery's 4:2:0), so a keyframe's
    colour carried along the pan can be checked against the truth in every frame."""
    import cv2

    from tintype.media.color import lab_to_rgb

    rng = np.random.default_rng(seed)
    canvas_w, canvas_h = width + pan * count + 16, height + 16
    fine = rng.random((canvas_h // 6 + 2, canvas_w // 6 + 2)).astype(np.float32)
    light = np.asarray(Image.fromarray((fine * 255).astype(np.uint8)).resize((canvas_w, canvas_h),
                                                                              Image.Resampling.BICUBIC))
    light = light.astype(np.float32) / 255 * 60 + 20
    coarse = rng.uniform(-40, 40, (canvas_h // 32 + 2, canvas_w // 32 + 2, 2)).astype(np.float32)
    ab = cv2.resize(coarse, (canvas_w, canvas_h), interpolation=cv2.INTER_CUBIC)
    rgb = lab_to_rgb(np.dstack([light, ab]).astype(np.float32))
    return [np.ascontiguousarray(rgb[8:8 + height, 8 + pan * t:8 + pan * t + width]) for t in range(count)]


def cracked_print(width: int = 256, height: int = 192, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A soft sepia-ish 'print' (smooth shapes and gradients) with a jagged, branching
    bright crack drawn across it: (clean RGB, cracked RGB, crack mask (H, W) bool)."""
    rng = np.random.default_rng(seed)
    img = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(img)
    for y in range(height):
        draw.line([(0, y), (width, y)], fill=int(150 - 50 * y / height))
    draw.ellipse([width * 0.3, height * 0.15, width * 0.65, height * 0.85], fill=175)  # a face
    draw.ellipse([width * 0.38, height * 0.38, width * 0.44, height * 0.44], fill=70)
    draw.ellipse([width * 0.51, height * 0.38, width * 0.57, height * 0.44], fill=70)
    draw.rectangle([0, height * 0.8, width, height], fill=60)
    grey = np.asarray(img.filter(ImageFilter.GaussianBlur(2))).astype(np.float32)
    grey += rng.normal(0, 2.0, grey.shape)
    clean = np.clip(np.stack([grey * 1.08, grey, grey * 0.85], axis=-1), 0, 255).astype(np.uint8)
    trunk, point, heading = [], np.array([0.0, height * 0.3]), 0.35
    while 0 <= point[0] < width and 0 <= point[1] < height:
        trunk.append(tuple(point))
        point = point + 5 * np.array([np.cos(heading + rng.normal(0, 0.45)), np.sin(heading + rng.normal(0, 0.45))])
    branch, point = [], np.array(trunk[len(trunk) // 2])
    for _ in range(12):
        branch.append(tuple(point))
        point = point + 5 * np.array([np.cos(-0.9 + rng.normal(0, 0.45)), np.sin(-0.9 + rng.normal(0, 0.45))])
    layer = Image.new("L", (width, height), 0)
    pen = ImageDraw.Draw(layer)
    pen.line(trunk, fill=255, width=2)
    pen.line(branch, fill=255, width=1)
    crack = np.asarray(layer) > 127
    cracked = clean.copy()
    cracked[crack] = (238, 236, 228)
    return clean, cracked, crack


def interlaced_video(path: Path, parity: str = "tff", frames: int = 24, size: str = "160x120",
                     flag: str | None = None, audio: bool = False) -> Path:
    """Black-and-white interlaced video: a moving test pattern shot at 50 pictures a second
    (drawn at 4x and scaled down, so its own lines do not look like combing), woven two
    pictures to a frame with `parity` first, and coded as interlaced H.264 flagged `flag`
    (ffprobe's field_order; tt or bb after the parity by default). flag "progressive"
    codes the woven frames as progressive pictures: interlaced content a flag hides."""
    width, height = (int(n) for n in size.split("x"))
    weave = "interleave_top" if parity == "tff" else "interleave_bottom"
    flag = flag or ("tt" if parity == "tff" else "bb")
    coding: tuple[str, ...] = ("-field_order", "progressive")
    if flag != "progressive":  # x264 codes the order itself; -field_order alone does not set it
        first = "bff=1" if flag in ("bb", "tb") else "tff=1"
        coding = ("-x264-params", first, "-flags", "+ilme+ildct", "-field_order", flag)
    args = ["-f", "lavfi", "-i", f"testsrc2=size={width * 4}x{height * 4}:rate=50"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
    args += ["-vf", f"scale={width}:{height}:flags=area,hue=s=0,tinterlace=mode={weave},format=yuv420p",
             "-frames:v", str(frames), "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-g", "12",
             *coding]
    if audio:
        args += ["-c:a", "aac", "-shortest"]
    ffmpeg(*args, str(path))
    return path


def progressive_video(path: Path, frames: int = 24, size: str = "160x120", rate: str = "25",
                      audio: bool = False) -> Path:
    """The pattern of `interlaced_video`, progressive (one picture per frame), flagged so."""
    width, height = (int(n) for n in size.split("x"))
    args = ["-f", "lavfi", "-i", f"testsrc2=size={width * 4}x{height * 4}:rate={rate}"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
    args += ["-vf", f"scale={width}:{height}:flags=area,hue=s=0,format=yuv420p", "-frames:v", str(frames),
             "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-g", "12"]
    if audio:
        args += ["-c:a", "aac", "-shortest"]
    ffmpeg(*args, str(path))
    return path


def deep_grey_frames(count: int, width: int = 160, height: int = 120, seed: int = 0) -> np.ndarray:
    """(count, H, W) uint16 10-bit limited-range luma that uses all ten bits (a panning
    gradient with fine noise): a path that went through 8 bits would lose the low two."""
    rng = np.random.default_rng(seed)
    x = np.linspace(64, 940, width)[None, :] + 60 * np.sin(np.arange(height) / 9.0)[:, None]
    frames = [np.roll(x, 3 * i, axis=1) + rng.integers(-6, 7, (height, width)) for i in range(count)]
    return np.clip(np.stack(frames), 64, 940).astype(np.uint16)


def archival_clip(path: Path, luma: np.ndarray, rate: str = "24000/1001", codec: tuple[str, ...] = (
        "-c:v", "prores_ks", "-profile:v", "3"), pix_fmt: str = "yuv422p10le", timecode: str = "10:00:00:00",
        tags: str = "color_primaries=smpte170m:color_trc=smpte170m:colorspace=smpte170m:range=tv") -> Path:
    """A grey film at `pix_fmt` (10-bit 4:2:2 ProRes 422 HQ by default) from 10-bit `luma`,
    with a start timecode, BT.601 colour tags and a 24-bit PCM tone as long as the film."""
    count, height, width = luma.shape
    grey = np.full((count, height, width), 512, np.uint16)  # 10-bit neutral chroma, 4:4:4
    planes = np.stack([luma, grey, grey], axis=1).astype("<u2")
    seconds = float(count / Fraction(rate))
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "yuv444p10le",
                    "-s", f"{width}x{height}", "-framerate", rate, "-i", "-", "-f", "lavfi", "-i",
                    f"sine=frequency=330:sample_rate=48000:duration={seconds:.4f}", "-map", "0:v", "-map", "1:a",
                    *codec, "-pix_fmt", pix_fmt, "-vf", f"setparams={tags}", "-timecode", timecode,
                    "-c:a", "pcm_s24le", str(path)], input=planes.tobytes(), check=True)
    return path
