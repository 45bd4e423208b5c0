"""What the paper comparison is made of: ``Row`` (a number of the paper beside ours), ``Effect`` (a direction the
paper reports, checked on our numbers), ``add_row`` and ``add_effect`` (the one way each is recorded), and
``ResultsFiles`` (a folder's results files, read once, each number with where it came from).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cifar10_fgs.evaluate.paper import PAPER
from cifar10_fgs.evaluate.results import RESULTS_DIR


@dataclass(frozen=True)
class Row:
    """One number of the paper beside ours."""

    key: str  # paper.PAPER key
    label: str  # which of our runs ("", a retraining mode or a Gaussian variant)
    section: str
    quantity: str
    paper: float
    ours: float | None  # None: not measured by these results
    unit: str
    source: str | None  # "<file>#<path/inside/the/json>" or "generation.json"


@dataclass(frozen=True)
class Effect:
    """A direction the paper reports, checked on our numbers."""

    key: str
    label: str
    section: str
    claim: str  # the paper's observation
    ours: str  # our numbers behind the check
    reproduced: bool | None  # None: not measured
    reason: str | None  # one line where it is not reproduced


class ResultsFiles:
    """The results files of one dataset folder, read once; ``get`` records where each number came from."""

    def __init__(self, dataset_dir: Path):
        self.dataset_dir = dataset_dir
        self.files: dict[str, dict] = {}

    def load(self, name: str) -> dict | None:
        path = self.dataset_dir / RESULTS_DIR / f"{name}.json"
        try:
            self.files[name] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return self.files[name]

    def get(self, name: str, path: str) -> tuple[float | None, str | None]:
        obj = self.files.get(name)
        for part in path.split("/"):
            if not isinstance(obj, dict) or part not in obj:
                return None, None
            obj = obj[part]
        return (float(obj), f"{name}.json#{path}") if isinstance(obj, (int, float)) else (None, None)


def add_row(rows: list, key: str, value: float | None, source: str | None, label: str = "") -> float | None:
    """Append the row of ``paper.PAPER[key]`` with our ``value`` (None: not measured); returns ``value``."""
    p = PAPER[key]
    rows.append(Row(key, label, p.section, p.quantity, p.value, value, p.unit, source))
    return value


def add_effect(
    effects: list, key: str, label: str, section: str, claim: str, ours: str, ok: bool | None, reason: str | None
) -> None:
    """Append an effect; its ``reason`` is kept only where it is not reproduced (``ok`` False)."""
    effects.append(Effect(key, label, section, claim, ours, ok, None if ok or ok is None else reason))
