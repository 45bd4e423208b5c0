"""``datasets`` inputs: a ``save_to_disk`` folder, parquet/arrow files, a hub dataset; ``datasets``' progress bars."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np

from cifar10_fgs.data.cache import cached_split
from cifar10_fgs.data.split import CLASS_NAMES, DEFAULT_CIFAR10, IMAGE_SHAPE, decode_image
from cifar10_fgs.errors import Cifar10Error, one_line

log = logging.getLogger(__name__)


def _columns(features, where: str) -> tuple[str, str]:
    image_col = next((c for c in ("img", "image") if c in features), None)
    label_col = next((c for c in ("label", "labels") if c in features), None)
    if image_col is None or label_col is None:
        raise Cifar10Error(
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


def _from_dataset(ds, where: str) -> tuple[np.ndarray, np.ndarray]:
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
                    raise Cifar10Error(
                        f"row {i} of {where} points to an unreadable image ({one_line(exc)}): expected image bytes"
                    ) from None
            if data is None:
                raise Cifar10Error(f"row {i} of {where} has no image bytes: expected an image in every row")
            images[i] = decode_image(data, f"row {i} of {where}")
    else:
        try:
            images = np.asarray(ds.with_format("numpy")[image_col][:])
        except (TypeError, ValueError) as exc:
            raise Cifar10Error(
                f"column {image_col!r} of {where} is not an image array ({one_line(exc)}): expected 32x32x3 images"
            ) from None
        if (
            images.dtype != np.uint8
            and np.issubdtype(images.dtype, np.integer)
            and images.size
            and images.min() >= 0
            and images.max() <= 255
        ):
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


def load_saved_dataset(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of ``split`` from a ``save_to_disk`` folder (a DatasetDict or one split)."""
    import datasets

    try:
        with datasets_progress():
            ds = datasets.load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001
        raise Cifar10Error(f"{path} is not a readable save_to_disk folder ({one_line(exc)}): save it again") from None
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise Cifar10Error(f"{path} has splits {sorted(ds)}: expected a {split!r} split")
        ds = ds[split]
    elif ds.split is not None and str(ds.split) != split:
        raise Cifar10Error(
            f"{path} holds the {str(ds.split)!r} split but {split!r} was asked for: pass the DatasetDict folder above it"
        )
    return _from_dataset(ds, f"{path} ({split})")


def load_table_files(files: list[Path], split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of ``split`` from parquet or arrow files (one format)."""
    import datasets

    kinds = {f.suffix for f in files}
    if len(kinds) > 1:
        raise Cifar10Error(
            f"{files[0].parent} mixes {' and '.join(sorted(kinds))} files for split {split!r}: expected one format"
        )
    kind = "parquet" if files[0].suffix == ".parquet" else "arrow"
    try:
        with datasets_progress():
            ds = datasets.load_dataset(kind, data_files={split: [str(f) for f in files]}, split=split)
    except Exception as exc:  # noqa: BLE001
        raise Cifar10Error(f"cannot read {files[0]} ({one_line(exc)}): expected valid {kind} files") from None
    return _from_dataset(ds, f"{files[0].parent} ({split})")


def load_hub(repo_id: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of ``split`` of the hub dataset ``repo_id``."""
    import datasets

    if not repo_id:
        raise Cifar10Error(f"'hub:' names no dataset: pass e.g. --cifar10 {DEFAULT_CIFAR10}")
    try:
        ds = datasets.load_dataset(repo_id, split=split)
    except Exception as exc:  # noqa: BLE001 - offline, missing repo, auth: all one-line errors
        raise Cifar10Error(
            f"cannot load {repo_id!r} from the Hugging Face hub ({one_line(exc, 160)}): connect to the "
            "internet (and unset HF_HUB_OFFLINE) or pass a local copy with --cifar10 PATH"
        ) from None
    where = f"hub:{repo_id} ({split})"
    key = {"hub": repo_id, "split": split, "arrow_fingerprint": ds._fingerprint}  # the downloaded revision's content
    return cached_split(key, lambda: _from_dataset(ds, where), where)
