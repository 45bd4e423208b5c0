"""The two models (both: uint8-range pixels in, 10 logits out), flip averaging, and safe loading with shape checks."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

from cifar10_fgs.data import IMAGE_SHAPE, NUM_CLASSES
from cifar10_fgs.errors import ConfigError, ModelError, one_line
from cifar10_fgs.recipes import Arch, TrainRecipe

log = logging.getLogger(__name__)


def build_source(recipe: TrainRecipe):
    """Keras EfficientNetB0 with a 10-way logit head; optional CIFAR strides (see ``recipes``)."""
    import keras

    # Keras' public API (keras.applications.efficientnet) exports only EfficientNetB0..B7 with ImageNet's fixed
    # strides; the block table and the EfficientNet builder that take other strides are only in keras.src.
    from keras.src.applications import efficientnet as effnet

    blocks = copy.deepcopy(effnet.DEFAULT_BLOCKS_ARGS)
    if recipe.cifar_strides:
        blocks[3]["strides"] = 1  # stage 4 (80 filters): keep 4x4 instead of 2x2 at 32x32 input
    side = recipe.input_resize or IMAGE_SHAPE[0]
    backbone = effnet.EfficientNet(
        1.0,
        1.0,
        224,
        dropout_rate=recipe.dropout_rate,
        drop_connect_rate=recipe.drop_connect_rate,
        blocks_args=blocks,
        name="efficientnetb0",
        include_top=False,
        weights=recipe.weights,
        input_shape=(side, side, 3),
        pooling="avg",
    )
    if recipe.input_resize:  # the model still takes 32x32 pixels; it upsamples inside
        inputs = keras.Input(IMAGE_SHAPE, name="pixels")
        x = backbone(keras.layers.Resizing(side, side, name="upsample")(inputs))
    else:
        inputs, x = backbone.input, backbone.output
    if recipe.dropout_rate:
        x = keras.layers.Dropout(recipe.dropout_rate, name="top_dropout")(x)
    logits = keras.layers.Dense(NUM_CLASSES, name="logits")(x)
    return keras.Model(inputs, logits, name="efficientnetb0_cifar10")


def build_target():
    """The paper's Fig. 2 "simple deep CNN", with its final softmax folded into the loss."""
    import keras
    from keras import layers as L

    def block(filters: int) -> list:
        """Two 3x3 convolutions (the first padded) with ReLU, 2x2 max pooling, dropout 0.25."""
        return [
            L.Conv2D(filters, (3, 3), padding="same"),
            L.Activation("relu"),
            L.Conv2D(filters, (3, 3)),
            L.Activation("relu"),
            L.MaxPooling2D(pool_size=(2, 2)),
            L.Dropout(0.25),
        ]

    return keras.Sequential(
        [
            keras.Input(IMAGE_SHAPE),
            L.Rescaling(1.0 / 255.0, name="rescale"),
            *block(32),
            *block(64),
            L.Flatten(),
            L.Dense(512),
            L.Activation("relu"),
            L.Dropout(0.5),
            L.Dense(NUM_CLASSES, name="logits"),
        ],
        name="simple_deep_cnn",
    )


def build_model(recipe: TrainRecipe):
    """The trainable network of ``recipe`` (never flip-averaged: that wraps it after training)."""

    return build_source(recipe) if recipe.arch == Arch.SOURCE else build_target()


FLIP_AVERAGED = "flip_averaged"  # the name of the wrapper model; its one inner model is the network
FLIP_SUFFIX = (
    "+flip_average"  # architecture(model) of a flip-averaged network, e.g. efficientnetb0_cifar10+flip_average
)
_MIRROR, _MEAN = "mirror", "logits_mean"  # the wrapper's own layers, by which network_of knows it


def flip_averaged(model):
    """``model``'s network wrapped: logits = mean of its logits on the image and on the image mirrored left-right.

    Built from Keras' own layers only, so the file loads in safe mode without this library; the weights
    are shared. The mirror is a fixed 0/1 matrix over the width axis: the forward pass is exact for any
    float32 pixels on a CPU (TF32 matmuls on a GPU round it, and so the gradient). A model that is already
    flip-averaged is wrapped once, not twice. Its ``get_weights()`` begin with the (32, 32) mirror: take
    a network's weights from ``network_of(model)``.
    """
    import keras
    import numpy as np

    network = network_of(model)
    side = IMAGE_SHAPE[1]
    inputs = keras.Input(IMAGE_SHAPE, name="pixels")
    by_width = keras.layers.Permute((1, 3, 2), name="width_last")(inputs)  # (H, C, W)
    mirror = keras.layers.Dense(side, use_bias=False, trainable=False, name=_MIRROR)
    mirrored = keras.layers.Permute((1, 3, 2), name="mirrored")(mirror(by_width))
    mirror.set_weights([np.eye(side, dtype="float32")[::-1]])
    logits = keras.layers.Average(name=_MEAN)([network(inputs), network(mirrored)])
    return keras.Model(inputs, logits, name=FLIP_AVERAGED)


def network_of(model):
    """The network inside a ``flip_averaged`` model, or ``model`` itself (any other model, whatever its name)."""
    layers = getattr(model, "layers", None) or []
    inner = [layer for layer in layers if hasattr(layer, "layers")]
    wrapper = getattr(model, "name", None) == FLIP_AVERAGED and {_MIRROR, _MEAN} <= {x.name for x in layers}
    if not wrapper or len(inner) != 1:
        return model
    return inner[0]


def architecture(model) -> str:
    """The name manifests and results record for ``model``: its network's name, plus ``FLIP_SUFFIX`` if wrapped."""
    network = network_of(model)
    return str(getattr(network, "name", "")) + (FLIP_SUFFIX if network is not model else "")


def check_model(model, where: str = "model"):
    """Raise ModelError unless ``model`` maps (None, 32, 32, 3) pixels to (None, 10) outputs (one per class)."""
    try:
        in_shape = tuple(model.input_shape)
        out_shape = tuple(model.output_shape)
    except (AttributeError, ValueError, TypeError):
        raise ModelError(f"{where} has no single input and output: expected a 32x32x3 -> 10 classifier") from None
    fits = len(in_shape) == 4 and all(d is None or d == want for d, want in zip(in_shape[1:], IMAGE_SHAPE))
    if not fits or out_shape[1:] != (NUM_CLASSES,):  # None: any size, e.g. a fully convolutional model
        raise ModelError(
            f"{where} maps {in_shape[1:]} to {out_shape[1:]}: expected a 32x32x3 -> 10 CIFAR-10 classifier "
            "(one output per class)"
        )
    return model


def check_keras_path(out: str | Path) -> Path:
    """A path a model may be saved to (it ends in ``.keras``), else a one-line ConfigError."""
    out = Path(out)
    if out.suffix != ".keras":
        raise ConfigError(f"model path {out} must end in .keras: pass e.g. --out {out.with_suffix('.keras')}")
    return out


def load_model(path: str | Path, *, unsafe: bool = False):
    """Load a ``.keras`` (or legacy ``.h5``) file in Keras safe mode (no Lambda code) and check its shapes.

    ``unsafe=True`` allows Lambda layers, i.e. running Python code stored in the file. The model is checked as it
    is: to feed it by a declared input convention, load it with ``models.keras_input.load_keras``.
    """
    return check_model(read_keras(path, unsafe=unsafe), str(path))


def read_keras(path: str | Path, *, unsafe: bool = False):
    """The Keras model in ``path``, loaded as :func:`load_model` loads it, its shapes not yet checked."""
    import zipfile

    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path} is a folder (a SavedModel?): expected a .keras file saved by Keras 3")
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist: train one with `cifar10-fgs train` or pass a .keras path")
    if path.suffix.lower() == ".onnx":
        raise ModelError(
            f"{path} is an ONNX model: this command needs a Keras model (.keras) to take gradients or train; "
            "ONNX models can be scored with `evaluate transfer` and `evaluate gaussian`"
        )
    if path.suffix.lower() not in (".keras", ".h5", ".hdf5"):
        raise ModelError(f"{path} is not a .keras file: expected a model saved by Keras 3 as MODEL.keras")
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        raise ModelError(
            f"{path} is not a Keras model (not a .keras zip archive): expected a file saved by model.save()"
        )
    return keras_load(path, str(path), unsafe, "expected a .keras file saved by Keras 3")


def keras_load(path: str | Path, name: str, unsafe: bool, expected: str):
    """``keras.saving.load_model(path)`` (a file or a model folder), in safe mode unless ``unsafe``; what goes
    wrong is a one-line ModelError about ``name`` ending in ``expected`` (what a loadable model is)."""
    import keras

    try:
        return keras.saving.load_model(str(path), compile=False, safe_mode=not unsafe)
    except ValueError as exc:
        if "lambda" in str(exc).lower() or "safe_mode" in str(exc):
            raise ModelError(
                f"{name} contains a Lambda layer (arbitrary code): refused in safe mode; pass --unsafe-model "
                "only if you trust it"
            ) from None
        raise ModelError(f"{name} is not a loadable Keras model ({one_line(exc)}): {expected}") from None
    except Exception as exc:  # noqa: BLE001 - zip/h5 and deserialisation errors of every kind
        raise ModelError(f"{name} is not a Keras model ({one_line(exc)}): {expected}") from None
