"""The order images enter the attack's slots: the end of a stream hardest first, so the drain is short.

An image's result never depends on when it enters a slot or what it shares a batch with (see
``attack.fgs``), so the entry order changes only how long the run takes, never a stored byte. What it
changes is the drain: once no image is left to enter, the batch runs part-empty (zero-padded rows)
until its last image is fooled. In row order, an image that needs many steps can enter last and
hold a nearly empty batch for all its steps. Entering the images of the stream's tail by their margin
on the original, largest first (longest processing time first, with the margin standing in for the
steps an image will need), lets the many images fooled in a step or two fill the batch at the end.
Measured on 2,000 test images (docs/performance.md, "Fixed cost of small runs"): rows evaluated
6,208 in row order, ~3,600 with the tail ranked, for 3,544 gradient evaluations.
"""

from __future__ import annotations

import numpy as np

from cifar10_fgs.attack.ladder import margin


def tail_rows(n: int, ranked: int) -> np.ndarray:
    """The positions of the last ``ranked`` of ``n`` stream rows: the ones :func:`entry_order` ranks."""
    return np.arange(max(0, n - max(0, int(ranked))), n)


def entry_order(n: int, tail_logits: np.ndarray, tail_labels: np.ndarray) -> np.ndarray:
    """A permutation of ``range(n)``: the rows before the tail in their order, then the tail by margin, largest first.

    ``tail_logits`` are the model's logits on the originals of :func:`tail_rows` (any forward pass: they
    only rank). Ties keep row order; images the model already gets wrong (negative margin) come last.
    """
    k = len(tail_logits)
    if k > n or len(tail_labels) != k:
        raise ValueError(f"{k} tail logits for {n} rows and {len(tail_labels)} labels")
    head = np.arange(n - k)
    by_margin = np.argsort(-margin(tail_logits, np.asarray(tail_labels)), kind="stable")
    return np.concatenate([head, n - k + by_margin]).astype(np.int64)
