"""Reading for validate: shards hashed, read and decoded in a prefetch thread; the model run in another.

Memory holds about two shards plus two model chunks.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cifar10_fgs.config import CONFIDENCE_TOLERANCE
from cifar10_fgs.data import IMAGE_SHAPE, decode_image, load_cifar10
from cifar10_fgs.dataset.manifest import Cifar10MismatchError, Manifest, ShardEntry, SplitRows
from cifar10_fgs.dataset.shards import read_shard
from cifar10_fgs.errors import Cifar10FgsError
from cifar10_fgs.models.inference import predict_logits, softmax
from cifar10_fgs.provenance import sha256_file
from cifar10_fgs.validate.report import Collector

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class ShardSpec:
    name: str  # data/<split>-<i>-of-<n>.arrow
    split: str
    k: int
    lo: int  # first position of the shard among the split's generated rows (``rows``)
    hi: int  # one past the last
    entry: ShardEntry | None  # generation.json's entry, None if not listed or malformed
    rows: SplitRows  # the split's: the CIFAR-10 row of each position

    @property
    def index_range(self) -> tuple[int, int]:
        """The CIFAR-10 rows [first, last + 1) the shard spans (its ``index`` values lie among them)."""
        return int(self.rows.original_rows[self.lo]), int(self.rows.original_rows[self.hi - 1]) + 1

    @property
    def span(self) -> str:
        lo, hi = self.index_range
        return f"rows {lo}..{hi - 1}"


@dataclass
class ShardData:
    spec: ShardSpec
    exists: bool = False
    size: int | None = None
    sha256: str | None = None
    table: pa.Table | None = None  # None: missing or unreadable (``error`` says why)
    error: str | None = None
    images: np.ndarray | None = None  # decoded adversarial images, zeros where undecodable
    decoded: np.ndarray | None = None  # bool per row
    decode_errors: list = field(default_factory=list)  # (row, message)
    originals: np.ndarray | None = None  # decoded original_image column
    originals_decoded: np.ndarray | None = None
    original_errors: list = field(default_factory=list)
    original_split: np.ndarray | None = None  # the original CIFAR-10 split's images (indexed by ``index``), or None
    cifar10_problem: str | None = None  # set on the first shard of a split whose --cifar10 does not match
    cifar10_loaded: bool = False  # this shard's read loaded its split from --cifar10

    def decoded_images(self) -> tuple[np.ndarray, np.ndarray]:
        """(images, decoded mask) of a shard whose rows were read and decoded (``check_shard`` returned True)."""
        if self.images is None or self.decoded is None:
            raise ValueError(f"{self.spec.name}'s rows were not decoded")
        return self.images, self.decoded


def _decode_column(table, column: str):
    """Decode an Image column: (uint8 (N,32,32,3), ok mask, [(row, message)])."""

    n = table.num_rows
    out = np.zeros((n, *IMAGE_SHAPE), np.uint8)
    ok = np.zeros(n, bool)
    errors = []
    cells = table.column(column).combine_chunks()
    data = cells.field("bytes").to_pylist() if n else []
    valid = cells.is_valid().to_pylist() if n else []
    for i, b in enumerate(data):
        if not valid[i] or b is None:
            errors.append((i, f"{column} has no image bytes"))
            continue
        try:
            arr = decode_image(b, column)
        except Cifar10FgsError as exc:  # "<column> is not a readable image (...): expected ..."
            errors.append((i, str(exc).rsplit(": expected", 1)[0]))
            continue
        if arr.dtype != np.uint8 or arr.shape != IMAGE_SHAPE:
            errors.append((i, f"{column} decodes to {arr.dtype} {arr.shape}, not uint8 {IMAGE_SHAPE}"))
            continue
        out[i] = arr
        ok[i] = True
    return out, ok, errors


def _read_shard(dataset_dir: Path, spec: ShardSpec, expected_schema, originals: _OriginalsCache) -> ShardData:
    """Hash, read and decode one shard (runs in the prefetch thread)."""
    import os

    d = ShardData(spec)
    d.original_split, d.cifar10_problem, d.cifar10_loaded = originals.get(spec.split)
    path = dataset_dir / spec.name
    if not path.is_file():
        return d
    d.exists = True
    d.size = os.path.getsize(path)
    d.sha256 = sha256_file(path)
    try:
        table = read_shard(path)
    except Exception as exc:  # noqa: BLE001 - any Arrow/OS error means an unreadable shard
        d.error = (
            f"is not a readable Arrow stream ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        )
        return d
    d.table = table
    if not table.schema.remove_metadata().equals(expected_schema.remove_metadata()):
        return d  # reported by the schema check; rows are not interpreted
    d.images, d.decoded, d.decode_errors = _decode_column(table, "image")
    if "original_image" in table.column_names:
        d.originals, d.originals_decoded, d.original_errors = _decode_column(table, "original_image")
    return d


class _OriginalsCache:
    """The original split for the shard being read, loaded once per split (in the prefetch thread): all of it,
    once its generated rows (all, or the ``--limit`` subset) have the recorded fingerprint.

    ``get`` returns ``(images or None, problem or None, loaded now)``; the caller records the problem.
    """

    def __init__(self, cifar10, manifest: Manifest):
        self.cifar10 = cifar10
        self.manifest = manifest
        self.split: str | None = None
        self.images: np.ndarray | None = None

    def get(self, split: str) -> tuple[np.ndarray | None, str | None, bool]:

        if self.cifar10 is None:
            return None, None, False
        if split == self.split:
            return self.images, None, False
        self.split, self.images = split, None
        full = load_cifar10(self.cifar10, split)  # an unreadable --cifar10 is bad input: raised
        try:
            self.manifest.check_cifar10_fingerprint(split, full)
            self.images = full.images
        except Cifar10MismatchError as exc:
            return None, str(exc), True
        return self.images, None, True


def prefetched(dataset_dir: Path, specs: list[ShardSpec], expected_schemas, originals: _OriginalsCache):
    """Yield ``ShardData`` in order, reading the next shard in a thread while the caller works."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="validate-read") as pool:

        def submit(spec):
            return pool.submit(_read_shard, dataset_dir, spec, expected_schemas, originals)

        if not specs:
            return
        pending = submit(specs[0])
        for spec in specs[1:]:
            current, pending = pending, submit(spec)
            yield current.result()
        yield pending.result()


def _predict_chunk(chunk: list[ShardData], model, batch_size: int):
    """The model's predictions and confidences on the decoded images of ``chunk`` (predict thread)."""

    parts = []
    for d in chunk:
        images, ok = d.decoded_images()
        rows = np.flatnonzero(ok)
        if len(rows):
            parts.append((d, images[rows], rows))
    if not parts:
        return []
    images = np.concatenate([x for _, x, _ in parts])
    logits = predict_logits(model, images, batch_size=batch_size)
    pred = logits.argmax(axis=1)
    conf = softmax(logits).max(axis=1).astype(np.float32)
    out, start = [], 0
    for d, _, rows in parts:
        out.append((d, rows, pred[start : start + len(rows)], conf[start : start + len(rows)]))
        start += len(rows)
    return out


def _record_predictions(results, col: Collector) -> None:
    """Compare the model's predictions with the stored label, adversarial_prediction and confidence."""
    for d, rows, p, c in results:
        t = d.table
        index = t.column("index").to_numpy()[rows]
        label = t.column("label").to_numpy()[rows]
        stored = t.column("adversarial_prediction").to_numpy()[rows]
        stored_conf = t.column("adversarial_confidence").to_numpy()[rows]
        where = {"split": d.spec.split, "shard": d.spec.name}
        col.checked("misclassified", len(rows))
        col.checked("adversarial_prediction", len(rows))
        for j in np.flatnonzero(p == label):
            col.fail(
                "misclassified",
                f"the model predicts the true label {int(label[j])}: the image is not adversarial",
                row=int(rows[j]),
                index=int(index[j]),
                **where,
            )
        for j in np.flatnonzero(p != stored):
            col.fail(
                "adversarial_prediction",
                f"the model predicts {int(p[j])}, the stored adversarial_prediction is {int(stored[j])}",
                row=int(rows[j]),
                index=int(index[j]),
                **where,
            )
        for j in np.flatnonzero((p == stored) & ~(np.abs(c - stored_conf) <= CONFIDENCE_TOLERANCE)):
            col.fail(
                "adversarial_prediction",
                f"the model's confidence {float(c[j]):.7g} differs from the stored "
                f"adversarial_confidence {float(stored_conf[j]):.7g}",
                row=int(rows[j]),
                index=int(index[j]),
                **where,
            )


class Predictor:
    """Loads the model and runs it on chunks of shards in its own thread, one chunk at a time.

    A chunk goes to the model as soon as the model is idle, so it starts on the first shard; while
    it works, the caller reads and checks the next shards into the following chunk (at most
    ``chunk_rows`` rows, then the caller waits). ``predict_logits`` traces the model once per batch size,
    so larger calls only pad fewer tail batches. Failures are recorded in the caller's thread.
    """

    def __init__(self, load_model: Callable, batch_size: int, chunk_rows: int, col: Collector):
        """``load_model()`` returns the model to run (uint8 levels in, logits out); it runs in the model's thread."""
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="validate-predict")
        self.model = self.pool.submit(load_model)
        self.batch_size = batch_size
        self.chunk_rows = chunk_rows
        self.col = col
        self.chunk: list[ShardData] = []
        self.rows = 0
        self.pending: Future | None = None

    def add(self, d: ShardData) -> None:
        self.chunk.append(d)
        self.rows += int(d.decoded_images()[1].sum())
        if self.pending is None or self.pending.done() or self.rows >= self.chunk_rows:
            self._flush()

    def _flush(self) -> None:
        self._wait()
        if self.chunk:
            chunk, self.chunk, self.rows = self.chunk, [], 0
            self.pending = self.pool.submit(lambda: _predict_chunk(chunk, self.model.result(), self.batch_size))

    def _wait(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            _record_predictions(pending.result(), self.col)

    def finish(self) -> None:
        self._flush()
        self._wait()
        self.model.result()  # a model that cannot be loaded is bad input even if no row was read

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
