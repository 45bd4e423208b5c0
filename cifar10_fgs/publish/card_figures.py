"""The dataset card's figures: the iteration histogram of every split, and, where the originals can be found,
the paper's original + perturbation = adversarial figure and the perceptible-noise contrast of a few test images.

``FIGURES`` names their files in the dataset folder; ``draw_example_figures`` chooses the examples, finds their
originals (the ``original_image`` column, else the CIFAR-10 input checked against the manifest's fingerprint) and
removes a figure it cannot redraw.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from cifar10_fgs.config import PERCEPTIBLE_WEIGHT, Method
from cifar10_fgs.data import CLASS_NAMES, load_cifar10
from cifar10_fgs.dataset.manifest import Manifest
from cifar10_fgs.dataset.shards import FIGURES_DIR, decode_images, read_shard
from cifar10_fgs.dataset_card.render import Layout
from cifar10_fgs.evaluate.figures import new_figure, save_png

log = logging.getLogger(__name__)

FIGURES = {
    "examples": f"{FIGURES_DIR}/fgs_examples.png",
    "perceptible": f"{FIGURES_DIR}/perceptible_noise.png",
    "iterations": f"{FIGURES_DIR}/iterations.png",
}


def choose_examples(table, n: int) -> np.ndarray:
    """Rows (positions in ``table``) to show: attacked images (the model was right on the original), distinct
    labels first, by CIFAR-10 row (``index``)."""
    idx = table.column("index").to_numpy()
    lab = table.column("label").to_numpy()
    rows = np.flatnonzero(table.column("original_prediction").to_numpy() == lab)
    rows = rows[np.argsort(idx[rows], kind="stable")]
    chosen: list[int] = []
    seen: set[int] = set()
    for r in rows:
        if len(chosen) == n:
            break
        if lab[r] not in seen:
            seen.add(int(lab[r]))
            chosen.append(int(r))
    for r in rows:
        if len(chosen) == n:
            break
        if int(r) not in chosen:
            chosen.append(int(r))
    return np.asarray(chosen, np.int64)


def _read_images(dataset_dir: Path, split_layout, positions: np.ndarray, column: str) -> np.ndarray:
    """Decode ``column`` at global row ``positions`` of a split, reading only the shards that hold them."""

    starts = np.cumsum((0, *split_layout.rows))
    out = []
    for p in positions:
        k = int(np.searchsorted(starts, p, side="right") - 1)
        table = read_shard(dataset_dir / split_layout.files[k], [column])
        out.append(decode_images([table.column(column)[int(p - starts[k])].as_py()])[0])
    return np.stack(out)


def _originals(dataset_dir: Path, manifest: Manifest, layout: Layout, split: str, table, positions, cifar10):
    """(original images, None) or (None, why not)."""
    if "original_image" in layout.features:
        return _read_images(dataset_dir, layout.splits[split], positions, "original_image"), None
    if cifar10 is None:
        return None, (
            "The original-vs-adversarial figures need the original images: rerun `cifar10-fgs card DIR --cifar10 DATA` "
            "with the CIFAR-10 source the dataset was generated from (or generate with `--with-originals`)."
        )

    original = load_cifar10(cifar10, split)
    manifest.check_cifar10_fingerprint(split, original)  # the rows generated from have the recorded fingerprint
    idx = table.column("index").to_numpy()[positions]  # the CIFAR-10 row, also for a --limit subset
    return original.images[idx], None


def _steps(n) -> str:
    return f"{int(n)} step" + ("" if int(n) == 1 else "s")


def draw_examples(path: Path, originals, adversarial, rows: dict, step: float, method: str = "fgs") -> None:
    """The paper's figure: original + perturbation (rescaled for display) = adversarial, one image per row."""

    n = len(adversarial)
    fig = new_figure(7.2, 2.4 * n)
    delta = adversarial.astype(np.int16) - originals.astype(np.int16)
    for i in range(n):
        scale = max(int(np.abs(delta[i]).max()), 1)
        noise = 0.5 + delta[i] / (2.0 * scale)
        panels = (
            (
                originals[i],
                f"original: {CLASS_NAMES[rows['label'][i]]}\n"
                f"predicted {CLASS_NAMES[rows['original_prediction'][i]]} ({rows['original_confidence'][i]:.3f})",
            ),
            (
                noise,
                f"+ perturbation (rescaled)\n{_steps(rows['iterations'][i])} of {step:g} x sign(grad)"
                if method == "fgs"
                else "+ perturbation (rescaled)\none pixel",
            ),
            (
                adversarial[i],
                f"= adversarial\npredicted {CLASS_NAMES[rows['adversarial_prediction'][i]]} "
                f"({rows['adversarial_confidence'][i]:.3f})",
            ),
        )
        _draw_row(fig, n, i, panels)
    fig.tight_layout()
    save_png(fig, path, metadata={"Software": None})


def _draw_row(fig, n_rows: int, i: int, panels) -> None:
    """Row ``i`` of an ``n_rows`` x 3 grid of (image, title) panels."""
    for j, (img, title) in enumerate(panels):
        ax = fig.add_subplot(n_rows, 3, 3 * i + j + 1)
        ax.imshow(img, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")


def draw_perceptible(
    path: Path, originals, adversarial, rows: dict, step: float, weight: float = PERCEPTIBLE_WEIGHT
) -> None:
    """Original | stored adversarial | original + weight*255*sign(perturbation), clipped: why the step is small."""

    n = len(adversarial)
    fig = new_figure(7.2, 2.3 * n)
    sign = np.sign(adversarial.astype(np.int16) - originals.astype(np.int16))
    loud = np.clip(originals.astype(np.float32) + weight * 255.0 * sign, 0, 255).astype(np.uint8)
    for i in range(n):
        panels = (
            (originals[i], f"original: {CLASS_NAMES[rows['label'][i]]}"),
            (adversarial[i], f"dataset image\n({_steps(rows['iterations'][i])} of {step:g})"),
            (loud[i], f"weight {weight:g}\n(perceptible noise)"),
        )
        _draw_row(fig, n, i, panels)
    fig.tight_layout()
    save_png(fig, path, metadata={"Software": None})


def draw_iterations(path: Path, stats: dict, xlabel: str) -> None:
    """Histogram of attack iterations per split."""
    from matplotlib.ticker import MaxNLocator

    fig = new_figure(7.0, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    top = max(max(st.max_iterations_used for st in stats.values()), 1)
    width = 0.8 / max(len(stats), 1)
    for k, (split, st) in enumerate(stats.items()):
        counts = np.bincount(st.iterations, minlength=top + 1)[: top + 1]
        x = np.arange(top + 1) + (k - (len(stats) - 1) / 2) * width
        ax.bar(x, counts, width=width, label=f"{split} ({st.num_rows} rows)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("images")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    ax.set_title("Iterations until the source model is fooled")
    fig.tight_layout()
    save_png(fig, path, metadata={"Software": None})


def draw_example_figures(
    dataset_dir: Path,
    manifest: Manifest,
    layout: Layout,
    tables: dict,
    examples: int,
    cifar10,
    figures: dict,
    notes: list,
) -> None:
    """The original-vs-adversarial figures of the test split (or the first), where the originals can be found."""
    split = "test" if "test" in layout.splits else next(iter(layout.splits))
    positions = choose_examples(tables[split], examples)
    if len(positions) == 0:
        notes.append(f"No example figures: the source model misclassified every stored {split} original already.")
        originals = None
    else:
        originals, why_not = _originals(dataset_dir, manifest, layout, split, tables[split], positions, cifar10)
        if why_not:
            notes.append(why_not)
    if originals is not None:
        adversarial = _read_images(dataset_dir, layout.splits[split], positions, "image")
        table = tables[split]  # the statistics' columns (stats.COLUMNS): label, predictions, confidences, iterations
        rows = {c: table.column(c).to_numpy()[positions] for c in table.column_names}
        method, step = manifest.config.method, manifest.config.step
        draw_examples(dataset_dir / FIGURES["examples"], originals, adversarial, rows, step, method.value)
        figures["examples"] = FIGURES["examples"]
        if method is Method.FGS:  # the weight-0.3 contrast is about the gradient sign step
            draw_perceptible(dataset_dir / FIGURES["perceptible"], originals, adversarial, rows, step)
            figures["perceptible"] = FIGURES["perceptible"]
    for key in ("examples", "perceptible"):  # never leave a figure the card does not describe
        stale = dataset_dir / FIGURES[key]
        if key not in figures and stale.exists():
            log.info("removing %s: this card cannot redraw it", stale)
            stale.unlink()
