"""``card``: write ``DIR/README.md`` (a Hugging Face dataset card) and ``DIR/figures/*.png``.

The text comes from ``cifar10_fgs.dataset_card.render`` (YAML generated from the shards, body from
its Jinja template); this module checks the folder, draws the figures and writes the files.
Figures of original vs adversarial images need the originals: the ``original_image`` column when
the folder was generated ``--with-originals``, else the CIFAR-10 ``source`` it was generated from
(checked against the manifest's fingerprint), else they are skipped with a note in the card.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataSourceError, OutputError, ValidationError
from .generate import MANIFEST
from .provenance import atomic_write_bytes, read_json

log = logging.getLogger(__name__)

README = "README.md"
FIGURES_DIR = "figures"
FIGURES = {
    "examples": f"{FIGURES_DIR}/fgs_examples.png",
    "perceptible": f"{FIGURES_DIR}/perceptible_noise.png",
    "iterations": f"{FIGURES_DIR}/iterations.png",
}
PERCEPTIBLE_WEIGHT = 0.3
DEFAULT_EXAMPLES = 4


@dataclass(frozen=True)
class CardResult:
    path: str  # the README.md written
    repo_id: str | None
    splits: dict  # split -> rows
    figures: tuple[str, ...]  # paths relative to the dataset folder
    notes: tuple[str, ...]  # what the card could not show, and why
    seconds: float


# --------------------------------------------------------------------------- folder checks


def load_complete_manifest(dataset_dir: str | Path) -> dict:
    """The manifest of a finished dataset folder; ValidationError (one line) for anything that is not."""
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        raise ValidationError(f"{dataset_dir} is not a folder: pass the folder written by `cifar10-fgs generate`")
    path = dataset_dir / MANIFEST
    if not path.is_file():
        raise ValidationError(f"{dataset_dir} has no {MANIFEST}: pass the folder written by `cifar10-fgs generate`")
    try:
        manifest = read_json(path)
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{path} is not readable JSON ({type(exc).__name__}): regenerate the folder") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("shards"), dict) or "config" not in manifest:
        raise ValidationError(f"{path} is not a cifar10-fgs manifest: regenerate the folder")
    if manifest.get("complete") is not True:
        raise ValidationError(
            f"{dataset_dir} is incomplete ({MANIFEST} says complete: false): rerun the same `cifar10-fgs generate` "
            "command to finish it"
        )
    for name, entry in sorted(manifest["shards"].items()):
        shard = dataset_dir / name
        if not shard.is_file():
            raise ValidationError(f"{shard} is listed in {MANIFEST} but missing: rerun `cifar10-fgs generate` to rewrite it")
        size = shard.stat().st_size
        if size != entry.get("bytes"):
            raise ValidationError(
                f"{shard} has {size} bytes, {MANIFEST} says {entry.get('bytes')}: rerun `cifar10-fgs generate` "
                "(or `cifar10-fgs validate`) to find and rewrite it"
            )
    listed = set(manifest["shards"])
    data_dir = dataset_dir / "data"
    extra = sorted(f"data/{p.name}" for p in data_dir.glob("*.arrow") if f"data/{p.name}" not in listed) if data_dir.is_dir() else []
    if extra:
        raise ValidationError(
            f"{dataset_dir / extra[0]} is not listed in {MANIFEST}: remove it (it would be loaded as part of the dataset)"
        )
    return manifest


# --------------------------------------------------------------------------- figures


def _figure(width: float, height: float):
    """A matplotlib Figure on the Agg canvas, without pyplot (no global state, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> None:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())


def choose_examples(table, n: int) -> np.ndarray:
    """Rows (positions in ``table``) to show: attacked images (the model was right on the original), distinct
    labels first, by source index."""
    idx = table.column("index").to_numpy()
    lab = table.column("label").to_numpy()
    rows = np.flatnonzero(table.column("original_prediction").to_numpy() == lab)
    rows = rows[np.argsort(idx[rows], kind="stable")]
    chosen, seen = [], set()
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
    from .shards import decode_images, read_shard

    starts = np.cumsum((0, *split_layout.rows))
    out = []
    for p in positions:
        k = int(np.searchsorted(starts, p, side="right") - 1)
        table = read_shard(dataset_dir / split_layout.files[k], [column])
        out.append(decode_images([table.column(column)[int(p - starts[k])].as_py()])[0])
    return np.stack(out)


def _originals(dataset_dir, manifest, layout, split, table, positions, source):
    """(original images, how they were found) or (None, why not)."""
    if "original_image" in layout.features:
        return _read_images(dataset_dir, layout.splits[split], positions, "original_image"), None
    if source is None:
        return None, (
            "The original-vs-adversarial figures need the original images: rerun `cifar10-fgs card DIR --source DATA` "
            "with the CIFAR-10 source the dataset was generated from (or generate with `--with-originals`)."
        )
    from .data import load_cifar10

    data = load_cifar10(source, split)
    spec = manifest["config"]["splits"][split]
    head = data.head(int(spec["num_rows"]))
    if len(head) != int(spec["num_rows"]) or head.fingerprint() != spec["fingerprint"]:
        raise DataSourceError(
            f"{source} is not the CIFAR-10 source {dataset_dir} was generated from ({split} split fingerprint differs): "
            f"pass the source recorded in {MANIFEST} ({manifest.get('data_source', {}).get('source', 'unknown')})"
        )
    idx = table.column("index").to_numpy()[positions]
    return head.images[idx], None


def _steps(n) -> str:
    return f"{int(n)} step" + ("" if int(n) == 1 else "s")


def draw_examples(path: Path, originals, adversarial, rows: dict, step: float, method: str = "fgs") -> None:
    """The paper's figure: original + perturbation (rescaled for display) = adversarial, one image per row."""
    from .data import CLASS_NAMES

    n = len(adversarial)
    fig = _figure(7.2, 2.4 * n)
    delta = adversarial.astype(np.int16) - originals.astype(np.int16)
    for i in range(n):
        scale = max(int(np.abs(delta[i]).max()), 1)
        noise = 0.5 + delta[i] / (2.0 * scale)
        panels = (
            (originals[i], f"original: {CLASS_NAMES[rows['label'][i]]}\n"
                           f"predicted {CLASS_NAMES[rows['original_prediction'][i]]} ({rows['original_confidence'][i]:.3f})"),
            (noise, f"+ perturbation (rescaled)\n{_steps(rows['iterations'][i])} of {step:g} x sign(grad)"
                    if method == "fgs" else "+ perturbation (rescaled)\none pixel"),
            (adversarial[i], f"= adversarial\npredicted {CLASS_NAMES[rows['adversarial_prediction'][i]]} "
                             f"({rows['adversarial_confidence'][i]:.3f})"),
        )
        _draw_row(fig, n, i, panels)
    fig.tight_layout()
    _save(fig, path)


def _draw_row(fig, n_rows: int, i: int, panels) -> None:
    """Row ``i`` of an ``n_rows`` x 3 grid of (image, title) panels."""
    for j, (img, title) in enumerate(panels):
        ax = fig.add_subplot(n_rows, 3, 3 * i + j + 1)
        ax.imshow(img, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")


def draw_perceptible(path: Path, originals, adversarial, rows: dict, step: float, weight: float = PERCEPTIBLE_WEIGHT) -> None:
    """Original | stored adversarial | original + weight*255*sign(perturbation), clipped: why the step is small."""
    from .data import CLASS_NAMES

    n = len(adversarial)
    fig = _figure(7.2, 2.3 * n)
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
    _save(fig, path)


def draw_iterations(path: Path, stats: dict, xlabel: str) -> None:
    """Histogram of attack iterations per split."""
    from matplotlib.ticker import MaxNLocator

    fig = _figure(7.0, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    top = max(max(int(st["iterations"].max(initial=0)) for st in stats.values()), 1)
    width = 0.8 / max(len(stats), 1)
    for k, (split, st) in enumerate(stats.items()):
        counts = np.bincount(st["iterations"], minlength=top + 1)[: top + 1]
        x = np.arange(top + 1) + (k - (len(stats) - 1) / 2) * width
        ax.bar(x, counts, width=width, label=f"{split} ({st['num_rows']} rows)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("images")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    ax.set_title("Iterations until the source model is fooled")
    fig.tight_layout()
    _save(fig, path)


# --------------------------------------------------------------------------- the card


def _check_readme(path: Path, overwrite: bool) -> None:
    from .dataset_card.render import MARKER

    if path.exists() and not overwrite:
        try:
            ours = MARKER in path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            ours = False
        if not ours:
            raise OutputError(
                f"{path} exists and was not written by `cifar10-fgs card`: move it away, or pass --overwrite to replace it"
            )


def write_card(
    dataset_dir: str | Path,
    repo_id: str | None = None,
    *,
    source: str | Path | None = None,
    examples: int = DEFAULT_EXAMPLES,
    overwrite: bool = False,
) -> CardResult:
    """Write ``DIR/README.md`` and ``DIR/figures/`` for a finished dataset folder.

    ``repo_id`` (``USER/NAME``) goes into the loading examples; without it they show a local path.
    ``source`` is the CIFAR-10 the folder was made from, used only to draw original images when the
    shards lack an ``original_image`` column. A README.md not written by this function is replaced
    only with ``overwrite``.
    """
    from .dataset_card import render as R

    t0 = time.time()
    dataset_dir = Path(dataset_dir)
    if repo_id is not None:
        check_repo_id(repo_id)
    if examples < 1:
        from .errors import ConfigError

        raise ConfigError(f"--examples {examples} is invalid: expected at least 1")
    manifest = load_complete_manifest(dataset_dir)
    readme = dataset_dir / README
    _check_readme(readme, overwrite)

    layout = R.read_layout(dataset_dir, manifest)
    tables = {s: R.read_columns(dataset_dir, sl) for s, sl in layout.splits.items()}
    stats = {s: R.split_statistics(tables[s], manifest, s) for s in layout.splits}
    attack = manifest["config"]["attack"]

    figures: dict[str, str] = {}
    notes: list[str] = []
    method = R.attack_method(manifest)
    xlabel = (f"attack iterations (0 = already misclassified; max allowed {attack['max_iterations']})" if method == "fgs"
              else "differential-evolution generations")
    draw_iterations(dataset_dir / FIGURES["iterations"], stats, xlabel)
    figures["iterations"] = FIGURES["iterations"]

    split = "test" if "test" in layout.splits else next(iter(layout.splits))
    positions = choose_examples(tables[split], examples)
    if len(positions) == 0:
        notes.append(f"No example figures: the source model misclassified every stored {split} original already.")
        originals = None
    else:
        originals, why_not = _originals(dataset_dir, manifest, layout, split, tables[split], positions, source)
        if why_not:
            notes.append(why_not)
    if originals is not None:
        adversarial = _read_images(dataset_dir, layout.splits[split], positions, "image")
        cols = ("label", "original_prediction", "original_confidence", "adversarial_prediction",
                "adversarial_confidence", "iterations")
        rows = {c: tables[split].column(c).to_numpy()[positions] for c in cols}
        draw_examples(dataset_dir / FIGURES["examples"], originals, adversarial, rows, float(attack["step"]), method)
        figures["examples"] = FIGURES["examples"]
        if method == "fgs":  # the weight-0.3 contrast is about the gradient sign step
            draw_perceptible(dataset_dir / FIGURES["perceptible"], originals, adversarial, rows, float(attack["step"]))
            figures["perceptible"] = FIGURES["perceptible"]
    for key in ("examples", "perceptible"):  # never leave a figure the card does not describe
        stale = dataset_dir / FIGURES[key]
        if key not in figures and stale.exists():
            log.info("removing %s: this card cannot redraw it", stale)
            stale.unlink()

    results = R.read_results(dataset_dir)
    card_data = R.build_card_data(manifest, layout)
    context = R.build_context(dataset_dir, manifest, layout, stats, results, figures, notes, repo_id)
    card = R.render_card(context, card_data)
    atomic_write_bytes(readme, str(card).encode("utf-8"))
    log.info("wrote %s", readme)
    return CardResult(
        path=str(readme), repo_id=repo_id, splits={s: sl.num_examples for s, sl in layout.splits.items()},
        figures=tuple(sorted(figures.values())), notes=tuple(notes), seconds=round(time.time() - t0, 3),
    )


def check_repo_id(repo_id: str) -> str:
    """``USER/NAME`` as the hub accepts it, else a one-line ConfigError."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    from .errors import ConfigError

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        repo_id_ok = False
    else:
        repo_id_ok = repo_id.count("/") == 1
    if not repo_id_ok:
        raise ConfigError(f"--repo-id {repo_id!r} is not a hub repo id: expected USER/NAME (letters, digits, -, _, .)")
    return repo_id
