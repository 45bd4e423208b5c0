"""Gaussian filtering as a defence (paper section VI): accuracy after the filter, per std, model and test set."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ConfigError
from .filters import BLUR_MODE, BLUR_TRUNCATE, DEFAULT_STDS, check_stds, gaussian_blur
from .joined import JoinedSplit
from .metrics import DEFAULT_BATCH_SIZE, SETS, SetMetrics, classify
from .results import fmt as _f, md_table as _md_table, model_info as _model_info, progress_bar as _progress_bar, rows_note as _rows_note
from .skeleton import begin


@dataclass(frozen=True)
class GaussianRow:
    model: str
    set: str
    std: float
    metrics: SetMetrics


@dataclass(frozen=True)
class GaussianResult:
    name: str
    json_path: str
    markdown_path: str
    plots: tuple[str, ...]
    split: str
    stds: tuple[float, ...]
    models: tuple[str, ...]
    rows: tuple[GaussianRow, ...]
    ms_per_image_batched: dict  # str(std) -> ms per image, whole set filtered at once
    ms_per_image_single: dict  # str(std) -> median ms for one image per call
    report: dict

    def accuracy(self, model: str, set_name: str, std: float) -> float:
        return next(r.metrics.accuracy for r in self.rows if (r.model, r.set, r.std) == (model, set_name, std))


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


def time_blur_single(images: np.ndarray, std: float, repeats: int = 100) -> float:
    """Median seconds of ``gaussian_blur`` on one image per call (over up to ``repeats`` images)."""
    times = []
    for i in range(min(repeats, len(images))):
        t = time.perf_counter()
        gaussian_blur(images[i:i + 1], std)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def evaluate_gaussian(
    model_paths: Sequence[str | Path],
    dataset_dir: str | Path,
    source: str | Path | None = None,
    *,
    stds: Sequence[float] = DEFAULT_STDS,
    split: str = "test",
    batch_size: int = DEFAULT_BATCH_SIZE,
    name: str = "gaussian",
    overwrite: bool = False,
    unsafe_model: bool = False,
    progress: bool = False,
    cache_dir: str | None = None,
) -> GaussianResult:
    """Accuracy of each model on both sets after ``gaussian_blur`` at each std (paper section VI)."""
    stds = check_stds(stds)
    model_paths = list(model_paths)
    if not model_paths:
        raise ConfigError("no models given: pass --models TARGET.keras[,RETRAINED.keras]")
    ev = begin("gaussian", dataset_dir, name, [split], batch_size)
    labels = model_labels(model_paths)
    loaded = [_model_info(p, unsafe_model) for p in model_paths]
    settings = {"split": split, "stds": list(stds), "batch_size": batch_size, "models": labels,
                "filter": {"function": "scipy.ndimage.gaussian_filter", "sigma": "(0, std, std, 0) on (N, H, W, C)",
                           "mode": BLUR_MODE, "truncate": BLUR_TRUNCATE, "output": "rounded half to even, clipped to uint8"}}
    ev = ev.claim(settings, {lab: info for lab, (_, info) in zip(labels, loaded)}, overwrite)

    joined, source = ev.load(source, cache_dir, progress)
    j = joined[split]
    rows, ms_batched = _sweep(j, stds, labels, [m for m, _ in loaded], batch_size, progress)
    ms_single = {str(s): 1000.0 * time_blur_single(j.adversarial, s) for s in stds}
    base = {(r.model, r.set): r.metrics.accuracy for r in rows if r.std == stds[0]}
    table = [
        {"model": r.model, "set": r.set, "std": r.std, **dataclasses.asdict(r.metrics),
         "accuracy_change_vs_first_std": r.metrics.accuracy - base[(r.model, r.set)]}
        for r in rows
    ]
    definitions = {
        "std": "standard deviation of the Gaussian kernel in pixels, applied along height and width only",
        "sets": {"original": "original test images at the joined rows", "adversarial": "their adversarial copies"},
        "ms_per_image_batched": "filter wall time over the whole set (vectorised, incl. rounding) / images",
        "ms_per_image_single": "median wall time of the filter called on one image at a time",
        "accuracy_change_vs_first_std": f"accuracy minus accuracy at std={stds[0]:g} for the same model and set",
    }
    report = ev.report(joined, source, definitions,
                       {"table": table, "ms_per_image_batched": ms_batched, "ms_per_image_single": ms_single})
    w = ev.write(report, _gaussian_markdown(rows, stds, labels, ms_batched, ms_single, j),
                 {f"{name}.png": _gaussian_figure(rows, stds, labels, split)}, "Gaussian filtering as a defence")
    return GaussianResult(name, w.json_path, w.markdown_path, w.plots, split, stds, tuple(labels), tuple(rows),
                          ms_batched, ms_single, w.report)


def _sweep(j: JoinedSplit, stds, labels, models, batch_size: int, progress: bool):
    """Every (std, set, model): (rows, filter ms per image by str(std))."""
    sets = {"original": j.original, "adversarial": j.adversarial}
    bar = _progress_bar(len(stds) * len(sets) * (1 + len(models)), f"gaussian {j.split}", progress)
    rows: list[GaussianRow] = []
    seconds: dict[str, float] = {}
    gaussian_blur(j.adversarial[:1], 1.0)  # warm-up (imports scipy.ndimage) outside the timings
    for std in stds:
        for set_name, images in sets.items():
            t = time.perf_counter()
            blurred = gaussian_blur(images, std)
            seconds[str(std)] = seconds.get(str(std), 0.0) + time.perf_counter() - t
            bar.update(1)
            for label, model in zip(labels, models):
                rows.append(GaussianRow(label, set_name, std, classify(model, blurred, j.labels, batch_size).metrics()))
                bar.update(1)
    bar.close()
    return rows, {k: 1000.0 * v / (len(sets) * len(j)) for k, v in seconds.items()}


def _std_label(std: float) -> str:
    return "No filter" if std == 0 else f"std={std:g}"


def _gaussian_markdown(rows, stds, labels, ms_batched, ms_single, j: JoinedSplit) -> str:
    acc = {(r.model, r.set, r.std): r.metrics.accuracy for r in rows}
    headers = ("Filter", *(f"`{m}` / {s}" for m in labels for s in SETS))
    body = [(_std_label(std), *(_f(acc[(m, s, std)]) for m in labels for s in SETS)) for std in stds]
    positive = [s for s in stds if s > 0]
    worst_b = max((ms_batched[str(s)] for s in positive), default=0.0)
    worst_s = max((ms_single[str(s)] for s in positive), default=0.0)
    return (
        f"Accuracy after `scipy.ndimage.gaussian_filter` over height and width (rounded to uint8) on {_rows_note(j)}.\n\n"
        + _md_table(headers, body)
        + f"\nFilter cost per image: at most {worst_b:.4f} ms when the whole set is filtered at once, "
          f"at most {worst_s:.4f} ms for one image per call.\n"
    )


def _gaussian_figure(rows, stds, labels, split: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4))
    ax = fig.add_subplot()
    styles = {"original": "-", "adversarial": "--"}
    colors = [f"C{i}" for i in range(10)]
    for mi, m in enumerate(labels):
        for s in SETS:
            ys = [next(r.metrics.accuracy for r in rows if (r.model, r.set, r.std) == (m, s, std)) for std in stds]
            ax.plot(stds, ys, styles[s], marker="o", color=colors[mi % 10], label=f"{m} / {s}")
    ax.set_xticks(stds, [f"{s:g}" for s in stds], fontsize=8)
    ax.set_xlabel("Gaussian filter std (pixels; 0 = no filter)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Gaussian filtering ({split} split)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
