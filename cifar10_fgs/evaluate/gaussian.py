"""Gaussian filtering as a defence (paper section VI): accuracy after the filter, per variant, std, model and set.

The variants (``filters.GaussianVariant``) are the readings of the paper's "SciPy gaussian filter";
each gets its own table (accuracy, accuracy recovered on the adversarial set relative to the first
std, normally 0 = no filter, and the filter's cost per image) and its own figure.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifar10_fgs.config import BLUR_MODE, BLUR_TRUNCATE, GAUSSIAN_STDS, GAUSSIAN_VARIANTS
from cifar10_fgs.errors import ConfigError
from cifar10_fgs.evaluate.filters import (
    GaussianVariant,
    blur,
    check_stds,
    check_variants,
)
from cifar10_fgs.evaluate.joined import JoinedSplit
from cifar10_fgs.evaluate.metrics import SETS, SetMetrics, classify
from cifar10_fgs.evaluate.results import classifier_info as _classifier_info
from cifar10_fgs.evaluate.results import md_table as _md_table
from cifar10_fgs.evaluate.results import progress_bar as _progress_bar
from cifar10_fgs.evaluate.results import rows_note as _rows_note
from cifar10_fgs.evaluate.skeleton import EvaluateOptions, EvaluationFiles, begin
from cifar10_fgs.formatting import fmt


def cost_key(variant: str, std: float) -> str:
    """Key of the per-image filter cost dictionaries: ``"<variant>:<std>"``."""
    return f"{GaussianVariant(variant).value}:{std:g}"


@dataclass(frozen=True)
class GaussianRow:
    model: str
    set: str
    std: float
    metrics: SetMetrics
    variant: str = GaussianVariant.SPATIAL_UINT8.value


@dataclass(frozen=True)
class GaussianResult(EvaluationFiles):
    split: str
    stds: tuple[float, ...]
    models: tuple[str, ...]
    rows: tuple[GaussianRow, ...]
    ms_per_image_batched: dict  # cost_key(variant, std) -> ms per image, whole set filtered at once
    ms_per_image_single: dict  # cost_key(variant, std) -> median ms for one image per call
    report: dict
    variants: tuple[str, ...] = (GaussianVariant.SPATIAL_UINT8.value,)

    def accuracy(self, model: str, set_name: str, std: float, variant: str | None = None) -> float:
        variant = self.variants[0] if variant is None else GaussianVariant(variant).value
        return next(
            r.metrics.accuracy
            for r in self.rows
            if (r.model, r.set, r.std, r.variant) == (model, set_name, std, variant)
        )


def model_labels(paths: Sequence[str | Path]) -> list[str]:
    """Short names for models: file stems, made unique with a suffix when two share a stem."""
    labels = []
    for p in paths:
        stem = Path(p).stem
        label, k = stem, 2
        while label in labels:
            label, k = f"{stem}-{k}", k + 1
        labels.append(label)
    return labels


def time_blur_single(
    images: np.ndarray, std: float, repeats: int = 100, variant: str = GaussianVariant.SPATIAL_UINT8
) -> float:
    """Median seconds of ``blur`` (``variant``) on one image per call (over up to ``repeats`` images)."""
    times = []
    for i in range(min(repeats, len(images))):
        t = time.perf_counter()
        blur(images[i : i + 1], std, variant)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


@dataclass(frozen=True)
class GaussianOptions(EvaluateOptions):
    name: str = "gaussian"
    split: str = "test"  # the split evaluated
    stds: Sequence[float] = GAUSSIAN_STDS  # filter standard deviations in pixels (0 = no filter)
    variants: Sequence[str] = GAUSSIAN_VARIANTS  # GaussianVariant values: how the filter is applied


def evaluate_gaussian(
    dataset_dir: str | Path, models: Sequence[str | Path], options: GaussianOptions = GaussianOptions()
) -> GaussianResult:
    """Accuracy of each model on both sets after the Gaussian filter, per variant and std (paper section VI).

    Each model is a ``.keras`` or an ``.onnx`` file; ``options.model_input`` (a ``convention.Declared``) declares
    how they take their pixels, as a ``cifar10-fgs.json`` beside a model may (see ``models.convention``).
    """
    o = options
    name, split, batch_size = o.name, o.split, o.batch_size
    stds = check_stds(o.stds)
    variants = tuple(v.value for v in check_variants(o.variants))
    models = list(models)
    if not models:
        raise ConfigError("no models given: pass --model TARGET.keras (repeat --model for more)")
    ev = begin("gaussian", dataset_dir, name, [split], batch_size)
    labels = model_labels(models)
    loaded = [_classifier_info(p, o.unsafe_model, o.model_input) for p in models]
    settings = {
        "split": split,
        "stds": list(stds),
        "batch_size": batch_size,
        "models": labels,
        "variants": list(variants),
        "filter": {
            "function": "scipy.ndimage.gaussian_filter",
            "mode": BLUR_MODE,
            "truncate": BLUR_TRUNCATE,
            "sigma": {v: _sigma_text(v) for v in variants},
        },
    }
    ev = ev.claim(settings, {lab: info for lab, (_, info) in zip(labels, loaded)}, o.overwrite)

    joined, cifar10 = ev.load(o)
    j = joined[split]
    rows, ms_batched = _sweep(j, stds, variants, labels, [m for m, _ in loaded], batch_size, o.progress)
    ms_single = {cost_key(v, s): 1000.0 * time_blur_single(j.adversarial, s, variant=v) for v in variants for s in stds}
    results = _results(rows, stds, variants, labels, ms_batched, ms_single)
    report = ev.report(joined, cifar10, _definitions(stds[0]), results)
    figures = {_figure_name(name, v, variants): _gaussian_figure(rows, stds, labels, split, v) for v in variants}
    w = ev.write(report, _gaussian_markdown(results, stds, labels, j), figures, "Gaussian filtering as a defence")
    return GaussianResult(
        **w.files(),
        split=split,
        stds=stds,
        models=tuple(labels),
        rows=tuple(rows),
        ms_per_image_batched=ms_batched,
        ms_per_image_single=ms_single,
        report=report,
        variants=variants,
    )


def _sigma_text(variant: str) -> str:
    v = GaussianVariant(variant)
    axes = "(0, std, std, std)" if 3 in v.sigma_axes else "(0, std, std, 0)"
    out = "rounded half to even, clipped to uint8" if v.rounds else "float32, not rounded"
    return f"{axes} on (N, H, W, C); {out}"


def _figure_name(name: str, variant: str, variants) -> str:
    return f"{name}.png" if len(variants) == 1 else f"{name}_{variant}.png"


def _definitions(first_std: float) -> dict:
    return {
        "std": "standard deviation of the Gaussian kernel in pixels (see variants for the axes)",
        "variants": {v.value: v.description for v in GaussianVariant},
        "sets": {"original": "original test images at the joined rows", "adversarial": "their adversarial copies"},
        "ms_per_image_batched": "filter wall time over the whole set (vectorised, incl. rounding) / images",
        "ms_per_image_single": "median wall time of the filter called on one image at a time",
        "accuracy_change_vs_first_std": f"accuracy minus accuracy at std={first_std:g} for the same variant, model and set",
        "recovered_on_adversarial": f"per variant and model: accuracy on the adversarial set minus at std={first_std:g}",
    }


def _results(rows, stds, variants, labels, ms_batched: dict, ms_single: dict) -> dict:
    base = {(r.variant, r.model, r.set): r.metrics.accuracy for r in rows if r.std == stds[0]}
    table = [
        {
            "variant": r.variant,
            "model": r.model,
            "set": r.set,
            "std": r.std,
            **dataclasses.asdict(r.metrics),
            "accuracy_change_vs_first_std": r.metrics.accuracy - base[(r.variant, r.model, r.set)],
        }
        for r in rows
    ]
    per_variant = {}
    for v in variants:
        adv = {(r.model, r.std): r.metrics.accuracy for r in rows if r.variant == v and r.set == "adversarial"}
        per_variant[v] = {
            "description": GaussianVariant(v).description,
            "recovered_on_adversarial": {m: {f"{s:g}": adv[(m, s)] - adv[(m, stds[0])] for s in stds} for m in labels},
            "ms_per_image_batched": {f"{s:g}": ms_batched[cost_key(v, s)] for s in stds},
            "ms_per_image_single": {f"{s:g}": ms_single[cost_key(v, s)] for s in stds},
        }
    return {"table": table, "variants": per_variant}


def _sweep(j: JoinedSplit, stds, variants, labels, models, batch_size: int, progress: bool):
    """Every (variant, std, set, model): (rows, filter ms per image by cost_key(variant, std))."""
    sets = {"original": j.original, "adversarial": j.adversarial}
    bar = _progress_bar(len(variants) * len(stds) * len(sets) * (1 + len(models)), f"gaussian {j.split}", progress)
    rows: list[GaussianRow] = []
    seconds: dict[str, float] = {}
    for v in variants:
        blur(j.adversarial[:1], 1.0, v)  # warm-up (imports scipy.ndimage) outside the timings
        for std in stds:
            for set_name, images in sets.items():
                t = time.perf_counter()
                blurred = blur(images, std, v)
                seconds[cost_key(v, std)] = seconds.get(cost_key(v, std), 0.0) + time.perf_counter() - t
                bar.update(1)
                for label, model in zip(labels, models):
                    m = classify(model, blurred, j.labels, batch_size).metrics()
                    rows.append(GaussianRow(label, set_name, std, m, v))
                    bar.update(1)
    bar.close()
    return rows, {k: 1000.0 * t / (len(sets) * len(j)) for k, t in seconds.items()}


def _std_label(std: float) -> str:
    return "No filter" if std == 0 else f"std={std:g}"


def _gaussian_markdown(results: dict, stds, labels, j: JoinedSplit) -> str:
    acc = {(r["variant"], r["model"], r["set"], r["std"]): r["accuracy"] for r in results["table"]}
    out = [
        f"Accuracy after `scipy.ndimage.gaussian_filter` on {_rows_note(j)}, per variant of the filter. "
        f'"Recovered" is the accuracy on the adversarial set minus that at {_std_label(stds[0]).lower()}; '
        '"ms/image" is the filter\'s cost per image when the whole set is filtered at once.\n'
    ]
    for v, info in results["variants"].items():
        headers = (
            "Filter",
            *(f"`{m}` / {s}" for m in labels for s in SETS),
            *(f"`{m}` recovered" for m in labels),
            "ms/image",
        )
        body = [
            (
                _std_label(std),
                *(fmt(acc[(v, m, s, std)]) for m in labels for s in SETS),
                *(f"{info['recovered_on_adversarial'][m][f'{std:g}']:+.4f}" for m in labels),
                f"{info['ms_per_image_batched'][f'{std:g}']:.4f}",
            )
            for std in stds
        ]
        single = max((info["ms_per_image_single"][f"{s:g}"] for s in stds if s > 0), default=0.0)
        out.append(f"\n**`{v}`**: {info['description']}. One image per call: at most {single:.4f} ms.\n\n")
        out.append(_md_table(headers, body))
    return "".join(out)


def _gaussian_figure(rows, stds, labels, split: str, variant: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4))
    ax = fig.add_subplot()
    styles = {"original": "-", "adversarial": "--"}
    acc = {(r.model, r.set, r.std): r.metrics.accuracy for r in rows if r.variant == variant}
    for mi, m in enumerate(labels):
        for s in SETS:
            ax.plot(
                stds, [acc[(m, s, std)] for std in stds], styles[s], marker="o", color=f"C{mi % 10}", label=f"{m} / {s}"
            )
    ax.set_xticks(stds, [f"{s:g}" for s in stds], fontsize=8)
    ax.set_xlabel("Gaussian filter std (pixels; 0 = no filter)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Gaussian filtering, {variant} ({split} split)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
