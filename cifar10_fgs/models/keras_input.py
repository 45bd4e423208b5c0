"""A Keras model fed by its declared input convention: one TensorFlow graph from uint8 levels to logits.

Everything that runs a Keras model (the attack and its gradient, ``generate``'s source check, ``validate``,
``evaluate``, ``cifar10_fgs.attack``) runs :attr:`FedModel.model`: NHWC float32 pixels in uint8 levels
[0, 255] in, logits out. For this project's convention (``KERAS_CONVENTION``: NHWC, [0, 255], logits,
what a Keras model with nothing declared keeps) that is the loaded model itself, the very same graph, so
shards made with an undeclared model stay byte-identical. For any other convention it is a functional
``keras.Model`` around the loaded one, so the gradient goes through the declared preprocessing::

    pixels * (scale / 255)  ->  (x - mean) / std per channel  ->  NCHW transpose  ->  the model  ->  logits

Logits of a model declared to output ``probabilities`` (softmax) are taken from before its final softmax
where it ends in one: a final ``Softmax`` or ``Activation("softmax")`` layer is skipped (its input is
the logits), and a final ``Dense`` or ``Conv`` layer with ``activation="softmax"`` is replaced by a linear
copy of itself on the same weights. A saturated softmax (the other probabilities underflowing to 0) has a zero
gradient, which would stall the attack on every image where it saturates. A model that does not end in a
softmax layer gets ``log(max(p, tiny))`` (its outputs are checked to be probabilities first).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifar10_fgs.config import PIXEL_MAX
from cifar10_fgs.data import IMAGE_SHAPE
from cifar10_fgs.errors import ModelError
from cifar10_fgs.models.convention import (
    KERAS_CONVENTION,
    OPTION,
    SIDECAR,
    Declared,
    InputConvention,
    Layout,
    Output,
    check_probabilities,
    check_recorded,
    complete,
    layout_of,
    merge,
    read_sidecar,
    recorded_origin,
)
from cifar10_fgs.models.inference import predict_logits
from cifar10_fgs.models.networks import check_model, read_keras

log = logging.getLogger(__name__)

LOGITS_OUTPUTS = "the model's outputs"  # FedModel.logits: how the logits were taken
LOGITS_LOG = "log(max(p, tiny)) of the model's probabilities"
_CONV = ("Conv1D", "Conv2D", "Conv3D", "Dense")  # final layers whose softmax activation can be dropped


@dataclass(frozen=True, eq=False)
class FedModel:
    """A loaded Keras model and the graph that feeds it as declared (uint8 levels NHWC in, logits out)."""

    network: object  # the model as loaded (or as given)
    model: object  # what runs: ``network`` itself for KERAS_CONVENTION, else the functional wrapper
    convention: InputConvention
    origin: dict  # field -> where it was declared: the command line, a sidecar, "input shape", "default", a record
    logits: str = LOGITS_OUTPUTS  # how the logits are taken (LOGITS_OUTPUTS, pre-softmax, LOGITS_LOG)

    @property
    def is_default(self) -> bool:
        """True for this project's convention: ``model`` is the loaded model itself."""
        return self.convention == KERAS_CONVENTION

    def record(self) -> dict:
        """The convention as manifests and results record it: its fields, where each came from, the logits."""
        return {**self.convention.to_json(), "declared_by": recorded_origin(self.origin), "logits": self.logits}


def keras_convention(network, declarations: Sequence[Declared | None], where: str) -> tuple[InputConvention, dict]:
    """The convention ``declarations`` give ``network`` (fields declared nowhere: ``KERAS_CONVENTION``'s, the
    layout read from its input shape when unambiguous) and where each field came from."""
    values, origin = merge(declarations, where)
    shape = _input_shape(network, where)
    try:
        layout, layout_origin = layout_of(
            shape, values.pop("layout", None), origin.get("layout", ""), where, default=KERAS_CONVENTION.layout
        )
    except ModelError:
        check_model(network, where)  # fits no layout: refused as a model of the wrong shape, input and output named
        raise
    return complete(values, origin, layout, layout_origin, default=KERAS_CONVENTION)


def feed(network, convention: InputConvention = KERAS_CONVENTION, origin: dict | None = None, where: str = "model"):
    """``network`` fed by ``convention`` (a :class:`FedModel`), checked to map 32x32x3 images to 10 logits."""
    origin = origin or dict.fromkeys(KERAS_CONVENTION.to_json(), "default")
    if convention == KERAS_CONVENTION:
        if _softmax_end(network) is not None:
            log.warning(
                "%s ends in a softmax but is declared to output logits: declare %s probabilities (or "
                '"output": "probabilities" in %s) to attack its logits',
                where,
                OPTION["output"],
                SIDECAR,
            )
        return FedModel(check_model(network, where), network, convention, origin)
    layout_of(_input_shape(network, where), convention.layout, "the convention", where)  # the layout fits
    model, logits = _fed_graph(network, convention)
    fed = FedModel(network, check_model(model, where), convention, origin, logits)
    if logits == LOGITS_LOG:
        _check_probabilities(fed, where)
    log.info("%s: fed as %s; logits: %s", where, convention.describe(), logits)
    return fed


def load_keras(
    path: str | Path,
    declarations: Sequence[Declared | None] = (),
    *,
    unsafe: bool = False,
    recorded: InputConvention | None = None,
    record: str = "the dataset",
) -> FedModel:
    """The ``.keras`` file ``path`` fed as declared by its sidecar (``cifar10-fgs.json`` beside it) and
    ``declarations`` (e.g. the command line); refused in one line when they disagree.

    ``recorded``: the convention the model ran with when ``record`` (e.g. generation.json) was made. It is used,
    and every field the sidecar or ``declarations`` declare must equal it.
    """
    path = Path(path)
    network = read_keras(path, unsafe=unsafe)
    return feed_declared(network, [read_sidecar(path.parent), *declarations], str(path), recorded, record)


def feed_declared(
    network,
    declarations: Sequence[Declared | None],
    where: str,
    recorded: InputConvention | None = None,
    record: str = "the dataset",
) -> FedModel:
    """``network`` fed by its ``declarations`` (or by ``recorded``, which they must agree with; see ``load_keras``)."""
    if recorded is None:
        convention, origin = keras_convention(network, declarations, where)
    else:
        check_recorded(recorded, declarations, where, record)
        convention, origin = recorded, dict.fromkeys(recorded.to_json(), record)
    return feed(network, convention, origin, where)


def _input_shape(network, where: str) -> tuple:
    try:
        return tuple(network.input_shape)
    except (AttributeError, ValueError, TypeError):
        raise ModelError(f"{where} has no single input and output: expected a 32x32x3 -> 10 classifier") from None


def _fed_graph(network, c: InputConvention):
    """(functional model: uint8 levels NHWC -> the declared preprocessing -> ``network`` -> logits, how logits)."""
    import keras

    layers = keras.layers
    pixels = keras.Input(IMAGE_SHAPE, name="pixels")
    x = pixels
    if c.scale != PIXEL_MAX:
        x = layers.Rescaling(c.scale / PIXEL_MAX, name="to_declared_range")(x)
    if c.mean is not None:
        std = np.asarray(c.std, np.float32)
        x = layers.Rescaling(1.0 / std, offset=-np.asarray(c.mean, np.float32) / std, name="normalise")(x)
    if c.layout is Layout.NCHW:
        x = layers.Permute((3, 1, 2), name="to_nchw")(x)
    if c.output is Output.LOGITS:
        z, how = network(x), LOGITS_OUTPUTS
    else:
        z, how = _logits_of_probabilities(network, x)
    name = f"{getattr(network, 'name', 'model')}_as_declared"
    return keras.Model(pixels, z, name=name), how


def _softmax_end(network):
    """(last layer, kind) when ``network``'s one output is its last layer's and that layer ends in a softmax:
    kind "layer" (a Softmax or Activation("softmax") layer) or "activation" (Dense/Conv with softmax); else None."""
    import keras

    try:
        last = network.layers[-1]
        if len(network.outputs) != 1 or network.outputs[0] is not last.output:
            return None
    except (AttributeError, IndexError, ValueError, TypeError):
        return None
    activation = getattr(last, "activation", None)
    is_softmax = getattr(activation, "__name__", None) == "softmax"
    if isinstance(last, keras.layers.Softmax) and last.get_config().get("axis", -1) in (-1, [-1]):
        return last, "layer"
    if isinstance(last, keras.layers.Activation) and is_softmax:
        return last, "layer"
    if type(last).__name__ in _CONV and is_softmax:
        return last, "activation"
    return None


def _logits_of_probabilities(network, x):
    """(logits of ``network`` on ``x``, how): before its final softmax where it ends in one, else log(p)."""
    import keras

    end = _softmax_end(network)
    if end is not None:
        last, kind = end
        try:
            head = keras.Model(network.inputs, last.input, name=f"{network.name}_pre_softmax")
        except (AttributeError, ValueError, TypeError):  # a layer used twice: no single input tensor
            head = None
        if head is not None and kind == "layer":
            return head(x), f"pre-softmax: the input of the final {type(last).__name__} layer {last.name!r}"
        if head is not None:
            linear = type(last).from_config(
                {**last.get_config(), "activation": "linear", "name": f"{last.name}_logits"}
            )
            z = linear(head(x))
            linear.set_weights(last.get_weights())
            return z, f"pre-softmax: layer {last.name!r} without its softmax activation (same weights)"
    return _log_probabilities_class()(name="log_probabilities")(network(x)), LOGITS_LOG


@functools.cache
def _log_probabilities_class():
    """The layer class ``log(max(p, tiny))``, defined on first use (Keras is imported lazily)."""
    import keras

    class LogProbabilities(keras.layers.Layer):
        """Logits of softmax outputs: ``log(max(p, tiny))`` (same argmax; their softmax is ``p``)."""

        def call(self, p):
            return keras.ops.log(keras.ops.maximum(p, float(np.finfo(np.float32).tiny)))

    return LogProbabilities


def _check_probabilities(fed: FedModel, where: str) -> None:
    """A one-line ModelError unless the model's outputs on a few seeded images are probabilities (rows sum to 1)."""
    probe = np.random.default_rng(0).integers(0, 256, (4, *IMAGE_SHAPE)).astype(np.uint8)
    check_probabilities(np.exp(predict_logits(fed.model, probe, batch_size=len(probe)).astype(np.float64)), where)
