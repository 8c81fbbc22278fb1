"""Neutral white balance for colour photographs (shades-of-grey colour constancy).

Why the colorizer's training photos are white-balanced first: a picture's overall cast
is its camera's or printer's white balance, which lightness does not show. A network
trained on photographs as they come learns their average cast (warm, for studio
portraits and catalogue shots) and paints it over everything it colorizes: a sepia
veil. Trained on neutrally balanced photographs, it predicts the colours of objects
under a neutral light, which is the right answer when the true light is unknown.

Shades of grey (Finlayson & Trezzi 2004) estimates the light as the Minkowski p-norm
mean of each linear-RGB channel: p = 1 is grey world, p -> infinity is white patch;
p = 6 is the usual compromise. The correction is a von Kries gain per channel,
normalised so that the luminance of a grey pixel stays the same.
"""

from __future__ import annotations

import numpy as np

# Rec. 709 / sRGB luminance weights of linear R, G, B.
LUMINANCE = np.array([0.2126, 0.7152, 0.0722])
_LEVELS = np.arange(256, dtype=np.float64) / 255.0
SRGB_TO_LINEAR = np.where(_LEVELS <= 0.04045, _LEVELS / 12.92, ((_LEVELS + 0.055) / 1.055) ** 2.4)


def linear_to_srgb8(linear: np.ndarray) -> np.ndarray:
    """Linear RGB in [0, 1] (clipped) to uint8 sRGB."""
    x = np.clip(linear, 0.0, 1.0)
    srgb = np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.round(srgb * 255.0).astype(np.uint8)


def _linear(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB of shape (H, W, 3), got {rgb.dtype} {rgb.shape}")
    return SRGB_TO_LINEAR[rgb]


def _light(linear: np.ndarray, power: float) -> np.ndarray:
    light = np.power(np.mean(np.power(linear.reshape(-1, 3), power), axis=0), 1.0 / power)
    if not np.all(light > 0):
        return np.ones(3)  # a black channel tells nothing about the light
    return light / light.mean()


def illuminant(rgb: np.ndarray, power: float = 6.0) -> np.ndarray:
    """(3,) estimated colour of the light in linear RGB, scaled to mean 1."""
    return _light(_linear(rgb), power)


def neutralise(rgb: np.ndarray, strength: float = 1.0, power: float = 6.0) -> np.ndarray:
    """uint8 RGB with its estimated cast removed (strength 1) or reduced (0 < strength < 1)."""
    if strength == 0.0:
        return rgb
    linear = _linear(rgb)
    gains = (1.0 / _light(linear, power)) ** strength
    gains = gains / float(gains @ LUMINANCE)  # a grey pixel keeps its luminance
    return linear_to_srgb8(linear * gains)
