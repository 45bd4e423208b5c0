"""Untargeted iterative fast gradient sign attack, batched with per-image early stop and stall escalation.

For each image ``x0`` with label ``y`` (uint8 levels, ``[lo, hi] = [PIXEL_MIN, PIXEL_MAX] = [0, 255]``), a *path* is::

    x_acc <- start                                (float64 accumulator; start = x0 except for restarts)
    loop:
        q <- round(x_acc)                         (the exact uint8 image that would be stored)
        logits, g <- model(q), d loss(model(q), y) / d q      (one forward + backward)
        if argmax(logits) != y: stop, store q     (misclassified by construction)
        x_acc <- clip(x_acc + step * (hi - lo) * sign(g), lo, hi)
        (with ``max_linf``: also projected onto the L-inf ball of that radius around x0, as in BIM/PGD)

The first path is the paper's: the loss is ``logsumexp_{j != y} z_j - z_y`` on the logits ``z``, whose
input gradient is the cross-entropy gradient divided by ``1 - p_y`` (a positive scalar), so in exact
arithmetic the *sign* is the paper's cross-entropy sign. Measured in float32 (docs/attack.md, "The loss"):
equal element for element while ``1 - p_y`` is not tiny; on confident images (``p_y`` above about
0.9999) float32 cross-entropy loses ``1 - p_y`` and its sign goes wrong on part of the pixels, while this
loss, which never forms ``1 - p_y``, keeps the sign cross-entropy has in float64.

**Stalls.** A path that makes no progress (no new low of its margin ``z_y - max_{j != y} z_j`` for
``patience`` steps, a repeated quantized image, or ``path_steps`` steps) has stalled, and that image
alone climbs the stall ladder (:mod:`cifar10_fgs.attack.ladder`; what it is and why: docs/attack.md)
until fooled or ``max_iterations`` steps are spent in all. ``escalate=False`` runs the paper's loop
alone; images the first path fools are byte-identical either way.

Batching: a fixed-size batch of slots; an image leaves its slot the moment it is fooled (or runs
out of budget) and the next image takes the slot, so the batch stays full to the end of the split.
The batch size is fixed (a part-filled batch is zero-padded) because a row's bits may depend on how the
gradient function was traced but never on the other rows: every round runs at the full size, except in
the drain at the end, which shrinks only to sizes proven to give the full size's bits
(``gradient.DrainSizes``). So every image's result is independent of what it was batched with, hence
resumable and deterministic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from cifar10_fgs.attack.gradient import DrainSizes, make_gradient_fn
from cifar10_fgs.attack.ladder import LOSS_LOGSUMEXP, Slots
from cifar10_fgs.attack.step import quantize
from cifar10_fgs.config import NUM_LOGITS, PIXEL_RANGE, AttackConfig, check_attack_config
from cifar10_fgs.errors import ConfigError
from cifar10_fgs.models.inference import softmax

log = logging.getLogger(__name__)


@dataclass
class AttackRecord:
    """Results for a set of images, row-aligned with ``index``."""

    index: np.ndarray  # int64 row in the original split
    label: np.ndarray
    adversarial: np.ndarray  # uint8 (N, 32, 32, 3)
    original_prediction: np.ndarray
    original_confidence: np.ndarray  # softmax probability of original_prediction on the original
    adversarial_prediction: np.ndarray
    adversarial_confidence: np.ndarray
    iterations: np.ndarray  # steps taken; 0 = already misclassified, stored unchanged
    fooled: np.ndarray  # bool: adversarial_prediction != label
    linf: np.ndarray  # max |adv - orig| / pixel range
    l2: np.ndarray  # ||adv - orig||_2 / pixel range
    phase: np.ndarray  # int8 index into config.PHASES: the rung whose path fooled the image (or its last one)
    evaluations: np.ndarray  # forward+backward passes spent on the image, over every path

    def __len__(self) -> int:
        return int(self.index.shape[0])

    @staticmethod
    def concat(parts: list[AttackRecord]) -> AttackRecord:
        fields = AttackRecord.__dataclass_fields__
        return AttackRecord(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in fields})

    def take(self, order: np.ndarray) -> AttackRecord:
        return AttackRecord(**{k: getattr(self, k)[order] for k in AttackRecord.__dataclass_fields__})


def perturbation_norms(adv: np.ndarray, orig: np.ndarray, pixel_range: float) -> tuple[np.ndarray, np.ndarray]:
    d = (adv.astype(np.float32) - orig.astype(np.float32)).reshape(len(adv), -1) / pixel_range
    return np.abs(d).max(axis=1, initial=0.0), np.sqrt((d * d).sum(axis=1))


def iterate_attack(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    config: AttackConfig = AttackConfig(),
    *,
    indices: np.ndarray | None = None,
    gradient_fn: Callable | None = None,
    drain: DrainSizes | bool = True,
    order: np.ndarray | None = None,
) -> Iterator[AttackRecord]:
    """Attack ``images`` (uint8) and yield small records as images finish (in finishing order).

    ``indices`` (default ``arange(N)``) name the rows in the original split and seed their restarts.
    Every input row is yielded exactly once: fooled, or not fooled after ``config.max_iterations`` steps.
    ``drain``: the batch sizes of the drain (``gradient.DrainSizes``); False runs every round at the full size.
    ``order``: the order rows enter the slots (a permutation of ``range(N)``, default row order; see
    ``attack.schedule``). It changes how long the drain is, never a result.
    """
    check_attack_config(config)
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.int32)
    if images.dtype != np.uint8:
        raise ConfigError(f"images have dtype {images.dtype}: expected uint8 pixels")
    n_total = len(images)
    indices = np.arange(n_total, dtype=np.int64) if indices is None else np.asarray(indices, np.int64)
    order = np.arange(n_total) if order is None else np.asarray(order)
    if (
        order.ndim != 1
        or not np.issubdtype(order.dtype, np.integer)
        or not np.array_equal(np.sort(order), np.arange(n_total))
    ):
        raise ConfigError(f"the entry order is not a permutation of the {n_total} rows: expected each row index once")
    fn = gradient_fn or make_gradient_fn(model)
    B = int(config.batch_size)
    if drain is True:
        drain = DrainSizes(fn, B, images.shape[1:])
    slots = Slots(B, images.shape[1:], config, _classes(model))
    orig_pred = np.zeros(B, np.int64)
    orig_conf = np.zeros(B, np.float32)
    next_row = 0

    while True:
        empty = np.flatnonzero(slots.row < 0)
        take = min(len(empty), n_total - next_row)
        if take:
            slots.load(empty[:take], order[next_row : next_row + take], images, labels, indices)
            next_row += take
        idx = np.flatnonzero(slots.row >= 0)
        if not len(idx):
            return
        q = quantize(slots.acc[idx])
        size = drain.size_for(len(idx)) if drain and next_row >= n_total else B
        z, gsign = _evaluate(fn, q, slots.label[idx], slots.code[idx], size)  # size < B: a proven-equivalent drain
        slots.evaluated[idx] += 1
        pred = z.argmax(axis=1)
        first = slots.evaluated[idx] == 1
        if first.any():
            orig_pred[idx[first]] = pred[first]
            orig_conf[idx[first]] = softmax(z[first]).max(axis=1)
            slots.remember_targets(idx[first], z[first])
        fooled = pred != slots.label[idx]
        done = fooled | (slots.spent[idx] >= config.max_iterations)
        if done.any():
            yield _record(
                slots, idx[done], q[done], z[done], fooled[done], images, labels, indices, orig_pred, orig_conf, config
            )
            slots.row[idx[done]] = -1
        going = ~done
        if config.escalate and going.any():
            stuck = np.zeros(len(idx), bool)
            stuck[going] = slots.stalled(idx[going], z[going], q[going])
            if stuck.any():
                slots.escalate(idx[stuck])  # the next rung's start is evaluated in the next round, no step now
                slots.spent[idx[stuck]] += 1  # the stalled round counts against the image's budget
                going &= ~stuck
        if going.any():
            slots.step(idx[going], gsign[going])


def _classes(model) -> int:
    """The model's number of outputs (the width of its logits), or ``NUM_LOGITS`` when it does not say."""
    try:
        width = model.output_shape[-1]
    except (AttributeError, ValueError, TypeError, IndexError):
        return NUM_LOGITS
    return int(width) if isinstance(width, int) and width > 1 else NUM_LOGITS


def _evaluate(fn: Callable, q: np.ndarray, y: np.ndarray, code: np.ndarray, size: int):
    """Logits and gradient signs of the rows ``q`` in one call of ``size`` rows (zero-padded)."""
    import tensorflow as tf

    n = len(q)
    x = np.zeros((size, *q.shape[1:]), np.float32)
    x[:n] = q
    ys = np.zeros(size, np.int32)
    ys[:n] = y
    cs = np.full(size, LOSS_LOGSUMEXP, np.int32)
    cs[:n] = code
    z, g = fn(tf.constant(x), tf.constant(ys), tf.constant(cs))
    return z.numpy()[:n], g.numpy()[:n]


def _record(
    slots: Slots,
    d: np.ndarray,
    adv: np.ndarray,
    z: np.ndarray,
    fooled: np.ndarray,
    images,
    labels,
    indices,
    orig_pred,
    orig_conf,
    config: AttackConfig,
) -> AttackRecord:
    rows = slots.row[d]
    linf, l2 = perturbation_norms(adv, images[rows], PIXEL_RANGE)
    # a fooled image is reported with its path's steps (linf <= step * iterations); one not fooled with its budget
    iterations = np.where(fooled, slots.path[d], slots.spent[d]).astype(np.int32)
    return AttackRecord(
        index=indices[rows],
        label=labels[rows].astype(np.int64),
        adversarial=adv,
        original_prediction=orig_pred[d].copy(),
        original_confidence=orig_conf[d].copy(),
        adversarial_prediction=z.argmax(axis=1).astype(np.int64),
        adversarial_confidence=softmax(z).max(axis=1),
        iterations=iterations,
        fooled=fooled,
        linf=linf.astype(np.float32),
        l2=l2.astype(np.float32),
        phase=slots.phase(d),
        evaluations=slots.evaluated[d].copy(),
    )


def attack_arrays(model, images: np.ndarray, labels: np.ndarray, config: AttackConfig = AttackConfig()) -> AttackRecord:
    """Attack every image and return the records in input order (a convenience over ``iterate_attack``)."""
    parts = list(iterate_attack(model, images, labels, config))
    if not parts:
        raise ConfigError("no images to attack: expected at least one image")
    rec = AttackRecord.concat(parts)
    return rec.take(np.argsort(rec.index, kind="stable"))
