"""CIFAR-10 from every input a user has, as uint8 arrays in the input's own order.

``load_cifar10(cifar10, split)`` loads a split, ``load_cifar10_rows(cifar10, split, choose)`` some of its
rows (a ``--limit`` subset: an image folder or tarball decodes only those). ``cifar10`` (the CIFAR-10
input, ``--cifar10`` on the command line) is one of

* ``hub:<repo_id>`` (default ``hub:uoft-cs/cifar10``): a Hugging Face hub dataset with an image
  column (``img`` or ``image``) and a ``label`` column;
* ``keras``: the canonical ``cifar-10-python.tar.gz`` fetched with ``keras.utils.get_file``;
* a path to ``cifar-10-python.tar.gz`` or its extracted ``cifar-10-batches-py/`` folder (pickles,
  read with a restricted unpickler that builds only containers, bytes and numpy arrays);
* a path to an image folder ``train|test/<class>/*.png|jpg`` or a ``.tar.gz`` of one;
* a path to a folder written by ``datasets`` (``save_to_disk``) or holding parquet/arrow files
  whose names start with the split (``train-*.parquet``, ``data/test-00000-of-00001.arrow``).

Decoded splits are cached by the input's content fingerprint (``cache``: ``~/.cache/cifar10-fgs``,
``CIFAR10_FGS_CACHE`` to move it or ``=off``), so only the first command on an input decodes it.

Rows keep the input's order (for an image folder: class, then file name in natural order), so the
``index`` an adversarial row records (its CIFAR-10 row) joins it back to the same original on every load.

Modules: ``split`` (the ``Cifar10Split`` type, constants and array checks), ``files`` (folders, image
folders, tar archives, keras), ``pickles`` (the restricted unpickler), ``tables`` (``datasets``:
save_to_disk, parquet/arrow, the hub), ``cache`` (decoded splits by input fingerprint).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cifar10_fgs.data.cache import cached_split, path_fingerprint, read_cached
from cifar10_fgs.data.files import image_listing, keras_archive, load_path
from cifar10_fgs.data.pickles import restricted_loads
from cifar10_fgs.data.split import (
    CLASS_NAMES,
    DEFAULT_CIFAR10,
    IMAGE_SHAPE,
    NUM_CLASSES,
    SPLIT_SIZES,
    SPLITS,
    Cifar10Split,
    check_arrays,
    check_split,
    decode_image,
)
from cifar10_fgs.data.tables import datasets_progress, load_hub
from cifar10_fgs.errors import Cifar10Error

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_CIFAR10",
    "IMAGE_SHAPE",
    "NUM_CLASSES",
    "SPLITS",
    "SPLIT_SIZES",
    "Cifar10Split",
    "check_split",
    "datasets_progress",
    "decode_image",
    "load_cifar10",
    "load_cifar10_rows",
    "restricted_loads",
]

log = logging.getLogger(__name__)


def load_cifar10(cifar10: str | Path = DEFAULT_CIFAR10, split: str = "train") -> Cifar10Split:
    """Load one CIFAR-10 split from ``cifar10`` (see the module docstring for what it may be)."""
    check_split(split)
    cifar10 = str(cifar10)
    if cifar10.startswith("hub:"):
        images, labels = load_hub(cifar10[len("hub:") :], split)  # cached by datasets' fingerprint
    else:
        path = _local_path(cifar10)
        images, labels = _decoded_once(path, split, _cache_key(path, split), cifar10)
    return _checked_split(images, labels, cifar10, split)


def load_cifar10_rows(
    cifar10: str | Path, split: str, choose: Callable[[np.ndarray], np.ndarray]
) -> tuple[Cifar10Split, np.ndarray, int]:
    """The rows ``choose(labels)`` of one split, decoding only those where the input allows it.

    ``choose`` maps the split's labels (all of them) to the positions wanted, e.g. a ``--limit`` subset.
    An image folder or a tarball of images whose split is not in the decode cache decodes only those
    rows (and caches nothing: the cache keeps whole splits), so a damaged image outside them goes
    unnoticed until the whole split is loaded; any other input, or a cached split, is loaded whole and
    the rows taken. Returns the rows as a split, their positions, and the split's size.
    """
    check_split(split)
    cifar10 = str(cifar10)
    if cifar10.startswith("hub:"):
        full = load_cifar10(cifar10, split)
    else:
        path = _local_path(cifar10)
        where = f"{cifar10} ({split})"
        key = _cache_key(path, split)
        hit = read_cached(key, where)
        listing = image_listing(path, split) if hit is None else None
        if listing is not None:
            return _decode_rows(listing, choose, cifar10, split)
        images, labels = hit if hit is not None else _decoded_once(path, split, key, cifar10)
        full = _checked_split(images, labels, cifar10, split)
    rows = np.asarray(choose(full.labels), np.int64)
    return full.take(rows), rows, len(full)


def _decoded_once(path: Path, split: str, key: dict, origin: str) -> tuple[np.ndarray, np.ndarray]:
    """The whole split, decoded on the first command and read from the decode cache on every later one."""
    return cached_split(key, lambda: load_path(path, split), f"{origin} ({split})")


def _checked_split(images, labels, origin: str, split: str) -> Cifar10Split:
    images, labels = check_arrays(images, labels, origin, split)
    log.info("loaded %d %s images from %s", len(labels), split, origin)
    return Cifar10Split(images, labels, origin, split)


def _decode_rows(listing, choose, origin: str, split: str) -> tuple[Cifar10Split, np.ndarray, int]:
    if not len(listing.labels):  # the same one-line "is empty" error as a whole load
        check_arrays(np.zeros((0, *IMAGE_SHAPE), np.uint8), listing.labels, origin, split)
    rows = np.asarray(choose(listing.labels), np.int64)
    images, labels = check_arrays(listing.decode(rows), listing.labels[rows], origin, split)
    log.info("decoded %d of the %d %s images of %s: the rows asked for", len(rows), len(listing.labels), split, origin)
    return Cifar10Split(images, labels, origin, split), rows, len(listing.labels)


def _local_path(cifar10: str) -> Path:
    path = keras_archive() if cifar10 == "keras" else Path(cifar10).expanduser()
    if not path.exists():
        raise Cifar10Error(
            f"CIFAR-10 input {cifar10!r} does not exist: pass --cifar10 an existing path, "
            f"'hub:<repo_id>' (e.g. {DEFAULT_CIFAR10}) or 'keras'"
        )
    return path


def _cache_key(path: Path, split: str) -> dict:
    table_file = path.is_file() and path.suffix in (".parquet", ".arrow")  # its name says its split
    return {"path_fingerprint": path_fingerprint(path), "name": path.name if table_file else None, "split": split}
