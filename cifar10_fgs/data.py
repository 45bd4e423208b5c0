"""CIFAR-10 from every source a user has, as uint8 arrays in the source's own order.

``load_cifar10(source, split)`` is the one entry point. ``source`` is one of

* ``hub:<repo_id>`` (default ``hub:uoft-cs/cifar10``): a Hugging Face hub dataset with an image
  column (``img`` or ``image``) and a ``label`` column;
* ``keras``: the canonical ``cifar-10-python.tar.gz`` fetched with ``keras.utils.get_file``;
* a path to ``cifar-10-python.tar.gz`` or its extracted ``cifar-10-batches-py/`` folder (pickles,
  read with a restricted unpickler that builds only containers, bytes and numpy arrays);
* a path to an image folder ``train|test/<class>/*.png|jpg`` or a ``.tar.gz`` of one;
* a path to a folder written by ``datasets`` (``save_to_disk``) or holding parquet/arrow files
  whose names start with the split (``train-*.parquet``, ``data/test-00000-of-00001.arrow``).

Rows keep the source's order (for an image folder: class, then file name in natural order), so
row ``i`` of an adversarial split always joins back to row ``i`` of the original split.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import pickle
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataSourceError

log = logging.getLogger(__name__)

CLASS_NAMES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SHAPE = (32, 32, 3)
SPLITS: tuple[str, ...] = ("train", "test")
SPLIT_SIZES = {"train": 50_000, "test": 10_000}
DEFAULT_SOURCE = "hub:uoft-cs/cifar10"
KERAS_CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_PICKLE_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


@dataclass(frozen=True)
class Cifar10Split:
    """One split: ``images`` uint8 (N, 32, 32, 3), ``labels`` int64 (N,), in the source's order."""

    images: np.ndarray
    labels: np.ndarray
    source: str
    split: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __iter__(self):  # allows ``images, labels = load_cifar10(...)``
        return iter((self.images, self.labels))

    def fingerprint(self) -> str:
        """sha256 over the pixels and labels: identifies the data independent of where it came from."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.images, dtype=np.uint8).tobytes())
        h.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        return h.hexdigest()

    def head(self, limit: int | None) -> "Cifar10Split":
        """The first ``limit`` rows (keeps row ``i`` = source row ``i``; for an image folder these are
        sorted by class, so use :meth:`sample` for a representative subset)."""
        if limit is None or limit >= len(self):
            return self
        return Cifar10Split(self.images[:limit], self.labels[:limit], self.source, self.split)

    def sample(self, limit: int | None, seed: int = 0) -> "Cifar10Split":
        """A seeded random subset of ``limit`` rows, kept in source order (all rows if ``limit`` is None)."""
        if limit is None or limit >= len(self):
            return self
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        pick = np.sort(np.random.default_rng(seed).choice(len(self), limit, replace=False))
        return Cifar10Split(self.images[pick], self.labels[pick], self.source, self.split)


def one_line(exc: BaseException, limit: int = 200) -> str:
    """``exc`` as ``Type: first words`` on one line (library messages must stay one line)."""
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise DataSourceError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    return split


def load_cifar10(source: str | Path = DEFAULT_SOURCE, split: str = "train") -> Cifar10Split:
    """Load one CIFAR-10 split from ``source`` (see the module docstring for what it may be)."""
    check_split(split)
    source_str = str(source)
    if source_str == "keras":
        images, labels = _load_keras(split)
    elif source_str.startswith("hub:"):
        images, labels = _load_hub(source_str[len("hub:"):], split)
    else:
        path = Path(source_str).expanduser()
        if not path.exists():
            raise DataSourceError(
                f"CIFAR-10 source {source_str!r} does not exist: pass an existing path, "
                f"'hub:<repo_id>' (e.g. {DEFAULT_SOURCE}) or 'keras'"
            )
        images, labels = _load_path(path, split)
    images, labels = _check_arrays(images, labels, source_str, split)
    log.info("loaded %d %s images from %s", len(labels), split, source_str)
    return Cifar10Split(images, labels, source_str, split)


# --------------------------------------------------------------------------- checks


def _check_arrays(images, labels, source: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    images = np.asarray(images)
    labels = np.asarray(labels).reshape(-1)
    if images.shape[0] == 0 or labels.shape[0] == 0:
        raise DataSourceError(f"split {split!r} of {source!r} is empty: expected CIFAR-10 images in it")
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise DataSourceError(
            f"images of {source!r} have shape {images.shape[1:]}: expected {IMAGE_SHAPE} (32x32 RGB)"
        )
    if images.shape[0] != labels.shape[0]:
        raise DataSourceError(
            f"{source!r} has {images.shape[0]} images but {labels.shape[0]} labels: expected one label per image"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataSourceError(f"labels of {source!r} have dtype {labels.dtype}: expected integers 0-9")
    bad = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
    if bad.size:
        raise DataSourceError(
            f"label {int(labels[bad[0]])} at row {int(bad[0])} of {source!r} ({split}) is outside 0-9: "
            "expected CIFAR-10 class indices"
        )
    if images.dtype != np.uint8:
        raise DataSourceError(f"images of {source!r} have dtype {images.dtype}: expected uint8 pixels 0-255")
    return np.ascontiguousarray(images), labels.astype(np.int64)


def decode_image(data: bytes, where: str) -> np.ndarray:
    """Decode PNG/JPEG bytes to a (32, 32, 3) uint8 array, or raise a one-line DataSourceError."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            size = img.size  # from the header: a wrong size is refused before any pixel is decoded
            if size != (32, 32):
                raise DataSourceError(f"{where} is {size[0]}x{size[1]}: expected 32x32 CIFAR-10 images")
            img.load()
            mode = img.mode
            if mode == "P" and "transparency" not in img.info:  # a lossless palette PNG of an RGB image
                img, mode = img.convert("RGB"), "RGB"
            arr = np.asarray(img)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataSourceError(f"{where} is not a readable image ({one_line(exc)}): expected PNG or JPEG bytes") from None
    if mode != "RGB":
        raise DataSourceError(f"{where} has mode {mode}: expected 3-channel RGB images")
    return arr


# --------------------------------------------------------------------------- paths


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _class_index(name: str, where: str) -> int:
    if name in CLASS_NAMES:
        return CLASS_NAMES.index(name)
    if name.isdigit() and 0 <= int(name) < NUM_CLASSES:
        return int(name)
    raise DataSourceError(
        f"class folder {name!r} in {where} is not a CIFAR-10 class: expected one of {', '.join(CLASS_NAMES)}"
    )


def _load_path(path: Path, split: str):
    if path.is_dir():
        if (path / "data_batch_1").exists() or (path / "test_batch").exists():
            return _load_pickle_dir(path, split)
        if (path / "cifar-10-batches-py").is_dir():
            return _load_pickle_dir(path / "cifar-10-batches-py", split)
        if (path / "cifar-10-python.tar.gz").is_file():  # e.g. keras' cache folder ~/.keras/datasets
            return _load_tarball(path / "cifar-10-python.tar.gz", split)
        if (path / split).is_dir() and any(p.is_dir() for p in (path / split).iterdir()):
            return _load_image_dir(path / split, split)
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            return _load_saved_dataset(path, split)
        files = _split_files(path, split)
        if files:
            return _load_table_files(files, split)
        raise DataSourceError(
            f"{path} holds no CIFAR-10 data for split {split!r}: expected cifar-10-batches-py, "
            f"{split}/<class>/*.png, a save_to_disk folder or {split}-*.parquet/.arrow files"
        )
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        return _load_tarball(path, split)
    if name.endswith((".parquet", ".arrow")):
        if not path.name.startswith(split):  # one file is one split: never hand the train file out as test
            raise DataSourceError(
                f"{path} is one file but split {split!r} was asked for: pass the folder holding "
                f"{split}-*.parquet/.arrow files (a single file must be named {split}-*{path.suffix})"
            )
        return _load_table_files([path], split)
    raise DataSourceError(
        f"{path} is not a CIFAR-10 source: expected a .tar.gz, a folder, or .parquet/.arrow files"
    )


def _split_files(path: Path, split: str) -> list[Path]:
    files = [
        p for p in sorted(path.rglob("*"), key=lambda p: _natural_key(str(p)))
        if p.suffix in (".parquet", ".arrow") and p.name.startswith(split)
        and not p.name.startswith("cache-")
    ]
    return files


def _load_image_dir(split_dir: Path, split: str):
    entries = []
    for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        label = _class_index(class_dir.name, str(split_dir))
        for f in class_dir.iterdir():
            if f.suffix.lower() in _IMAGE_SUFFIXES and not f.name.startswith("."):  # skip ._* / hidden files
                entries.append((label, _natural_key(f.name), f))
    entries.sort(key=lambda e: (e[0], e[1]))
    images = np.empty((len(entries), *IMAGE_SHAPE), np.uint8)
    for i, (_, _, f) in enumerate(entries):
        images[i] = decode_image(f.read_bytes(), str(f))
    return images, np.array([e[0] for e in entries], np.int64)


_TAR_IMAGE = re.compile(r"(?:^|.*/)(train|test)/([^/]+)/([^/]+)$")


def _load_tarball(path: Path, split: str):
    entries = []
    pickles: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                base = member.name.rsplit("/", 1)[-1]
                if base in _PICKLE_FILES[split]:
                    pickles[base] = tar.extractfile(member).read()
                    continue
                m = _TAR_IMAGE.match(member.name)
                if (m and m.group(1) == split and base.lower().endswith(_IMAGE_SUFFIXES)
                        and not base.startswith(".")):
                    label = _class_index(m.group(2), str(path))
                    entries.append((label, _natural_key(base), member.name, tar.extractfile(member).read()))
    except (tarfile.TarError, EOFError, OSError, Exception) as exc:  # zlib.error, gzip.BadGzipFile, ...
        if isinstance(exc, DataSourceError):
            raise
        raise DataSourceError(
            f"{path} is not a readable tar archive ({one_line(exc)}): download it again or pass the extracted folder"
        ) from None
    if pickles:
        missing = [f for f in _PICKLE_FILES[split] if f not in pickles]
        if missing:
            raise DataSourceError(f"{path} lacks {', '.join(missing)}: expected a complete cifar-10-python.tar.gz")
        return _from_pickles([(name, pickles[name]) for name in _PICKLE_FILES[split]], str(path))
    if not entries:
        raise DataSourceError(
            f"{path} holds no {split} images: expected cifar-10-batches-py/ or {split}/<class>/*.png|jpg inside"
        )
    entries.sort(key=lambda e: (e[0], e[1]))
    images = np.empty((len(entries), *IMAGE_SHAPE), np.uint8)
    for i, (_, _, name, data) in enumerate(entries):
        images[i] = decode_image(data, f"{path}:{name}")
    return images, np.array([e[0] for e in entries], np.int64)


# --------------------------------------------------------------------------- pickles


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
    try:
        return _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - any failure is a bad file, never code execution
        raise DataSourceError(
            f"{where} is not a CIFAR-10 batch ({one_line(exc)}): expected an unmodified cifar-10-python batch"
        ) from None


def _from_pickles(blobs: list[tuple[str, bytes]], where: str):
    images, labels = [], []
    for name, blob in blobs:
        batch = restricted_loads(blob, f"{where}:{name}")
        if not isinstance(batch, dict):
            raise DataSourceError(f"{where}:{name} holds a {type(batch).__name__}: expected a dict batch")
        batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
        if "data" not in batch or "labels" not in batch:
            raise DataSourceError(f"{where}:{name} lacks 'data' or 'labels': expected a CIFAR-10 batch")
        data = np.asarray(batch["data"])
        if data.ndim != 2 or data.shape[1] != 3072:
            raise DataSourceError(
                f"{where}:{name} data has shape {data.shape}: expected (N, 3072) for 32x32x3 images"
            )
        if data.dtype != np.uint8:
            raise DataSourceError(f"{where}:{name} data has dtype {data.dtype}: expected uint8 pixels 0-255")
        try:
            batch_labels = np.asarray(batch["labels"]).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise DataSourceError(f"{where}:{name} labels are unreadable ({one_line(exc)}): expected a list of 0-9") from None
        if batch_labels.shape[0] != data.shape[0]:
            raise DataSourceError(
                f"{where}:{name} has {data.shape[0]} images but {batch_labels.shape[0]} labels: expected one per image"
            )
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(batch_labels)
    return np.concatenate(images), np.concatenate(labels)


def _load_pickle_dir(path: Path, split: str):
    blobs = []
    for name in _PICKLE_FILES[split]:
        f = path / name
        if not f.exists():
            raise DataSourceError(f"{f} is missing: expected a complete cifar-10-batches-py folder")
        blobs.append((name, f.read_bytes()))
    return _from_pickles(blobs, str(path))


def _load_keras(split: str):
    try:
        import keras

        archive = keras.utils.get_file("cifar-10-python.tar.gz", origin=KERAS_CIFAR10_URL)
    except Exception as exc:  # noqa: BLE001 - network failures come in many types
        raise DataSourceError(
            f"cannot download CIFAR-10 through keras ({type(exc).__name__}): connect to the internet "
            "or pass a local cifar-10-python.tar.gz with --source PATH"
        ) from None
    return _load_tarball(Path(archive), split)


# --------------------------------------------------------------------------- datasets / arrow


def _columns(features, where: str) -> tuple[str, str]:
    image_col = next((c for c in ("img", "image") if c in features), None)
    label_col = next((c for c in ("label", "labels") if c in features), None)
    if image_col is None or label_col is None:
        raise DataSourceError(
            f"{where} has columns {sorted(features)}: expected an image column ('img' or 'image') and 'label'"
        )
    return image_col, label_col


def _is_image_struct(feature) -> bool:
    """An image column without ``datasets`` metadata: a struct of ``bytes`` (and ``path``)."""
    return isinstance(feature, dict) and "bytes" in feature


def _canonical_labels(labels: np.ndarray, feature, where: str) -> np.ndarray:
    """Map ClassLabel indices to CIFAR-10's canonical order when the names are CIFAR-10's in another order."""
    import datasets

    names = list(getattr(feature, "names", None) or []) if isinstance(feature, datasets.ClassLabel) else []
    if not names or names == list(CLASS_NAMES) or sorted(names) != sorted(CLASS_NAMES):
        return labels
    log.info("%s names its classes in another order: mapping them to CIFAR-10's", where)
    mapping = np.array([CLASS_NAMES.index(n) for n in names], np.int64)
    labels = np.asarray(labels)
    if labels.size and np.issubdtype(labels.dtype, np.integer) and labels.min() >= 0 and labels.max() < len(names):
        return mapping[labels]
    return labels


def _from_dataset(ds, where: str):
    import datasets

    image_col, label_col = _columns(ds.features, where)
    feature = ds.features[image_col]
    if isinstance(feature, datasets.Image) or _is_image_struct(feature):
        if isinstance(feature, datasets.Image):
            ds = ds.cast_column(image_col, datasets.Image(decode=False))
        cells = ds.with_format("arrow")[:].column(image_col).to_pylist()
        images = np.empty((len(cells), *IMAGE_SHAPE), np.uint8)
        for i, cell in enumerate(cells):
            data = cell.get("bytes") if cell else None
            if data is None and cell and cell.get("path"):
                try:
                    data = Path(cell["path"]).read_bytes()
                except OSError as exc:
                    raise DataSourceError(
                        f"row {i} of {where} points to an unreadable image ({one_line(exc)}): expected image bytes"
                    ) from None
            if data is None:
                raise DataSourceError(f"row {i} of {where} has no image bytes: expected an image in every row")
            images[i] = decode_image(data, f"row {i} of {where}")
    else:
        try:
            images = np.asarray(ds.with_format("numpy")[image_col][:])
        except (TypeError, ValueError) as exc:
            raise DataSourceError(
                f"column {image_col!r} of {where} is not an image array ({one_line(exc)}): expected 32x32x3 images"
            ) from None
        if images.dtype != np.uint8 and np.issubdtype(images.dtype, np.integer) and images.size \
                and images.min() >= 0 and images.max() <= 255:
            images = images.astype(np.uint8)
    labels = np.asarray(ds.with_format("numpy")[label_col][:])
    return images, _canonical_labels(labels, ds.features[label_col], where)


@contextlib.contextmanager
def datasets_progress(enabled: bool = False):
    """``datasets``' progress bars on or (by default) off for the block, restored after (only the CLI prints)."""
    import datasets

    was = datasets.is_progress_bar_enabled()
    if not enabled and was:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not enabled and was:
            datasets.enable_progress_bars()


def _load_saved_dataset(path: Path, split: str):
    import datasets

    try:
        with datasets_progress():
            ds = datasets.load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001
        raise DataSourceError(
            f"{path} is not a readable save_to_disk folder ({one_line(exc)}): save it again"
        ) from None
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise DataSourceError(f"{path} has splits {sorted(ds)}: expected a {split!r} split")
        ds = ds[split]
    elif ds.split is not None and str(ds.split) != split:
        raise DataSourceError(
            f"{path} holds the {str(ds.split)!r} split but {split!r} was asked for: pass the DatasetDict folder above it"
        )
    return _from_dataset(ds, f"{path} ({split})")


def _load_table_files(files: list[Path], split: str):
    import datasets

    kinds = {f.suffix for f in files}
    if len(kinds) > 1:
        raise DataSourceError(
            f"{files[0].parent} mixes {' and '.join(sorted(kinds))} files for split {split!r}: expected one format"
        )
    kind = "parquet" if files[0].suffix == ".parquet" else "arrow"
    try:
        with datasets_progress():
            ds = datasets.load_dataset(kind, data_files={split: [str(f) for f in files]}, split=split)
    except Exception as exc:  # noqa: BLE001
        raise DataSourceError(f"cannot read {files[0]} ({one_line(exc)}): expected valid {kind} files") from None
    return _from_dataset(ds, f"{files[0].parent} ({split})")


def _load_hub(repo_id: str, split: str):
    import datasets

    if not repo_id:
        raise DataSourceError(f"'hub:' names no dataset: pass e.g. --source {DEFAULT_SOURCE}")
    try:
        ds = datasets.load_dataset(repo_id, split=split)
    except Exception as exc:  # noqa: BLE001 - offline, missing repo, auth: all one-line errors
        raise DataSourceError(
            f"cannot load {repo_id!r} from the Hugging Face hub ({one_line(exc, 160)}): connect to the "
            "internet (and unset HF_HUB_OFFLINE) or pass a local copy with --source PATH"
        ) from None
    return _from_dataset(ds, f"hub:{repo_id} ({split})")
