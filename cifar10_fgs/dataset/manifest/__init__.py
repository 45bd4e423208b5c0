"""The one owner of ``generation.json``: its schema as frozen dataclasses, reading, writing, checks.

``generation.json`` sits at the top of a dataset folder. Schema (format version 1)::

    config          the settings that made the folder (a folder resumes only with equal settings)
      format_version, method ("fgs" | "onepixel"), attack {AttackConfig fields}, onepixel {..} (onepixel only),
      model_sha256, rows_per_shard, replicas, with_originals, input_convention (only when not this project's
      Keras convention: layout, scale, mean, std, output),
      splits {<split>: {fingerprint, num_rows, num_shards, subset (``--limit`` only: rule, limit, seed, original_rows,
              index: "cifar10_row")}}
    source_model    path, sha256, architecture, test_accuracy, test_loss, recipe, train_data, outputs, train_accuracy, network,
                    input_convention (how it was fed, where each field was declared, how the logits were taken)
    data_source     source (as given), splits {<split>: how that split was read}
    library_versions {package: version}
    worker          num_workers, worker_index (this machine's part of the work), combined_from
    shards          {data/<split>-<i>-of-<n>.arrow: {split, shard, rows, sha256, bytes, index_range, failures,
                     gradient_evaluations}}  (index_range and failures in CIFAR-10 rows, as the ``index`` column: ``rows``)
    complete        true once every shard of every split is present
    summary         {<split>: statistics of the stored rows, phases and perturbation percentiles (``stats.SplitSummary``)}
    timing          shard_seconds {<shard>: seconds}, seconds_total, runs, last_run_* (volatile)

Every module reads and writes the file through :func:`read` and :func:`write`. Keys this version
does not know are kept in each record's ``extra`` and written back unchanged, so a newer writer's
additions survive an older reader. The records below the top level are in ``records`` (``config``) and
``provenance_records`` (the others), their JSON helpers in ``fields``, a split's CIFAR-10 rows in ``rows``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from cifar10_fgs.data import check_split
from cifar10_fgs.dataset.manifest.fields import ManifestError, extra_keys, to_object
from cifar10_fgs.dataset.manifest.provenance_records import DataSource, ShardEntry, SourceModel, Timing, Worker
from cifar10_fgs.dataset.manifest.records import FORMAT_VERSION, Config, SplitConfig, StaleIndexError, Subset
from cifar10_fgs.dataset.manifest.rows import SplitRows
from cifar10_fgs.dataset.shards import DATA_DIR
from cifar10_fgs.dataset.stats import SplitSummary
from cifar10_fgs.errors import Cifar10Error, NotADatasetError, ValidationError
from cifar10_fgs.provenance import read_json, write_json

__all__ = [
    "FILE",
    "FORMAT_VERSION",
    "Cifar10MismatchError",
    "Config",
    "DataSource",
    "Manifest",
    "ManifestError",
    "ShardEntry",
    "SourceModel",
    "SplitConfig",
    "SplitRows",
    "StaleIndexError",
    "Subset",
    "Timing",
    "Worker",
    "exists",
    "path",
    "read",
    "write",
]

FILE = "generation.json"


class Cifar10MismatchError(Cifar10Error):
    """A CIFAR-10 input whose rows are not those the folder was generated from."""


# --------------------------------------------------------------------------- the record


@dataclass(frozen=True)
class Manifest:
    config: Config
    shards: dict[str, ShardEntry] = field(default_factory=dict)  # by file name relative to the folder
    complete: bool = False
    source_model: SourceModel = field(default_factory=SourceModel)
    data_source: DataSource = field(default_factory=DataSource)
    library_versions: dict = field(default_factory=dict)
    worker: Worker = field(default_factory=Worker)
    summary: dict | None = None  # split -> stats.SplitSummary
    timing: Timing = field(default_factory=Timing)
    malformed: dict = field(default_factory=dict)  # shard -> why its entry is unusable (never written back)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj) -> Manifest:

        if not isinstance(obj, dict):
            raise ManifestError(f"holds a {type(obj).__name__}, not an object")
        if not isinstance(obj.get("config"), dict):
            raise ManifestError("has no 'config' object")
        if not isinstance(obj.get("shards"), dict):
            raise ManifestError("has no 'shards' object")
        shards, malformed = {}, {}
        for name, entry in obj["shards"].items():
            try:
                shards[name] = ShardEntry.from_json(entry)
            except ManifestError as exc:
                malformed[name] = str(exc)
        summary = obj.get("summary")
        return cls(
            config=Config.from_json(obj["config"]),
            shards=shards,
            complete=obj.get("complete") is True,
            source_model=SourceModel.from_json(obj.get("source_model")),
            data_source=DataSource.from_json(obj.get("data_source")),
            library_versions=dict(obj.get("library_versions") or {}),
            worker=Worker.from_json(obj.get("worker")),
            summary={s: SplitSummary.from_json(v) for s, v in summary.items()} if isinstance(summary, dict) else None,
            timing=Timing.from_json(obj.get("timing")),
            malformed=malformed,
            extra=extra_keys(obj, cls),
        )

    def to_json(self) -> dict:
        out = to_object(self)
        out.pop("malformed", None)
        if not self.timing.to_json():
            out.pop("timing")
        return out

    def replace(self, **changes) -> Manifest:
        return dataclasses.replace(self, **changes)

    def shards_of(self, split: str) -> list[tuple[str, ShardEntry]]:
        """(name, entry) of the listed shards of ``split``, by name."""
        return sorted((n, e) for n, e in self.shards.items() if e.split == split)

    def failures(self, split: str) -> tuple[int, ...]:
        """CIFAR-10 rows of ``split`` not fooled (absent from the shards), ascending."""
        return tuple(sorted(i for _, e in self.shards_of(split) for i in e.failures))

    def stored_rows(self) -> dict[str, int]:
        """Rows in the shards, by split (in the order the shards are listed)."""
        rows: dict[str, int] = {}
        for e in self.shards.values():
            rows[e.split] = rows.get(e.split, 0) + e.rows
        return rows

    def split_config(self, split: str, where: str | Path = "the folder") -> SplitConfig:
        """``config.splits[split]``, or Cifar10Error if the folder was not generated with it."""

        check_split(split)
        if split not in self.config.splits:
            raise Cifar10Error(
                f"{where} holds no {split!r} split (generated: {', '.join(sorted(self.config.splits)) or 'none'}): "
                f"evaluate a folder generated with it (`cifar10-fgs generate --split all`)"
            )
        return self.config.splits[split]

    def check_cifar10_fingerprint(self, split: str, data):
        """The rows of ``data`` (a whole CIFAR-10 split, ``Cifar10Split``) the split was generated from, checked
        against the recorded fingerprint: the first ``num_rows``, or the ``--limit`` subset the config records.

        Raises Cifar10Error (one line, naming the recorded CIFAR-10 input) if they are not the rows generated from.
        A stored row joins ``data`` itself at its ``index`` (the CIFAR-10 row, also for a subset: ``rows``).
        """
        spec = self.split_config(split)
        n = spec.num_rows
        recorded = self.data_source.source or "unknown"
        if len(data) < n:
            raise Cifar10MismatchError(
                f"{data.origin} has {len(data)} {split} images, fewer than the {n} rows the dataset was generated "
                f"from: pass --cifar10 the CIFAR-10 input recorded in {FILE} ({recorded})"
            )
        rows = spec.rows_of(data)
        fingerprint = rows.fingerprint()
        if fingerprint != spec.fingerprint:
            which = f"the first {n}" if spec.subset is None else f"the balanced subset of {n} (seed {spec.subset.seed})"
            raise Cifar10MismatchError(
                f"{which} {split} images of {data.origin} have fingerprint {fingerprint[:12]}..., {FILE} records "
                f"{str(spec.fingerprint)[:12]}...: pass --cifar10 the CIFAR-10 input the dataset was made from "
                f"({recorded})"
            )
        return rows


# --------------------------------------------------------------------------- files


def path(dataset_dir: str | Path) -> Path:
    return Path(dataset_dir) / FILE


def exists(dataset_dir: str | Path) -> bool:
    return path(dataset_dir).is_file()


def read(dataset_dir: str | Path, *, complete: bool = False) -> Manifest:
    """The manifest of ``dataset_dir``.

    Raises NotADatasetError (exit code 2) if ``dataset_dir`` is no folder or holds no manifest, and
    ManifestError (exit code 1) if the manifest is unreadable or malformed. With ``complete``, also
    ValidationError unless the folder is finished: ``complete: true``, every listed shard present
    with its recorded size, and no unlisted ``.arrow`` file in ``data/``.
    """
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        what = "it is a file" if dataset_dir.exists() else "it does not exist"
        raise NotADatasetError(
            f"{dataset_dir} is not a folder ({what}): pass the folder `cifar10-fgs generate --out` wrote"
        )
    if not exists(dataset_dir):
        raise NotADatasetError(f"{dataset_dir} holds no {FILE}: pass a folder written by `cifar10-fgs generate --out`")
    try:
        obj = read_json(path(dataset_dir))
    except (OSError, ValueError) as exc:
        raise ManifestError(
            f"{path(dataset_dir)} is not readable JSON ({type(exc).__name__}): regenerate the folder"
        ) from None
    try:
        manifest = Manifest.from_json(obj)
    except StaleIndexError as exc:
        raise StaleIndexError(f"{path(dataset_dir)}: {exc}") from None
    except ManifestError as exc:
        raise ManifestError(f"{path(dataset_dir)} is unusable ({exc}): regenerate the folder") from None
    if complete:
        _check_complete(dataset_dir, manifest)
    return manifest


def _check_complete(dataset_dir: Path, manifest: Manifest) -> None:

    if not manifest.complete:
        raise ValidationError(
            f"{dataset_dir} is incomplete ({FILE} says complete: false): rerun the same `cifar10-fgs generate` "
            "command to finish it"
        )
    if manifest.malformed:
        name, why = sorted(manifest.malformed.items())[0]
        raise ManifestError(f"{dataset_dir / FILE}: {name}: {why}: regenerate the folder")
    for name, entry in sorted(manifest.shards.items()):
        shard = dataset_dir / name
        if not shard.is_file():
            raise ValidationError(
                f"{shard} is listed in {FILE} but missing: rerun `cifar10-fgs generate` to rewrite it"
            )
        size = shard.stat().st_size
        if size != entry.bytes:
            raise ValidationError(
                f"{shard} has {size} bytes, {FILE} says {entry.bytes}: rerun `cifar10-fgs generate` "
                "(or `cifar10-fgs validate`) to find and rewrite it"
            )
    data_dir = dataset_dir / DATA_DIR
    extra = (
        sorted(
            f"{DATA_DIR}/{p.name}" for p in data_dir.glob("*.arrow") if f"{DATA_DIR}/{p.name}" not in manifest.shards
        )
        if data_dir.is_dir()
        else []
    )
    if extra:
        raise ValidationError(
            f"{dataset_dir / extra[0]} is not listed in {FILE}: remove it (it would be loaded as part of the dataset)"
        )


def write(dataset_dir: str | Path, manifest: Manifest) -> None:
    """Write ``manifest`` atomically (fsynced temp file, renamed) as sorted, indented JSON."""
    write_json(path(dataset_dir), manifest.to_json())
