"""The stall ladder: a tiny real Keras model on which the paper's sign steps provably saturate.

``saturating_model``: logits z_0 = 0 (the label), z_1 = 4 mA - 6 mB - 0.5, z_2 = 4 mB - 6 mA - 0.5 and
z_3..9 = -100, where mA and mB are the mean pixel (in [0, 1]) of the two halves of the image. While
z_1 and z_2 are within log 1.5 of each other (true for every image below), the gradient of the paper's
loss logsumexp(z_1, z_2) - z_0 is negative on every pixel, so sign steps drive every pixel to 0. There
z_1 = z_2 = -0.5 < z_0: the paper's loop can never fool these images, and once saturated its quantized
image repeats. The runner-up margin z_1 - z_0 instead raises half A and lowers half B, and z_1 > 0
is reached after about 15 steps.
"""

from __future__ import annotations

import numpy as np
import pytest

from cifar10_fgs.attack.fgs import attack_arrays
from cifar10_fgs.attack.gradient import make_gradient_fn
from cifar10_fgs.attack.ladder import LOSS_RUNNER_UP, Slots, image_digest
from cifar10_fgs.config import PHASES, AttackConfig, Phase
from cifar10_fgs.errors import ConfigError
from cifar10_fgs.models.inference import predict_logits

from helpers import labels_the_model_gets_right, synthetic_images, tiny_model

HALF = 32 * 32 * 3 // 2


def saturating_model():
    import keras

    kernel = np.zeros((2 * HALF, 10), np.float32)
    a, b = slice(0, HALF), slice(HALF, 2 * HALF)
    kernel[a, 1], kernel[b, 1] = 4.0 / (HALF * 255.0), -6.0 / (HALF * 255.0)
    kernel[b, 2], kernel[a, 2] = 4.0 / (HALF * 255.0), -6.0 / (HALF * 255.0)
    bias = np.array([0.0, -0.5, -0.5] + [-100.0] * 7, np.float32)
    dense = keras.layers.Dense(10)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), dense], name="saturating")
    dense.set_weights([kernel, bias])
    return model


@pytest.fixture(scope="module")
def stuck():
    rng = np.random.default_rng(5)
    images = rng.integers(60, 196, (6, 32, 32, 3)).astype(np.uint8)
    return saturating_model(), images, np.zeros(6, np.int64)


def test_the_papers_loop_saturates_and_never_fools(stuck):
    model, images, labels = stuck
    assert np.all(predict_logits(model, images, 8).argmax(axis=1) == 0)
    rec = attack_arrays(model, images, labels, AttackConfig(batch_size=8, escalate=False))
    assert not rec.fooled.any()
    assert np.all(rec.adversarial == 0), "sign steps drive every pixel to the bottom of the range"


def test_the_stall_is_detected_and_the_runner_up_margin_fools(stuck):
    model, images, labels = stuck
    cfg = AttackConfig(batch_size=8)
    rec = attack_arrays(model, images, labels, cfg)
    assert rec.fooled.all()
    assert set(rec.phase.tolist()) == {PHASES.index(Phase.RUNNER_UP.value)}
    pred = predict_logits(model, rec.adversarial, 8).argmax(axis=1)
    assert np.all(pred != labels) and np.array_equal(pred, rec.adversarial_prediction)
    # a fresh path from the original: its perturbation is bounded by its own steps, far below the saturated one
    diff = np.abs(rec.adversarial.astype(int) - images.astype(int)).reshape(len(images), -1).max(axis=1)
    assert np.all(diff <= cfg.step_levels * rec.iterations + 0.5)
    assert np.all(rec.iterations <= cfg.path_steps) and diff.max() <= cfg.path_steps * cfg.step_levels + 0.5


def test_a_path_longer_than_its_cap_escalates_and_restarts_stay_inside_the_reached_ball(stuck):
    """With a 5-step cap no rung fools the saturating model; the image cycles through every rung and restarts."""
    model, images, labels = stuck
    cfg = AttackConfig(batch_size=8, path_steps=5, max_iterations=60)
    rec = attack_arrays(model, images, labels, cfg)
    assert not rec.fooled.any()
    assert set(rec.phase.tolist()) == {PHASES.index(Phase.RESTART.value)}
    assert np.all(rec.iterations == cfg.max_iterations)  # a row not fooled reports its whole budget
    diff = np.abs(rec.adversarial.astype(int) - images.astype(int)).max(axis=(1, 2, 3))
    assert (
        diff.max() <= 2 * cfg.path_steps * cfg.step_levels + 0.5
    )  # offset (<= the reached ball) + the path's own steps


def test_a_repeated_image_is_a_stall_and_a_new_low_margin_is_progress():
    cfg = AttackConfig(batch_size=2, patience=3)
    slots = Slots(2, (32, 32, 3), cfg)
    images = np.zeros((2, 32, 32, 3), np.uint8)
    slots.load(np.array([0, 1]), np.array([0, 1]), images, np.zeros(2, np.int32), np.array([0, 1]))
    q = np.stack([np.full((32, 32, 3), 7, np.uint8), np.full((32, 32, 3), 9, np.uint8)])
    z = np.array([[1.0, 0.0] + [-9.0] * 8, [1.0, 0.0] + [-9.0] * 8])
    assert not slots.stalled(np.array([0, 1]), z, q).any()
    q2 = q.copy()
    q2[1] += 1
    assert slots.stalled(np.array([0, 1]), z, q2).tolist() == [True, False]  # slot 0 came back to its image
    # slot 1: a new image but no new low margin; the third such step reaches patience 3
    q3 = q2.copy()
    q3[1] += 1
    assert slots.stalled(np.array([1]), z[1:], q3[1:]).tolist() == [False]
    q3[1] += 1
    assert slots.stalled(np.array([1]), z[1:], q3[1:]).tolist() == [True]
    assert image_digest(q[0]) == image_digest(q[0].copy()) != image_digest(q[1])


def test_images_the_first_path_fools_are_byte_identical_with_or_without_the_ladder():
    model = tiny_model(seed=3)
    images, _ = synthetic_images(64, seed=11)
    labels = labels_the_model_gets_right(model, images, wrong=6, batch_size=16)
    plain = attack_arrays(model, images, labels, AttackConfig(batch_size=16, escalate=False))
    ladder = attack_arrays(model, images, labels, AttackConfig(batch_size=16))
    first = np.isin(ladder.phase, [PHASES.index("fgs"), PHASES.index("unchanged")])
    assert first.sum() >= 40
    assert np.array_equal(ladder.adversarial[first], plain.adversarial[first])
    assert np.array_equal(ladder.iterations[first], plain.iterations[first])
    assert np.all(ladder.phase[:6] == PHASES.index("unchanged")) and np.all(ladder.iterations[:6] == 0)


def test_the_papers_rows_get_the_papers_gradient_bit_for_bit():
    """Rows coded for the paper's loss are unaffected by the other losses computed beside them."""
    import tensorflow as tf

    model = tiny_model(seed=4)
    images, labels = synthetic_images(16, seed=2)
    x, y = tf.constant(images.astype(np.float32)), tf.constant(labels.astype(np.int32))

    def paper_only(x, y):  # the loss before the ladder existed
        with tf.GradientTape() as tape:
            tape.watch(x)
            z = model(x, training=False)
            true = tf.gather(z, y, axis=1, batch_dims=1)
            others = z + tf.one_hot(y, 10, on_value=-np.inf, off_value=0.0, dtype=z.dtype)
            loss = tf.reduce_logsumexp(others, axis=1) - true
        return z, tf.sign(tape.gradient(loss, x))

    z_ref, g_ref = (t.numpy() for t in tf.function(paper_only)(x, y))
    code = np.where(np.arange(16) % 2 == 0, -1, np.where(np.arange(16) % 4 == 1, LOSS_RUNNER_UP, 3)).astype(np.int32)
    z, g = (t.numpy() for t in make_gradient_fn(model)(x, y, tf.constant(code)))
    paper = code == -1
    assert np.array_equal(z, z_ref)
    assert np.array_equal(g[paper], g_ref[paper])
    assert not np.array_equal(g[~paper], g_ref[~paper])  # the other rows did follow another loss


def test_max_linf_is_a_hard_budget():
    model = tiny_model(seed=3)
    images, _ = synthetic_images(48, seed=7)
    labels = labels_the_model_gets_right(model, images, batch_size=16)
    free = attack_arrays(model, images, labels, AttackConfig(batch_size=16))
    budget = 0.02  # 5 levels
    cfg = AttackConfig(batch_size=16, max_linf=budget)
    rec = attack_arrays(model, images, labels, cfg)
    moved = np.abs(rec.adversarial.astype(int) - images.astype(int)).max(axis=(1, 2, 3))
    assert moved.max() <= budget * 255
    assert np.all(rec.linf <= budget + 1e-7)
    assert (free.linf > budget).any(), "the budget must bind for some image"
    # rows not fooled inside the ball are reported as not fooled, never stored outside it
    assert np.all(predict_logits(model, rec.adversarial[rec.fooled], 16).argmax(axis=1) != labels[rec.fooled])


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"max_linf": 0.0}, "max-linf"),
        ({"max_linf": 1.5}, "max-linf"),
        ({"max_linf": 0.001}, "below one pixel level"),
        ({"patience": 0}, "patience"),
        ({"targets": 9}, "targets"),
        ({"path_steps": 0}, "path steps"),
    ],
)
def test_bad_ladder_settings_are_one_line_errors(kwargs, word):
    with pytest.raises(ConfigError) as err:
        AttackConfig(**kwargs)
    assert word in str(err.value) and "\n" not in str(err.value)
