"""The two architectures (Fig. 2 target, EfficientNetB0 source) and safe, shape-checked loading."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from cifar10_fgs.errors import ModelError
from cifar10_fgs.models.inference import predict_logits
from cifar10_fgs.models.networks import build_model, build_source, build_target, check_model, load_model
from cifar10_fgs.recipes import SOURCE_RECIPE, TARGET_RECIPE

from helpers import synthetic_images, tiny_model

# The paper's Fig. 2 (the Keras "simple deep CNN"), layer by layer; its final softmax is folded into
# the loss, so the last layer outputs logits.
FIG2 = [
    ("Conv2D", {"filters": 32, "kernel_size": (3, 3), "padding": "same"}),
    ("Activation", {"activation": "relu"}),
    ("Conv2D", {"filters": 32, "kernel_size": (3, 3), "padding": "valid"}),
    ("Activation", {"activation": "relu"}),
    ("MaxPooling2D", {"pool_size": (2, 2)}),
    ("Dropout", {"rate": 0.25}),
    ("Conv2D", {"filters": 64, "kernel_size": (3, 3), "padding": "same"}),
    ("Activation", {"activation": "relu"}),
    ("Conv2D", {"filters": 64, "kernel_size": (3, 3), "padding": "valid"}),
    ("Activation", {"activation": "relu"}),
    ("MaxPooling2D", {"pool_size": (2, 2)}),
    ("Dropout", {"rate": 0.25}),
    ("Flatten", {}),
    ("Dense", {"units": 512}),
    ("Activation", {"activation": "relu"}),
    ("Dropout", {"rate": 0.5}),
    ("Dense", {"units": 10, "activation": "linear"}),
]


def _conv_params(cin, cout):
    return 3 * 3 * cin * cout + cout


def test_target_is_fig2_with_a_rescaling_input_and_logits():
    model = build_target()
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 10)
    first, *rest = model.layers
    assert type(first).__name__ == "Rescaling"
    assert first.get_config()["scale"] == pytest.approx(1 / 255) and first.get_config()["offset"] == 0.0
    assert [type(layer).__name__ for layer in rest] == [name for name, _ in FIG2]
    for layer, (_, expected) in zip(rest, FIG2):
        config = layer.get_config()
        for key, value in expected.items():
            got = tuple(config[key]) if isinstance(value, tuple) else config[key]
            assert got == value, (layer.name, key, got, value)
    # 32 -> 32 (same) -> 30 -> 15 -> 15 (same) -> 13 -> 6: Flatten sees 6*6*64
    expected_params = [
        _conv_params(3, 32),
        _conv_params(32, 32),
        _conv_params(32, 64),
        _conv_params(64, 64),
        6 * 6 * 64 * 512 + 512,
        512 * 10 + 10,
    ]
    got_params = [layer.count_params() for layer in rest if layer.weights]
    assert got_params == expected_params
    assert model.count_params() == sum(expected_params) == 1_250_858
    # pixels go in as [0, 255]: the first layer maps them to [0, 1]
    x = np.stack([np.zeros((32, 32, 3)), np.full((32, 32, 3), 255.0)]).astype("float32")
    scaled = np.asarray(first(x))
    assert scaled.min() == 0.0 and scaled.max() == pytest.approx(1.0)
    assert build_model(TARGET_RECIPE).count_params() == 1_250_858


def test_source_is_efficientnet_b0_with_ten_logits():
    model = build_source(SOURCE_RECIPE)
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 10)
    names = [layer.name for layer in model.layers]
    blocks = sorted({n.split("_")[0] for n in names if n.startswith("block")})
    assert blocks == [
        "block1a",
        "block2a",
        "block2b",
        "block3a",
        "block3b",
        "block4a",
        "block4b",
        "block4c",
        "block5a",
        "block5b",
        "block5c",
        "block6a",
        "block6b",
        "block6c",
        "block6d",
        "block7a",
    ]
    stem = model.get_layer("stem_conv")
    top = model.get_layer("top_conv")
    assert stem.filters == 32 and top.filters == 1280
    # the network takes [0, 255] pixels: Keras' EfficientNet rescales and normalises inside
    kinds = [type(layer).__name__ for layer in model.layers[:4]]
    assert "Rescaling" in kinds and "Normalization" in kinds
    logits = model.layers[-1]
    assert type(logits).__name__ == "Dense" and logits.units == 10 and logits.get_config()["activation"] == "linear"
    # CIFAR strides (stage 4 at stride 1): the last feature map is 2x2, not 1x1
    assert model.get_layer("top_activation").output.shape[1:3] == (2, 2)
    # EfficientNetB0 without its ImageNet head has 4,049,571 parameters; plus the 1280 -> 10 head
    assert model.count_params() == 4_049_571 + 1280 * 10 + 10
    images, _ = synthetic_images(4, seed=0)
    out = predict_logits(model, images, batch_size=4)
    assert out.shape == (4, 10) and np.all(np.isfinite(out))


# --------------------------------------------------------------------------- loading


def test_load_model_round_trips_a_saved_model(tmp_path):
    model = tiny_model(seed=5)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = load_model(path)
    images, _ = synthetic_images(8, seed=1)
    np.testing.assert_array_equal(predict_logits(loaded, images, 8), predict_logits(model, images, 8))


def _save(model, path):
    model.save(path)
    return path


def _wrong_input(tmp_path):
    import keras

    m = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    return _save(m, tmp_path / "mnist.keras")


def _wrong_output(tmp_path):
    import keras

    m = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(5)])
    return _save(m, tmp_path / "five.keras")


def _text_file(tmp_path):
    path = tmp_path / "notes.keras"
    path.write_text("this is not a model")
    return path


def _zip_not_keras(tmp_path):
    path = tmp_path / "archive.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "a zip, but not a Keras model")
    return path


def _other_suffix(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x80\x02}q\x00.")
    return path


def _folder(tmp_path):
    path = tmp_path / "saved_model"
    path.mkdir()
    (path / "saved_model.pb").write_bytes(b"")
    return path


BAD_MODELS = {
    "missing file": (lambda tmp: tmp / "nope.keras", ["does not exist"]),
    "a folder": (_folder, ["is a folder", "expected a .keras file"]),
    "text named .keras": (_text_file, ["is not a Keras model", "expected"]),
    "zip that is not a model": (_zip_not_keras, ["is not a", "expected"]),
    "other suffix": (_other_suffix, ["is not a .keras file"]),
    "28x28x1 input": (_wrong_input, ["maps (28, 28, 1) to (10,)", "expected a 32x32x3 -> 10"]),
    "5 outputs": (_wrong_output, ["maps (32, 32, 3) to (5,)", "expected a 32x32x3 -> 10"]),
}


@pytest.mark.parametrize("name", list(BAD_MODELS))
def test_load_model_refuses_what_is_not_a_cifar10_classifier(name, tmp_path):
    build, words = BAD_MODELS[name]
    path = build(tmp_path)
    with pytest.raises(ModelError) as err:
        load_model(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    for w in words:
        assert w in message, (w, message)


def test_lambda_layers_are_refused_unless_unsafe(tmp_path):
    import keras

    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Lambda(lambda x: x * 1.0),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    path = _save(model, tmp_path / "lambda.keras")
    with pytest.raises(ModelError) as err:
        load_model(path)
    message = str(err.value)
    assert "Lambda" in message and "--unsafe-model" in message and "\n" not in message
    loaded = load_model(path, unsafe=True)
    images, _ = synthetic_images(3, seed=2)
    np.testing.assert_allclose(predict_logits(loaded, images, 3), predict_logits(model, images, 3), rtol=1e-6)


def test_check_model_accepts_built_models_and_names_shapes():
    import keras

    assert check_model(build_target()) is not None
    any_size = keras.Sequential(
        [keras.Input((None, None, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)]
    )
    assert check_model(any_size) is any_size  # fully convolutional: takes 32x32x3 too
    a, b = keras.Input((32, 32, 3)), keras.Input((32, 32, 3))
    two_inputs = keras.Model([a, b], keras.layers.Dense(10)(keras.layers.Flatten()(keras.layers.Add()([a, b]))))
    with pytest.raises(ModelError, match="expected a 32x32x3 -> 10"):
        check_model(two_inputs, "two inputs")

    gray = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    with pytest.raises(ModelError, match=r"maps \(32, 32, 1\) to \(10,\)"):
        check_model(gray, "gray")
