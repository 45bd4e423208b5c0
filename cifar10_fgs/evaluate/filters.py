"""The Gaussian filter of the paper's section VI, as pure functions over uint8 image batches.

The paper says only "the SciPy gaussian filter" with one standard deviation. Three readings are
implemented, each a ``GaussianVariant``:

* ``spatial-uint8``: ``sigma=(0, std, std, 0)`` on the (N, H, W, C) batch, i.e. each channel of each
  image blurred over height and width, then rounded to uint8 (the defended image is again a valid
  8-bit image, like every image in the dataset);
* ``spatial-float``: the same axes, not rounded: the model sees float32 pixels;
* ``paper-scalar-float``: ``scipy.ndimage.gaussian_filter(image, sigma=std)`` on each (H, W, C) image,
  not rounded. A scalar sigma applies to *every* axis (SciPy's documentation), so the three colour
  channels are blurred into each other as well (a 3-long axis, mirrored at its ends). This is our
  best reading of the paper: it passes a single std "as an argument", shows one image at a time,
  and the Keras CIFAR-10 example it builds on converts images to float32 before using them, so
  nothing rounds the result. (Calling it on the whole (N, H, W, C) array would also blur across
  images, which no per-image defence does.)

``paper-scalar-float`` equals ``spatial-float`` followed by that 1-D blur along the channel axis
(Gaussian filters are separable), which a test checks against a hand computation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from cifar10_fgs.config import (
    BLUR_CHUNK,
    BLUR_MODE,
    BLUR_TRUNCATE,
    PIXEL_MAX,
    PIXEL_MIN,
    GaussianVariant,
    parse_choices,
)
from cifar10_fgs.errors import ConfigError

ALL_VARIANTS: tuple[GaussianVariant, ...] = tuple(GaussianVariant)


def check_variants(variants: Sequence[str]) -> tuple[GaussianVariant, ...]:
    return parse_choices(GaussianVariant, variants, "Gaussian variant")


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


def blur(images: np.ndarray, std: float, variant: str | GaussianVariant = GaussianVariant.SPATIAL_UINT8) -> np.ndarray:
    """The Gaussian defence ``variant`` at ``std`` pixels on a uint8 (N, H, W, C) batch.

    ``scipy.ndimage.gaussian_filter(x, sigma, mode="reflect", truncate=4.0)`` on float32 chunks of
    ``BLUR_CHUNK`` images, with ``std`` on the variant's axes and 0 on the others (never across
    images). Returns uint8 (rounded half to even, clipped) for ``spatial-uint8``, else float32 in
    [0, 255]. ``std=0`` is the identity (as uint8 or float32).
    """
    from scipy.ndimage import gaussian_filter

    (variant,) = check_variants([variant])
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ConfigError(f"images have dtype {images.dtype} and shape {images.shape}: expected uint8 (N, H, W, C)")
    std = check_stds([std])[0]
    sigma = tuple(std if axis in variant.sigma_axes else 0.0 for axis in range(4))
    out = np.empty(images.shape, np.uint8 if variant.rounds else np.float32)
    for i in range(0, len(images), BLUR_CHUNK):
        y = gaussian_filter(
            images[i : i + BLUR_CHUNK].astype(np.float32), sigma=sigma, mode=BLUR_MODE, truncate=BLUR_TRUNCATE
        )
        out[i : i + BLUR_CHUNK] = np.clip(np.rint(y), PIXEL_MIN, PIXEL_MAX) if variant.rounds else y
    return out


def gaussian_blur(images: np.ndarray, std: float) -> np.ndarray:
    """``spatial-uint8``: each channel blurred over height and width, rounded back to uint8 (see ``blur``)."""
    return blur(images, std, GaussianVariant.SPATIAL_UINT8)
