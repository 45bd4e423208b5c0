"""The ``index`` column: the CIFAR-10 row of every stored image, for a whole split and for a ``--limit`` subset.

A split is generated from ``num_rows`` rows of the CIFAR-10 split, in ascending order: all of them, or the
``--limit`` subset ``config.splits.<split>.subset.original_rows``. Position ``p`` of that list is CIFAR-10 row
``original_rows[p]``, and every record that names an image names it by that row:

* the shards' ``index`` column, and the ``failures`` listed per shard and per split in ``generation.json``;
* shard ``k`` holds the fooled images among positions ``[k*R, (k+1)*R)`` (R rows per shard), and its
  ``index_range`` is ``[original_rows[k*R], original_rows[last] + 1)``: the CIFAR-10 rows it spans. For a whole
  split that is ``[k*R, (k+1)*R)``; for a subset, the rows between its first and last row that are not in the subset
  are in no shard.
"""

from __future__ import annotations

import numpy as np


class SplitRows:
    """``original_rows[p]``: the CIFAR-10 row of generated position ``p`` (ascending)."""

    def __init__(self, original_rows):
        self.original_rows = np.asarray(original_rows, np.int64)

    def __len__(self) -> int:
        return len(self.original_rows)

    def shard(self, k: int, rows_per_shard: int) -> np.ndarray:
        """The CIFAR-10 rows of shard ``k``'s positions."""
        return self.original_rows[k * rows_per_shard : (k + 1) * rows_per_shard]

    def index_range(self, k: int, rows_per_shard: int) -> tuple[int, int]:
        """Shard ``k``'s ``index_range``: [its first CIFAR-10 row, its last + 1)."""
        rows = self.shard(k, rows_per_shard)
        return int(rows[0]), int(rows[-1]) + 1

    def positions(self, index) -> np.ndarray:
        """The generated position of each CIFAR-10 row in ``index``; -1 where it is none of the split's rows."""
        index = np.asarray(index, np.int64).reshape(-1)
        pos = np.searchsorted(self.original_rows, index)
        hit = pos < len(self.original_rows)
        hit[hit] = self.original_rows[pos[hit]] == index[hit]
        return np.where(hit, pos, -1)
