"""Pure functions over logits and pixel arrays: accuracy, loss, confidence, the random-sign control.

All numbers come from the models' **logits**: accuracy = mean(argmax == label), loss = mean
cross-entropy ``logsumexp(z) - z_label``, confidence = softmax max.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cifar10_fgs.config import PIXEL_MAX, PIXEL_MIN, PIXEL_RANGE, PREDICT_BATCH_SIZE
from cifar10_fgs.data import NUM_CLASSES
from cifar10_fgs.errors import ConfigError
from cifar10_fgs.models.forward import as_classifier
from cifar10_fgs.models.inference import log_softmax

SETS = ("original", "adversarial")  # the two test sets every evaluation compares


@dataclass(frozen=True)
class Classification:
    """A model's logits on a set of images with their labels; every number derives from the logits."""

    logits: np.ndarray  # float32 (N, 10)
    labels: np.ndarray  # int64 (N,)

    @property
    def predictions(self) -> np.ndarray:
        return self.logits.argmax(axis=1)

    @property
    def probabilities(self) -> np.ndarray:
        return np.exp(log_softmax(self.logits))

    @property
    def confidence(self) -> np.ndarray:
        """Softmax max: the probability the model gives its own prediction."""
        return self.probabilities.max(axis=1)

    @property
    def correct(self) -> np.ndarray:
        return self.predictions == self.labels

    @property
    def losses(self) -> np.ndarray:
        """Per-row cross-entropy ``-log softmax(z)[label]`` (float64)."""
        return -log_softmax(self.logits)[np.arange(len(self.labels)), self.labels]

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())

    @property
    def loss(self) -> float:
        return float(self.losses.mean())

    @property
    def mean_confidence(self) -> float:
        return float(self.confidence.mean())

    def metrics(self) -> SetMetrics:
        return SetMetrics(len(self.labels), self.accuracy, self.loss, self.mean_confidence)


@dataclass(frozen=True)
class SetMetrics:
    """One model on one set of images. ``loss``: mean cross-entropy; ``mean_confidence``: mean softmax max."""

    num_rows: int
    accuracy: float
    loss: float
    mean_confidence: float


def classify(model, images: np.ndarray, labels: np.ndarray, batch_size: int = PREDICT_BATCH_SIZE) -> Classification:
    """Run ``model`` (a Keras model or any ``models.forward`` classifier, logits out) on uint8 ``images``."""

    labels = np.asarray(labels, np.int64)
    if len(images) != len(labels):
        raise ConfigError(f"{len(images)} images but {len(labels)} labels: expected one label per image")
    if len(labels) == 0:
        raise ConfigError("no images to classify: expected at least one row")
    # a set smaller than one batch runs as one batch of its own size rather than padded to ``batch_size``
    logits = as_classifier(model).predict_logits(np.asarray(images), min(batch_size, len(labels)))
    return Classification(logits, labels)


def per_class_accuracy(correct: np.ndarray, labels: np.ndarray) -> list[float | None]:
    """Accuracy within each true class 0..9 (None for a class with no rows)."""
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    hits = np.bincount(labels, weights=correct.astype(np.float64), minlength=NUM_CLASSES)
    return [float(h / c) if c else None for h, c in zip(hits, counts)]


CONFIDENCE_GROUPS = {
    "fooled": "the target is correct on the original and wrong on its adversarial copy",
    "held": "the target is correct on the original and on its adversarial copy",
    "recovered": "the target is wrong on the original and correct on its adversarial copy",
    "both_wrong": "the target is wrong on the original and on its adversarial copy",
}


def confidence_split(original: Classification, adversarial: Classification) -> dict[str, dict]:
    """Partition the rows by (target correct on original, on adversarial) and average confidences.

    For each group (see ``CONFIDENCE_GROUPS``): ``rows``, ``mean_original_confidence`` (softmax max
    of the target's logits on the original image; for ``fooled`` and ``held`` this is the
    probability of the true class) and ``mean_adversarial_confidence`` (softmax max on the
    adversarial copy); None for an empty group. The paper's 0.398 / 0.761 are ``fooled`` / ``held``.
    """
    oc, ac = original.correct, adversarial.correct
    o_conf, a_conf = original.confidence, adversarial.confidence
    masks = {"fooled": oc & ~ac, "held": oc & ac, "recovered": ~oc & ac, "both_wrong": ~oc & ~ac}
    out = {}
    for name, m in masks.items():
        n = int(m.sum())
        out[name] = {
            "rows": n,
            "mean_original_confidence": float(o_conf[m].mean()) if n else None,
            "mean_adversarial_confidence": float(a_conf[m].mean()) if n else None,
        }
    return out


def linf_levels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image L-infinity distance in pixel levels (0-255) between two uint8 batches."""
    d = np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).reshape(len(a), -1)
    return d.max(axis=1, initial=0).astype(np.int64)


def random_sign_control(
    images: np.ndarray, linf: np.ndarray, seed: int = 0, keys: np.ndarray | None = None
) -> np.ndarray:
    """Each image plus random +-1 signs times its own ``linf`` (pixel levels), rounded and clipped to uint8.

    ``linf`` (N,) is rounded to whole levels first (a uint8 image can only move by whole levels), so
    every pixel moves by exactly ``+-round(linf)`` unless clipping at 0 or 255 stops it: the
    per-image L-infinity is ``round(linf)`` except where clipping removes every full-size move.
    Signs come from ``numpy.random.default_rng([seed, key])`` per image, ``keys`` defaulting to
    ``arange(N)`` (pass the original row index so an image's noise does not depend on the others).
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ConfigError(f"images have dtype {images.dtype} and shape {images.shape}: expected uint8 (N, H, W, C)")
    linf = np.asarray(linf, np.float64).reshape(-1)
    if linf.shape[0] != len(images):
        raise ConfigError(f"{len(linf)} L-infinity values for {len(images)} images: expected one per image")
    if not np.all(np.isfinite(linf)) or np.any(linf < 0) or np.any(linf > PIXEL_RANGE):
        raise ConfigError(
            f"L-infinity values must lie in [0, {PIXEL_RANGE:g}] pixel levels: got {linf.min()}..{linf.max()}"
        )
    keys = np.arange(len(images)) if keys is None else np.asarray(keys).reshape(-1)
    if keys.shape[0] != len(images):
        raise ConfigError(f"{len(keys)} keys for {len(images)} images: expected one per image")
    levels = np.rint(linf).astype(np.int16)
    out = np.empty_like(images)
    for i in range(len(images)):
        rng = np.random.default_rng([int(seed), int(keys[i])])
        sign = rng.integers(0, 2, size=images.shape[1:], dtype=np.int16) * 2 - 1
        out[i] = np.clip(images[i].astype(np.int16) + levels[i] * sign, PIXEL_MIN, PIXEL_MAX).astype(np.uint8)
    return out
