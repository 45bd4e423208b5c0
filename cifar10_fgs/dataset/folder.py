"""The dataset folder as ``generate`` and ``combine`` write it: the lock, and what may be resumed or replaced."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from cifar10_fgs.dataset import manifest as mf
from cifar10_fgs.dataset.manifest import Manifest, ShardEntry
from cifar10_fgs.dataset.shards import CARD, DATA_DIR, FIGURES_DIR, LOCK, RESULTS_DIR, TMP_DIR, file_matches
from cifar10_fgs.errors import ExistingOutputError, OutputError

MODEL_DIR = "source_model"  # where a published copy ships its source model


def shipped_model_paths(manifest: Manifest) -> tuple[str, str] | None:
    """(model, provenance JSON) paths in the repo for this manifest's source model; None if it names none."""
    name = Path(str(manifest.source_model.path or "")).name
    if not name:
        return None
    return f"{MODEL_DIR}/{name}", f"{MODEL_DIR}/{Path(name).with_suffix('.json').name}"


@contextmanager
def folder_lock(dataset_dir: Path):
    """An exclusive flock on ``DIR/.lock``: released by the kernel if the holder dies, so never stale."""
    path = dataset_dir / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                raise OutputError(
                    f"{dataset_dir} is being written by another generate (pid {holder}): wait for it or use another --out"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def prepare_dataset_dir(dataset_dir: Path, key: mf.Config, overwrite: bool) -> Manifest | None:
    """Check ``dataset_dir`` against the settings ``key``; return the manifest to resume, or None."""
    if dataset_dir.exists() and not dataset_dir.is_dir():
        raise OutputError(f"{dataset_dir} is a file: expected a folder for the dataset")
    if mf.exists(dataset_dir):
        try:
            manifest = mf.read(dataset_dir)
        except mf.StaleIndexError:  # an old --limit folder: replaced only with --overwrite, and said why
            if not overwrite:
                raise ExistingOutputError(
                    dataset_dir,
                    "is a --limit subset whose shards store `index` as the position in the subset, not the CIFAR-10 "
                    "row (written by an older cifar10-fgs)",
                ) from None
            manifest = None
        except mf.ManifestError:
            manifest = None
        if manifest is not None and manifest.config.resume_key() == key.resume_key():
            return manifest
        if not overwrite:
            raise ExistingOutputError(dataset_dir, "was generated with other settings (model, data or attack)")
        return None
    if dataset_dir.exists():
        ours = {DATA_DIR, TMP_DIR, LOCK, RESULTS_DIR, FIGURES_DIR}
        foreign = [p.name for p in dataset_dir.iterdir() if p.name not in ours]
        if foreign:
            raise OutputError(
                f"{dataset_dir} is not empty and holds no {mf.FILE} (found {foreign[0]}): choose a new or empty --out"
            )
    return None


def check_writable(dataset_dir: Path) -> None:
    probe = dataset_dir if dataset_dir.exists() else next((p for p in dataset_dir.parents if p.exists()), Path("."))
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"{probe} is not writable: choose an --out folder you can write to")


def clear_outputs(dataset_dir: Path) -> None:
    """Remove what an earlier run with other settings left: shards, manifest, card, figures, results."""
    ours = (DATA_DIR, TMP_DIR, RESULTS_DIR, FIGURES_DIR) + ((CARD,) if mf.exists(dataset_dir) else ())
    for stale in (*ours, mf.FILE):
        p = dataset_dir / stale
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def shard_done(dataset_dir: Path, name: str, entry: ShardEntry | None) -> bool:
    """A shard counts as done only if its bytes hash to what the manifest recorded."""
    return entry is not None and file_matches(dataset_dir / name, entry.sha256, entry.bytes)
