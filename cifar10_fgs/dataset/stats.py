"""The one definition of a split's statistics, from its stored columns (never the images).

An image is *attacked* when the source model was right on its original (``original_prediction ==
label``): the attack had to change it. The others were already misclassified and are stored
unchanged (0 iterations, phase ``unchanged``). ``split_statistics`` computes everything the card shows;
``SplitSummary`` is the part ``generate`` records per split in ``generation.json``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cifar10_fgs.config import PERCENTILES, PHASES
from cifar10_fgs.data import NUM_CLASSES

COLUMNS = (  # the numeric columns statistics are computed from
    "index",
    "label",
    "original_prediction",
    "original_confidence",
    "adversarial_prediction",
    "adversarial_confidence",
    "iterations",
    "linf",
    "l2",
    "phase",
)


def perturbation_stats(linf: np.ndarray, l2: np.ndarray, pixel_range: float) -> dict:
    """p50/p90/p99/max/mean of L-inf (a fraction of the range, and in levels) and of L2 (a fraction of the range)."""
    out: dict[str, Any] = {"rows": int(len(linf))}
    if not len(linf):
        return out
    for name, values in (("linf", linf), ("l2", l2)):
        v = np.asarray(values, np.float64)
        out[name] = {f"p{p}": float(np.percentile(v, p)) for p in PERCENTILES} | {
            "max": float(v.max()),
            "mean": float(v.mean()),
        }
    out["linf_levels"] = {k: round(v * pixel_range, 2) for k, v in out["linf"].items()}
    return out


@dataclass(frozen=True)
class NormStats:
    """A perturbation norm over rows, in units of the pixel range."""

    mean: float
    median: float
    max: float | None = None

    @classmethod
    def of(cls, x: np.ndarray, with_max: bool = True) -> NormStats:
        if len(x) == 0:
            return cls(0.0, 0.0, 0.0 if with_max else None)
        x = x.astype(np.float64)
        return cls(float(x.mean()), float(np.median(x)), float(x.max()) if with_max else None)

    def to_json(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class SplitStatistics:
    """Everything the card says about one split (arrays included: ``iterations``, ``confusion``)."""

    num_images: int  # original rows attacked
    num_rows: int  # rows stored (fooled)
    failures: tuple[int, ...]  # rows not fooled, absent
    already_misclassified: int
    fooled_by_attack: int
    iterations: np.ndarray  # per stored row
    mean_iterations: float  # over stored rows
    mean_iterations_attacked: float
    median_iterations_attacked: float
    linf_all: NormStats
    l2_all: NormStats
    linf_attacked: NormStats
    l2_attacked: NormStats
    original_confidence_attacked: float
    adversarial_confidence_attacked: float
    confusion: np.ndarray  # (10, 10) label x adversarial_prediction counts
    linf: np.ndarray  # per stored row, fractions of the pixel range
    l2: np.ndarray
    attacked: np.ndarray  # bool per stored row
    phase: np.ndarray | None  # per stored row, an index into config.PHASES (None: shards from before the column)

    def phase_counts(self) -> dict[str, int]:
        """Rows per phase (those present), in ``config.PHASES`` order."""
        if self.phase is None:
            return {}
        return {p: int((self.phase == i).sum()) for i, p in enumerate(PHASES) if (self.phase == i).any()}

    def perturbation(self, pixel_range: float) -> dict:
        """Percentiles of the attacked rows' perturbations, and of each phase's."""
        out = {"attacked": perturbation_stats(self.linf[self.attacked], self.l2[self.attacked], pixel_range)}
        for p in self.phase_counts():
            rows = self.phase == PHASES.index(p)
            out[p] = perturbation_stats(self.linf[rows], self.l2[rows], pixel_range)
        return out

    @property
    def not_fooled(self) -> int:
        return len(self.failures)

    @property
    def stored_percent(self) -> float:
        return 100.0 * self.num_rows / self.num_images if self.num_images else 0.0

    @property
    def originally_right(self) -> int:
        return self.num_images - self.already_misclassified

    @property
    def attack_success_percent(self) -> float:
        return 100.0 * self.fooled_by_attack / self.originally_right if self.originally_right else 0.0

    @property
    def source_accuracy(self) -> float:
        return self.originally_right / self.num_images if self.num_images else 0.0

    @property
    def max_iterations_used(self) -> int:
        return int(self.iterations.max(initial=0))


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else 0.0


def split_statistics(table, num_images: int, failures: Sequence[int]) -> SplitStatistics:
    """Statistics of one split from ``table`` (its stored ``COLUMNS``) and the rows listed as not fooled."""
    col = {c: table.column(c).to_numpy() for c in COLUMNS if c in table.column_names}
    it = col["iterations"].astype(np.int64)
    lab = col["label"].astype(np.int64)
    adv = col["adversarial_prediction"].astype(np.int64)
    attacked = col["original_prediction"].astype(np.int64) == lab
    conf = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    if len(lab):
        np.add.at(conf, (lab, adv), 1)
    return SplitStatistics(
        num_images=int(num_images),
        num_rows=int(table.num_rows),
        failures=tuple(sorted(int(i) for i in failures)),
        already_misclassified=int((~attacked).sum()),
        fooled_by_attack=int(attacked.sum()),
        iterations=it,
        mean_iterations=_mean(it),
        mean_iterations_attacked=_mean(it[attacked]),
        median_iterations_attacked=float(np.median(it[attacked])) if attacked.any() else 0.0,
        linf_all=NormStats.of(col["linf"]),
        l2_all=NormStats.of(col["l2"]),
        linf_attacked=NormStats.of(col["linf"][attacked]),
        l2_attacked=NormStats.of(col["l2"][attacked]),
        original_confidence_attacked=_mean(col["original_confidence"][attacked]),
        adversarial_confidence_attacked=_mean(col["adversarial_confidence"][attacked]),
        confusion=conf,
        linf=col["linf"],
        l2=col["l2"],
        attacked=attacked,
        phase=col["phase"].astype(np.int64) if "phase" in col else None,
    )


@dataclass(frozen=True)
class SplitSummary:
    """What ``generation.json`` records per split (``summary.<split>``). Empty splits carry only the first three."""

    num_images: int
    num_rows: int
    failures: tuple[int, ...]
    fooled_percent: float | None = None
    already_misclassified: int | None = None
    iterations_histogram: dict | None = None  # "iterations" -> rows
    mean_iterations: float | None = None
    mean_iterations_attacked: float | None = None
    gradient_evaluations: int | None = None  # forward+backward passes, failures' full budget included
    linf: NormStats | None = None
    l2: NormStats | None = None
    linf_attacked: NormStats | None = None  # mean and median
    phases: dict | None = None  # phase -> rows
    perturbation: dict | None = None  # "attacked" and each phase -> perturbation_stats
    confusion: tuple | None = None  # label x adversarial_prediction counts
    extra: dict = field(default_factory=dict)  # keys a newer writer added

    @classmethod
    def of(cls, st: SplitStatistics, config, gradient_evaluations: int | None = None) -> SplitSummary:
        """The summary of ``st`` for a folder made with ``config`` (a ``manifest.Config``).

        ``gradient_evaluations``: as the shards recorded them; else estimated from the iterations.
        """
        if st.num_rows == 0:
            return cls(st.num_images, 0, st.failures)
        if gradient_evaluations is None:
            gradient_evaluations = int(st.iterations.sum() + st.num_rows) + len(st.failures) * (
                config.max_iterations + 1
            )
        hist = np.bincount(st.iterations)
        return cls(
            num_images=st.num_images,
            num_rows=st.num_rows,
            failures=st.failures,
            fooled_percent=round(100.0 * st.num_rows / st.num_images, 4),
            already_misclassified=st.already_misclassified,
            iterations_histogram={str(i): int(c) for i, c in enumerate(hist) if c},
            mean_iterations=st.mean_iterations,
            mean_iterations_attacked=st.mean_iterations_attacked,
            gradient_evaluations=gradient_evaluations,
            linf=st.linf_all,
            l2=st.l2_all,
            linf_attacked=dataclasses.replace(st.linf_attacked, max=None),
            phases=st.phase_counts() or None,
            perturbation=st.perturbation(config.pixel_range) if st.phase is not None else None,
            confusion=tuple(tuple(int(v) for v in row) for row in st.confusion),
        )

    @classmethod
    def from_json(cls, obj) -> SplitSummary:
        obj = obj if isinstance(obj, dict) else {}
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        values = {k: obj[k] for k in known if k in obj}
        for k in ("linf", "l2", "linf_attacked"):
            if isinstance(values.get(k), dict):
                values[k] = NormStats(**values[k])
        values["failures"] = tuple(values.get("failures", ()))
        if values.get("confusion") is not None:
            values["confusion"] = tuple(tuple(r) for r in values["confusion"])
        return cls(**{"num_images": 0, "num_rows": 0, **values}, extra={k: v for k, v in obj.items() if k not in known})

    def to_json(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "extra" or v is None:
                continue
            if isinstance(v, NormStats):
                v = v.to_json()
            elif isinstance(v, tuple):
                v = [list(r) if isinstance(r, tuple) else r for r in v]
            out[f.name] = v
        return {**self.extra, **out}
