"""The dataset folder's layout and its Arrow shards: the one place shards are written and read.

Folder layout (``DIR``)::

    data/<split>-<i:05d>-of-<n:05d>.arrow   shards, visible only when complete
    generation.json                         settings, provenance, per-shard sha256, summary (``manifest``)
    README.md                               the dataset card (``card``)
    figures/*.png                           the card's figures
    results/<name>.json|.md|*.png           evaluation results (``evaluate``)
    .lock, .tmp/                            held / used while ``generate`` runs

Each shard is an Arrow IPC stream whose schema carries ``datasets`` features in its metadata, so
``datasets.load_dataset(DIR)`` reads it with no conversion: ``image`` (and optionally
``original_image``) as an ``Image`` feature holding PNG bytes, ``label`` and both predictions as
``ClassLabel`` with the CIFAR-10 names, numeric fields typed. A shard becomes visible under
``data/`` only when complete: it is written elsewhere, fsynced and renamed.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np

from cifar10_fgs.attack.fgs import AttackRecord
from cifar10_fgs.config import PHASES, ROWS_PER_SHARD
from cifar10_fgs.data import CLASS_NAMES, IMAGE_SHAPE, decode_image
from cifar10_fgs.provenance import current_umask, fsync_dir, sha256_file

DATA_DIR = "data"
TMP_DIR = ".tmp"
LOCK = ".lock"
CARD = "README.md"
FIGURES_DIR = "figures"
RESULTS_DIR = "results"


def shard_name(split: str, i: int, n: int) -> str:
    return f"{DATA_DIR}/{split}-{i:05d}-of-{n:05d}.arrow"


def num_shards(rows: int, rows_per_shard: int = ROWS_PER_SHARD) -> int:
    return max(1, -(-rows // rows_per_shard))


def features(with_originals: bool = False):
    import datasets

    labels = datasets.ClassLabel(names=list(CLASS_NAMES))
    cols = {
        "image": datasets.Image(),
        "label": labels,
        "index": datasets.Value("int32"),
        "original_prediction": labels,
        "original_confidence": datasets.Value("float32"),
        "adversarial_prediction": labels,
        "adversarial_confidence": datasets.Value("float32"),
        "iterations": datasets.Value("int32"),
        "linf": datasets.Value("float32"),
        "l2": datasets.Value("float32"),
        "phase": datasets.ClassLabel(names=list(PHASES)),
    }
    if with_originals:
        cols["original_image"] = datasets.Image()
    return datasets.Features(cols)


def encode_png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image, mode="RGB").save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def record_table(record: AttackRecord, originals: np.ndarray | None = None):
    """An Arrow table of the rows of ``record``, with ``datasets`` features in the schema metadata."""
    import pyarrow as pa

    feats = features(originals is not None)
    cols = {
        "image": [{"bytes": encode_png(img), "path": None} for img in record.adversarial],
        "label": record.label.astype(np.int64),
        "index": record.index.astype(np.int32),
        "original_prediction": record.original_prediction.astype(np.int64),
        "original_confidence": record.original_confidence.astype(np.float32),
        "adversarial_prediction": record.adversarial_prediction.astype(np.int64),
        "adversarial_confidence": record.adversarial_confidence.astype(np.float32),
        "iterations": record.iterations.astype(np.int32),
        "linf": record.linf.astype(np.float32),
        "l2": record.l2.astype(np.float32),
        "phase": record.phase.astype(np.int64),
    }
    if originals is not None:
        cols["original_image"] = [{"bytes": encode_png(img), "path": None} for img in originals]
    schema = feats.arrow_schema
    return pa.Table.from_pydict({k: cols[k] for k in schema.names}, schema=schema)


def write_table_atomic(table, path: Path, tmp_dir: Path) -> tuple[str, int]:
    """Write ``table`` as an Arrow stream to ``path`` via a fsynced temp file; return (sha256, bytes)."""
    import pyarrow as pa

    tmp_dir.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".partial", dir=tmp_dir)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            with pa.ipc.new_stream(f, table.schema) as writer:
                writer.write_table(table, max_chunksize=1000)
            f.flush()
            os.fsync(f.fileno())
        digest = sha256_file(tmp)
        size = os.path.getsize(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return digest, size


def file_matches(path: Path, sha256: str, nbytes: int) -> bool:
    """The file at ``path`` exists with exactly ``nbytes`` bytes hashing to ``sha256``."""
    return path.is_file() and path.stat().st_size == nbytes and sha256_file(path) == sha256


def read_shard(path: str | Path, columns: list[str] | None = None):
    """Read a shard's Arrow table straight from its bytes (never through a cache)."""
    import pyarrow as pa

    with pa.memory_map(str(path), "r") as source:
        table = pa.ipc.open_stream(source).read_all()
    if columns is not None:
        table = table.select(columns)
    return table


def read_columns(dataset_dir: Path, names, columns):
    """``columns`` of the shards ``names`` (relative to ``dataset_dir``), concatenated in that order."""
    import pyarrow as pa

    return pa.concat_tables([read_shard(dataset_dir / n, list(columns)) for n in names])


def stream_info(path: str | Path):
    """(schema, rows, Arrow buffer bytes as ``datasets`` counts them) of a shard, reading batch by batch."""
    import pyarrow as pa

    rows = nbytes = 0
    with pa.memory_map(str(path), "r") as source:
        reader = pa.ipc.open_stream(source)
        for batch in reader:
            rows += batch.num_rows
            nbytes += batch.nbytes
        return reader.schema, rows, nbytes


def decode_images(cells) -> np.ndarray:
    """Decode a list of ``{"bytes": ...}`` image cells to uint8 (N, 32, 32, 3)."""

    out = np.empty((len(cells), *IMAGE_SHAPE), np.uint8)
    for i, cell in enumerate(cells):
        out[i] = decode_image(cell["bytes"], f"row {i}")
    return out
