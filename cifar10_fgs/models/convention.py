"""The input convention of a model: how it wants its pixels and what it returns. Declared, never guessed.

Every model, Keras or ONNX, in every role (attacked by ``generate`` and ``cifar10_fgs.attack``, checked by
``validate``, scored by ``evaluate``) is fed by an :class:`InputConvention`. Each field may be declared

* in ``cifar10-fgs.json`` (:data:`SIDECAR`) beside the ``.keras`` or ``.onnx`` file, or at the root of its hub
  repo, e.g. ``{"layout": "NCHW", "scale": 1, "mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435,
  0.2616], "output": "logits"}`` (every key optional), and
* on the command line (``--input-layout``, ``--input-scale``, ``--input-mean``, ``--input-std``, ``--model-output``),
  which applies to every model the command loads from ``--model`` (and to ``generate``'s and ``validate``'s
  ``--source-model``).

A field declared in both places must agree: a disagreement is refused before any work starts (neither
silently wins). A field declared nowhere takes the framework's default. For a Keras model that is this
project's convention (``KERAS_CONVENTION``: NHWC pixels in [0, 255], logits out), so every model and dataset
made before conventions applied to Keras works unchanged; for an ONNX model it is PyTorch's and
RobustBench's (float32 NCHW RGB pixels in [0, 1], normalisation inside the model, logits out). The layout,
when undeclared, is read from the model's input shape when that is unambiguous, ``(N, 3, 32, 32)`` or
``(N, 32, 32, 3)``.

The model receives ``((pixels / 255 * scale) - mean) / std`` per channel, in float32, where ``pixels`` are
the stored uint8 levels: ``mean`` and ``std`` are in the units of the scaled pixels. With ``output`` =
``probabilities`` the model's outputs are softmax probabilities; logits are taken from before the final
softmax where a Keras model ends in one (``models.keras_input``), else as ``log(p)`` (same argmax and softmax).
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from cifar10_fgs.data import IMAGE_SHAPE
from cifar10_fgs.errors import ConfigError, ModelError, one_line

SIDECAR = "cifar10-fgs.json"  # beside a .keras or .onnx file, or at the root of its hf:// repo
COMMAND_LINE = "the command line"  # where options given to a command are declared
PIXEL_SCALES = (1.0, 255.0)  # the model's pixel range: [0, 1] or [0, 255]
CHANNELS = 3
PROBABILITY_TOLERANCE = 1e-3  # |row sum - 1| allowed for outputs declared to be probabilities


class Layout(str, enum.Enum):
    NCHW = "NCHW"  # PyTorch: (batch, channel, height, width)
    NHWC = "NHWC"  # TensorFlow / Keras: (batch, height, width, channel)


class Output(str, enum.Enum):
    LOGITS = "logits"  # unnormalised scores (log-softmax outputs count as logits too)
    PROBABILITIES = "probabilities"  # softmax outputs: rows of non-negative numbers summing to 1


@dataclass(frozen=True)
class InputConvention:
    """What a model is fed and what it returns (see the module docstring for the formula)."""

    layout: Layout = Layout.NCHW
    scale: float = 1.0
    mean: tuple[float, ...] | None = None  # per channel (R, G, B), in scaled-pixel units
    std: tuple[float, ...] | None = None
    output: Output = Output.LOGITS

    def to_json(self) -> dict:
        return {
            "layout": self.layout.value,
            "scale": self.scale,
            "mean": list(self.mean) if self.mean is not None else None,
            "std": list(self.std) if self.std is not None else None,
            "output": self.output.value,
        }

    @classmethod
    def from_json(cls, obj, where: str, default: InputConvention | None = None) -> InputConvention:
        """The convention ``obj`` (as ``to_json`` writes it) records; missing fields from ``default``."""
        if not isinstance(obj, dict):
            raise ConfigError(f"{where} holds {type(obj).__name__}, not an object: expected {SIDECAR}'s keys")
        values = parse_declared(obj, where).values()
        return InputConvention(**{**_fields(default or cls()), **values})

    def describe(self) -> str:
        """One line for people, e.g. ``NHWC, pixels in [0, 255], logits out``."""
        norm = f", then (x - mean {_text(self.mean)}) / std {_text(self.std)}" if self.mean is not None else ""
        return f"{self.layout.value}, pixels in [0, {self.scale:g}]{norm}, {self.output.value} out"


def _fields(c: InputConvention) -> dict:
    return {f.name: getattr(c, f.name) for f in fields(c)}


KERAS_CONVENTION = InputConvention(Layout.NHWC, 255.0, None, None, Output.LOGITS)  # this project's models
ONNX_CONVENTION = InputConvention()  # PyTorch's and RobustBench's: NCHW, [0, 1], logits
SHAPES = {Layout.NCHW: (3, *IMAGE_SHAPE[:2]), Layout.NHWC: IMAGE_SHAPE}  # one image, per layout

OPTION = {  # the command-line option of each field, for messages
    "layout": "--input-layout",
    "scale": "--input-scale",
    "mean": "--input-mean",
    "std": "--input-std",
    "output": "--model-output",
}


@dataclass(frozen=True)
class Declared:
    """Fields declared in one place (``where``: "the command line" or a sidecar's path); None = not declared."""

    where: str
    layout: Layout | None = None
    scale: float | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    output: Output | None = None

    def values(self) -> dict:
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "where" and getattr(self, f.name) is not None
        }

    def __bool__(self) -> bool:
        return bool(self.values())


def _label(field: str, where: str) -> str:
    """How a message names ``field``: its option on the command line, ``where: field`` elsewhere."""
    return OPTION[field] if where == COMMAND_LINE else f"{where}: {field}"


def _choice(kind: type[enum.Enum], value, field: str, where: str):
    try:
        return kind(str(value).upper() if kind is Layout else str(value).lower())
    except ValueError:
        known = " or ".join(x.value for x in kind)
        raise ConfigError(f"{_label(field, where)} {value!r} is unknown: expected {known}") from None


def _triple(value, field: str, where: str) -> tuple[float, ...]:
    if isinstance(value, str):
        value = [v for v in value.replace(" ", ",").split(",") if v]
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        out = ()
    if len(out) != CHANNELS or not all(math.isfinite(v) for v in out):
        raise ConfigError(f"{_label(field, where)} {value!r} is invalid: expected 3 numbers, one per channel (R, G, B)")
    if field == "std" and min(out) <= 0:
        raise ConfigError(f"{_label(field, where)} {list(out)} is invalid: expected 3 positive numbers")
    return out


def _scale(value, where: str) -> float:
    try:
        scale = float(value)
    except (TypeError, ValueError):
        scale = float("nan")
    if scale not in PIXEL_SCALES or isinstance(value, bool):
        raise ConfigError(
            f"{_label('scale', where)} {value!r} is invalid: expected 1 (pixels in [0, 1]) or 255 ([0, 255])"
        )
    return scale


def parse_declared(data: dict, where: str) -> Declared:
    """The declared fields of ``data`` (sidecar JSON, or the options' values; None = not given), checked."""
    unknown = sorted(set(data) - set(OPTION))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}: expected only {', '.join(OPTION)}")
    given = {k: v for k, v in data.items() if v is not None}
    return Declared(
        where,
        layout=_choice(Layout, given["layout"], "layout", where) if "layout" in given else None,
        scale=_scale(given["scale"], where) if "scale" in given else None,
        mean=_triple(given["mean"], "mean", where) if "mean" in given else None,
        std=_triple(given["std"], "std", where) if "std" in given else None,
        output=_choice(Output, given["output"], "output", where) if "output" in given else None,
    )


def read_sidecar(folder: str | Path) -> Declared | None:
    """``folder/cifar10-fgs.json`` parsed, or None when there is none."""
    path = Path(folder) / SIDECAR
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{path} is not readable JSON ({one_line(exc)}): fix it or remove it") from None
    if not isinstance(data, dict):
        raise ModelError(f'{path} holds {type(data).__name__}, not an object: expected e.g. {{"scale": 255}}')
    return parse_declared(data, str(path))


def merge(declarations: Sequence[Declared | None], model: str) -> tuple[dict, dict]:
    """(field -> value, field -> where) over ``declarations``; ConfigError when two places disagree on a field."""
    values: dict = {}
    origin: dict = {}
    for d in declarations:
        if not d:
            continue
        for name, value in d.values().items():
            if name in values and values[name] != value:
                raise ConfigError(
                    f"{model}: {origin[name]} declares {name} {_text(values[name])} but {d.where} declares "
                    f"{_text(value)}: make them agree (drop {OPTION[name]} or fix {SIDECAR})"
                )
            values.setdefault(name, value)
            origin.setdefault(name, d.where)
    if ("mean" in values) != ("std" in values):
        given, missing = ("mean", "std") if "mean" in values else ("std", "mean")
        raise ConfigError(
            f"{model}: {given} is declared without {missing}: declare both ({OPTION[missing]}) or neither"
        )
    return values, origin


def _text(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return "[" + ", ".join(f"{v:g}" for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def recorded_origin(origin: dict) -> dict:
    """``origin`` as files record it: a sidecar by its file name, never the path of the machine it was read on."""
    return {field: Path(where).name if where.endswith(SIDECAR) else where for field, where in origin.items()}


def complete(
    values: dict, origin: dict, layout: Layout, layout_origin: str, default: InputConvention = ONNX_CONVENTION
) -> tuple[InputConvention, dict]:
    """The full convention: declared ``values``, the given ``layout``, ``default``'s for the rest; and every field's
    origin."""
    convention = InputConvention(**{**_fields(default), **values, "layout": layout})
    where = {f.name: origin.get(f.name, "default") for f in fields(InputConvention)}
    where["layout"] = layout_origin
    return convention, where


def shape_text(shape) -> str:
    """A model's input or output shape for messages, the batch dimension as N: ``(N, 3, 32, 32)``."""
    return (
        "("
        + ", ".join(str(d) if isinstance(d, int) else "N" if i == 0 else str(d or "?") for i, d in enumerate(shape))
        + ")"
    )


def layout_of(
    shape, declared: Layout | None, where: str, model: str, default: Layout = Layout.NCHW
) -> tuple[Layout, str]:
    """The layout (declared, else read from the input ``shape`` when unambiguous, else ``default``) and its origin.

    ``shape`` is the model's input shape with its batch dimension (unknown dimensions: None or a name).
    """
    dims = list(shape[1:]) if len(shape) == 4 else None
    fits = {
        lay: dims is not None and all(not isinstance(d, int) or d == want for d, want in zip(dims, SHAPES[lay]))
        for lay in Layout
    }
    if not any(fits.values()):
        raise ModelError(
            f"{model} takes input of shape {shape_text(shape)}: expected a batch of 32x32x3 images, "
            "(N, 3, 32, 32) or (N, 32, 32, 3)"
        )
    if declared is not None:
        if not fits[declared]:
            other = next(lay for lay in Layout if fits[lay]).value
            raise ConfigError(
                f"{model} takes {shape_text(shape)} but {where} declares layout {declared.value}: declare {other}"
            )
        return declared, where
    if all(fits.values()):
        return default, "default"
    return next(lay for lay in Layout if fits[lay]), "input shape"


def check_probabilities(p: np.ndarray, where: str) -> None:
    """A one-line ModelError unless the rows of ``p``, outputs of ``where`` declared to be probabilities, are
    non-negative and sum to 1 (within ``PROBABILITY_TOLERANCE``)."""
    sums = p.sum(axis=1)
    worst = float(sums[np.argmax(np.abs(sums - 1))])
    if p.min() < 0 or abs(worst - 1) > PROBABILITY_TOLERANCE:
        raise ModelError(
            f"{where}'s outputs are not probabilities (a row sums to {worst:.4g}, min {p.min():.4g}): "
            f'declare logits ({OPTION["output"]} logits, or "output": "logits" in {SIDECAR})'
        )


def check_recorded(recorded: InputConvention, declarations: Sequence[Declared | None], model: str, record: str) -> None:
    """A one-line ConfigError if a field declared in ``declarations`` (options, a sidecar) differs from ``recorded``
    (the convention ``record`` says the model runs with, e.g. generation.json); fields declared nowhere follow it."""
    values, origin = merge(declarations, model)
    for name, value in values.items():
        if value != getattr(recorded, name):
            raise ConfigError(
                f"{model}: {origin[name]} declares {name} {_text(value)} but {record} says "
                f"{_text(getattr(recorded, name))}: make them agree (drop {OPTION[name]} or fix {SIDECAR})"
            )
