"""``cifar10_fgs.attack(model, images, labels)``: the iterative fast gradient sign attack on a batch, in one call.

What ``generate`` does to a whole split, on arrays in memory: no files, no manifest, no source check.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path

import numpy as np

from cifar10_fgs.attack.fgs import AttackRecord, attack_arrays
from cifar10_fgs.attack.settings import attack_settings
from cifar10_fgs.config import NUM_LOGITS, AttackConfig
from cifar10_fgs.data import IMAGE_SHAPE
from cifar10_fgs.errors import ConfigError, ModelError
from cifar10_fgs.models.convention import InputConvention, parse_declared
from cifar10_fgs.models.inference import default_batch_size
from cifar10_fgs.models.keras_input import feed, feed_declared, load_keras

log = logging.getLogger(__name__)

WHERE = "cifar10_fgs.attack"
ONNX_SUFFIX = ".onnx"
WHERE_CONVENTION = "the convention argument"


def attack(model, images, labels, *, convention: InputConvention | Mapping | None = None, **settings) -> AttackRecord:
    """Make every image adversarial for ``model``: sign steps of the loss gradient until it is misclassified.

    The model must be differentiable in TensorFlow: a ``keras.Model``, or the path of a ``.keras`` file (loaded in
    Keras safe mode). It takes one batch of 32x32x3 images and returns 10 scores, one per CIFAR-10 class. An ONNX
    model has no gradients here (score it with ``evaluate_transfer`` instead); a model with other than 10
    outputs is refused. How it takes the pixels is its input convention (``models.convention``):

    * ``convention``: the fields declared, as a mapping with the keys of ``cifar10-fgs.json`` (``layout``,
      ``scale``, ``mean``, ``std``, ``output``; e.g. ``{"scale": 1, "output": "probabilities"}`` for the keras.io
      convention), the rest following this project's convention and the layout the model's input shape; or a
      complete ``InputConvention``. None: for a path, the ``cifar10-fgs.json`` beside it declares it; otherwise,
      and for fields nothing declares, this project's convention: NHWC, [0, 255], logits (``KERAS_CONVENTION``).
      A convention given with a path must agree with its sidecar.
    * A model that outputs probabilities is attacked on its logits before a final softmax layer where it ends in
      one, else on ``log(p)``: a saturated softmax has no gradient.

    ``images``: uint8 (N, 32, 32, 3) RGB; ``labels``: (N,) true classes 0..9. ``settings``: fields of
    :class:`~cifar10_fgs.config.AttackConfig` (``step``, ``max_iterations``, ``max_linf``, ``escalate``, ...);
    ``batch_size`` defaults to the device's attack batch, at most N (a row's bits depend on the batch size only).

    Returns the :class:`~cifar10_fgs.attack.fgs.AttackRecord`, row i for image i: ``adversarial`` (uint8, the
    exact image the model misclassifies where ``fooled``), ``fooled``, ``iterations`` (0: already
    misclassified, returned unchanged), ``linf`` and ``l2`` (fractions of the pixel range, ``linf <= step *
    iterations``), ``original_prediction``, ``adversarial_prediction`` and their softmax confidences, ``phase``
    and ``evaluations``. Bad input raises a one-line ``ConfigError`` or ``ModelError``.
    """
    images, labels = _checked_arrays(images, labels)
    given = attack_settings(settings, f"{WHERE}()", legacy=False)
    given.setdefault("batch_size", min(default_batch_size(), len(images)))
    config = AttackConfig(**given)
    fed = _fed(model, convention)
    log.info("attacking %d images (%s), settings %s", len(images), fed.convention.describe(), given)
    return attack_arrays(fed.model, images, labels, config)


def _checked_arrays(images, labels) -> tuple[np.ndarray, np.ndarray]:
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE or not len(images):
        raise ConfigError(
            f"images have dtype {images.dtype} and shape {images.shape}: expected uint8 (N, 32, 32, 3) RGB pixels, "
            "N >= 1 (e.g. np.asarray(x, np.uint8))"
        )
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise ConfigError(
            f"labels have dtype {labels.dtype} and shape {labels.shape}: expected {len(images)} integer classes"
        )
    if labels.min() < 0 or labels.max() >= NUM_LOGITS:
        raise ConfigError(f"labels hold {int(labels.min())}..{int(labels.max())}: expected classes 0..{NUM_LOGITS - 1}")
    return images, labels.astype(np.int64)


def _fed(model, convention: InputConvention | Mapping | None):
    """``model`` (a keras.Model or a .keras path) fed by ``convention`` (see ``attack``)."""
    declared = parse_declared(dict(convention), WHERE_CONVENTION) if isinstance(convention, Mapping) else None
    if declared is not None:
        convention = None
    if convention is not None and not isinstance(convention, InputConvention):
        known = ", ".join(f.name for f in fields(InputConvention))
        raise ConfigError(
            f"convention is a {type(convention).__name__}: expected a mapping of {known}, an InputConvention, or None"
        )
    if isinstance(model, (str, Path)):
        path = Path(model)
        if path.suffix.lower() == ONNX_SUFFIX:
            raise ModelError(
                f"{path} is an ONNX model, which has no gradients here: attack its Keras model (.keras), or score "
                "the ONNX model with evaluate_transfer"
            )
        return load_keras(path, [declared], recorded=convention, record=WHERE_CONVENTION)
    if getattr(model, "framework", None) == "onnx":
        raise ModelError(f"{model.path} is an ONNX model, which has no gradients here: attack its Keras model")
    if not (callable(model) and hasattr(model, "trainable_variables")):
        raise ConfigError(f"model is a {type(model).__name__}: expected a keras.Model or the path of a .keras file")
    where = str(getattr(model, "name", "model"))
    return feed_declared(model, [declared], where) if convention is None else feed(model, convention, where=where)
