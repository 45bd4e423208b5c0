"""CIFAR-10's python pickles (``cifar-10-batches-py``), read with a restricted unpickler that runs no code."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from cifar10_fgs.errors import Cifar10Error, one_line

PICKLE_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def _latin1_encode(text, encoding="latin1", *errors):
    """``_codecs.encode`` as Python 3 pickles bytes at protocol <= 2: only str -> latin-1 bytes."""
    if not isinstance(text, str) or str(encoding).lower().replace("_", "-") not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode({type(text).__name__}, {encoding!r}) is forbidden")
    return text.encode("latin-1")


def _plain_dtype(*args):
    """``numpy.dtype`` for plain numeric/bytes dtypes only: object arrays could smuggle other objects."""
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise pickle.UnpicklingError("object arrays are forbidden")
    return dtype


class _NdarrayType:
    """Stands in for ``numpy.ndarray`` in a pickle: only ``_reconstruct`` accepts it, nothing calls it."""


def _ndarray_reconstruct(subtype, shape, dtype):
    if subtype is not _NdarrayType:
        raise pickle.UnpicklingError("only numpy.ndarray may be reconstructed")
    return np.ndarray.__new__(np.ndarray, shape, _plain_dtype(dtype))


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise pickle.UnpicklingError("only plain numpy scalars may be unpickled")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _numpy_frombuffer(buf, dtype, shape, order="C"):
    """``numpy._core.numeric._frombuffer`` as pickle protocol 5 uses it (in-band buffers only)."""
    if not isinstance(buf, (bytes, bytearray)) or order not in ("C", "F"):
        raise pickle.UnpicklingError("only in-band numpy buffers may be unpickled")
    return np.frombuffer(buf, dtype=_plain_dtype(dtype)).reshape(shape, order=order).copy(order="K")


# (module, name) -> the function the pickle gets instead: never the original callable.
_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _ndarray_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _ndarray_reconstruct,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "ndarray"): _NdarrayType,
    ("numpy", "dtype"): _plain_dtype,
    ("numpy.core.numeric", "_frombuffer"): _numpy_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _numpy_frombuffer,
    ("_codecs", "encode"): _latin1_encode,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds only plain containers, bytes/str, numbers and plain numpy arrays: no other code runs.

    Every global a pickle names is looked up in ``_PICKLE_GLOBALS`` (a small allow-list of
    checked stand-ins); anything else (``os.system``, ``builtins.eval``, ...) is refused before it
    is called. Persistent ids are refused by ``pickle.Unpickler`` itself.
    """

    def find_class(self, module: str, name: str):
        try:
            return _PICKLE_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is forbidden") from None


def restricted_loads(data: bytes, where: str):
    """Unpickle ``data`` with :class:`_RestrictedUnpickler`; any failure is a one-line Cifar10Error."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - any failure is a bad file, never code execution
        raise Cifar10Error(
            f"{where} is not a CIFAR-10 batch ({one_line(exc)}): expected an unmodified cifar-10-python batch"
        ) from None


def from_pickles(blobs: list[tuple[str, bytes]], where: str) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of CIFAR-10 batches given as (file name, bytes), in order."""
    images, labels = [], []
    for name, blob in blobs:
        batch = restricted_loads(blob, f"{where}:{name}")
        if not isinstance(batch, dict):
            raise Cifar10Error(f"{where}:{name} holds a {type(batch).__name__}: expected a dict batch")
        batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
        if "data" not in batch or "labels" not in batch:
            raise Cifar10Error(f"{where}:{name} lacks 'data' or 'labels': expected a CIFAR-10 batch")
        data = np.asarray(batch["data"])
        if data.ndim != 2 or data.shape[1] != 3072:
            raise Cifar10Error(f"{where}:{name} data has shape {data.shape}: expected (N, 3072) for 32x32x3 images")
        if data.dtype != np.uint8:
            raise Cifar10Error(f"{where}:{name} data has dtype {data.dtype}: expected uint8 pixels 0-255")
        try:
            batch_labels = np.asarray(batch["labels"]).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise Cifar10Error(
                f"{where}:{name} labels are unreadable ({one_line(exc)}): expected a list of 0-9"
            ) from None
        if batch_labels.shape[0] != data.shape[0]:
            raise Cifar10Error(
                f"{where}:{name} has {data.shape[0]} images but {batch_labels.shape[0]} labels: expected one per image"
            )
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(batch_labels)
    return np.concatenate(images), np.concatenate(labels)


def load_pickle_dir(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of ``split`` from a ``cifar-10-batches-py`` folder."""
    blobs = []
    for name in PICKLE_FILES[split]:
        f = path / name
        if not f.exists():
            raise Cifar10Error(f"{f} is missing: expected a complete cifar-10-batches-py folder")
        blobs.append((name, f.read_bytes()))
    return from_pickles(blobs, str(path))
