"""Path inputs: a folder of any supported kind, an image folder ``<split>/<class>/*``, a tar archive, keras' download."""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifar10_fgs.data.pickles import PICKLE_FILES, from_pickles, load_pickle_dir
from cifar10_fgs.data.split import CLASS_NAMES, IMAGE_SHAPE, KERAS_CIFAR10_URL, NUM_CLASSES, decode_image
from cifar10_fgs.data.tables import load_saved_dataset, load_table_files
from cifar10_fgs.errors import Cifar10Error, one_line

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _class_index(name: str, where: str) -> int:
    if name in CLASS_NAMES:
        return CLASS_NAMES.index(name)
    if name.isdigit() and 0 <= int(name) < NUM_CLASSES:
        return int(name)
    raise Cifar10Error(
        f"class folder {name!r} in {where} is not a CIFAR-10 class: expected one of {', '.join(CLASS_NAMES)}"
    )


def load_path(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of ``split`` from a local path, whichever supported kind it is."""
    if path.is_dir():
        if (path / "data_batch_1").exists() or (path / "test_batch").exists():
            return load_pickle_dir(path, split)
        if (path / "cifar-10-batches-py").is_dir():
            return load_pickle_dir(path / "cifar-10-batches-py", split)
        if (path / "cifar-10-python.tar.gz").is_file():  # e.g. keras' cache folder ~/.keras/datasets
            return load_tarball(path / "cifar-10-python.tar.gz", split)
        if (path / split).is_dir() and any(p.is_dir() for p in (path / split).iterdir()):
            return _load_image_dir(path / split, split)
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            return load_saved_dataset(path, split)
        files = _split_files(path, split)
        if files:
            return load_table_files(files, split)
        raise Cifar10Error(
            f"{path} holds no CIFAR-10 data for split {split!r}: expected cifar-10-batches-py, "
            f"{split}/<class>/*.png, a save_to_disk folder or {split}-*.parquet/.arrow files"
        )
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        return load_tarball(path, split)
    if name.endswith((".parquet", ".arrow")):
        if not path.name.startswith(split):  # one file is one split: never hand the train file out as test
            raise Cifar10Error(
                f"{path} is one file but split {split!r} was asked for: pass the folder holding "
                f"{split}-*.parquet/.arrow files (a single file must be named {split}-*{path.suffix})"
            )
        return load_table_files([path], split)
    raise Cifar10Error(f"{path} is not a CIFAR-10 input: pass --cifar10 a .tar.gz, a folder, or .parquet/.arrow files")


def _split_files(path: Path, split: str) -> list[Path]:
    files = [
        p
        for p in sorted(path.rglob("*"), key=lambda p: _natural_key(str(p)))
        if p.suffix in (".parquet", ".arrow") and p.name.startswith(split) and not p.name.startswith("cache-")
    ]
    return files


def _load_image_dir(split_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    listing = _image_dir_listing(split_dir)
    return listing.decode(np.arange(len(listing.labels))), listing.labels


@dataclass(frozen=True)
class ImageListing:
    """An image folder's or image tarball's files of one split, listed and sorted but not decoded.

    ``labels`` come from the class folders' names, so a subset of rows can be chosen before any decode;
    ``decode(rows)`` decodes only those rows.
    """

    labels: np.ndarray  # int64, one per image, in row order (class, then file name in natural order)
    names: tuple[str, ...]  # where each image is, for error messages
    read: Callable[[int], bytes]  # row -> its file's bytes

    def decode(self, rows: np.ndarray) -> np.ndarray:
        images = np.empty((len(rows), *IMAGE_SHAPE), np.uint8)
        for i, row in enumerate(np.asarray(rows, np.int64).tolist()):
            images[i] = decode_image(self.read(row), self.names[row])
        return images


def _listing(entries: list, read: Callable) -> ImageListing:
    """``entries`` of (label, sort key, name, handle) sorted into rows; ``read(handle)`` gives a file's bytes."""
    entries.sort(key=lambda e: (e[0], e[1]))
    handles = [e[3] for e in entries]
    return ImageListing(
        np.array([e[0] for e in entries], np.int64), tuple(e[2] for e in entries), lambda row: read(handles[row])
    )


def _image_dir_listing(split_dir: Path) -> ImageListing:
    entries = []
    for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        label = _class_index(class_dir.name, str(split_dir))
        for f in class_dir.iterdir():
            if f.suffix.lower() in _IMAGE_SUFFIXES and not f.name.startswith("."):  # skip ._* / hidden files
                entries.append((label, _natural_key(f.name), str(f), f))
    return _listing(entries, Path.read_bytes)


def image_listing(path: Path, split: str) -> ImageListing | None:
    """The undecoded listing of ``split`` if ``path`` is an image folder or a tarball of one, else None."""
    if path.is_dir():
        if any(
            (path / n).exists() for n in ("data_batch_1", "test_batch", "cifar-10-batches-py", "cifar-10-python.tar.gz")
        ):
            return None
        if (path / split).is_dir() and any(p.is_dir() for p in (path / split).iterdir()):
            return _image_dir_listing(path / split)
        return None
    if path.name.lower().endswith((".tar.gz", ".tgz", ".tar")) and _TAR_IMAGE.match(_first_file(path) or ""):
        pickles, listing = _read_tarball(path, split)
        return None if pickles else listing
    return None  # pickles (cheap to read whole), tables, or not an image tarball as far as its first file says


def _first_file(path: Path) -> str | None:
    """The name of a tar archive's first regular file (None if it has none or cannot be read)."""
    try:
        with tarfile.open(path, "r:*") as tar:
            return next((m.name for m in tar if m.isfile()), None)
    except Exception:  # noqa: BLE001 - unreadable: the whole-split reader reports it in one line
        return None


_TAR_IMAGE = re.compile(r"(?:^|.*/)(train|test)/([^/]+)/([^/]+)$")


def load_tarball(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of ``split`` from a tar of the python pickles or of an image folder."""
    pickles, listing = _read_tarball(path, split)
    if listing is None:
        return from_pickles([(name, pickles[name]) for name in PICKLE_FILES[split]], str(path))
    return listing.decode(np.arange(len(listing.labels))), listing.labels


def _read_tarball(path: Path, split: str) -> tuple[dict[str, bytes], ImageListing | None]:
    """The split's pickles (complete), or the listing of its images (bytes read, nothing decoded)."""
    entries = []
    pickles: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                base = member.name.rsplit("/", 1)[-1]
                if base in PICKLE_FILES[split]:
                    pickles[base] = _member_bytes(tar, member)
                    continue
                m = _TAR_IMAGE.match(member.name)
                if m and m.group(1) == split and base.lower().endswith(_IMAGE_SUFFIXES) and not base.startswith("."):
                    label = _class_index(m.group(2), str(path))
                    entries.append((label, _natural_key(base), f"{path}:{member.name}", _member_bytes(tar, member)))
    except (tarfile.TarError, EOFError, OSError, Exception) as exc:  # zlib.error, gzip.BadGzipFile, ...
        if isinstance(exc, Cifar10Error):
            raise
        raise Cifar10Error(
            f"{path} is not a readable tar archive ({one_line(exc)}): download it again or pass the extracted folder"
        ) from None
    if pickles:
        missing = [f for f in PICKLE_FILES[split] if f not in pickles]
        if missing:
            raise Cifar10Error(f"{path} lacks {', '.join(missing)}: expected a complete cifar-10-python.tar.gz")
        return pickles, None
    if not entries:
        raise Cifar10Error(
            f"{path} holds no {split} images: expected cifar-10-batches-py/ or {split}/<class>/*.png|jpg inside"
        )
    return {}, _listing(entries, lambda data: data)


def _member_bytes(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    """A regular member's bytes (``extractfile`` gives None only for members that are no regular file)."""
    f = tar.extractfile(member)
    if f is None:
        raise tarfile.TarError(f"{member.name} is not a regular file")
    return f.read()


def keras_archive() -> Path:
    """``cifar-10-python.tar.gz`` fetched (and cached) by keras."""
    try:
        import keras

        return Path(keras.utils.get_file("cifar-10-python.tar.gz", origin=KERAS_CIFAR10_URL))
    except Exception as exc:  # noqa: BLE001 - network failures come in many types
        raise Cifar10Error(
            f"cannot download CIFAR-10 through keras ({type(exc).__name__}): connect to the internet "
            "or pass a local cifar-10-python.tar.gz with --cifar10 PATH"
        ) from None
