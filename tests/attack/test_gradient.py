"""The gradient function's traces and the drain's batch sizes, on real tiny Keras models."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from cifar10_fgs.attack.fgs import AttackConfig, AttackRecord, iterate_attack
from cifar10_fgs.attack.gradient import DrainSizes, _grad_sign, drain_candidates, make_gradient_fn

from helpers import labels_the_model_gets_right, synthetic_images, tiny_model


@pytest.fixture(scope="module")
def setup():
    model = tiny_model(seed=3)
    images, _ = synthetic_images(70, seed=11)
    labels = labels_the_model_gets_right(model, images, wrong=4, batch_size=32)
    return model, images, labels


def _batch(n, seed=0):
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, n).astype(np.int32)
    code = rng.integers(-2, 10, n).astype(np.int32)
    return tf.constant(x), tf.constant(y), tf.constant(code)


def test_each_size_is_traced_once_and_matches_a_tf_function_called_at_that_size(setup, caplog):
    """Today's shards were made by a tf.function called at the batch size: the static trace gives the same bits."""
    import tensorflow as tf

    model = setup[0]
    fn = make_gradient_fn(model)
    x, y, code = _batch(32)
    reference = tf.function(_grad_sign(model))  # how the gradient function was called before: a retracing tf.function
    z_ref, g_ref = (t.numpy() for t in reference(x, y, code))
    with caplog.at_level(logging.WARNING):
        for size in (32, 16, 8, 4, 2, 32, 16):  # five sizes, each traced once: no retracing warning
            z, g = fn(x[:size], y[:size], code[:size])
            assert np.array_equal(z.numpy(), z_ref[:size]) and np.array_equal(g.numpy(), g_ref[:size]), size
    assert fn.traced_sizes == (2, 4, 8, 16, 32)
    assert set(fn.first_call_seconds) == {2, 4, 8, 16, 32}
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]


def test_drain_candidates_are_halvings_that_divide_the_batch_and_the_replicas():
    assert drain_candidates(256) == (128, 64, 32, 16, 8)
    assert drain_candidates(100) == (50, 25)
    assert drain_candidates(16) == (8,)
    assert drain_candidates(8) == ()
    assert drain_candidates(48, replicas=3) == (24, 12)
    assert drain_candidates(64, replicas=3) == ()  # 32 rows do not split over 3 replicas


def _run(model, images, labels, batch_size, drain, fn=None):
    parts = list(
        iterate_attack(model, images, labels, AttackConfig(batch_size=batch_size), gradient_fn=fn, drain=drain)
    )
    rec = AttackRecord.concat(parts)
    return rec.take(np.argsort(rec.index, kind="stable"))


def _same(a: AttackRecord, b: AttackRecord) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in AttackRecord.__dataclass_fields__)


def test_a_drain_at_proven_smaller_sizes_gives_the_full_size_bytes(setup):
    """An image's result does not depend on the batch size its drain rounds ran at."""
    model, images, labels = setup
    full = _run(model, images, labels, 32, drain=False)
    fn = make_gradient_fn(model)
    shrinking = _run(model, images, labels, 32, drain=DrainSizes(fn, 32, trace_cost=0.0), fn=fn)
    assert fn.traced_sizes[0] < 32, "the drain never ran below the full batch: nothing was compared"
    assert _same(full, shrinking)
    assert full.fooled.all() and (full.evaluations > 1).any()


def test_a_drain_never_traces_a_size_that_does_not_pay(setup):
    model, images, labels = setup
    fn = make_gradient_fn(model)
    drain = DrainSizes(fn, 32, trace_cost=1e9)
    rec = _run(model, images, labels, 32, drain=drain, fn=fn)
    assert fn.traced_sizes == (32,)
    assert drain.proven == [32] and 0 < drain.waste < 1e9
    assert _same(rec, _run(model, images, labels, 32, drain=False))


def test_the_default_drain_weighs_padding_against_the_measured_trace_cost(setup):
    model, images, labels = setup
    fn = make_gradient_fn(model)
    drain = DrainSizes(fn, 32)
    assert drain.size_for(5) == 32  # nothing measured yet: no trace cost known, no trace
    _run(model, images, labels, 32, drain=drain, fn=fn)
    assert drain._cost() == fn.first_call_seconds[32] > 0


def _batch_dependent_model():
    """A model whose logits depend on the whole batch: no smaller batch size is equivalent for it."""
    import keras

    class BatchMean(keras.layers.Layer):
        def call(self, x):
            return x + keras.ops.mean(x, axis=0, keepdims=True)

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1.0 / 255.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, strides=2)(x))
    return keras.Model(inputs, keras.layers.Dense(10)(BatchMean()(x)))


def test_a_size_that_differs_on_the_probe_batch_is_refused_and_nothing_smaller_is_tried():
    fn = make_gradient_fn(_batch_dependent_model())
    drain = DrainSizes(fn, 32, trace_cost=0.0)
    assert drain.size_for(3) == 32
    assert drain.size_for(3) == 32 and drain.size_for(1) == 32
    assert drain.proven == [32] and drain.candidates == ()
    assert fn.traced_sizes == (8, 32)  # 8 was traced once, compared, refused


def test_a_proven_size_is_traced_once_and_reused(setup):
    fn = make_gradient_fn(setup[0])
    drain = DrainSizes(fn, 32, trace_cost=0.0)
    assert drain.size_for(20) == 32  # no halving of 32 holds 20 rows
    assert drain.size_for(9) == 16
    assert [drain.size_for(n) for n in (16, 12, 9)] == [16, 16, 16]
    assert drain.size_for(3) == 8
    assert drain.proven == [32, 16, 8] and fn.traced_sizes == (8, 16, 32)
