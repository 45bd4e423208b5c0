"""Results files: ``DIR/results/<name>.json`` (written last), ``<name>.md`` and PNG figures, plus table helpers.

A results JSON holds the settings, model sha256s, library versions, the numbers and a ``markdown``
field with ready tables (the dataset card shows it). Files are written atomically, JSON last, so
its presence means the set is complete. ``refuse_other_settings`` is the one claim of every evaluation and
the leaderboard: a file made with other settings is replaced only with ``overwrite``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

from cifar10_fgs.dataset.shards import RESULTS_DIR
from cifar10_fgs.dataset_card.render import md_table as card_table
from cifar10_fgs.errors import ConfigError, ExistingOutputError, OutputError
from cifar10_fgs.evaluate.figures import save_png
from cifar10_fgs.models.forward import load_classifier, model_key
from cifar10_fgs.models.networks import architecture, load_model
from cifar10_fgs.provenance import atomic_write_bytes, dumps_sorted, read_json, sha256_bytes, sha256_file, write_json

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ConfigError(f"results name {name!r} is invalid: use letters, digits, '_', '.' or '-' (e.g. transfer)")
    return name


def results_paths(dataset_dir: str | Path, name: str) -> tuple[Path, Path]:
    base = Path(dataset_dir) / RESULTS_DIR
    return base / f"{name}.json", base / f"{name}.md"


def settings_key(kind: str, settings: dict, models: dict, dataset: dict) -> str:
    key = {
        "kind": kind,
        "settings": settings,
        "models": {k: model_key(v) for k, v in models.items()},
        "dataset": dataset["config_sha256"],
    }
    return sha256_bytes(dumps_sorted(key).encode())


def settings_key_of(json_path: Path) -> str | None:
    """The ``settings_sha256`` an existing results or leaderboard file was made with (None if unreadable)."""
    try:
        return read_json(json_path).get("settings_sha256")
    except (OSError, ValueError, AttributeError):
        return None


def claim_kind(dataset_dir: Path, name: str, kind: str, overwrite: bool) -> None:
    """Refuse to replace a ``results/<name>.json`` of another kind (e.g. transfer results named like ``kind``)."""
    json_path, _ = results_paths(dataset_dir, name)
    try:
        found = read_json(json_path).get("kind") if json_path.exists() else kind
    except (OSError, ValueError, AttributeError):
        found = None
    if found != kind and not overwrite:
        raise ExistingOutputError(json_path, f"holds other results than {kind}", "give those results another --name")


def claim_results(dataset_dir: Path, name: str, key: str, overwrite: bool) -> None:
    """Refuse to replace results made with other settings (same settings: recomputed and replaced)."""
    json_path, _ = results_paths(dataset_dir, name)
    if not (dataset_dir / RESULTS_DIR).exists():
        if not os.access(dataset_dir, os.W_OK | os.X_OK):
            raise OutputError(
                f"{dataset_dir} is not writable: results go to {dataset_dir / RESULTS_DIR}; copy the folder first"
            )
    elif not os.access(dataset_dir / RESULTS_DIR, os.W_OK | os.X_OK):
        raise OutputError(f"{dataset_dir / RESULTS_DIR} is not writable: make it writable or copy the dataset folder")
    refuse_other_settings(
        json_path,
        key,
        overwrite,
        "holds results made with other settings (models, data or options)",
        "--name NAME to keep both",
    )


def refuse_other_settings(json_path: Path, key: str, overwrite: bool, why: str, alternative: str) -> None:
    """The one claim of every evaluation and the leaderboard: ``json_path`` made with other settings than ``key``
    is not replaced unless ``overwrite`` (made with the same settings: recomputed and replaced); the
    ``ExistingOutputError`` says ``why`` and the ``alternative`` to ``--overwrite``."""
    if not overwrite and json_path.exists() and settings_key_of(json_path) != key:
        raise ExistingOutputError(json_path, why, alternative)


def model_info(path: str | Path, unsafe: bool):
    """(loaded Keras model, its identity for the results: path, file, sha256, architecture)."""

    model = load_model(path, unsafe=unsafe)
    return model, {
        "path": str(path),
        "file": Path(path).name,
        "sha256": sha256_file(path),
        "architecture": architecture(model),
    }


def classifier_info(path: str | Path, unsafe: bool, declared=None, recorded=None):
    """(a model only run forward, Keras or ONNX: ``models.forward.load_classifier``, its identity and what runs it).

    ``recorded``: the input convention generation.json records for the model (the source model), used instead of
    the declared one."""

    model = load_classifier(path, declared=declared, unsafe=unsafe, recorded=recorded, record="generation.json")
    info = {"path": str(path), "file": Path(path).name, "sha256": model.sha256, "architecture": model.architecture}
    return model, {**info, **model.describe()}


def save_figure(fig, path: Path) -> None:

    save_png(fig, path, dpi=120, bbox_inches="tight")


def write_results(
    dataset_dir: Path, name: str, report: dict, figures: dict[str, object], title: str
) -> tuple[str, str, tuple[str, ...]]:
    """Write the PNGs, then ``<name>.md``, then ``<name>.json`` (last: its presence means complete)."""
    json_path, md_path = results_paths(dataset_dir, name)
    plots = []
    for fname, fig in figures.items():
        save_figure(fig, dataset_dir / RESULTS_DIR / fname)
        plots.append(f"{RESULTS_DIR}/{fname}")
    report["plots"] = plots
    report["title"] = title  # the dataset card uses it as the section heading
    images = "".join(f"\n![{Path(p).stem}]({Path(p).name})\n" for p in plots)
    atomic_write_bytes(md_path, f"# {title}\n\n{report['markdown']}{images}".encode())
    write_json(json_path, report)
    log.info("wrote %s", json_path)
    return str(json_path), str(md_path), tuple(plots)


def progress_bar(total: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", disable=not progress, leave=False)


def md_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """The card's markdown table (``dataset_card.render.md_table``), ending in a newline."""

    return card_table(headers, rows) + "\n"


def rows_note(j) -> str:
    """How many rows of a ``JoinedSplit`` were used, and why some are absent."""
    note = f"{len(j)} of {j.num_rows_split} {j.split} rows"
    if j.failures:
        note += f" ({len(j.failures)} rows the attack did not fool are absent from the dataset and excluded)"
    return note
