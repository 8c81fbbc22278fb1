"""Reading any still image into 8-bit RGB (+ alpha) and writing results.

Scans arrive as 16-bit TIFFs, palette PNGs, CMYK JPEGs and phone photos with an EXIF
rotation; everything downstream wants upright uint8 RGB, and the alpha channel is
carried around the models and put back on output.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageOps

from tintype.media.errors import CorruptMedia, MediaTooLarge, NotMedia, UnsupportedMedia

log = logging.getLogger(__name__)
IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "TIFF": "image/tiff", "BMP": "image/bmp",
               "WEBP": "image/webp", "GIF": "image/gif"}  # Pillow's format name -> media type
IMAGE_FORMATS = set(IMAGE_TYPES)


@dataclass
class LoadedImage:
    rgb: np.ndarray  # uint8 (H, W, 3), upright
    alpha: np.ndarray | None  # uint8 (H, W) or None
    facts: dict[str, Any]


def sniff_image(path: Path, max_pixels: int) -> dict[str, Any] | None:
    """Image facts if the file's content is an image we accept, None if it is not an image.
    Only the header is read; the pixel limit is tintype's `max_pixels` (MAX_IMAGE_PIXELS),
    checked here, not Pillow's own bomb threshold."""
    _pillow_allows(max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit is checked below
            with Image.open(path) as img:
                fmt, mode, (w, h) = img.format, img.mode, img.size
                frames = getattr(img, "n_frames", 1)
    except Image.DecompressionBombError as exc:  # at least twice Pillow's threshold, so over ours
        log.info("Pillow refused %s: %s", path, exc)
        raise MediaTooLarge(f"the image has more than {max_pixels:,} pixels, the limit") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        kind = _image_signature(path)
        if kind is None:
            return None
        log.info("Pillow cannot open %s: %s", path, exc)
        raise CorruptMedia(f"the file is a {kind} image, but it cannot be decoded: the file is damaged or cut "
                           "short") from exc
    if fmt not in IMAGE_FORMATS:
        raise UnsupportedMedia(f"image format {fmt} is not supported; use PNG, JPEG, TIFF, BMP or WebP")
    if w * h > max_pixels:
        raise MediaTooLarge(f"the image has {w}x{h} = {w * h:,} pixels; the limit is {max_pixels:,}")
    if w < 1 or h < 1:
        raise CorruptMedia("the image has no pixels")
    return {"format": fmt, "mode": mode, "width": w, "height": h, "frames": frames}


# (offset, magic, name): the first bytes of the image formats intake accepts
_IMAGE_SIGNATURES = ((0, b"\x89PNG\r\n\x1a\n", "PNG"), (0, b"\xff\xd8\xff", "JPEG"), (8, b"WEBP", "WebP"),
                     (0, b"II*\x00", "TIFF"), (0, b"MM\x00*", "TIFF"), (0, b"BM", "BMP"))


def upright_size(path: Path, width: int, height: int) -> tuple[int, int]:
    """A photograph's size once turned upright by its EXIF orientation (read from the
    header, nothing decoded): what a mask for it must measure (intake's rule)."""
    with Image.open(path) as img:
        turned = img.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    return (height, width) if turned else (width, height)


def _image_signature(path: Path) -> str | None:
    """The image format a file's first bytes announce, or None: a file Pillow cannot open
    but that starts like an image is a damaged image, not something else."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    return next((name for offset, magic, name in _IMAGE_SIGNATURES if head[offset:offset + len(magic)] == magic),
                None)


def check_image_decodes(path: Path) -> None:
    """Read the whole image once, so a file cut short is refused at intake instead of
    failing in a worker: PNG by its chunk checksums (no pixels decoded), JPEG decoded at
    an eighth of its size (every byte of the scan is still read), other formats whole."""
    try:
        with Image.open(path) as img:
            if img.format == "PNG":
                img.verify()
                return
            if img.format == "JPEG":
                img.draft(img.mode, (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
    except (OSError, SyntaxError, ValueError) as exc:
        log.info("decoding %s failed: %s", path, exc)
        raise CorruptMedia("the image cannot be decoded: the file is damaged or cut short") from exc


def _pillow_allows(max_pixels: int) -> None:
    """Pillow refuses outright above twice its own MAX_IMAGE_PIXELS; keep that above
    tintype's limit, so an operator's larger limit is the one that decides."""
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS * 2 < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and float greyscale modes scaled (not clipped) to 8-bit L."""
    arr = np.asarray(img)
    if arr.dtype == np.uint8:
        return img.convert("L")
    arr = arr.astype(np.float64)
    if img.mode.startswith("I;16") or arr.max() > 255:
        peak = 65535.0 if arr.max() > 255 else 255.0
    else:
        peak = max(1.0, float(arr.max()))
    return Image.fromarray(np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")


def _cmyk_to_rgb(img: Image.Image) -> Image.Image:
    profile = img.info.get("icc_profile")
    if profile:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            return ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError):
            pass
    return img.convert("RGB")


def load_image(path: Path, max_pixels: int) -> LoadedImage:
    """Decode `path` upright into uint8 RGB and an optional alpha plane."""
    facts = sniff_image(path, max_pixels)
    if facts is None:
        raise NotMedia("the file is not an image")
    try:
        with Image.open(path) as img:
            img.load()
            orientation = img.getexif().get(0x0112, 1)
            img = ImageOps.exif_transpose(img)
            rgb, alpha = _split_modes(img)
    except (OSError, SyntaxError, ValueError) as exc:
        log.info("decoding %s failed: %s", path, exc)
        raise CorruptMedia("the image cannot be decoded: the file is damaged or cut short") from exc
    facts.update({"exif_orientation": int(orientation), "width": rgb.shape[1], "height": rgb.shape[0],
                  "has_alpha": alpha is not None})
    return LoadedImage(rgb=rgb, alpha=alpha, facts=facts)


def _split_modes(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode == "CMYK":
        img = _cmyk_to_rgb(img)
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        img = _to_8bit(img)
    alpha = None
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        alpha = np.asarray(img.getchannel("A")).copy()
    rgb = np.asarray(img.convert("RGB")).copy()
    return rgb, alpha


def save_image(path: Path, rgb: np.ndarray, alpha: np.ndarray | None, fmt: str) -> None:
    """Write PNG (keeping alpha) or JPEG (alpha flattened onto white)."""
    img = Image.fromarray(rgb, "RGB")
    if fmt == "jpeg":
        if alpha is not None:
            white = Image.new("RGB", img.size, (255, 255, 255))
            white.paste(img, mask=Image.fromarray(alpha, "L"))
            img = white
        img.save(path, "JPEG", quality=95, subsampling=0)
        return
    if alpha is not None:
        img.putalpha(Image.fromarray(alpha, "L"))
    img.save(path, "PNG", optimize=False)


def load_mask(path: Path, width: int, height: int, max_pixels: int) -> np.ndarray:
    """A mask image as uint8 (H, W), 255 = replace; its size must match the media."""
    facts = sniff_image(path, max_pixels)
    if facts is None:
        raise NotMedia("the mask is not an image", code="bad_mask")
    if (facts["width"], facts["height"]) != (width, height):
        raise CorruptMedia(
            f"the mask is {facts['width']}x{facts['height']} but the media is {width}x{height}",
            code="mask_size_mismatch", status=422)
    loaded = load_image(path, max_pixels)
    grey = loaded.rgb.max(axis=2)
    if loaded.alpha is not None:
        grey = np.minimum(grey, loaded.alpha)
    mask = np.where(grey > 127, 255, 0).astype(np.uint8)
    if not mask.any():
        raise CorruptMedia("the mask marks no pixels (white = replace)", code="empty_mask")
    if mask.all():
        raise CorruptMedia("the mask covers the whole frame, so nothing is left to fill from",
                           code="mask_covers_frame")
    return mask
