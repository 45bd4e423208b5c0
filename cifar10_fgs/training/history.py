"""The training history file ``MODEL.history.jsonl``: one JSON row per finished epoch, owned here.

Rows are ``{"epoch": 1-based, "seconds": wall time, <Keras logs>}``; the file is appended as epochs
finish, so a killed run keeps its rows, and a resumed run cuts rows past the epoch it resumes at.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from cifar10_fgs.provenance import atomic_write_bytes

log = logging.getLogger(__name__)


def history_file(model_path: str | Path) -> Path:
    """Where the history of the model saved at ``model_path`` is kept: ``MODEL.history.jsonl``."""
    return Path(model_path).with_suffix(".history.jsonl")


def history_callback(history_path: Path):
    """A Keras callback appending one JSON row per finished epoch to ``history_path``."""
    import keras

    class _History(keras.callbacks.Callback):
        first = True

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.time()
            if self.first:  # resumed at ``epoch``: keep rows 1..epoch only (none twice, none from the future)
                self.first = False
                truncate_history(history_path, epoch)

        def on_epoch_end(self, epoch, logs=None):
            row = {
                "epoch": epoch + 1,
                "seconds": round(time.time() - self.t0, 1),
                **{k: round(float(v), 5) for k, v in (logs or {}).items()},
            }
            log.info("epoch %d: %s", epoch + 1, row)
            with open(history_path, "a") as f:
                f.write(json.dumps(row, sort_keys=True) + "\n")

    return _History()


def seed_history(history_path: Path, rows: list[dict], start_epoch: int) -> None:
    """Start a new history with the ``rows`` of epochs 1..``start_epoch`` (a resumed history is kept)."""
    if read_history(history_path):
        return
    _write_rows(history_path, [r for r in rows if r.get("epoch", 0) <= start_epoch])


def read_history(path: Path) -> list[dict]:
    """Rows of ``history.jsonl``, one per epoch (the last row wins), skipping a torn last line."""
    rows: dict[int, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
                rows[int(row["epoch"])] = row
            except (ValueError, KeyError, TypeError):
                continue
    return [rows[k] for k in sorted(rows)]


def truncate_history(path: Path, epochs_done: int) -> None:
    """Keep the rows of epochs 1..``epochs_done`` only."""
    _write_rows(path, [r for r in read_history(path) if r["epoch"] <= epochs_done])


def _write_rows(path: Path, rows: list[dict]) -> None:
    """Replace the file at once (a kill mid-write leaves the old rows, never a cut file)."""
    atomic_write_bytes(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode())
