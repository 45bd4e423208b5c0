"""``card``: write ``DIR/README.md`` (a Hugging Face dataset card) and ``DIR/figures/*.png``.

This module gathers the card's inputs from the folder (``manifest``, the shards' layout,
``stats.split_statistics``, ``results/*.json``), draws the figures (``card_figures``) and writes the files; the text
itself is the pure ``cifar10_fgs.dataset_card`` (``render.CardInputs`` -> ``context.build_context``
-> template). Figures of original vs adversarial images need the originals: the ``original_image``
column when the folder was generated ``--with-originals``, else the CIFAR-10 input (``cifar10``) it was
generated from (checked against the manifest's fingerprint), else they are skipped with a note.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from cifar10_fgs.config import CARD_EXAMPLES, Method
from cifar10_fgs.data import CLASS_NAMES, SPLIT_SIZES
from cifar10_fgs.dataset import manifest as mf
from cifar10_fgs.dataset.folder import shipped_model_paths
from cifar10_fgs.dataset.manifest import Manifest
from cifar10_fgs.dataset.shards import CARD, RESULTS_DIR, read_columns, stream_info
from cifar10_fgs.dataset.stats import COLUMNS, SplitStatistics, split_statistics
from cifar10_fgs.dataset_card.context import build_context
from cifar10_fgs.dataset_card.render import (
    MARKER,
    CardInputs,
    Layout,
    ResultSection,
    SplitLayout,
    build_card_data,
    ordered_splits,
    render_card,
)
from cifar10_fgs.errors import ConfigError, ExistingOutputError, ValidationError
from cifar10_fgs.evaluate.comparison import NAME
from cifar10_fgs.evaluate.results import results_paths
from cifar10_fgs.formatting import fmt
from cifar10_fgs.models.networks import FLIP_SUFFIX
from cifar10_fgs.provenance import atomic_write_bytes
from cifar10_fgs.publish.card_figures import FIGURES, draw_example_figures, draw_iterations
from cifar10_fgs.publish.repo_id import check_repo_id

log = logging.getLogger(__name__)

README = CARD


@dataclass(frozen=True)
class CardResult:
    path: str  # the README.md written
    repo_id: str | None
    splits: dict  # split -> rows
    figures: tuple[str, ...]  # paths relative to the dataset folder
    notes: tuple[str, ...]  # what the card could not show, and why
    seconds: float


# --------------------------------------------------------------------------- reading the folder


def read_layout(dataset_dir: Path, manifest: Manifest) -> Layout:
    """Features, rows and bytes of every shard listed in ``manifest``, read from the files' Arrow streams."""
    import datasets

    by_split: dict[str, list[str]] = {}
    for name, entry in manifest.shards.items():
        by_split.setdefault(entry.split, []).append(name)
    features = None
    splits = {}
    for split in ordered_splits(by_split):
        files = tuple(sorted(by_split[split]))
        rows, num_bytes, file_bytes = [], 0, 0
        for name in files:
            schema, n, nbytes = stream_info(dataset_dir / name)
            feats = datasets.Features.from_arrow_schema(schema)
            if features is None:
                features = feats
            elif feats != features:
                raise ValidationError(
                    f"{name} has other features than the first shard: "
                    "regenerate the folder with one `cifar10-fgs generate` setting"
                )
            rows.append(n)
            num_bytes += nbytes
            file_bytes += (dataset_dir / name).stat().st_size
        splits[split] = SplitLayout(split, files, tuple(rows), sum(rows), num_bytes, file_bytes)
    if features is None:
        raise ValidationError(f"{dataset_dir} lists no shards in {mf.FILE}: run `cifar10-fgs generate` first")
    return Layout(features, splits)


def read_statistics(dataset_dir: Path, manifest: Manifest, split: SplitLayout) -> tuple[SplitStatistics, object]:
    """(statistics of ``split``, its numeric columns as one Arrow table)."""

    table = read_columns(dataset_dir, split.files, COLUMNS)
    st = split_statistics(table, manifest.config.splits[split.name].num_rows, manifest.failures(split.name))
    return st, table


def read_results(dataset_dir: Path) -> list[ResultSection]:
    """Sections for ``results/*.json``: its ``markdown`` field verbatim, else its top-level numbers."""
    folder = dataset_dir / RESULTS_DIR
    if not folder.is_dir():
        return []
    sections = []
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith("."):
            continue
        title = path.stem.replace("_", " ").replace("-", " ").capitalize()
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("results/%s is not readable JSON (%s): left out of the card", path.name, type(exc).__name__)
            sections.append(ResultSection(path.name, title, note="This file is not valid JSON and is left out."))
            continue
        if not isinstance(obj, dict):
            sections.append(ResultSection(path.name, title, note="This file holds no JSON object and is left out."))
            continue
        if isinstance(obj.get("title"), str) and obj["title"].strip():
            title = obj["title"].strip()
        markdown = obj.get("markdown")
        if isinstance(markdown, str) and markdown.strip():
            sections.append(ResultSection(path.name, title, markdown=markdown.strip()))
            continue
        numbers = tuple(
            (k, str(v) if isinstance(v, int) else fmt(v))  # an int as written, a float with 4 decimals
            for k, v in sorted(obj.items())
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        )
        note = None if numbers else "No top-level numbers to show; see the file."
        sections.append(ResultSection(path.name, title, numbers=numbers, note=note))
    return sections


# --------------------------------------------------------------------------- the card


def claim_readme(path: Path, overwrite: bool) -> None:
    """A README.md at ``path`` not written by ``write_card`` is replaced only with ``overwrite``."""
    if path.exists() and not overwrite:
        try:
            ours = MARKER in path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            ours = False
        if not ours:
            raise ExistingOutputError(path, "exists and was not written by `cifar10-fgs card`", "move it away")


def _paper_comparison(dataset_dir: Path) -> str | None:
    """``results/paper.md`` relative to the folder, if the paper comparison is complete (its JSON is written last)."""

    json_path, md_path = results_paths(dataset_dir, NAME)
    return md_path.relative_to(dataset_dir).as_posix() if json_path.is_file() and md_path.is_file() else None


def write_card(
    dataset_dir: str | Path,
    repo_id: str | None = None,
    *,
    cifar10: str | Path | None = None,
    examples: int = CARD_EXAMPLES,
    overwrite: bool = False,
) -> CardResult:
    """Write ``DIR/README.md`` and ``DIR/figures/`` for a finished dataset folder.

    ``repo_id`` (``USER/NAME``) goes into the loading examples; without it they show a local path.
    ``cifar10`` is the CIFAR-10 the folder was made from, used only to draw original images when the
    shards lack an ``original_image`` column. A README.md not written by this function is replaced
    only with ``overwrite``.
    """

    t0 = time.time()
    dataset_dir = Path(dataset_dir)
    if repo_id is not None:
        check_repo_id(repo_id)
    if examples < 1:
        raise ConfigError(f"--examples {examples} is invalid: expected at least 1")
    manifest = mf.read(dataset_dir, complete=True)
    readme = dataset_dir / README
    claim_readme(readme, overwrite)

    layout = read_layout(dataset_dir, manifest)
    read = {s: read_statistics(dataset_dir, manifest, sl) for s, sl in layout.splits.items()}
    stats = {s: st for s, (st, _) in read.items()}
    tables = {s: t for s, (_, t) in read.items()}
    figures: dict[str, str] = {}
    notes: list[str] = []
    xlabel = (
        f"attack iterations (0 = already misclassified; max allowed {manifest.config.max_iterations})"
        if manifest.config.method is Method.FGS
        else "differential-evolution generations"
    )
    draw_iterations(dataset_dir / FIGURES["iterations"], stats, xlabel)
    figures["iterations"] = FIGURES["iterations"]
    draw_example_figures(dataset_dir, manifest, layout, tables, examples, cifar10, figures, notes)

    inputs = CardInputs(
        manifest=manifest,
        layout=layout,
        stats=stats,
        results=tuple(read_results(dataset_dir)),
        figures=figures,
        notes=tuple(notes),
        repo_id=repo_id,
        folder_name=dataset_dir.resolve().name,
        class_names=tuple(CLASS_NAMES),
        full_split_sizes=dict(SPLIT_SIZES),
        flip_suffix=FLIP_SUFFIX,
        shipped_model=shipped_model_paths(manifest),
        paper_comparison=_paper_comparison(dataset_dir),
    )
    card = render_card(build_context(inputs), build_card_data(inputs))
    atomic_write_bytes(readme, str(card).encode("utf-8"))
    log.info("wrote %s", readme)
    return CardResult(
        path=str(readme),
        repo_id=repo_id,
        splits={s: sl.num_examples for s, sl in layout.splits.items()},
        figures=tuple(sorted(figures.values())),
        notes=tuple(notes),
        seconds=round(time.time() - t0, 3),
    )
