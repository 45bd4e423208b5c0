"""The order images enter the attack's slots: a short stream hardest first, so its drain is short.

An image's result never depends on when it enters a slot or what it shares a batch with (see
``attack.fgs``), so the entry order changes only how long the run takes, never a stored byte. What it
changes is the drain: once no image is left to enter, the batch runs part-empty (zero-padded rows)
until its last image is fooled. In row order, an image that needs many steps can enter last and
hold a nearly empty batch for all its steps. Entering the images by their margin on the original,
largest first (longest processing time first, with the margin standing in for the steps an image
will need), lets the many images fooled in a step or two fill the batch at the end.

It pays on a short stream, where the drain is a large share of the run and ranking costs little: one
forward pass per image, about a third of a gradient evaluation. Measured (docs/performance.md, "Fixed
cost of small runs"): on 2,000 test images, 4,864 rows evaluated instead of 5,960 to 6,952 and no
drain trace; on 10,000, ranking the last 4,096 rows saved nothing (the slowest images, 65 and 72
evaluations, entered early) and cost 5 s. So ``generate`` ranks streams of at most
``config.RANKED_STREAM_ROWS`` rows and leaves longer ones in row order.
"""

from __future__ import annotations

import numpy as np

from cifar10_fgs.attack.ladder import margin


def entry_order(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A permutation of the rows: by margin ``z_y - max_{j != y} z_j`` on the originals, largest first.

    ``logits`` are the model's on the originals (any forward pass: they only rank). Ties keep row order;
    images the model already gets wrong (negative margin, one evaluation each) come last.
    """
    if len(logits) != len(labels):
        raise ValueError(f"{len(logits)} logits for {len(labels)} labels")
    return np.argsort(-margin(logits, np.asarray(labels)), kind="stable").astype(np.int64)
