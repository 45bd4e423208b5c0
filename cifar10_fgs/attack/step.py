"""The attack's step and quantisation, pure functions over a batch with the pixel range explicit."""

from __future__ import annotations

import numpy as np

from cifar10_fgs.config import PIXEL_MAX, PIXEL_MIN


def fgs_step(x: np.ndarray, grad_sign: np.ndarray, step: float, pixel_min: float, pixel_max: float) -> np.ndarray:
    """One fast gradient sign step on a batch, clipped to the pixel range (a pure function)."""
    return np.clip(x + step * (pixel_max - pixel_min) * grad_sign, pixel_min, pixel_max)


def quantize(x: np.ndarray, pixel_min: float = PIXEL_MIN, pixel_max: float = PIXEL_MAX) -> np.ndarray:
    """The uint8 image a float accumulator stands for (round half to even, then clip)."""
    return np.clip(np.rint(x), pixel_min, pixel_max).astype(np.uint8)
