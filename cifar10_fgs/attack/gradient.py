"""The attack's input-gradient function, traced once per batch size, and the batch sizes of the drain.

``make_gradient_fn(model)`` gives ``fn(images, labels, codes) -> (logits, sign of input gradient)``.
Every batch size gets its own trace with a *static* batch dimension, made on its first use. Measured
on a CPU (docs/performance.md, "Fixed cost of small runs"): static traces give a row the same bits at
every batch size tried (2 to 256), but a trace with a dynamic batch dimension (``None``) gives other
last bits than the static ones, so it would change every stored confidence against the shards made so
far. Full batches therefore always run the static trace of the attack's batch size ``B``.

The drain (the end of a run, when fewer than ``B`` images are left) may run at a smaller size, but a
size is used only once its own trace has returned, on a seeded probe batch, exactly the logits and
signs that ``B`` returns: an image's result then still does not depend on how it was batched, and a
resumed run stays byte-identical. A trace costs as much as dozens of full batches (a flip-averaged
EfficientNetB0 on 2 cores), so :class:`DrainSizes` traces a smaller size only once the drain has wasted
as much time on padding at the larger size as a trace costs (a ski-rental rule: at most twice the best
choice made in hindsight). A short drain pays no trace; a long one soon runs at its own size.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from cifar10_fgs.attack.ladder import LOSS_LOGSUMEXP, LOSS_RUNNER_UP

log = logging.getLogger(__name__)

SMALLEST_DRAIN = 8  # the smallest batch size the drain shrinks to


def _grad_sign(model) -> Callable:
    """The per-row loss chosen by its code (``LOSS_*``), and its logits and input-gradient sign."""
    import tensorflow as tf

    def grad_sign(x, y, code):
        with tf.GradientTape() as tape:
            tape.watch(x)
            z = model(x, training=False)
            true = tf.gather(z, y, axis=1, batch_dims=1)
            others = z + tf.one_hot(y, tf.shape(z)[1], on_value=-np.inf, off_value=0.0, dtype=z.dtype)
            paper = tf.reduce_logsumexp(others, axis=1) - true
            runner_up = tf.reduce_max(others, axis=1) - true
            toward = tf.gather(z, tf.maximum(code, 0), axis=1, batch_dims=1) - true
            loss = tf.where(code == LOSS_LOGSUMEXP, paper, tf.where(code == LOSS_RUNNER_UP, runner_up, toward))
        g = tape.gradient(loss, x)
        return z, tf.sign(g)

    return grad_sign


def _mirrored(grad_sign: Callable, strategy) -> Callable:
    """``grad_sign`` over the replicas of a MirroredStrategy: replica i takes rows ``[i*B/n, (i+1)*B/n)``."""
    import tensorflow as tf

    n = strategy.num_replicas_in_sync

    def replica_share(x, y, code):
        i = tf.distribute.get_replica_context().replica_id_in_sync_group
        per = tf.shape(x)[0] // n
        part = slice(i * per, (i + 1) * per)
        return grad_sign(x[part], y[part], code[part])

    def across(x, y, code):
        z, g = strategy.run(replica_share, args=(x, y, code))
        return (
            tf.concat(strategy.experimental_local_results(z), axis=0),
            tf.concat(strategy.experimental_local_results(g), axis=0),
        )

    return across


class GradientFn:
    """``fn(images float32 (B,32,32,3), labels int32 (B,), codes int32 (B,) = all LOSS_LOGSUMEXP)``
    ``-> (logits, sign of input gradient)``, the loss chosen per row by its code (see ``LOSS_*``).

    Rows with the paper's code get bit for bit the gradient of the paper's loss alone (``tf.where``
    routes an exact zero to the other losses' branches). Each batch size is traced once, with a static
    shape, on its first call (``get_concrete_function``: one graph per size, never a retrace). With a
    ``tf.distribute.MirroredStrategy`` of n replicas (several GPUs; the model loaded under
    ``strategy.scope()``), replica i computes rows ``[i*B/n, (i+1)*B/n)`` of the batch.

    ``first_call_seconds[size]`` is the time of a size's first call (trace, compile and one
    evaluation), ``call_seconds[size]`` that of its latest call: what :class:`DrainSizes` weighs.
    """

    def __init__(self, model, strategy=None):
        import tensorflow as tf

        fn = _grad_sign(model)
        self.replicas = 1 if strategy is None else strategy.num_replicas_in_sync
        if self.replicas > 1:
            fn = _mirrored(fn, strategy)
        self._function = tf.function(fn, autograph=False)  # no Python control flow to convert
        self._traced: dict[int, Callable] = {}
        self.first_call_seconds: dict[int, float] = {}
        self.call_seconds: dict[int, float] = {}

    def __call__(self, x, y, code=None):
        import tensorflow as tf

        size = int(x.shape[0])
        if code is None:
            code = tf.fill(tf.shape(y), LOSS_LOGSUMEXP)
        t0 = time.perf_counter()
        traced = self._traced.get(size)
        first = traced is None
        if traced is None:
            traced = self._traced[size] = self._function.get_concrete_function(
                tf.TensorSpec([size, *x.shape[1:]], tf.float32),
                tf.TensorSpec([size], tf.int32),
                tf.TensorSpec([size], tf.int32),
            )
        z, g = traced(tf.cast(x, tf.float32), tf.cast(y, tf.int32), tf.cast(code, tf.int32))
        seconds = time.perf_counter() - t0
        if first:
            self.first_call_seconds[size] = seconds
            log.info("gradient function traced at batch size %d in %.1fs", size, seconds)
        self.call_seconds[size] = seconds
        return z, g

    @property
    def traced_sizes(self) -> tuple[int, ...]:
        return tuple(sorted(self._traced))


def make_gradient_fn(model, strategy=None) -> GradientFn:
    """The attack's gradient function of ``model`` (see :class:`GradientFn`)."""
    return GradientFn(model, strategy)


def drain_candidates(batch_size: int, replicas: int = 1, smallest: int = SMALLEST_DRAIN) -> tuple[int, ...]:
    """Halvings of ``batch_size`` (descending) that divide it, split over the replicas, and are >= ``smallest``."""
    sizes = []
    size = batch_size // 2
    while size >= smallest and batch_size % size == 0 and size % replicas == 0:
        sizes.append(size)
        size //= 2
    return tuple(sizes)


class DrainSizes:
    """The batch size each round of the attack runs at: ``B``, or a smaller size once it pays and is proven.

    ``trace_cost``: the seconds a new trace is taken to cost; None measures it (the first call at ``B``);
    0 traces each halving as soon as the drain reaches it (what the tests use). Padding wasted since
    the current size was adopted is summed; once it reaches the trace cost, the size that fits the
    round is traced and proven. A size whose trace differs from ``B`` on the probe batch is refused,
    and no other size is tried after it.
    """

    def __init__(self, fn: Callable, batch_size: int, shape=(32, 32, 3), *, trace_cost: float | None = None):
        self.fn, self.batch_size, self.shape, self.trace_cost = fn, int(batch_size), tuple(shape), trace_cost
        self.candidates = drain_candidates(self.batch_size, getattr(fn, "replicas", 1))
        self.proven: list[int] = [self.batch_size]
        self.waste = 0.0  # seconds of padding at the current size since it was adopted
        self._current = self.batch_size
        self._probe: tuple[np.ndarray, ...] | None = None  # (x, y, code, logits, gradient signs)

    def size_for(self, n: int) -> int:
        """The batch size for a round of ``n`` rows (``n <= B``), proving a smaller size first if it now pays."""
        current = min(s for s in self.proven if s >= n)
        if current != self._current:
            self._current, self.waste = current, 0.0
        fitting = [s for s in self.candidates if n <= s < current]
        cost = self._cost()
        if not fitting or cost is None:
            return current
        candidate = fitting[-1]
        self.waste += getattr(self.fn, "call_seconds", {}).get(current, 0.0) * (1 - candidate / current)
        if self.waste >= cost and self._prove(candidate):
            self._current, self.waste = candidate, 0.0
            return candidate
        return current

    def _cost(self) -> float | None:
        if self.trace_cost is not None:
            return self.trace_cost
        return getattr(self.fn, "first_call_seconds", {}).get(self.batch_size)

    def _probe_batch(self):
        if self._probe is None:
            rng = np.random.default_rng(12345)
            B = self.batch_size
            x = rng.integers(0, 256, (B, *self.shape)).astype(np.float32)
            y = rng.integers(0, 10, B).astype(np.int32)
            code = rng.integers(LOSS_RUNNER_UP, 10, B).astype(np.int32)  # every loss the ladder uses
            self._probe = (x, y, code, *self._run(x, y, code))
        return self._probe

    def _run(self, x, y, code):
        import tensorflow as tf

        z, g = self.fn(tf.constant(x), tf.constant(y), tf.constant(code))
        return z.numpy(), g.numpy()

    def _prove(self, size: int) -> bool:
        """Trace ``size`` and keep it if its logits and signs equal ``B``'s bit for bit on the probe batch."""
        x, y, code, z_full, g_full = self._probe_batch()
        t0 = time.perf_counter()
        z, g = self._run(x[:size], y[:size], code[:size])
        same = bool(np.array_equal(z, z_full[:size]) and np.array_equal(g, g_full[:size]))
        if same:
            self.proven.append(size)
        else:
            self.candidates = ()
        log.info(
            "drain batch size %d %s batch size %d on the probe batch (%.1fs)",
            size,
            "equals" if same else "differs from",
            self.batch_size,
            time.perf_counter() - t0,
        )
        return same
