"""The source model's check before ``generate`` attacks: is it a classifier worth attacking?

A source near chance, or one that calls most images one class, cannot be fooled inside the attack's
L-inf reach for the images it happens to get right (the margin it must cross is the constant class's
lead, not the image's): ``generate`` would spend minutes and then exit 1 with most images not fooled.
So it predicts a class-balanced sample of the originals first and refuses such a model in one line.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from cifar10_fgs.config import SourceCheck
from cifar10_fgs.data import CLASS_NAMES, Cifar10Split
from cifar10_fgs.data.split import balanced_rows
from cifar10_fgs.errors import ConfigError
from cifar10_fgs.generate.originals import OriginalLogits

log = logging.getLogger(__name__)

FIX = "train it longer or pass a better --source-model (`generate --no-source-check` attacks it anyway)"


def _sample_rows(data: Cifar10Split, check: SourceCheck) -> np.ndarray:
    """The rows of ``data`` the check predicts: a class-balanced sample."""
    return balanced_rows(data.labels, min(check.sample_images, len(data)), seed=0)  # all rows, if fewer


def check_source_model(
    originals: OriginalLogits, source_model: Path, data: Cifar10Split, check: SourceCheck | None
) -> None:
    """Raise a one-line ConfigError if the model is near chance or one-class on a balanced sample of ``data``.

    ``originals`` holds (or computes) the model's logits on the originals. ``check`` None skips the
    check; so does a split of fewer than ``check.min_images`` originals (logged).
    """
    if check is None:
        return
    rows = _sample_rows(data, check)
    n = len(rows)
    if n < check.min_images:
        log.info("source check skipped: %d %s originals, fewer than %d to judge by", n, data.split, check.min_images)
        return

    labels = data.labels[rows]
    pred = originals.of(data, rows).argmax(axis=1)
    accuracy = float(np.mean(pred == labels))
    top = int(np.bincount(pred, minlength=len(CLASS_NAMES)).argmax())
    share = float(np.mean(pred == top))
    label_share = float(np.mean(labels == top))
    log.info("source check on %d %s originals: accuracy %.3f, %.3f called %s", n, data.split, accuracy, share, top)
    where = f"on {n} {data.split} originals"
    if accuracy <= check.min_accuracy:
        raise ConfigError(
            f"the source model {source_model.name} is near chance {where} (accuracy {accuracy:.3f}, "
            f"at most {check.min_accuracy:g} refused): {FIX}"
        )
    if share > check.max_class_share and label_share <= check.max_class_share:
        raise ConfigError(
            f"the source model {source_model.name} calls {share:.0%} of {n} {data.split} originals "
            f"{CLASS_NAMES[top]!r} (accuracy {accuracy:.3f}): {FIX}"
        )
