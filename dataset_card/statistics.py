"""The card's statistics tables, from the per-split statistics (``CardInputs.stats``): the overview, the L∞ and
L2 norms, the perturbation per phase, the confidences, the iteration histogram and the confusion matrices, one
function each. ``statistics_tables`` gives them all under the names the template uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from cifar10_fgs.formatting import fmt, percent

from .render import CardInputs, md_table

if TYPE_CHECKING:  # the type card.py passes in (never imported at run time)
    from cifar10_fgs.dataset.stats import SplitStatistics

# Iteration histogram bins for the table: single values up to 5, then widening ranges.
_BIN_EDGES = (0, 1, 2, 3, 4, 5, 6, 11, 21, 51, 101, 201, 501, 1001, 2001, 5001, 10001)


def histogram_bins(iterations: np.ndarray) -> list[tuple[str, int]]:
    top = max(int(iterations.max(initial=0)), 0)
    out = []
    edges = sorted(set([e for e in _BIN_EDGES if e <= max(top, 5)] + [max(top, 5) + 1]))
    for lo, hi in zip(edges[:-1], edges[1:]):
        label = str(lo) if hi - lo == 1 else f"{lo}-{hi - 1}"
        out.append((label, int(((iterations >= lo) & (iterations < hi)).sum())))
    return out


def statistics_tables(inputs: CardInputs) -> dict:
    """The statistics tables (overview, norms, phases, confidences, histogram, confusion matrices)."""
    stats = inputs.stats
    pixel_range = inputs.manifest.config.pixel_range
    return {
        "overview_table": _overview_table(stats),
        "norm_table": _norm_table(stats, pixel_range),
        "phase_table": _phase_table(stats, pixel_range),
        "confidence_table": _confidence_table(stats),
        "hist_table": _hist_table(stats),
        "confusion": _confusion(stats, inputs.class_names),
    }


def _overview_table(stats: Mapping[str, SplitStatistics]) -> str:
    """Per split: images attacked, rows stored, how each image ended, success rates and iterations."""
    overview = [
        (
            s,
            str(st.num_images),
            str(st.num_rows),
            str(st.already_misclassified),
            str(st.fooled_by_attack),
            str(st.not_fooled),
            percent(st.stored_percent),
            percent(st.attack_success_percent),
            fmt(st.mean_iterations_attacked, 2),
            str(st.max_iterations_used),
        )
        for s, st in stats.items()
    ]
    return md_table(
        [
            "split",
            "images attacked",
            "rows stored",
            "already misclassified",
            "fooled by the attack",
            "not fooled (absent)",
            "stored %",
            "attack success % (originally correct)",
            "mean iterations (attacked)",
            "max iterations used",
        ],
        overview,
    )


def _norm_table(stats: Mapping[str, SplitStatistics], pixel_range: float) -> str:
    """Per split, over all rows and over the attacked rows: the L∞ and L2 norms' mean, median and max."""
    norms = []
    for s, st in stats.items():
        for which, n, li, l2 in (
            ("all rows", st.num_rows, st.linf_all, st.l2_all),
            ("attacked rows", st.fooled_by_attack, st.linf_attacked, st.l2_attacked),
        ):
            norms.append(
                (
                    s,
                    f"{which} ({n})",
                    fmt(li.mean),
                    fmt(li.median),
                    f"{fmt(li.max)} ({fmt(None if li.max is None else li.max * pixel_range, 0)} levels)",
                    fmt(l2.mean),
                    fmt(l2.median),
                    fmt(l2.max),
                )
            )
    return md_table(["split", "rows", "L∞ mean", "L∞ median", "L∞ max", "L2 mean", "L2 median", "L2 max"], norms)


def _phase_table(stats: Mapping[str, SplitStatistics], pixel_range: float) -> str:
    """Per split and phase: rows and the perturbation's percentiles ("" for a folder without phases)."""
    phase_rows = []
    for s, st in stats.items():
        perturbation = st.perturbation(pixel_range) if st.phase is not None else {}
        for phase, count in st.phase_counts().items():
            p = perturbation.get(phase) or {}
            linf, levels, l2_of = p.get("linf") or {}, p.get("linf_levels") or {}, p.get("l2") or {}
            phase_rows.append(
                (
                    s,
                    f"`{phase}`",
                    str(count),
                    *(f"{fmt(linf[k])} ({levels[k]:g})" if k in linf else "-" for k in ("p50", "p90", "p99", "max")),
                    fmt(l2_of["p50"]) if l2_of else "-",
                    fmt(l2_of["max"]) if l2_of else "-",
                )
            )
    if not phase_rows:
        return ""
    return md_table(
        ["split", "phase", "rows", "L∞ p50 (levels)", "L∞ p90", "L∞ p99", "L∞ max", "L2 p50", "L2 max"], phase_rows
    )


def _confidence_table(stats: Mapping[str, SplitStatistics]) -> str:
    """Per split: the mean confidences on the attacked rows and the source model's accuracy."""
    conf = [
        (s, fmt(st.original_confidence_attacked), fmt(st.adversarial_confidence_attacked), fmt(st.source_accuracy))
        for s, st in stats.items()
    ]
    return md_table(
        [
            "split",
            "mean original confidence (attacked)",
            "mean adversarial confidence (attacked)",
            "source model accuracy on these images",
        ],
        conf,
    )


def _hist_table(stats: Mapping[str, SplitStatistics]) -> str:
    """Rows per iteration bin, one column per split."""
    hists = {s: histogram_bins(st.iterations) for s, st in stats.items()}
    hist_rows = [[lbl, *(str(dict(h).get(lbl, 0)) for h in hists.values())] for lbl, _ in max(hists.values(), key=len)]
    return md_table(["iterations", *stats.keys()], hist_rows)


def _confusion(stats: Mapping[str, SplitStatistics], names: Sequence[str]) -> dict[str, str]:
    """Per split: the true label against the adversarial prediction, with row totals."""
    return {
        s: md_table(
            ["label \\ adversarial", *names, "total"],
            [
                [names[i], *[str(int(v)) for v in st.confusion[i]], str(int(st.confusion[i].sum()))]
                for i in range(len(names))
            ],
        )
        for s, st in stats.items()
    }
