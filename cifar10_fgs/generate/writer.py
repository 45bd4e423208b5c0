"""``generate``'s writers: the manifest rewritten after every shard, and the shards written on a thread.

A shard becomes visible (renamed into ``data/``) only when complete, and is recorded in ``generation.json``
with its sha256 right after, so a run killed at any moment leaves only complete shards that resume trusts.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from cifar10_fgs.attack.fgs import AttackRecord
from cifar10_fgs.dataset import manifest as mf
from cifar10_fgs.dataset.manifest import Manifest, ShardEntry
from cifar10_fgs.dataset.shards import TMP_DIR, features, record_table, shard_name, write_table_atomic

log = logging.getLogger(__name__)


class ManifestWriter:
    """The manifest of the folder being written: replaced and rewritten after every shard (thread-safe)."""

    def __init__(self, dataset_dir: Path, manifest: Manifest):
        self.dataset_dir = dataset_dir
        self.manifest = manifest
        self.lock = threading.Lock()

    def add_shard(self, name: str, entry: ShardEntry, seconds: float) -> None:
        with self.lock:
            m = self.manifest
            timing = dataclasses.replace(m.timing, shard_seconds={**m.timing.shard_seconds, name: round(seconds, 3)})
            self.manifest = m.replace(shards={**m.shards, name: entry}, timing=timing)
            mf.write(self.dataset_dir, self.manifest)


class ShardWriter:
    """Writes finished shards on one background thread, recording each in the manifest."""

    def __init__(self, dataset_dir: Path, with_originals: bool, record: ManifestWriter):
        self.dataset_dir = dataset_dir
        self.with_originals = with_originals
        self.record = record
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-writer")
        self._futures: list[Future] = []
        self._pool.submit(features, self.with_originals)  # imports `datasets` while the attack runs, not after it

    def submit(self, split: str, k: int, n: int, parts: list[AttackRecord], images, rows, seconds: float) -> None:
        """Queue shard ``k`` of ``n`` of ``split`` from its records (``index``: the CIFAR-10 row), its original
        ``images`` and their CIFAR-10 ``rows`` (ascending)."""
        self._futures.append(self._pool.submit(self._write, split, k, n, parts, images, rows, seconds))

    def raise_errors(self) -> None:
        """Surface the errors of shards already written (disk full, ...) early."""
        for f in [f for f in self._futures if f.done()]:
            f.result()

    def wait(self) -> None:
        for f in self._futures:
            f.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _write(self, split: str, k: int, n: int, parts: list[AttackRecord], images, rows, seconds: float) -> None:
        rec = AttackRecord.concat(parts)
        rec = rec.take(np.argsort(rec.index, kind="stable"))
        keep = rec.fooled
        kept = rec.take(np.flatnonzero(keep))
        originals = images[np.searchsorted(rows, kept.index)] if self.with_originals else None
        table = record_table(kept, originals)
        name = shard_name(split, k, n)
        digest, size = write_table_atomic(table, self.dataset_dir / name, self.dataset_dir / TMP_DIR)
        entry = ShardEntry(
            split,
            k,
            int(table.num_rows),
            digest,
            size,
            (int(rows[0]), int(rows[-1]) + 1),  # the CIFAR-10 rows the shard spans (manifest.rows)
            tuple(rec.index[~keep].tolist()),
            gradient_evaluations=int(rec.evaluations.sum()),
        )
        self.record.add_shard(name, entry, seconds)
        log.info("wrote %s (%d rows)", name, table.num_rows)
