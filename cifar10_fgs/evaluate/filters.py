"""The Gaussian filter of the paper's section VI, as pure functions over uint8 image batches."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..config import PIXEL_MAX, PIXEL_MIN
from ..errors import ConfigError

DEFAULT_STDS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0)  # pixels; 0 = no filter
BLUR_MODE = "reflect"  # scipy.ndimage default: edges mirrored (d c b a | a b c d | d c b a)
BLUR_TRUNCATE = 4.0  # scipy.ndimage default: kernel radius = round(4 * std)
BLUR_CHUNK = 4096  # images per vectorised gaussian_filter call (bounds the float32 copy to ~50 MB)


def check_stds(stds: Sequence[float]) -> tuple[float, ...]:
    stds = tuple(float(s) for s in stds)
    if not stds:
        raise ConfigError("no --std values: expected a comma-separated list such as 0,0.5,1")
    bad = [s for s in stds if not math.isfinite(s) or s < 0]
    if bad:
        raise ConfigError(f"--std {bad[0]} is invalid: expected standard deviations >= 0 (in pixels)")
    if len(set(stds)) != len(stds):
        raise ConfigError(f"--std lists a value twice ({', '.join(map(str, stds))}): list each std once")
    return stds


def gaussian_blur(images: np.ndarray, std: float) -> np.ndarray:
    """Gaussian filter over the two spatial axes of a uint8 (N, H, W, C) batch, back to uint8.

    ``scipy.ndimage.gaussian_filter(x, sigma=(0, std, std, 0), mode="reflect", truncate=4.0)`` on
    the whole batch at once (in float32 chunks of ``BLUR_CHUNK`` images): no mixing across images
    or channels. The result is rounded to the nearest level (half to even) and clipped to [0, 255],
    so the defended image is again a valid uint8 image, as every image the models see; ``std=0``
    is the identity.
    """
    from scipy.ndimage import gaussian_filter

    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ConfigError(f"images have dtype {images.dtype} and shape {images.shape}: expected uint8 (N, H, W, C)")
    std = check_stds([std])[0]
    out = np.empty_like(images)
    for i in range(0, len(images), BLUR_CHUNK):
        x = images[i:i + BLUR_CHUNK].astype(np.float32)
        y = gaussian_filter(x, sigma=(0.0, std, std, 0.0), mode=BLUR_MODE, truncate=BLUR_TRUNCATE)
        out[i:i + BLUR_CHUNK] = np.clip(np.rint(y), PIXEL_MIN, PIXEL_MAX).astype(np.uint8)
    return out
