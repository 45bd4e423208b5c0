"""The adversarial rows of a dataset folder joined to the original split by their ``index`` column.

Every evaluation reads the adversarial split back through ``datasets.load_dataset(DIR)`` and joins
each row to the original split by its ``index`` column, the row of the CIFAR-10 split (also for a
``--limit`` subset): ``original[index]``. The original comes from ``load_cifar10(cifar10, split)``
(``cifar10`` defaults to the one recorded in ``generation.json``); the rows generated from (the first
``num_rows``, or the ``--limit`` subset) must have the fingerprint recorded at generation time. Rows the
attack did not fool are absent from the shards (listed as failures in ``generation.json``): evaluations
run on the joined rows, sorted by index, and report how many were used.

``read_generation`` is the only place in this package that reads ``generation.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifar10_fgs.config import PIXEL_RANGE
from cifar10_fgs.data import Cifar10Split, check_split, datasets_progress, load_cifar10
from cifar10_fgs.dataset import manifest as mf
from cifar10_fgs.dataset.shards import decode_images
from cifar10_fgs.errors import Cifar10Error, ValidationError
from cifar10_fgs.evaluate.metrics import linf_levels
from cifar10_fgs.models.convention import InputConvention
from cifar10_fgs.provenance import dumps_sorted, sha256_bytes, sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitGeneration:
    """One split as ``generate`` recorded it."""

    num_rows: int  # rows of the original split the generation covered
    num_shards: int | None  # shards the finished split has (None: not recorded)
    fingerprint: str | None  # of the original images and labels generated from (the first num_rows, or the subset)
    config: dict  # the split's entry of the generation config, as recorded (for the dataset identity)
    shards_sha256: dict  # shard file -> sha256, for the shards written so far
    failures: tuple[int, ...]  # CIFAR-10 rows the attack did not fool (absent from the shards), ascending
    rows: mf.SplitRows  # the CIFAR-10 rows generated from: all, or the --limit subset (``index`` is one of them)


@dataclass(frozen=True)
class Generation:
    """What the evaluations need from ``generation.json``."""

    config_sha256: str  # sha256 of the sorted JSON of the whole generation config
    source_model_sha256: str | None
    attack: dict | None
    cifar10: str | None  # the CIFAR-10 input the folder was generated from (generation.json's data_source)
    splits: dict[str, SplitGeneration]
    manifest: mf.Manifest  # the whole record, as the manifest package read it
    attack_step: float | None = None  # FGS step, fraction of the pixel range
    attack_seconds: float | None = None  # wall time of every generate run that attacked images

    def recorded_convention(self, path) -> InputConvention | None:
        """How generate fed the Keras file ``path`` (``Config.recorded_convention``) if it is the generating model (its
        sha256); else None."""
        path = Path(str(path))
        if path.suffix.lower() not in (".keras", ".h5", ".hdf5") or not path.is_file():
            return None
        if sha256_file(path) != self.source_model_sha256:
            return None
        return self.manifest.config.recorded_convention()


def read_generation(dataset_dir: str | Path) -> Generation:
    """``DIR/generation.json`` (read by the ``manifest`` package) as a ``Generation``; one-line errors if it cannot."""
    dataset_dir = Path(dataset_dir)
    try:
        m = mf.read(dataset_dir)
    except mf.ManifestError as exc:
        raise Cifar10Error(f"{exc}") from None
    config = m.config.to_json()
    splits = {
        s: SplitGeneration(
            c.num_rows,
            c.num_shards,
            c.fingerprint,
            config["splits"][s],
            {n: e.sha256 for n, e in m.shards_of(s)},
            m.failures(s),
            c.cifar10_rows(),
        )
        for s, c in m.config.splits.items()
    }
    return Generation(
        sha256_bytes(dumps_sorted(config).encode()),
        m.config.model_sha256,
        m.config.attack,
        m.data_source.source,
        splits,
        m,
        m.config.attack.get("step"),
        m.timing.attack_seconds or None,
    )


@dataclass(frozen=True)
class JoinedSplit:
    """Adversarial rows of one split joined to the original split by ``index`` (sorted by index)."""

    split: str
    index: np.ndarray  # int64 rows of the original split, ascending
    labels: np.ndarray  # int64
    original: np.ndarray  # uint8 (N, 32, 32, 3): the original images at ``index``
    adversarial: np.ndarray  # uint8 (N, 32, 32, 3)
    columns: dict  # stored per-row columns (iterations, linf, original/adversarial_prediction), aligned
    num_rows_split: int  # rows the generation covered (config.splits[split].num_rows)
    failures: tuple[int, ...]  # indices absent because the attack did not fool the source on them
    original_split: Cifar10Split  # the rows the split was generated from (all, or the --limit subset)

    def __len__(self) -> int:
        return int(self.index.shape[0])


def dataset_identity(dataset_dir: Path, generation: Generation, splits: Sequence[str]) -> dict:
    """What identifies the adversarial data an evaluation used (hashes from the manifest)."""
    shards = {n: h for s in splits for n, h in generation.splits[s].shards_sha256.items()}
    return {
        "dir": str(dataset_dir),
        "config_sha256": generation.config_sha256,
        "source_model_sha256": generation.source_model_sha256,
        "attack": generation.attack,
        "splits": {s: generation.splits[s].config for s in splits},
        "shards_sha256": dict(sorted(shards.items())),
    }


def check_split_generated(dataset_dir: Path, generation: Generation, split: str) -> SplitGeneration:
    """The split's record; one-line errors if it was not generated or is unfinished."""
    check_split(split)
    if split not in generation.splits:
        raise Cifar10Error(
            f"{dataset_dir} holds no {split!r} split (generated: {', '.join(sorted(generation.splits)) or 'none'}): "
            f"evaluate a folder generated with it (`cifar10-fgs generate --split all`)"
        )
    sg = generation.splits[split]
    if len(sg.shards_sha256) != sg.num_shards:
        raise ValidationError(
            f"{dataset_dir}/{mf.FILE} lists {len(sg.shards_sha256)} of {sg.num_shards} {split} shards: finish the "
            "generation (rerun the same generate command) before evaluating"
        )
    return sg


def load_adversarial(dataset_dir: str | Path, *, cache_dir: str | None = None, progress: bool = False):
    """``datasets.load_dataset(DIR)`` (plain, not streaming) with a one-line error if it fails."""
    import datasets

    try:
        with datasets_progress(progress):
            return datasets.load_dataset(str(dataset_dir), cache_dir=cache_dir)
    except Exception as exc:  # noqa: BLE001 - datasets raises many kinds; all mean "cannot read this folder"
        raise Cifar10Error(
            f"datasets.load_dataset cannot read {dataset_dir} ({type(exc).__name__}: {exc}): "
            "run `cifar10-fgs validate` on it or generate it again"
        ) from None


def load_original(cifar10: str | Path, split: str, generation: Generation) -> Cifar10Split:
    """The whole original split, whose rows generated from (all, or the subset) have the generation fingerprint."""
    original = load_cifar10(cifar10, split)
    generation.manifest.check_cifar10_fingerprint(split, original)
    return original


def join_split(dsd, dataset_dir: Path, generation: Generation, split: str, original: Cifar10Split) -> JoinedSplit:
    """Join the rows of ``dsd[split]`` (a loaded DatasetDict) to ``original`` (the whole split) by ``index``."""
    import datasets

    record = check_split_generated(dataset_dir, generation, split)
    n = record.num_rows
    if split not in dsd:
        raise ValidationError(
            f"datasets.load_dataset({dataset_dir}) finds no {split!r} split although {mf.FILE} lists it: "
            "run `cifar10-fgs validate` on the folder"
        )
    ds = dsd[split]
    cols = ["image", "index", "label", "linf", "iterations", "original_prediction", "adversarial_prediction"]
    missing = [c for c in cols if c not in ds.column_names]
    if missing:
        raise ValidationError(
            f"the {split} split of {dataset_dir} lacks column {missing[0]!r}: generate the folder again"
        )
    ds = ds.select_columns(cols).cast_column("image", datasets.Image(decode=False))
    table = ds.with_format("arrow")[:]
    index = table.column("index").to_numpy().astype(np.int64)
    failures = record.failures
    values, counts = np.unique(index, return_counts=True)
    if (counts > 1).any():
        dup = int(values[counts > 1][0])
        raise ValidationError(
            f"index {dup} appears twice in the {split} split of {dataset_dir}: generate the folder again"
        )
    expected = np.setdiff1d(record.rows.original_rows, np.asarray(failures, np.int64))
    if len(index) != len(expected) or not np.array_equal(np.sort(index), expected):
        extra = np.setdiff1d(index, expected)
        lost = np.setdiff1d(expected, index)
        what = f"row index {int(extra[0])} is not expected" if extra.size else f"row index {int(lost[0])} is missing"
        raise ValidationError(
            f"the {split} split of {dataset_dir} does not match {mf.FILE} ({what}; {len(index)} rows, "
            f"{len(expected)} expected): run `cifar10-fgs validate` and regenerate the folder"
        )
    if len(index) == 0:
        raise ValidationError(
            f"the {split} split of {dataset_dir} holds no rows (every image failed): nothing to evaluate"
        )
    order = np.argsort(index, kind="stable")
    index = index[order]
    labels = table.column("label").to_numpy().astype(np.int64)[order]
    if not np.array_equal(labels, original.labels[index]):
        bad = int(index[np.flatnonzero(labels != original.labels[index])[0]])
        raise ValidationError(
            f"the label of {split} row index {bad} in {dataset_dir} differs from the original's: "
            "the shards were altered; regenerate the folder"
        )
    cells = table.column("image").to_pylist()
    adversarial = decode_images([cells[i] for i in order])
    orig_images = original.images[index]
    columns = {
        c: table.column(c).to_numpy()[order]
        for c in ("linf", "iterations", "original_prediction", "adversarial_prediction")
    }
    measured = linf_levels(adversarial, orig_images) / PIXEL_RANGE
    off = np.abs(measured - columns["linf"].astype(np.float64)) > 1e-4
    if off.any():
        bad = int(index[np.flatnonzero(off)[0]])
        raise ValidationError(
            f"{split} row index {bad} of {dataset_dir}: the stored linf does not match the image's distance "
            "to its original: the shards were altered; regenerate the folder"
        )
    generated = original if len(record.rows) == len(original) else original.take(record.rows.original_rows)
    return JoinedSplit(split, index, labels, orig_images, adversarial, columns, n, failures, generated)


def load_joined(
    dataset_dir: str | Path,
    splits: Sequence[str],
    cifar10: str | Path | None = None,
    *,
    cache_dir: str | None = None,
    progress: bool = False,
) -> tuple[dict[str, JoinedSplit], Generation, str]:
    """Load ``splits`` of the folder and join them to ``cifar10``: (joined by split, generation record, CIFAR-10 used)."""
    dataset_dir = Path(dataset_dir)
    generation = read_generation(dataset_dir)
    for s in splits:
        check_split_generated(dataset_dir, generation, s)
    cifar10 = str(cifar10) if cifar10 is not None else _recorded_cifar10(dataset_dir, generation)
    originals = {s: load_original(cifar10, s, generation) for s in splits}
    dsd = load_adversarial(dataset_dir, cache_dir=cache_dir, progress=progress)
    joined = {s: join_split(dsd, dataset_dir, generation, s, originals[s]) for s in splits}
    for s, j in joined.items():
        log.info(
            "%s: joined %d adversarial rows to %d original rows (%d failures absent)",
            s,
            len(j),
            j.num_rows_split,
            len(j.failures),
        )
    return joined, generation, cifar10


def _recorded_cifar10(dataset_dir: Path, generation: Generation) -> str:
    recorded = generation.cifar10
    if not recorded:
        raise Cifar10Error(
            f"{dataset_dir}/{mf.FILE} records no CIFAR-10 input: pass --cifar10 DATA (the original CIFAR-10)"
        )
    return str(recorded)


# =========================================================================== results files
