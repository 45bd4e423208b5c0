"""ONNX classifiers run forward through ``onnxruntime``: a model from any framework, scored on the dataset.

Needs the optional extra: ``pip install "cifar10-fgs[onnx]"`` (``onnx`` reads the file's opset, producer
and parameters; ``onnxruntime`` runs it). The CUDA provider is used when onnxruntime offers it and it
starts on a GPU, else the CPU provider; :attr:`OnnxClassifier.provider` says which ran. How pixels are
fed is an :class:`~cifar10_fgs.models.convention.InputConvention`, declared (see ``convention``).
No TensorFlow is loaded on this path.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cifar10_fgs.config import NUM_LOGITS, PIXEL_MAX
from cifar10_fgs.data import IMAGE_SHAPE
from cifar10_fgs.errors import ConfigError, ModelError, one_line
from cifar10_fgs.models.convention import (
    OPTION,
    Declared,
    InputConvention,
    Layout,
    Output,
    check_probabilities,
    complete,
    layout_of,
    merge,
    read_sidecar,
    recorded_origin,
    shape_text,
)
from cifar10_fgs.provenance import sha256_bytes, sha256_file

log = logging.getLogger(__name__)

EXTRA = 'pip install "cifar10-fgs[onnx]"'
SUFFIX = ".onnx"
CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"
_FLOATS = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}


def import_runtime(path: Path):
    """(onnx, onnxruntime) to run ``path``, or a one-line ConfigError naming the extra that installs them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        missing = getattr(exc, "name", None) or "onnxruntime"
        raise ConfigError(
            f"{path} is an ONNX model, which needs onnx and onnxruntime, and {missing} is not installed "
            f"({one_line(exc)}): {EXTRA}"
        ) from None
    return onnx, onnxruntime


@dataclass(frozen=True, eq=False)
class OnnxClassifier:
    """An ONNX CIFAR-10 classifier: uint8 NHWC images in, logits out (``predict_logits``), whatever its convention."""

    path: str
    sha256: str  # of the file; with external data (torch's model.onnx.data), over "name sha256" of every file
    session: Any  # onnxruntime.InferenceSession (onnxruntime ships no type information)
    input_name: str
    output_name: str  # the first output: the class scores
    input_dtype: type
    fixed_batch: int | None  # the model's batch dimension when the file fixes it (then every call uses it)
    convention: InputConvention
    origin: dict  # field -> where it was declared: the command line, a sidecar, "input shape" or "default"
    provider: str  # the onnxruntime execution provider that runs it
    architecture: str  # the graph's name
    parameters: int  # elements of the graph's floating-point initializers (weights and buffers; no scalars)
    opset: int | None  # of the default ("ai.onnx") domain
    producer: str  # producer name and version recorded in the file
    runtime: str
    framework: str = "onnx"

    def predict_logits(self, images: np.ndarray, batch_size: int) -> np.ndarray:
        """Logits on uint8 (N, 32, 32, 3) ``images``, in fixed-size batches (the tail zero-padded)."""
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE:
            raise ConfigError(
                f"images have dtype {images.dtype} and shape {images.shape}: expected uint8 (N, 32, 32, 3)"
            )
        size = self.fixed_batch or batch_size
        out = np.empty((len(images), NUM_LOGITS), np.float32)
        buf = np.zeros((size, *IMAGE_SHAPE), np.float32)
        for i in range(0, len(images), size):
            n = min(size, len(images) - i)
            buf[:n] = images[i : i + n]
            buf[n:] = 0
            (y,) = self.session.run([self.output_name], {self.input_name: self._prepare(buf)})
            y = np.asarray(y)
            if y.shape != (size, NUM_LOGITS):
                raise ModelError(
                    f"{self.path} returned shape {y.shape} for {size} images: expected ({size}, {NUM_LOGITS}) scores"
                )
            out[i : i + n] = self._logits(y[:n])  # the padding rows are not checked
        return out

    def _prepare(self, pixels: np.ndarray) -> np.ndarray:
        c = self.convention
        x = pixels / np.float32(PIXEL_MAX / c.scale)  # [0, 255] levels to [0, scale]; exact for scale 255
        if c.mean is not None:
            x = (x - np.asarray(c.mean, np.float32)) / np.asarray(c.std, np.float32)
        if c.layout is Layout.NCHW:
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x, dtype=self.input_dtype)

    def _logits(self, y: np.ndarray) -> np.ndarray:
        """The model's outputs as logits (probabilities checked, then their log)."""
        y = y.astype(np.float32)
        if not np.isfinite(y).all():
            raise ModelError(f"{self.path} returned non-finite outputs: check the input convention ({OPTION['scale']})")
        if self.convention.output is Output.LOGITS:
            return y
        check_probabilities(y, self.path)
        return np.log(np.maximum(y, np.finfo(np.float32).tiny))

    def describe(self) -> dict:
        """What ran, for results and leaderboard entries."""
        return {
            "framework": self.framework,
            "input_convention": {**self.convention.to_json(), "declared_by": recorded_origin(self.origin)},
            "opset": self.opset,
            "producer": self.producer,
            "provider": self.provider,
            "runtime": self.runtime,
        }


def _read(onnx, path: Path):
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf decode errors of every kind
        raise ModelError(
            f"{path} is not a loadable ONNX model ({one_line(exc)}): expected a file written by torch.onnx.export "
            "or onnx.save"
        ) from None


def _external_files(onnx, proto, path: Path) -> list[str]:
    """The files the graph keeps tensors in (torch.onnx.export writes MODEL.onnx.data), each checked to exist."""
    names = sorted(
        {
            entry.value
            for t in proto.graph.initializer
            if t.data_location == onnx.TensorProto.EXTERNAL
            for entry in t.external_data
            if entry.key == "location"
        }
    )
    for name in names:
        if not (path.parent / name).is_file():
            raise ModelError(
                f"{path} keeps its weights in {name}, which is not beside it: copy {name} next to {path.name}"
            )
    return names


def _sha256(path: Path, external: list[str]) -> str:
    if not external:
        return sha256_file(path)
    names = [path.name, *external]
    return sha256_bytes("".join(f"{n} {sha256_file(path.parent / n)}\n" for n in names).encode())


def _parameters(onnx, proto) -> int:
    """Elements of the non-scalar floating-point initializers: weights, not shape constants or folded scalars."""
    tp = onnx.TensorProto
    floats = {tp.FLOAT, tp.FLOAT16, tp.DOUBLE, tp.BFLOAT16}
    return int(sum(int(np.prod(t.dims)) for t in proto.graph.initializer if t.data_type in floats and len(t.dims)))


def _session(ort, path: Path):
    """An inference session on the CUDA provider when onnxruntime offers it and it starts, else on the CPU."""
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    if CUDA in ort.get_available_providers():
        try:
            return ort.InferenceSession(str(path), options, providers=[CUDA, CPU])
        except Exception as exc:  # noqa: BLE001 - no GPU, or CUDA libraries missing: the CPU decides below
            log.warning(
                "onnxruntime's CUDA provider did not start for %s (%s): running on the CPU", path, one_line(exc)
            )
    try:
        return ort.InferenceSession(str(path), options, providers=[CPU])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types for bad graphs
        raise ModelError(
            f"{path} does not load in onnxruntime ({one_line(exc)}): expected a valid ONNX model"
        ) from None


def load_onnx(path: str | Path, declared: Sequence[Declared | None] = ()) -> OnnxClassifier:
    """``path`` (.onnx) ready to run: its convention from ``declared`` (e.g. the command line) and the sidecar."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist: pass the path of an exported .onnx file")
    onnx, ort = import_runtime(path)
    proto = _read(onnx, path)
    external = _external_files(onnx, proto, path)
    session = _session(ort, path)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise ModelError(f"{path} takes {len(inputs)} inputs: expected one batch of 32x32x3 images")
    (inp,) = inputs
    if inp.type not in _FLOATS:
        raise ModelError(f"{path} takes {inp.type} input: expected float32 pixels (a batch of 32x32x3 images)")
    out_shape = outputs[0].shape
    if len(out_shape) != 2 or (isinstance(out_shape[1], int) and out_shape[1] != NUM_LOGITS):
        raise ModelError(f"{path} outputs shape {shape_text(out_shape)}: expected (N, {NUM_LOGITS}) class scores")
    values, origin = merge([read_sidecar(path.parent), *declared], str(path))
    layout, layout_origin = layout_of(inp.shape, values.pop("layout", None), origin.get("layout", ""), str(path))
    convention, origin = complete(values, origin, layout, layout_origin)
    batch = inp.shape[0] if isinstance(inp.shape[0], int) and inp.shape[0] > 0 else None
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    model = OnnxClassifier(
        path=str(path),
        sha256=_sha256(path, external),
        session=session,
        input_name=inp.name,
        output_name=outputs[0].name,
        input_dtype=_FLOATS[inp.type],
        fixed_batch=batch,
        convention=convention,
        origin=origin,
        provider=session.get_providers()[0],
        architecture=proto.graph.name or path.stem,
        parameters=_parameters(onnx, proto),
        opset=opset,
        producer=" ".join(x for x in (proto.producer_name, proto.producer_version) if x) or "unknown",
        runtime=f"onnxruntime {ort.__version__}",
    )
    log.info("%s: %s on %s, convention %s", path, model.architecture, model.provider, convention.to_json())
    return model
