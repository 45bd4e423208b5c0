"""Decoded CIFAR-10 splits, cached by their input's fingerprint, as ``datasets`` caches Arrow.

An image folder, a tarball (of images or of the python pickles), a ``datasets`` folder or file and a
hub dataset all need their PNG/JPEG bytes (or pickles) decoded, about 15 s for the 60,000 images on
2 cores. :func:`cached_split` decodes a split once and keeps its arrays in
``$CIFAR10_FGS_CACHE`` (default ``$XDG_CACHE_HOME/cifar10-fgs``, i.e. ``~/.cache/cifar10-fgs``);
``CIFAR10_FGS_CACHE=off`` turns the cache off. Every later command on the same input reads the
arrays back (a fraction of a second) and decodes nothing.

The key is a fingerprint of the input's content, with the split and this module's version:

* a file (``.tar.gz``, ``.parquet``/``.arrow``): the sha256 of its bytes (20 MB for the JPEG tarball:
  50 ms, much less than one decode; a copy or a ``touch`` still hits, any edit misses);
* a folder (an image folder, ``cifar-10-batches-py``, a ``save_to_disk`` folder): every file's relative
  name, size and modification time (hashing 60,000 files would cost about as much as decoding them; an
  edited, added or removed file changes the key, as ``make`` or ``datasets`` notice a local file change);
* a hub dataset: ``datasets``' own fingerprint of the Arrow files it downloaded (the revision's content).

Each entry is one ``.npz`` written to a temporary file beside it and renamed into place: a reader sees
a whole entry or none, and two processes that decode the same input at once each write a complete
file, the last rename winning with the same bytes. An unreadable entry is decoded again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cifar10_fgs import __version__
from cifar10_fgs.data.split import IMAGE_SHAPE

log = logging.getLogger(__name__)

CACHE_ENV = "CIFAR10_FGS_CACHE"
CACHE_VERSION = 1  # bump when decoding changes what an input's arrays are
_OFF = ("off", "0", "none", "false")


def cache_dir() -> Path | None:
    """Where decoded splits are kept, or None when ``CIFAR10_FGS_CACHE`` turns the cache off."""
    env = os.environ.get(CACHE_ENV)
    if env is not None and env.strip().lower() in _OFF:
        return None
    if env:
        return Path(env).expanduser() / "decoded"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "cifar10-fgs" / "decoded"


def path_fingerprint(path: Path) -> str:
    """sha256 of a file's bytes, or of a folder's files' relative names, sizes and modification times."""
    h = hashlib.sha256()
    if path.is_file():
        h.update(b"file\0")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    h.update(b"folder\0")
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            p = Path(root, name)
            st = p.stat()
            h.update(f"{p.relative_to(path).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _entry(key: dict) -> tuple[Path, str] | None:
    where = cache_dir()
    if where is None:
        return None
    import PIL

    full = {**key, "cache_version": CACHE_VERSION, "cifar10_fgs": __version__, "pillow": PIL.__version__}
    digest = hashlib.sha256(json.dumps(full, sort_keys=True).encode()).hexdigest()
    return where / f"{digest}.npz", digest


def _read(path: Path, digest: str) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["key"]) != digest:
                return None
            images, labels = npz["images"], npz["labels"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # damaged: decode again, replace it
        log.warning("decode cache entry %s is unreadable (%s): decoding the source again", path, exc)
        return None
    if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE or labels.shape != (len(images),):
        return None
    return images, labels


def _write(path: Path, digest: str, images: np.ndarray, labels: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # a read-only cache is not an error: the data were decoded
        log.warning("cannot write the decode cache in %s (%s): the next command decodes again", path.parent, exc)
        return
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, images=images, labels=labels, key=np.array(digest))
        os.replace(tmp, path)  # atomic: readers see the whole entry or none; the last writer wins
    except OSError as exc:
        log.warning("cannot write the decode cache entry %s (%s): the next command decodes again", path, exc)
    finally:
        Path(tmp).unlink(missing_ok=True)


def read_cached(key: dict, where: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached arrays of ``key``, or None (not cached, unreadable, or the cache is off)."""
    entry = _entry(key)
    if entry is None:
        return None
    hit = _read(*entry)
    if hit is not None:
        log.info("read %d decoded images of %s from the cache %s", len(hit[1]), where, entry[0])
    return hit


def cached_split(
    key: dict, decode: Callable[[], tuple[np.ndarray, np.ndarray]], where: str
) -> tuple[np.ndarray, np.ndarray]:
    """``decode()`` once per ``key`` (a JSON-able fingerprint of the input and split); later calls read the cache."""
    hit = read_cached(key, where)
    if hit is not None:
        return hit
    images, labels = decode()
    log.info("decoded %d images of %s", len(labels), where)
    entry = _entry(key)
    if entry is not None:
        _write(entry[0], entry[1], np.ascontiguousarray(images), np.asarray(labels))
    return images, labels
