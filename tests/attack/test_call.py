"""``cifar10_fgs.attack``: the one-call attack on a batch, with real tiny Keras models (in memory and saved)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cifar10_fgs
from cifar10_fgs.attack.fgs import AttackRecord
from cifar10_fgs.attack.ladder import Slots
from cifar10_fgs.config import AttackConfig
from cifar10_fgs.errors import ConfigError, ModelError
from cifar10_fgs.models.convention import SIDECAR, InputConvention, Layout, Output

from helpers import fed_as_keras_io, softmax_model, synthetic_images, tiny_model

KERAS_IO = InputConvention(Layout.NHWC, 1.0, None, None, Output.PROBABILITIES)


@pytest.fixture(scope="module")
def batch():
    """A [0, 1]-input softmax model, 24 images and the labels it predicts (but for the first 3, shifted by one)."""
    model = softmax_model(seed=2)
    images, _ = synthetic_images(24, seed=5)
    labels = fed_as_keras_io(model, images).argmax(axis=1)
    labels[:3] = (labels[:3] + 1) % 10
    return model, images, labels


def test_one_call_fools_a_softmax_model_fed_as_it_expects(batch):
    model, images, labels = batch
    rec = cifar10_fgs.attack(model, images, labels, convention=KERAS_IO, max_iterations=100)
    assert isinstance(rec, AttackRecord) and len(rec) == len(images)
    assert rec.fooled.all() and (rec.index == np.arange(len(images))).all()  # input order
    assert rec.adversarial.dtype == np.uint8 and rec.adversarial.shape == images.shape  # levels in [0, 255]
    assert (fed_as_keras_io(model, rec.adversarial).argmax(axis=1) != labels).all()  # as keras.io feeds it
    unchanged = rec.iterations == 0
    assert unchanged[:3].all() and (rec.adversarial[unchanged] == images[unchanged]).all()  # 0 steps: no change
    assert (rec.linf <= 0.01 * rec.iterations + 0.5 / 255 + 1e-6).all()
    diff = np.abs(rec.adversarial.astype(int) - images.astype(int)).reshape(len(images), -1).max(axis=1)
    np.testing.assert_allclose(rec.linf, diff / 255, atol=1e-6)


def test_a_saved_model_takes_its_sidecar_and_settings_are_attack_config_fields(batch, tmp_path):
    model, images, labels = batch
    model.save(tmp_path / "m.keras")
    (tmp_path / SIDECAR).write_text(json.dumps({"scale": 1, "output": "probabilities"}))
    saved = cifar10_fgs.attack(tmp_path / "m.keras", images, labels, max_iterations=100, step=0.02)
    in_memory = cifar10_fgs.attack(model, images, labels, convention=KERAS_IO, max_iterations=100, step=0.02)
    assert np.array_equal(saved.adversarial, in_memory.adversarial) and saved.fooled.all()
    assert (saved.linf <= 0.02 * saved.iterations + 0.5 / 255 + 1e-6).all()
    with pytest.raises(ConfigError, match="declares scale 1 but the convention argument says 255"):
        cifar10_fgs.attack(tmp_path / "m.keras", images, labels, convention=InputConvention(Layout.NHWC, 255.0))


def test_a_convention_given_as_the_sidecar_fields_follows_the_keras_defaults(batch, tmp_path):
    """``convention={"scale": 1, "output": "probabilities"}`` declares what the sidecar would: the layout comes from
    the model's input shape and the rest from this project's convention, so it equals the complete convention."""
    model, images, labels = batch
    fields = {"scale": 1, "output": "probabilities"}
    as_fields = cifar10_fgs.attack(model, images, labels, convention=fields, max_iterations=100)
    complete = cifar10_fgs.attack(model, images, labels, convention=KERAS_IO, max_iterations=100)
    assert np.array_equal(as_fields.adversarial, complete.adversarial) and as_fields.fooled.all()
    model.save(tmp_path / "m.keras")
    saved = cifar10_fgs.attack(tmp_path / "m.keras", images, labels, convention=fields, max_iterations=100)
    assert np.array_equal(saved.adversarial, complete.adversarial)
    with pytest.raises(ConfigError, match="the convention argument: unknown key 'scal'"):
        cifar10_fgs.attack(model, images, labels, convention={"scal": 1})


def test_bad_calls_are_one_line_errors(batch, tmp_path):
    import keras

    model, images, labels = batch
    seven = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(7)])
    cases = [
        ({"model": model, "pixel_max": 1.0}, ConfigError, "unknown setting 'pixel_max': expected some of step, "),
        ({"model": model, "stepp": 0.01}, ConfigError, "unknown setting 'stepp'"),
        ({"model": model, "step": 0.0}, ConfigError, "step 0.0 is out of range"),
        ({"model": tmp_path / "m.onnx"}, ModelError, "is an ONNX model, which has no gradients here"),
        ({"model": seven}, ModelError, "maps (32, 32, 3) to (7,): expected a 32x32x3 -> 10 CIFAR-10 classifier"),
        ({"model": "nowhere.keras"}, ModelError, "does not exist"),
        ({"model": model, "images": images.astype(np.float32)}, ConfigError, "expected uint8 (N, 32, 32, 3)"),
        ({"model": model, "labels": labels + 10}, ConfigError, "expected classes 0..9"),
        ({"model": model, "labels": labels[:5]}, ConfigError, "expected 24 integer classes"),
        ({"model": model, "convention": "NHWC"}, ConfigError, "expected a mapping of layout"),
    ]
    for kwargs, kind, needle in cases:
        args = {"images": images, "labels": labels, **kwargs}
        with pytest.raises(kind) as err:
            cifar10_fgs.attack(args.pop("model"), args.pop("images"), args.pop("labels"), **args)
        assert needle in str(err.value) and "\n" not in str(err.value), (kwargs, str(err.value))


def test_an_undeclared_model_is_attacked_as_generate_attacks_it(batch):
    """No convention: this project's (NHWC, [0, 255], logits), the same result as the attack's own loop."""
    from cifar10_fgs.attack import attack_arrays

    _, images, _ = batch
    model = tiny_model()
    labels = np.argmax(model.predict(images.astype(np.float32), verbose=0), axis=1)
    rec = cifar10_fgs.attack(model, images, labels, batch_size=8)
    ref = attack_arrays(model, images, labels, AttackConfig(batch_size=8))
    assert np.array_equal(rec.adversarial, ref.adversarial) and np.array_equal(rec.iterations, ref.iterations)


def test_the_stall_ladder_is_as_wide_as_the_model_outputs():
    import keras

    from cifar10_fgs.attack import attack_arrays

    keras.utils.set_random_seed(0)
    seven = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten()])
    seven.add(keras.layers.Dense(7))
    images, _ = synthetic_images(8, seed=1)
    labels = np.argmax(seven.predict(images.astype(np.float32), verbose=0), axis=1)
    cfg = AttackConfig(batch_size=8, max_iterations=12, patience=1, path_steps=2, targets=3)
    rec = attack_arrays(seven, images, labels, cfg)  # climbs to the targeted rungs: was a broadcast error
    assert len(rec) == 8 and set(rec.adversarial_prediction[rec.fooled]) <= set(range(7))
    assert Slots(4, (32, 32, 3), cfg, classes=7).targets.shape == (4, 6)
