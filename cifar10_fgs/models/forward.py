"""Models that are only run forward (transfer, its leaderboard, the Gaussian defence): Keras or ONNX, one interface.

A *classifier* here (:class:`Classifier`) is anything with ``predict_logits(images, batch_size)`` (uint8
(N, 32, 32, 3) images in, float32 (N, 10) logits out), ``describe()`` (what ran: framework, input convention,
opset, producer, provider, runtime) and ``path``, ``sha256``, ``architecture``, ``parameters``, ``framework``.
:class:`KerasClassifier` runs a Keras model fed by its declared input convention (``keras_input``); ONNX
models are :class:`~cifar10_fgs.models.onnx_model.OnnxClassifier`. :func:`load_classifier` picks by the file,
:func:`load_hub_folder` by what an ``hf://`` repo holds; a convention given on the command line applies to
every model either loads, a ``cifar10-fgs.json`` beside the model to that model (``convention``). Commands that
take gradients (generate, validate) load Keras models with ``keras_input.load_keras``.
"""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from cifar10_fgs.errors import ModelError
from cifar10_fgs.models.convention import KERAS_CONVENTION, Declared, InputConvention, read_sidecar
from cifar10_fgs.models.inference import predict_logits
from cifar10_fgs.models.keras_input import FedModel, feed, feed_declared, load_keras
from cifar10_fgs.models.networks import architecture, keras_load, network_of
from cifar10_fgs.models.onnx_model import SUFFIX, load_onnx
from cifar10_fgs.provenance import dumps_sorted, sha256_bytes, sha256_file

log = logging.getLogger(__name__)

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
KERAS_DIR_FILES = ("config.json", "model.weights.h5")  # what identifies a Keras hf:// model folder (sha256 over both)


class Classifier(Protocol):
    """A model only run forward: :class:`KerasClassifier` or :class:`~cifar10_fgs.models.onnx_model.OnnxClassifier`."""

    @property
    def path(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def framework(self) -> str: ...  # keras | onnx
    @property
    def architecture(self) -> str: ...
    @property
    def parameters(self) -> int: ...
    def predict_logits(self, images: np.ndarray, batch_size: int) -> np.ndarray: ...
    def describe(self) -> dict: ...


@dataclass(frozen=True, eq=False)
class KerasClassifier:
    """A Keras model fed by its declared input convention (``keras_input.FedModel``), run by TensorFlow."""

    fed: FedModel
    path: str
    sha256: str  # of the .keras file; for a folder, over "name sha256" lines of KERAS_DIR_FILES
    framework: str = "keras"

    @property
    def model(self):
        """The loaded Keras model (as it is, not fed)."""
        return self.fed.network

    def predict_logits(self, images: np.ndarray, batch_size: int) -> np.ndarray:

        return predict_logits(self.fed.model, images, batch_size=batch_size)

    @property
    def architecture(self) -> str:

        return architecture(self.fed.network)

    @property
    def parameters(self) -> int:

        return int(network_of(self.fed.network).count_params())

    def describe(self) -> dict:
        import keras
        import tensorflow as tf

        device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
        return {
            "framework": self.framework,
            "input_convention": self.fed.record(),
            "opset": None,
            "producer": _keras_producer(Path(self.path)),
            "provider": f"tensorflow {device}",
            "runtime": f"keras {keras.__version__}, tensorflow {tf.__version__}",
        }


def _keras_producer(path: Path) -> str:
    """``keras <version>`` that saved the file or folder (its metadata.json), or "keras" when not recorded."""
    try:
        if path.is_dir():
            meta = json.loads((path / "metadata.json").read_text())
        else:
            with zipfile.ZipFile(path) as z:
                meta = json.loads(z.read("metadata.json"))
        return f"keras {meta['keras_version']}"
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return "keras"


def as_classifier(model) -> Classifier:
    """``model`` as a classifier: a classifier unchanged, a bare Keras model in this project's convention wrapped
    (no file: no sha256), a ``FedModel`` as it is fed."""
    if hasattr(model, "predict_logits"):
        return model
    fed = model if isinstance(model, FedModel) else feed(model, KERAS_CONVENTION, where=getattr(model, "name", "model"))
    return KerasClassifier(fed, getattr(fed.network, "name", "model"), "")


def load_classifier(
    path: str | Path,
    *,
    declared: Declared | None = None,
    unsafe: bool = False,
    recorded: InputConvention | None = None,
    record: str = "the dataset",
) -> Classifier:
    """A local ``.keras`` (or ``.h5``) or ``.onnx`` file, loaded and checked, fed as ``declared`` and its sidecar say.

    ``recorded`` (Keras only): the convention ``record`` says the model ran with; used, and declarations must agree.
    """

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == SUFFIX:
        return load_onnx(path, [declared])
    if path.is_file() and suffix not in KERAS_SUFFIXES:
        raise ModelError(
            f"{path} is neither a Keras (.keras, .h5) nor an .onnx file: pass a model saved by Keras 3 (MODEL.keras) or "
            "exported to ONNX (MODEL.onnx)"
        )
    fed = load_keras(path, [declared], unsafe=unsafe, recorded=recorded, record=record)
    return KerasClassifier(fed, str(path), sha256_file(path))


def load_hub_folder(
    folder: str | Path, spec: str, *, declared: Declared | None = None, unsafe: bool = False
) -> Classifier:
    """A downloaded ``hf://`` model repo: a Keras model (config.json + model.weights.h5) or one ``.onnx`` file.

    A repo holding both is read as Keras (the leaderboard entry's ``framework`` says which ran).
    """
    folder = Path(folder)
    if all((folder / n).is_file() for n in KERAS_DIR_FILES):
        return _load_keras_dir(folder, spec, declared, unsafe)
    onnx_files = sorted(p for p in folder.glob("*.onnx") if p.is_file())
    if len(onnx_files) == 1:
        return load_onnx(onnx_files[0], [declared])
    if len(onnx_files) > 1:
        names = ", ".join(p.name for p in onnx_files)
        raise ModelError(f"{spec} holds several ONNX files ({names}): expected one model per repo")
    missing = next(n for n in KERAS_DIR_FILES if not (folder / n).is_file())
    raise ModelError(
        f"{spec} holds no {missing} and no .onnx file: expected a Keras model saved with "
        "model.save('hf://USER/NAME') or one MODEL.onnx"
    )


def _tree_sha256(folder: Path) -> str:
    lines = "".join(f"{name} {sha256_file(folder / name)}\n" for name in KERAS_DIR_FILES)
    return sha256_bytes(lines.encode())


def _load_keras_dir(folder: Path, spec: str, declared: Declared | None, unsafe: bool) -> KerasClassifier:
    model = keras_load(folder, spec, unsafe, "expected a Keras 3 model")
    fed = feed_declared(model, [read_sidecar(folder), declared], spec)
    return KerasClassifier(fed, str(folder), _tree_sha256(folder))


def model_key(info: dict) -> object:
    """What of a model enters a results file's settings key: its sha256, and its input convention unless it is a
    Keras model in this project's convention (so results made before conventions applied to Keras keep their key)."""
    recorded = info.get("input_convention")
    convention = {k: v for k, v in recorded.items() if k in KERAS_CONVENTION.to_json()} if recorded else None
    if info.get("framework", "keras") == "keras" and convention in (None, KERAS_CONVENTION.to_json()):
        return info.get("sha256")
    return [info["sha256"], dumps_sorted(convention)]
