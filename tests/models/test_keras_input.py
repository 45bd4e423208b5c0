"""Keras models fed by their declared input convention: real tiny models, real TensorFlow graphs and gradients."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cifar10_fgs.attack.gradient import make_gradient_fn
from cifar10_fgs.errors import ConfigError, ModelError
from cifar10_fgs.models.convention import KERAS_CONVENTION, SIDECAR, InputConvention, Layout, Output, parse_declared
from cifar10_fgs.models.inference import predict_logits, softmax
from cifar10_fgs.models.keras_input import LOGITS_LOG, feed, load_keras

from helpers import fed_as_keras_io, logits_twin, softmax_model, synthetic_images, tiny_model

KERAS_IO = InputConvention(Layout.NHWC, 1.0, None, None, Output.PROBABILITIES)  # x / 255 in, softmax out


@pytest.fixture(scope="module")
def images():
    return synthetic_images(16, seed=3)[0]


def test_an_undeclared_model_runs_as_it_is(images):
    model = tiny_model()
    fed = feed(model)
    assert fed.model is model and fed.is_default and fed.record()["logits"] == "the model's outputs"
    assert fed.convention == KERAS_CONVENTION


@pytest.mark.parametrize("end", ["dense", "layer", "hidden"])
def test_a_softmax_model_is_attacked_on_its_logits(end, images):
    model = softmax_model(end=end)
    fed = feed(model, KERAS_IO)
    z = predict_logits(fed.model, images, batch_size=16)
    p = fed_as_keras_io(model, images)
    np.testing.assert_allclose(softmax(z), p, atol=1e-5)  # the same model, fed x / 255
    assert (z.argmax(axis=1) == p.argmax(axis=1)).all()
    if end == "hidden":  # no final softmax to skip: log-probabilities
        assert fed.logits == LOGITS_LOG
        np.testing.assert_allclose(z, np.log(p), atol=1e-4)
    else:
        assert fed.logits.startswith("pre-softmax")
        np.testing.assert_allclose(z, predict_logits(logits_twin(model), images, 16), atol=1e-4)


def test_confident_images_keep_a_gradient_only_before_the_softmax(images):
    """A saturated softmax (p_y == 1 in float32) has a zero gradient: the logits before it do not."""
    model = softmax_model()
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel * 30000, bias])  # over-confident
    p = fed_as_keras_io(model, images)
    saturated = (p > 0).sum(axis=1) == 1  # p_y == 1 and every other probability 0 in float32
    assert saturated.sum() >= len(images) // 2
    labels = p.argmax(axis=1).astype(np.int32)
    as_logits = feed(model, InputConvention(Layout.NHWC, 1.0, None, None, Output.LOGITS))  # probabilities as logits
    _, g_probs = make_gradient_fn(as_logits.model)(images.astype(np.float32), labels)
    _, g_logits = make_gradient_fn(feed(model, KERAS_IO).model)(images.astype(np.float32), labels)
    moves = lambda g: np.abs(np.asarray(g)).reshape(len(images), -1).sum(axis=1) > 0  # noqa: E731
    assert not moves(g_probs)[saturated].any()  # the attack would stand still on every saturated image
    assert moves(g_logits).all()


def test_preprocessing_is_inside_the_graph(images):
    """NCHW, [0, 1], mean/std: the wrapper feeds the network exactly ((x / 255) - mean) / std, transposed."""
    import keras

    keras.utils.set_random_seed(0)
    network = keras.Sequential([keras.Input((3, 32, 32)), keras.layers.Flatten(), keras.layers.Dense(10)])
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    fed = feed(network, InputConvention(Layout.NCHW, 1.0, mean, std, Output.LOGITS))
    x = ((images / 255.0 - np.array(mean)) / np.array(std)).transpose(0, 3, 1, 2).astype(np.float32)
    np.testing.assert_allclose(predict_logits(fed.model, images, 16), network.predict(x, verbose=0), atol=1e-4)
    with pytest.raises(ConfigError, match="takes \\(N, 3, 32, 32\\) but the convention declares layout NHWC"):
        feed(network, InputConvention(Layout.NHWC, 1.0, None, None, Output.LOGITS))


def test_the_sidecar_and_the_options_declare_it(tmp_path, images):
    model = softmax_model()
    model.save(tmp_path / "m.keras")
    (tmp_path / SIDECAR).write_text(json.dumps({"scale": 1, "output": "probabilities"}))
    fed = load_keras(tmp_path / "m.keras")
    assert (
        fed.convention == KERAS_IO and fed.origin["scale"].endswith(SIDECAR) and fed.origin["layout"] == "input shape"
    )
    cli = parse_declared({"scale": "255"}, "the command line")
    with pytest.raises(ConfigError, match="declares scale 1 but the command line declares 255"):
        load_keras(tmp_path / "m.keras", [cli])
    with pytest.raises(ConfigError, match="declares scale 1 but generation.json says 255"):
        load_keras(tmp_path / "m.keras", recorded=KERAS_CONVENTION, record="generation.json")


def test_outputs_declared_probabilities_are_checked(images):
    """A logits model declared to output probabilities (and not ending in a softmax) is refused in one line."""
    with pytest.raises(ModelError, match="outputs are not probabilities .* declare logits"):
        feed(tiny_model(), InputConvention(Layout.NHWC, 255.0, None, None, Output.PROBABILITIES))


def test_a_model_that_is_not_a_10_class_classifier_is_refused():
    import keras

    seven = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(7)])
    for convention in (KERAS_CONVENTION, KERAS_IO):
        with pytest.raises(ModelError, match="to \\(7,\\): expected a 32x32x3 -> 10 CIFAR-10 classifier") as err:
            feed(seven, convention)
        assert "\n" not in str(err.value)
