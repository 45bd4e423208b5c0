"""What an upload sends, decided on this machine before the hub is contacted.

The dataset's own files (``listed_files``: ``README.md``, ``generation.json``, the shards the manifest lists,
``figures/*`` and ``results/*``; never hidden or temporary files), the card checked against the shards
(``check_upload_card``), and the source model (``find_source_model``, sha256-checked) with its provenance and
input-convention sidecar (``model_files``), named as ``generation.json`` names them.
"""

from __future__ import annotations

from pathlib import Path

from cifar10_fgs.config import SOURCE_MODEL_SEARCH
from cifar10_fgs.dataset import manifest as mf
from cifar10_fgs.dataset.folder import MODEL_DIR, shipped_model_paths
from cifar10_fgs.dataset.manifest import Manifest
from cifar10_fgs.dataset.shards import CARD, FIGURES_DIR, RESULTS_DIR, features
from cifar10_fgs.errors import ConfigError, ValidationError
from cifar10_fgs.models.convention import SIDECAR, check_recorded, read_sidecar
from cifar10_fgs.provenance import sha256_file
from cifar10_fgs.training.saved import model_metadata_path
from cifar10_fgs.validate.card_check import check_card

README = CARD


def _is_hidden_or_temp(name: str) -> bool:
    return name.startswith(".") or name.endswith((".tmp", ".partial", ".lock"))


def listed_files(dataset_dir: Path, manifest: Manifest) -> list[str]:
    files = [README, mf.FILE, *sorted(manifest.shards)]
    for folder in (FIGURES_DIR, RESULTS_DIR):
        d = dataset_dir / folder
        if d.is_dir():
            files += sorted(
                f"{folder}/{p.name}"
                for p in d.iterdir()
                if p.is_file() and not p.is_symlink() and not _is_hidden_or_temp(p.name)
            )
    return files


def check_upload_card(dataset_dir: Path, manifest: Manifest, repo_id: str) -> list[str]:
    """The README must describe these shards (else the hub's load_dataset fails); warn if it shows another repo id."""

    path = dataset_dir / README
    if not path.is_file():
        raise ValidationError(
            f"{dataset_dir} has no {README} card: run `cifar10-fgs card {dataset_dir} --repo-id {repo_id}` first"
        )
    columns = list(features(manifest.config.with_originals).arrow_schema.names)
    result = check_card(dataset_dir, columns, manifest.stored_rows())
    if not result.ok:
        why = result.skipped or result.problems[0].message
        raise ValidationError(
            f"{path} does not describe the shards in {mf.FILE} ({why}): rerun "
            f"`cifar10-fgs card {dataset_dir} --repo-id {repo_id}`"
        )
    warnings = []
    if f'load_dataset("{repo_id}"' not in path.read_text(encoding="utf-8", errors="replace"):
        warnings.append(
            f'{README} shows no load_dataset("{repo_id}") example (written for another or no --repo-id): rerun '
            f"`cifar10-fgs card {dataset_dir} --repo-id {repo_id}` before uploading to fix it"
        )
    return warnings


def find_source_model(dataset_dir: Path, manifest: Manifest, given: str | Path | None) -> Path:
    """The source model file to ship: ``given``, else the manifest's file name in SOURCE_MODEL_SEARCH; sha256-checked."""
    want = manifest.source_model.sha256
    name = Path(str(manifest.source_model.path or "")).name
    if given is not None:
        path = Path(given)
        if not path.is_file():
            raise ConfigError(
                f"--source-model {path} does not exist: pass the source model (.keras) the dataset was made with"
            )
    else:
        found = [dataset_dir / d / name for d in SOURCE_MODEL_SEARCH if name and (dataset_dir / d / name).is_file()]
        if not found:
            where = " or ".join(str(dataset_dir / d / (name or "MODEL.keras")) for d in SOURCE_MODEL_SEARCH)
            raise ConfigError(
                f"the source model {name or '(unnamed)'} of {dataset_dir} is not at {where}: pass --source-model PATH, or "
                "--no-source-model to publish the data without it"
            )
        path = found[0]
    if sha256_file(path) != want:
        raise ConfigError(
            f"--source-model {path} is not the model this dataset was generated with (sha256 differs from "
            f"{mf.FILE}): pass {name or 'the source model'}"
        )
    return path


def model_files(source_model: Path, manifest: Manifest) -> list[tuple[str, Path]]:
    """(path in repo, local file) of the model and its provenance JSON, named as ``generation.json`` names it."""

    in_repo = shipped_model_paths(manifest) or (
        f"{MODEL_DIR}/{source_model.name}",
        f"{MODEL_DIR}/{source_model.stem}.json",
    )
    files = [(in_repo[0], source_model)]
    meta = model_metadata_path(source_model)
    if meta.is_file():
        files.append((in_repo[1], meta))
    sidecar = read_sidecar(source_model.parent)
    if sidecar is not None:  # the model's input convention travels with it; it must be the one generate used
        check_recorded(manifest.config.recorded_convention(), [sidecar], str(source_model), mf.FILE)
        files.append((f"{MODEL_DIR}/{SIDECAR}", source_model.parent / SIDECAR))
    return files
