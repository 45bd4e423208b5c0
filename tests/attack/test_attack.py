"""The attack engine: properties of the iterative FGS attack on a real tiny Keras model."""

from __future__ import annotations

import numpy as np
import pytest

from cifar10_fgs.attack.fgs import attack_arrays, iterate_attack
from cifar10_fgs.attack.gradient import make_gradient_fn
from cifar10_fgs.attack.step import fgs_step, quantize
from cifar10_fgs.config import AttackConfig
from cifar10_fgs.errors import ConfigError
from cifar10_fgs.models.inference import predict_logits

from helpers import labels_the_model_gets_right, synthetic_images, tiny_model


@pytest.fixture(scope="module")
def setup():
    model = tiny_model(seed=3)
    images, _ = synthetic_images(120, seed=7)
    labels = labels_the_model_gets_right(model, images, wrong=10, batch_size=32)
    return model, images, labels


def test_step_zero_changes_nothing_and_clips_to_range():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (4, 32, 32, 3))
    g = np.sign(rng.normal(size=x.shape))
    assert np.array_equal(fgs_step(x, g, 0.0, 0.0, 255.0), x)
    big = fgs_step(x, g, 0.9, 0.0, 255.0)
    assert big.min() >= 0.0 and big.max() <= 255.0
    assert set(np.unique(big[g > 0])) <= {255.0} | set(np.unique(x[g > 0] + 0.9 * 255))
    assert np.array_equal(quantize(np.array([-3.0, 0.4, 254.6, 300.0])), np.array([0, 0, 255, 255], np.uint8))


def test_every_image_fooled_and_properties_hold(setup):
    model, images, labels = setup
    cfg = AttackConfig(batch_size=32)
    rec = attack_arrays(model, images, labels, cfg)
    assert np.array_equal(rec.index, np.arange(len(images)))
    assert rec.fooled.all(), "default settings must fool every image"
    assert rec.adversarial.dtype == np.uint8  # pixels in [0, 255] by type
    # L_inf <= step * iterations, plus half a level of rounding
    diff = np.abs(rec.adversarial.astype(int) - images.astype(int)).reshape(len(images), -1).max(axis=1)
    assert np.all(diff <= 2.55 * rec.iterations + 0.5 + 1e-9)
    assert np.allclose(rec.linf, diff / 255.0, atol=1e-7)
    # the stored bytes are misclassified, re-decided by an independent forward pass of the same batch size
    pred = predict_logits(model, rec.adversarial, batch_size=32).argmax(axis=1)
    assert np.all(pred != labels)
    assert np.array_equal(pred, rec.adversarial_prediction)
    # images the model already got wrong: 0 iterations, stored unchanged
    wrong = np.arange(10)
    assert np.all(rec.iterations[wrong] == 0)
    assert np.array_equal(rec.adversarial[wrong], images[wrong])
    assert np.all(rec.iterations[10:] >= 1)
    assert np.array_equal(rec.original_prediction[10:], labels[10:])


def test_result_is_independent_of_batch_neighbours(setup):
    model, images, labels = setup
    cfg = AttackConfig(batch_size=16)
    alone = attack_arrays(model, images[:40], labels[:40], cfg)
    mixed_order = np.r_[np.arange(40, 120), np.arange(40)][::-1].copy()
    mixed = attack_arrays(model, images[mixed_order], labels[mixed_order], cfg)
    back = np.argsort(mixed_order)[:40]
    assert np.array_equal(mixed.adversarial[back], alone.adversarial)
    assert np.array_equal(mixed.iterations[back], alone.iterations)


def test_matches_one_image_at_a_time_reference(setup):
    """Continuous batching gives exactly what the paper's loop gives, one image at a time."""
    model, images, labels = setup
    cfg = AttackConfig(batch_size=8)
    fn = make_gradient_fn(model)
    rec = attack_arrays(model, images[:12], labels[:12], cfg)
    import tensorflow as tf

    for i in range(12):
        acc = images[i].astype(np.float64)
        for it in range(cfg.max_iterations + 1):  # noqa: B007 (read after the loop)
            q = quantize(acc)
            feed = np.zeros((8, 32, 32, 3), np.float32)
            feed[0] = q
            y = np.zeros(8, np.int32)
            y[0] = labels[i]
            z, g = fn(tf.constant(feed), tf.constant(y))
            if z.numpy()[0].argmax() != labels[i]:
                break
            acc = fgs_step(acc, g.numpy()[0], cfg.step, 0.0, 255.0)
        assert rec.iterations[i] == it
        assert np.array_equal(rec.adversarial[i], q)


def _cross_entropy_sign(model, images: np.ndarray, labels: np.ndarray, dtype) -> np.ndarray:
    import tensorflow as tf

    x = tf.constant(images.astype(dtype))
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = model(x, training=False)
        loss = tf.keras.losses.sparse_categorical_crossentropy(tf.constant(labels), z, from_logits=True)
    return np.sign(tape.gradient(loss, x).numpy())


def test_gradient_sign_equals_cross_entropy_sign(setup):
    """Element for element: the two gradients differ by the positive factor 1 - p_y (here p_y is about 0.1)."""
    import tensorflow as tf

    model, images, labels = setup
    _, ours = make_gradient_fn(model)(tf.constant(images.astype(np.float32)), tf.constant(labels.astype(np.int32)))
    assert np.array_equal(ours.numpy(), _cross_entropy_sign(model, images, labels, np.float32))


def test_gradient_sign_of_a_confident_image_is_the_exact_cross_entropy_sign(setup):
    """Where p_y nears 1, float32 cross-entropy loses 1 - p_y and the sign of part of its gradient; ours keeps
    the sign cross-entropy has in float64 (docs/attack.md, "The loss")."""
    import keras
    import tensorflow as tf

    model, images, labels = setup
    sharp = keras.models.clone_model(model)
    weights = model.get_weights()
    sharp.set_weights([*weights[:-2], 100 * weights[-2], 100 * weights[-1]])  # logits x100: margins up to ~20
    keras.config.set_floatx("float64")
    try:
        exact = keras.models.clone_model(
            sharp, clone_function=lambda layer: type(layer).from_config({**layer.get_config(), "dtype": "float64"})
        )
    finally:
        keras.config.set_floatx("float32")
    exact.set_weights([w.astype(np.float64) for w in sharp.get_weights()])
    _, ours = make_gradient_fn(sharp)(tf.constant(images.astype(np.float32)), tf.constant(labels.astype(np.int32)))
    ce64 = _cross_entropy_sign(exact, images, labels, np.float64)
    ce32 = _cross_entropy_sign(sharp, images, labels, np.float32)
    assert np.mean(ce32 != ce64) > 0.01  # the confident regime is reached: float32 cross-entropy goes astray
    assert np.array_equal(ours.numpy(), ce64)


def test_unfoolable_model_reports_failures_by_index():
    import keras

    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Flatten(),
            keras.layers.Dense(
                10, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant([5.0] + [0.0] * 9)
            ),
        ]
    )
    images, _ = synthetic_images(6)
    labels = np.zeros(6, np.int64)
    parts = list(iterate_attack(model, images, labels, AttackConfig(max_iterations=3, batch_size=4)))
    rec = np.concatenate([p.index for p in parts])
    assert sorted(rec.tolist()) == list(range(6))  # every row reported exactly once
    assert not np.concatenate([p.fooled for p in parts]).any()
    assert all((p.iterations == 3).all() for p in parts)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"step": 0.0}, "step"),
        ({"step": 1.0}, "step"),
        ({"step": -0.1}, "step"),
        ({"max_iterations": 0}, "max-iterations"),
        ({"batch_size": 0}, "batch size"),
    ],
)
def test_bad_settings_are_one_line_errors(kwargs, word):
    with pytest.raises(ConfigError) as err:
        AttackConfig(**kwargs)
    assert word in str(err.value) and "\n" not in str(err.value)
