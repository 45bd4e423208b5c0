"""The source model's logits on the originals, computed once per ``generate`` and shared by who needs them.

The source check (``generate.check``: a class-balanced sample) and a short stream's entry order
(``attack.schedule``: every row of the stream) both need the model's forward pass on originals; each row
is computed once (a short stream holds the check's sample).
"""

from __future__ import annotations

import numpy as np

from cifar10_fgs.config import NUM_LOGITS, PREDICT_BATCH_SIZE
from cifar10_fgs.data import Cifar10Split
from cifar10_fgs.models.inference import predict_logits


class OriginalLogits:
    """``of(split, rows)``: the model's logits on those originals of ``split``, each row predicted once.

    Keyed by the split's name: one ``generate`` call has one ``Cifar10Split`` per name.
    """

    def __init__(self, model, batch_size: int = PREDICT_BATCH_SIZE):
        self.model, self.batch_size = model, batch_size
        self._logits: dict[str, np.ndarray] = {}
        self._known: dict[str, np.ndarray] = {}  # split -> bool per row: its logits were predicted

    def of(self, data: Cifar10Split, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        if len(self._known.get(data.split, ())) != len(data):
            self._logits[data.split] = np.zeros((len(data), NUM_LOGITS), np.float32)
            self._known[data.split] = np.zeros(len(data), bool)
        logits, known = self._logits[data.split], self._known[data.split]
        missing = np.unique(rows[~known[rows]])
        if len(missing):
            logits[missing] = predict_logits(self.model, data.images[missing], self.batch_size)
            known[missing] = True
        return logits[rows].copy()
