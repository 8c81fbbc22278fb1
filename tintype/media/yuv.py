"""4:2:0 frames in BT.601 limited range: what chunk intermediates hold and the H.264
encoder takes.

The delivery is 4:2:0, so GPU workers convert their RGB results once, in parallel, and
the reduce step — one process for the whole film — never converts a full-size frame:
it decodes half the bytes of RGB, smooths chroma at chroma resolution, and hands the
planes to the encoder as they are, luma untouched. Chroma is the mean of each 2×2 block (OpenCV's own
RGB→I420 samples one pixel of four, which aliases fine colour detail).

A chunk that only colorizes never leaves 4:2:0 at all: it is decoded as these planes, the
model's lightness is read from Y through a 256-entry table (`grey_lightness`), and its
chroma is formed at chroma resolution (`chroma_planes`), so the source's luma plane reaches
the delivery bit for bit and no full-size frame is converted between colour spaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from tintype.media.color import rgb_to_lab

# Rows: Y, Cb, Cr from R, G, B (0..255), with the limited-range offsets.
_FORWARD = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0],
                     [112.0, -93.786, -18.214]], np.float32) / 255.0
_OFFSET = np.array([16.0, 128.0, 128.0], np.float32)
_INVERSE = np.linalg.inv(_FORWARD).astype(np.float32)
_TO_RGB = np.hstack([_INVERSE, -(_INVERSE @ _OFFSET)[:, None]]).astype(np.float32)


def _pad_even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


@dataclass(frozen=True)
class Yuv420:
    """Planes of an even-sized frame; `width` × `height` is the visible size before
    edge padding to even numbers."""

    y: np.ndarray   # (H, W) uint8
    cb: np.ndarray  # (H/2, W/2) uint8
    cr: np.ndarray  # (H/2, W/2) uint8
    width: int
    height: int

    @classmethod
    def from_rgb(cls, rgb: np.ndarray) -> "Yuv420":
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"need an (H, W, 3) uint8 RGB frame, got {rgb.dtype} {rgb.shape}")
        height, width = rgb.shape[:2]
        even = _pad_even(rgb)
        y = cv2.cvtColor(even, cv2.COLOR_RGB2YUV_I420)[:even.shape[0]]  # BT.601 video-range luma
        half = cv2.resize(even, (even.shape[1] // 2, even.shape[0] // 2), interpolation=cv2.INTER_AREA)
        # OpenCV's float YCrCb: chroma in 0..1 around 0.5; limited range is 16 + 224 c.
        _, cr, cb = cv2.split(cv2.cvtColor(half.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_RGB2YCrCb))
        cr, cb = (np.clip(224.0 * c + 16.5, 0, 255).astype(np.uint8) for c in (cr, cb))
        return cls(y, cb, cr, width, height)

    def rgb(self) -> np.ndarray:
        """The visible frame as RGB (chroma upsampled bilinearly): for posters and tests."""
        size = (self.y.shape[1], self.y.shape[0])
        cb = cv2.resize(self.cb, size, interpolation=cv2.INTER_LINEAR)
        cr = cv2.resize(self.cr, size, interpolation=cv2.INTER_LINEAR)
        rgb = cv2.transform(cv2.merge([self.y, cb, cr]), _TO_RGB)  # rounds and saturates
        return np.ascontiguousarray(rgb[:self.height, :self.width])

    def with_chroma_shift(self, shift: np.ndarray) -> "Yuv420":
        """The same luma (the very array) with `shift`, a (h, w, 2) float32 (Cr, Cb) offset
        in plane units at any size, resized to chroma resolution and added (rounded,
        saturated)."""
        size = (self.cb.shape[1], self.cb.shape[0])
        if shift.shape[:2] != self.cb.shape:
            shift = cv2.resize(shift, size, interpolation=cv2.INTER_LINEAR)
        cr = cv2.add(self.cr, shift[..., 0], dtype=cv2.CV_8U)
        cb = cv2.add(self.cb, shift[..., 1], dtype=cv2.CV_8U)
        return Yuv420(self.y, cb, cr, self.width, self.height)

    def with_chroma(self, cb: np.ndarray, cr: np.ndarray) -> "Yuv420":
        """The same luma (the very array) with new chroma planes of this frame's chroma size."""
        if cb.shape != self.cb.shape or cr.shape != self.cr.shape or cb.dtype != np.uint8 or cr.dtype != np.uint8:
            raise ValueError(f"chroma planes {cb.dtype} {cb.shape} / {cr.dtype} {cr.shape} are not uint8 "
                             f"{self.cb.shape}")
        return Yuv420(self.y, cb, cr, self.width, self.height)

    @classmethod
    def from_decoded(cls, data: bytes, width: int, height: int) -> "Yuv420":
        """One frame as ffmpeg writes rawvideo yuv420p of any size: chroma planes of
        ceil(w/2) × ceil(h/2); an odd luma plane is padded by edge replication, as
        `from_rgb` pads, so the planes are those of an even frame."""
        cw, ch = (width + 1) // 2, (height + 1) // 2
        flat = np.frombuffer(data, np.uint8)
        if flat.size != width * height + 2 * cw * ch:
            raise ValueError(f"{flat.size} bytes is not one {width}x{height} yuv420p frame")
        y = flat[:width * height].reshape(height, width)
        if width % 2 or height % 2:
            y = np.pad(y, ((0, height % 2), (0, width % 2)), mode="edge")
        cb = flat[width * height:width * height + cw * ch].reshape(ch, cw)
        cr = flat[width * height + cw * ch:].reshape(ch, cw)
        return cls(y, cb, cr, width, height)

    @classmethod
    def from_bytes(cls, data: bytes, width: int, height: int) -> "Yuv420":
        """Planar I420 bytes of the even size that holds `width` × `height`."""
        w, h = width + width % 2, height + height % 2
        flat = np.frombuffer(data, np.uint8)
        if flat.size != w * h * 3 // 2:
            raise ValueError(f"{flat.size} bytes is not one {w}x{h} 4:2:0 frame")
        quarter = (h // 2) * (w // 2)
        y = flat[:w * h].reshape(h, w)
        cb = flat[w * h:w * h + quarter].reshape(h // 2, w // 2)
        cr = flat[w * h + quarter:].reshape(h // 2, w // 2)
        return cls(y, cb, cr, width, height)

    def tobytes(self) -> bytes:
        """Planar I420: Y, then Cb, then Cr."""
        return b"".join(np.ascontiguousarray(p).tobytes() for p in (self.y, self.cb, self.cr))

    @property
    def padded_size(self) -> tuple[int, int]:
        return self.y.shape[1], self.y.shape[0]


def planes_to_rgb(y: np.ndarray, cr: np.ndarray, cb: np.ndarray) -> np.ndarray:
    """RGB from same-size limited-range planes (uint8 or float32)."""
    ycc = cv2.merge([y.astype(np.float32), cb.astype(np.float32), cr.astype(np.float32)])
    return np.clip(cv2.transform(ycc, _TO_RGB) + 0.5, 0, 255).astype(np.uint8)


@lru_cache(maxsize=1)
def grey_lightness_table() -> np.ndarray:
    """(256,) float32: CIE L (0..100) of the grey each limited-range luma code decodes to.

    For a grey pixel (Cb = Cr = 128) every BT matrix gives R = G = B, so Lab lightness is a
    function of Y alone: the table is `planes_to_rgb` (this module's limited-range inverse)
    followed by `media.color.rgb_to_lab`, the very conversion the RGB path applies, taken
    once per code instead of once per pixel."""
    codes = np.arange(256, dtype=np.uint8)[None, :]
    neutral = np.full_like(codes, 128)
    grey = planes_to_rgb(codes, neutral, neutral)
    table = rgb_to_lab(grey)[0, :, 0].astype(np.float32)
    table.flags.writeable = False
    return table


def grey_lightness(y: np.ndarray) -> np.ndarray:
    """L (0..100, float32, same shape) read from a uint8 luma plane through the table: the
    lightness a grey picture has, at the cost of one lookup per pixel."""
    if y.dtype != np.uint8:
        raise ValueError(f"need a uint8 luma plane, got {y.dtype} {y.shape}")
    return cv2.LUT(y, grey_lightness_table())


def chroma_planes(light: np.ndarray, ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Cb, Cr) uint8 planes from L (h, w) and ab (h, w, 2) at chroma resolution.

    Lab → RGB (out-of-gamut colours clipped, as the RGB path clips them), then the chroma
    of `Yuv420.from_rgb`; only chroma-sized arrays are touched."""
    if light.shape != ab.shape[:2] or ab.ndim != 3 or ab.shape[2] != 2:
        raise ValueError(f"L {light.shape} and ab {ab.shape} must share height and width")
    ab = ab.astype(np.float32, copy=False)
    lab = cv2.merge([light.astype(np.float32, copy=False), ab[..., 0], ab[..., 1]])
    rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    cv2.threshold(rgb, 1.0, 1.0, cv2.THRESH_TRUNC, dst=rgb)
    cv2.threshold(rgb, 0.0, 0.0, cv2.THRESH_TOZERO, dst=rgb)
    _, cr, cb = cv2.split(cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb))
    # In gamut, chroma lies in 16..240: the absolute value is the value, rounded and saturated.
    return cv2.convertScaleAbs(cb, alpha=224.0, beta=16.0), cv2.convertScaleAbs(cr, alpha=224.0, beta=16.0)
