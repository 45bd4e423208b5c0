"""``validate hub:USER/NAME[@REVISION]``: re-prove a published copy from nothing but its repo id.

The repo is downloaded with :func:`cifar10_fgs.hub.download` and checked by
:func:`cifar10_fgs.validate.validate_dataset`, against the source model shipped under ``source_model/``
and, when ``cifar10`` is given or the manifest names a ``hub:`` CIFAR-10, against the originals.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from cifar10_fgs.dataset import manifest as mf
from cifar10_fgs.dataset.folder import MODEL_DIR, shipped_model_paths
from cifar10_fgs.errors import HubError, NotADatasetError
from cifar10_fgs.hub import PREFIX, HubSnapshot, download, parse_hub_ref
from cifar10_fgs.validate import validate_dataset

log = logging.getLogger(__name__)


def shipped_model(snapshot: HubSnapshot, manifest: mf.Manifest) -> Path:
    """The source model the repo ships under ``source_model/`` (one-line HubError if it has none)."""
    paths = shipped_model_paths(manifest)
    model = Path(snapshot.path) / paths[0] if paths else None
    if model is None or not model.is_file():
        name = paths[0] if paths else f"{MODEL_DIR}/*.keras"
        raise HubError(
            f"{snapshot.label} holds no {name} (uploaded with --no-source-model?): pass --source-model PATH "
            "(the generating model) to validate against it"
        )
    return model


def hub_cifar10(manifest: mf.Manifest) -> str | None:
    """The manifest's CIFAR-10 input if it is a hub dataset (reachable from anywhere), else None."""
    recorded = str(manifest.data_source.source or "")
    return recorded if recorded.startswith(PREFIX) else None


def validate_hub(ref: str, source_model=None, *, cifar10=None, **options):
    """Download ``hub:USER/NAME[@REVISION]`` (``ref``) and run every check of ``validate_dataset`` on it.

    The model is ``source_model`` or the one shipped under ``source_model/``; the originals are
    ``cifar10`` or the manifest's ``hub:`` CIFAR-10 (those checks are skipped when neither exists).
    The report's ``dataset_dir`` is ``hub:USER/NAME@<commit>`` and its ``commit`` the commit checked.
    """
    snapshot = download(parse_hub_ref(ref), progress=bool(options.get("progress")))
    if not mf.exists(snapshot.path):
        raise NotADatasetError(f"{snapshot.label} holds no {mf.FILE}: it is not a dataset written by cifar10-fgs")
    try:
        manifest = mf.read(snapshot.path)
    except mf.ManifestError:
        manifest = None  # validate_dataset reports the unusable manifest as a failed check
    if source_model is None and manifest is not None:
        source_model = shipped_model(snapshot, manifest)
    if cifar10 is None and manifest is not None:
        cifar10 = hub_cifar10(manifest)
        if cifar10 is None:
            log.info("%s was made from a local source; originals not checked (pass --cifar10)", snapshot.label)
    report = validate_dataset(snapshot.path, source_model, cifar10=cifar10, **options)
    return dataclasses.replace(report, dataset_dir=snapshot.label, commit=snapshot.commit)
