"""The source model's logits on the originals, computed once per ``generate`` and shared by who needs them.

The source check (``generate.check``: a class-balanced sample) and the stream's entry order
(``attack.schedule``: the stream's last rows) both need the model's forward pass on originals; each row is
computed once. :meth:`OriginalLogits.prefetch` is meant to run on a thread while ``generate`` traces the
attack's gradient function: the trace is Python on one core, the forward pass runs TensorFlow kernels
that release the GIL, so on a 2-core CPU most of the pass hides behind the trace (docs/performance.md).
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from cifar10_fgs.config import NUM_LOGITS, PREDICT_BATCH_SIZE
from cifar10_fgs.data import Cifar10Split
from cifar10_fgs.models.inference import predict_logits

log = logging.getLogger(__name__)


class OriginalLogits:
    """``of(split, rows)``: the model's logits on those originals of ``split``, each row predicted once.

    Keyed by the split's name: one ``generate`` call has one ``Cifar10Split`` per name. Thread-safe.
    """

    def __init__(self, model, batch_size: int = PREDICT_BATCH_SIZE):
        self.model, self.batch_size = model, batch_size
        self._logits: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def of(self, data: Cifar10Split, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        with self._lock:
            known = self._logits.get(data.split)
            if known is None or len(known) != len(data):
                known = self._logits[data.split] = np.full((len(data), NUM_LOGITS), np.nan, np.float32)
            missing = np.unique(rows[np.isnan(known[rows, 0])])
            if len(missing):
                known[missing] = predict_logits(self.model, data.images[missing], self.batch_size)
            return known[rows].copy()

    def prefetch(self, wanted: list[tuple[Cifar10Split, np.ndarray]]) -> None:
        """Predict the rows of each ``(split, rows)`` not yet known, in one pass per split."""
        t0 = time.perf_counter()
        by_split: dict[str, tuple[Cifar10Split, list[np.ndarray]]] = {}
        for data, rows in wanted:
            by_split.setdefault(data.split, (data, []))[1].append(np.asarray(rows, np.int64))
        n = 0
        for data, parts in by_split.values():
            rows = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
            n += len(rows)
            if len(rows):
                self.of(data, rows)
        log.info(
            "predicted %d originals for the source check and the entry order in %.1fs", n, time.perf_counter() - t0
        )
