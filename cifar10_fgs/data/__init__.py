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

Decoded splits are cached by the source's content fingerprint (``cache``: ``~/.cache/cifar10-fgs``,
``CIFAR10_FGS_CACHE`` to move it or ``=off``), so only the first command on a source decodes it.

Rows keep the source's order (for an image folder: class, then file name in natural order), so
row ``i`` of an adversarial split always joins back to row ``i`` of the original split.

Modules: ``split`` (the ``Cifar10Split`` type, constants and array checks), ``files`` (folders, image
folders, tar archives, keras), ``pickles`` (the restricted unpickler), ``tables`` (``datasets``:
save_to_disk, parquet/arrow, the hub), ``cache`` (decoded splits by source fingerprint).
"""

from __future__ import annotations

import logging
from pathlib import Path

from cifar10_fgs.data.cache import cached_split, path_fingerprint
from cifar10_fgs.data.files import keras_archive, load_path
from cifar10_fgs.data.pickles import restricted_loads
from cifar10_fgs.data.split import (
    CLASS_NAMES,
    DEFAULT_SOURCE,
    IMAGE_SHAPE,
    KERAS_CIFAR10_URL,
    NUM_CLASSES,
    SPLIT_SIZES,
    SPLITS,
    Cifar10Split,
    check_arrays,
    check_split,
    decode_image,
)
from cifar10_fgs.data.tables import datasets_progress, load_hub
from cifar10_fgs.errors import DataSourceError, one_line

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_SOURCE",
    "IMAGE_SHAPE",
    "KERAS_CIFAR10_URL",
    "NUM_CLASSES",
    "SPLITS",
    "SPLIT_SIZES",
    "Cifar10Split",
    "check_split",
    "datasets_progress",
    "decode_image",
    "load_cifar10",
    "one_line",
    "restricted_loads",
]

log = logging.getLogger(__name__)


def load_cifar10(source: str | Path = DEFAULT_SOURCE, split: str = "train") -> Cifar10Split:
    """Load one CIFAR-10 split from ``source`` (see the module docstring for what it may be)."""
    check_split(split)
    source_str = str(source)
    if source_str.startswith("hub:"):
        images, labels = load_hub(source_str[len("hub:") :], split)  # cached by datasets' fingerprint
    else:
        path = keras_archive() if source_str == "keras" else Path(source_str).expanduser()
        if not path.exists():
            raise DataSourceError(
                f"CIFAR-10 source {source_str!r} does not exist: pass an existing path, "
                f"'hub:<repo_id>' (e.g. {DEFAULT_SOURCE}) or 'keras'"
            )
        table_file = path.is_file() and path.suffix in (".parquet", ".arrow")  # its name says its split
        key = {"path_fingerprint": path_fingerprint(path), "name": path.name if table_file else None, "split": split}
        images, labels = cached_split(key, lambda: load_path(path, split), f"{source_str} ({split})")
    images, labels = check_arrays(images, labels, source_str, split)
    log.info("loaded %d %s images from %s", len(labels), split, source_str)
    return Cifar10Split(images, labels, source_str, split)
