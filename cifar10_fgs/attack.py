"""Untargeted iterative fast gradient sign attack, batched with per-image early stop.

For each image ``x0`` with label ``y`` (pixels in ``[pixel_min, pixel_max]``)::

    x_acc <- x0                                   (float64 accumulator)
    loop:
        q <- round(x_acc)                         (the exact uint8 image that would be stored)
        logits, g <- model(q), d loss(model(q), y) / d q      (one forward + backward)
        if argmax(logits) != y: stop, store q     (misclassified by construction)
        if iterations == max_iterations: report as not fooled
        x_acc <- clip(x_acc + step * (pixel_max - pixel_min) * sign(g), pixel_min, pixel_max)

The loss is ``logsumexp_{j != y} z_j - z_y`` on the logits ``z``. Its input gradient is the
cross-entropy gradient divided by ``1 - p_y`` (a positive scalar), so the *sign* is exactly the
sign of the paper's cross-entropy gradient, but it never underflows to zero for confident images.

Batching: a fixed-size batch of slots; an image leaves its slot the moment it is fooled (or runs
out of iterations) and the next image takes the slot, so the batch stays full to the end of the
split. The batch size is fixed (the tail is zero-padded) because on CPU a row's logits depend on
the batch *size* in the last bits but not on the other rows: fixed size makes every image's result
independent of what it was batched with, hence resumable and deterministic.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from .config import PIXEL_MAX, PIXEL_MIN
from .errors import ConfigError
from .inference import softmax

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttackConfig:
    """Settings of the iterative FGS attack. ``step`` is a fraction of the pixel range."""

    step: float = 0.01  # 0.01 of [0, 255] = 2.55 levels per iteration, as in the paper
    max_iterations: int = 200  # per image; at step 0.01 the whole range is crossed after 100
    batch_size: int = 256  # slots evaluated per forward+backward
    pixel_min: float = PIXEL_MIN
    pixel_max: float = PIXEL_MAX

    def __post_init__(self):
        check_attack_config(self)

    @property
    def step_levels(self) -> float:
        return self.step * (self.pixel_max - self.pixel_min)


def check_attack_config(cfg: AttackConfig) -> None:
    if not (0.0 < cfg.step < 1.0):
        raise ConfigError(f"step {cfg.step} is out of range: expected 0 < step < 1 (a fraction of the pixel range)")
    if int(cfg.max_iterations) != cfg.max_iterations or cfg.max_iterations < 1:
        raise ConfigError(f"max-iterations {cfg.max_iterations} is invalid: expected an integer >= 1")
    if int(cfg.batch_size) != cfg.batch_size or cfg.batch_size < 1:
        raise ConfigError(f"batch size {cfg.batch_size} is invalid: expected an integer >= 1")
    if not cfg.pixel_min < cfg.pixel_max:
        raise ConfigError(f"pixel range [{cfg.pixel_min}, {cfg.pixel_max}] is empty: expected min < max")


def fgs_step(x: np.ndarray, grad_sign: np.ndarray, step: float, pixel_min: float, pixel_max: float) -> np.ndarray:
    """One fast gradient sign step on a batch, clipped to the pixel range (a pure function)."""
    return np.clip(x + step * (pixel_max - pixel_min) * grad_sign, pixel_min, pixel_max)


def quantize(x: np.ndarray, pixel_min: float = PIXEL_MIN, pixel_max: float = PIXEL_MAX) -> np.ndarray:
    """The uint8 image a float accumulator stands for (round half to even, then clip)."""
    return np.clip(np.rint(x), pixel_min, pixel_max).astype(np.uint8)


def make_gradient_fn(model, strategy=None) -> Callable:
    """``fn(images float32 (B,32,32,3), labels int32 (B,)) -> (logits, sign of input gradient)``.

    With a ``tf.distribute.MirroredStrategy`` of n replicas (several GPUs; the model must have been
    loaded under ``strategy.scope()``), replica i computes rows ``[i*B/n, (i+1)*B/n)`` of the batch.
    """
    import tensorflow as tf

    def grad_sign(x, y):
        with tf.GradientTape() as tape:
            tape.watch(x)
            z = model(x, training=False)
            true = tf.gather(z, y, axis=1, batch_dims=1)
            others = z + tf.one_hot(y, tf.shape(z)[1], on_value=-np.inf, off_value=0.0, dtype=z.dtype)
            loss = tf.reduce_logsumexp(others, axis=1) - true
        g = tape.gradient(loss, x)
        return z, tf.sign(g)

    if strategy is None or strategy.num_replicas_in_sync == 1:
        return tf.function(grad_sign, reduce_retracing=True)
    n = strategy.num_replicas_in_sync

    def replica_share(x, y):
        i = tf.distribute.get_replica_context().replica_id_in_sync_group
        per = tf.shape(x)[0] // n
        return grad_sign(x[i * per:(i + 1) * per], y[i * per:(i + 1) * per])

    @tf.function(reduce_retracing=True)
    def distributed(x, y):
        z, g = strategy.run(replica_share, args=(x, y))
        return (tf.concat(strategy.experimental_local_results(z), axis=0),
                tf.concat(strategy.experimental_local_results(g), axis=0))

    return distributed


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

    def __len__(self) -> int:
        return int(self.index.shape[0])

    @staticmethod
    def concat(parts: list["AttackRecord"]) -> "AttackRecord":
        fields = AttackRecord.__dataclass_fields__
        return AttackRecord(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in fields})

    def take(self, order: np.ndarray) -> "AttackRecord":
        return AttackRecord(**{k: getattr(self, k)[order] for k in AttackRecord.__dataclass_fields__})


def perturbation_norms(adv: np.ndarray, orig: np.ndarray, pixel_range: float) -> tuple[np.ndarray, np.ndarray]:
    d = (adv.astype(np.float32) - orig.astype(np.float32)).reshape(len(adv), -1) / pixel_range
    return np.abs(d).max(axis=1, initial=0.0), np.sqrt((d * d).sum(axis=1))


def equivalent_batch_sizes(fn: Callable, batch_size: int, shape=(32, 32, 3), smallest: int = 8) -> tuple[int, ...]:
    """Smaller batch sizes (ascending) whose per-row logits and gradient signs equal the full batch's bit for bit.

    Checked on a seeded random probe batch. The drain at the end of a run uses only these sizes, so an image's
    result still does not depend on how it was batched (runs stay resumable to the byte). Sizes are halvings of
    ``batch_size`` down to ``smallest``; the first size that differs stops the search.
    """
    import tensorflow as tf

    rng = np.random.default_rng(12345)
    x = rng.integers(0, 256, (batch_size, *shape)).astype(np.float32)
    y = rng.integers(0, 10, batch_size).astype(np.int32)
    z_full, g_full = (t.numpy() for t in fn(tf.constant(x), tf.constant(y)))
    ok = []
    size = batch_size // 2
    while size >= smallest and batch_size % size == 0:
        z, g = (t.numpy() for t in fn(tf.constant(x[:size]), tf.constant(y[:size])))
        if not (np.array_equal(z, z_full[:size]) and np.array_equal(g, g_full[:size])):
            break
        ok.append(size)
        size //= 2
    log.info("drain batch sizes equivalent to %d: %s", batch_size, ok or "none")
    return tuple(sorted(ok))


def iterate_attack(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    config: AttackConfig = AttackConfig(),
    *,
    indices: np.ndarray | None = None,
    gradient_fn: Callable | None = None,
    tail_buckets: bool = True,
) -> Iterator[AttackRecord]:
    """Attack ``images`` (uint8) and yield small records as images finish (in finishing order).

    ``indices`` (default ``arange(N)``) name the rows in the original split. Every input row is
    yielded exactly once: fooled, or not fooled after ``config.max_iterations`` steps.
    """
    import tensorflow as tf

    check_attack_config(config)
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.int32)
    if images.dtype != np.uint8:
        raise ConfigError(f"images have dtype {images.dtype}: expected uint8 pixels")
    n_total = len(images)
    indices = np.arange(n_total, dtype=np.int64) if indices is None else np.asarray(indices, np.int64)
    fn = gradient_fn or make_gradient_fn(model)
    B = int(config.batch_size)
    tail_sizes = equivalent_batch_sizes(fn, B, images.shape[1:]) if tail_buckets else ()
    step_levels = config.step_levels
    lo, hi = config.pixel_min, config.pixel_max

    slot_row = np.full(B, -1, np.int64)  # position in ``images`` held by each slot, -1 = empty
    acc = np.zeros((B, *images.shape[1:]), np.float64)
    feed = np.zeros((B, *images.shape[1:]), np.float32)
    ylab = np.zeros(B, np.int32)
    iters = np.zeros(B, np.int32)
    orig_pred = np.zeros(B, np.int64)
    orig_conf = np.zeros(B, np.float32)
    next_row = 0

    while True:
        empty = np.flatnonzero(slot_row < 0)
        take = min(len(empty), n_total - next_row)
        if take:
            slots = empty[:take]
            rows = np.arange(next_row, next_row + take)
            next_row += take
            slot_row[slots] = rows
            acc[slots] = images[rows]
            ylab[slots] = labels[rows]
            iters[slots] = 0
        active = slot_row >= 0
        if not active.any():
            return
        q = quantize(acc, lo, hi)
        n_active = int(active.sum())
        size = next((t for t in tail_sizes if t >= n_active), B) if next_row >= n_total else B
        if size < B:  # draining: a smaller batch, proven bitwise-equivalent (see equivalent_batch_sizes)
            idx = np.flatnonzero(active)
            small = np.zeros((size, *images.shape[1:]), np.float32)
            small[:n_active] = q[idx]
            ys = np.zeros(size, np.int32)
            ys[:n_active] = ylab[idx]
            zs, gs = fn(tf.constant(small), tf.constant(ys))
            z = np.zeros((B, zs.shape[1]), np.float32)
            z[idx] = zs.numpy()[:n_active]
            gsign = np.zeros(acc.shape, np.float32)
            gsign[idx] = gs.numpy()[:n_active]
        else:
            feed[...] = q
            feed[~active] = 0.0
            z, gsign = (t.numpy() for t in fn(tf.constant(feed), tf.constant(ylab)))
        pred = z.argmax(axis=1)
        first = active & (iters == 0)
        if first.any():
            orig_pred[first] = pred[first]
            orig_conf[first] = softmax(z[first]).max(axis=1)
        fooled = active & (pred != ylab)
        done = fooled | (active & (iters >= config.max_iterations))
        if done.any():
            d = np.flatnonzero(done)
            rows = slot_row[d]
            adv = q[d]
            linf, l2 = perturbation_norms(adv, images[rows], hi - lo)
            probs = softmax(z[d])
            yield AttackRecord(
                index=indices[rows], label=labels[rows].astype(np.int64), adversarial=adv,
                original_prediction=orig_pred[d].copy(), original_confidence=orig_conf[d].copy(),
                adversarial_prediction=pred[d].astype(np.int64), adversarial_confidence=probs.max(axis=1),
                iterations=iters[d].copy(), fooled=fooled[d], linf=linf.astype(np.float32), l2=l2.astype(np.float32),
            )
            slot_row[d] = -1
        go = active & ~done
        if go.any():
            g = np.flatnonzero(go)
            acc[g] = fgs_step(acc[g], gsign[g], config.step, lo, hi)
            iters[g] += 1


def attack_arrays(model, images: np.ndarray, labels: np.ndarray, config: AttackConfig = AttackConfig()) -> AttackRecord:
    """Attack every image and return the records in input order (a convenience over ``iterate_attack``)."""
    parts = list(iterate_attack(model, images, labels, config))
    if not parts:
        raise ConfigError("no images to attack: expected at least one image")
    rec = AttackRecord.concat(parts)
    return rec.take(np.argsort(rec.index, kind="stable"))
