"""The one owner of ``generation.json``: its schema as frozen dataclasses, reading, writing, checks.

``generation.json`` sits at the top of a dataset folder. Schema (format version 1)::

    config          the settings that made the folder (a folder resumes only with equal settings)
      format_version, method ("fgs" | "onepixel"), attack {AttackConfig fields}, onepixel {..} (onepixel only),
      model_sha256, rows_per_shard, replicas, with_originals,
      splits {<split>: {fingerprint, num_rows, num_shards}}
    source_model    path, sha256, architecture, test_accuracy, test_loss, recipe, train_data, outputs
    data_source     source (as given), splits {<split>: how that split was read}
    library_versions {package: version}
    worker          num_workers, worker_index (this machine's part of the work), combined_from
    shards          {data/<split>-<i>-of-<n>.arrow: {split, shard, rows, sha256, bytes, index_range, failures}}
    complete        true once every shard of every split is present
    summary         {<split>: statistics of the stored rows (``stats.summarize``)}
    timing          shard_seconds {<shard>: seconds}, seconds_total, runs, last_run_* (volatile)

Every module reads and writes the file through :func:`read` and :func:`write`. Keys this version
does not know are kept in each record's ``extra`` and written back unchanged, so a newer writer's
additions survive an older reader.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Method
from .errors import DataSourceError, NotADatasetError, ValidationError

FILE = "generation.json"
FORMAT_VERSION = 1


class ManifestError(ValidationError):
    """``generation.json`` exists but is not a usable manifest (exit code 1: regenerate the folder)."""


class SourceMismatchError(DataSourceError):
    """A CIFAR-10 source whose rows are not those the folder was generated from."""


# --------------------------------------------------------------------------- parsing helpers


def _obj(x, where: str) -> dict:
    if not isinstance(x, dict):
        raise ManifestError(f"{where} is not an object")
    return x


def _int(x, where: str, minimum: int = 0) -> int:
    if not isinstance(x, int) or isinstance(x, bool) or x < minimum:
        raise ManifestError(f"{where} {x!r} is not an integer >= {minimum}")
    return x


def _extra(obj: dict, cls) -> dict:
    known = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in obj.items() if k not in known}


def _json(record) -> dict:
    """A record as its JSON object: known fields (None left out) plus the ``extra`` keys it was read with."""
    out = {}
    for f in dataclasses.fields(record):
        if f.name == "extra":
            continue
        v = getattr(record, f.name)
        if v is None:
            continue
        if hasattr(v, "to_json"):
            v = v.to_json()
        elif isinstance(v, dict):
            v = {k: (x.to_json() if hasattr(x, "to_json") else x) for k, x in v.items()}
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v.value if isinstance(v, Method) else v
    return {**getattr(record, "extra", {}), **out}


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class SplitConfig:
    """One split as generated: the first ``num_rows`` rows of the source split, in ``num_shards`` shards."""

    num_rows: int
    fingerprint: str | None = None  # Cifar10Split.fingerprint() of those rows
    num_shards: int | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj, where: str) -> "SplitConfig":
        obj = _obj(obj, where)
        n = obj.get("num_rows")
        if not isinstance(n, int) or n < 1:
            raise ManifestError(f"{where}.num_rows is missing or not a positive integer")
        return cls(n, obj.get("fingerprint"), obj.get("num_shards"), _extra(obj, cls))

    def to_json(self) -> dict:
        return _json(self)


@dataclass(frozen=True)
class Config:
    """The settings that made the folder; a folder is resumed only by a run with equal ``Config``."""

    splits: dict[str, SplitConfig]
    rows_per_shard: int
    attack: dict  # the AttackConfig fields, as recorded
    method: Method = Method.FGS  # folders from before the one-pixel baseline record none
    format_version: Any = FORMAT_VERSION
    model_sha256: str | None = None
    replicas: int = 1  # GPUs the batch was split over (each ran attack.batch_size / replicas rows)
    with_originals: bool = False
    onepixel: dict | None = None  # OnePixelConfig fields (method onepixel only)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj) -> "Config":
        from .data import check_split

        obj = _obj(obj, "config")
        for key in ("splits", "rows_per_shard", "attack"):
            if key not in obj:
                raise ManifestError(f"config lacks {key!r}")
        splits = _obj(obj["splits"], "config.splits")
        if not splits:
            raise ManifestError("config.splits is empty")
        for s in splits:
            try:
                check_split(s)
            except DataSourceError as exc:
                raise ManifestError(f"config.splits: {exc}") from None
        rps = obj["rows_per_shard"]
        if not isinstance(rps, int) or rps < 1:
            raise ManifestError(f"config.rows_per_shard {rps!r} is not a positive integer")
        try:
            method = Method(obj.get("method") or Method.FGS)
        except ValueError:
            raise ManifestError(f"config.method {obj.get('method')!r} is unknown (expected one of "
                                f"{', '.join(m.value for m in Method)})") from None
        onepixel = obj.get("onepixel")
        cfg = cls(
            splits={s: SplitConfig.from_json(v, f"config.splits.{s}") for s, v in splits.items()},
            rows_per_shard=rps, attack=_obj(obj["attack"], "config.attack"), method=method,
            format_version=obj.get("format_version"), model_sha256=obj.get("model_sha256"),
            replicas=int(obj.get("replicas", 1)), with_originals=bool(obj.get("with_originals", False)),
            onepixel=onepixel, extra=_extra(obj, cls),
        )
        cfg.attack_config()  # raises ManifestError if malformed
        return cfg

    def to_json(self) -> dict:
        return _json(self)

    def attack_config(self):
        from .attack import AttackConfig
        from .errors import ConfigError

        try:
            return AttackConfig(**self.attack)
        except (TypeError, ConfigError) as exc:
            raise ManifestError(f"config.attack is invalid ({exc})") from None

    def _onepixel(self, key: str) -> int:
        if not (isinstance(self.onepixel, dict) and all(isinstance(self.onepixel.get(k), int)
                                                        for k in ("max_generations", "batch_size"))):
            raise ManifestError("config.onepixel lacks integer max_generations and batch_size")
        return int(self.onepixel[key])

    @property
    def max_iterations(self) -> int:
        """The largest ``iterations`` a row can hold: FGS steps, or differential-evolution generations."""
        if self.method is Method.ONEPIXEL:
            return self._onepixel("max_generations")
        return int(self.attack_config().max_iterations)

    @property
    def predict_batch_size(self) -> int:
        """The batch size the model ran with during generation (the same batch gives bitwise-equal logits)."""
        if self.method is Method.ONEPIXEL:
            return self._onepixel("batch_size")
        return int(self.attack_config().batch_size) // max(1, self.replicas)

    @property
    def step(self) -> float:
        return float(self.attack_config().step)

    @property
    def pixel_range(self) -> float:
        a = self.attack_config()
        return float(a.pixel_max - a.pixel_min)


# --------------------------------------------------------------------------- shards, provenance, timing


@dataclass(frozen=True)
class ShardEntry:
    """One shard file: which original rows it covers and what its bytes hash to."""

    split: str
    shard: int  # k in data/<split>-<k>-of-<n>.arrow
    rows: int  # rows stored
    sha256: str
    bytes: int
    index_range: tuple[int, int]  # original rows [lo, hi) the shard covers
    failures: tuple[int, ...]  # original rows in that range not fooled (so not stored)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj) -> "ShardEntry":
        """The entry, or ManifestError naming every problem (``; ``-separated)."""
        if not isinstance(obj, dict):
            raise ManifestError("its generation.json entry is not an object")
        problems = [f"has no valid {k!r}" for k in ("rows", "bytes")
                    if not isinstance(obj.get(k), int) or obj[k] < 0]
        if not isinstance(obj.get("sha256"), str):
            problems.append("has no 'sha256'")
        fails = obj.get("failures")
        if not isinstance(fails, list) or not all(isinstance(i, int) for i in fails):
            problems.append("has no list of integer 'failures'")
        rng = obj.get("index_range")
        if not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(i, int) for i in rng)):
            problems.append(f"has index_range {rng!r}, not [lo, hi]")
        if not isinstance(obj.get("split"), str) or not isinstance(obj.get("shard"), int):
            problems.append(f"names split {obj.get('split')!r} shard {obj.get('shard')!r}")
        if problems:
            raise ManifestError("; ".join(f"its generation.json entry {p}" for p in problems))
        return cls(obj["split"], obj["shard"], obj["rows"], obj["sha256"], obj["bytes"], tuple(rng), tuple(fails),
                   _extra(obj, cls))

    def to_json(self) -> dict:
        return _json(self)


@dataclass(frozen=True)
class SourceModel:
    """The attacked model's identity and training provenance."""

    path: str | None = None  # file name
    sha256: str | None = None
    architecture: str | None = None  # the Keras model's name
    test_accuracy: float | None = None
    test_loss: float | None = None
    recipe: dict | None = None
    train_data: dict | None = None
    outputs: str = "logits"
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj) -> "SourceModel":
        obj = obj if isinstance(obj, dict) else {}
        known = {f.name: obj[f.name] for f in dataclasses.fields(cls) if f.name in obj and f.name != "extra"}
        return cls(**known, extra=_extra(obj, cls))

    def to_json(self) -> dict:
        return {**_json(self), **{k: None for k in ("test_accuracy", "test_loss", "recipe", "train_data")
                                  if getattr(self, k) is None}}


@dataclass(frozen=True)
class DataSource:
    source: str | None = None  # as given to generate
    splits: dict = field(default_factory=dict)  # split -> how it was read
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj) -> "DataSource":
        obj = obj if isinstance(obj, dict) else {}
        return cls(obj.get("source"), dict(obj.get("splits") or {}), _extra(obj, cls))

    def to_json(self) -> dict:
        return _json(self)


@dataclass(frozen=True)
class Worker:
    """This folder's part of the work: shards ``k`` with ``k % num_workers == worker_index``."""

    num_workers: int = 1
    worker_index: int = 0
    combined_from: int | None = None  # set by ``combine``: how many worker folders were merged
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj) -> "Worker":
        obj = obj if isinstance(obj, dict) else {}
        legacy = {"num_shards", "shard_index"}  # written before "shard" meant only a file
        return cls(int(obj.get("num_workers", obj.get("num_shards", 1))), int(obj.get("worker_index", obj.get("shard_index", 0))),
                   obj.get("combined_from"), {k: v for k, v in _extra(obj, cls).items() if k not in legacy})

    def to_json(self) -> dict:
        return _json(self)


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds (volatile: never part of what identifies the data)."""

    shard_seconds: dict = field(default_factory=dict)  # shard -> seconds from its first to its last attacked row
    seconds_total: float | None = None  # attack seconds summed over every generate run into the folder
    runs: int | None = None
    last_run_seconds: float | None = None
    last_run_images: int | None = None
    last_run_gradient_evaluations: int | None = None
    last_run_batch_size: int | None = None
    workers_seconds_total: float | None = None  # combine: the parts' seconds_total, summed
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj) -> "Timing":
        obj = obj if isinstance(obj, dict) else {}
        known = {f.name: obj[f.name] for f in dataclasses.fields(cls) if f.name in obj and f.name != "extra"}
        return cls(**known, extra=_extra(obj, cls))

    def to_json(self) -> dict:
        out = _json(self)
        if not self.shard_seconds:
            out.pop("shard_seconds")
        return out

    @property
    def attack_seconds(self) -> float:
        """Total attack time: the runs' recorded total (a combined folder: its workers'), else the shards' sum."""
        for total in (self.seconds_total, self.workers_seconds_total):
            if total:
                return float(total)
        return float(sum(self.shard_seconds.values()))


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
    def from_json(cls, obj) -> "Manifest":
        from .stats import SplitSummary

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
            config=Config.from_json(obj["config"]), shards=shards, complete=obj.get("complete") is True,
            source_model=SourceModel.from_json(obj.get("source_model")),
            data_source=DataSource.from_json(obj.get("data_source")),
            library_versions=dict(obj.get("library_versions") or {}), worker=Worker.from_json(obj.get("worker")),
            summary={s: SplitSummary.from_json(v) for s, v in summary.items()} if isinstance(summary, dict) else None,
            timing=Timing.from_json(obj.get("timing")), malformed=malformed, extra=_extra(obj, cls),
        )

    def to_json(self) -> dict:
        out = _json(self)
        out.pop("malformed", None)
        if not self.timing.to_json():
            out.pop("timing")
        return out

    def replace(self, **changes) -> "Manifest":
        return dataclasses.replace(self, **changes)

    def shards_of(self, split: str) -> list[tuple[str, ShardEntry]]:
        """(name, entry) of the listed shards of ``split``, by name."""
        return sorted((n, e) for n, e in self.shards.items() if e.split == split)

    def failures(self, split: str) -> tuple[int, ...]:
        """Original rows of ``split`` not fooled (absent from the shards), ascending."""
        return tuple(sorted(i for _, e in self.shards_of(split) for i in e.failures))

    def stored_rows(self) -> dict[str, int]:
        """Rows in the shards, by split (in the order the shards are listed)."""
        rows: dict[str, int] = {}
        for e in self.shards.values():
            rows[e.split] = rows.get(e.split, 0) + e.rows
        return rows

    def split_config(self, split: str, where: str | Path = "the folder") -> SplitConfig:
        """``config.splits[split]``, or DataSourceError if the folder was not generated with it."""
        from .data import check_split

        check_split(split)
        if split not in self.config.splits:
            raise DataSourceError(
                f"{where} holds no {split!r} split (generated: {', '.join(sorted(self.config.splits)) or 'none'}): "
                f"evaluate a folder generated with it (`cifar10-fgs generate --split all`)"
            )
        return self.config.splits[split]

    def check_source(self, split: str, data):
        """The first ``num_rows`` rows of ``data`` (a ``Cifar10Split``), checked against the recorded fingerprint.

        Raises DataSourceError (one line, naming the recorded source) if they are not the rows generated from.
        """
        spec = self.split_config(split)
        n = spec.num_rows
        recorded = self.data_source.source or "unknown"
        if len(data) < n:
            raise SourceMismatchError(
                f"{data.source} has {len(data)} {split} images, fewer than the {n} rows the dataset was generated "
                f"from: pass the source recorded in {FILE} ({recorded})"
            )
        head = data.head(n)
        fingerprint = head.fingerprint()
        if fingerprint != spec.fingerprint:
            raise SourceMismatchError(
                f"the first {n} {split} images of {data.source} have fingerprint {fingerprint[:12]}..., {FILE} records "
                f"{str(spec.fingerprint)[:12]}...: pass the source the dataset was made from ({recorded})"
            )
        return head


# --------------------------------------------------------------------------- files


def path(directory: str | Path) -> Path:
    return Path(directory) / FILE


def exists(directory: str | Path) -> bool:
    return path(directory).is_file()


def read(directory: str | Path, *, complete: bool = False) -> Manifest:
    """The manifest of ``directory``.

    Raises NotADatasetError (exit code 2) if ``directory`` is no folder or holds no manifest, and
    ManifestError (exit code 1) if the manifest is unreadable or malformed. With ``complete``, also
    ValidationError unless the folder is finished: ``complete: true``, every listed shard present
    with its recorded size, and no unlisted ``.arrow`` file in ``data/``.
    """
    from .provenance import read_json

    directory = Path(directory)
    if not directory.is_dir():
        what = "it is a file" if directory.exists() else "it does not exist"
        raise NotADatasetError(f"{directory} is not a folder ({what}): pass the folder `cifar10-fgs generate --out` wrote")
    if not exists(directory):
        raise NotADatasetError(f"{directory} holds no {FILE}: pass a folder written by `cifar10-fgs generate --out`")
    try:
        obj = read_json(path(directory))
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{path(directory)} is not readable JSON ({type(exc).__name__}): regenerate the folder") from None
    try:
        manifest = Manifest.from_json(obj)
    except ManifestError as exc:
        raise ManifestError(f"{path(directory)} is unusable ({exc}): regenerate the folder") from None
    if complete:
        _check_complete(directory, manifest)
    return manifest


def _check_complete(directory: Path, manifest: Manifest) -> None:
    from .shards import DATA_DIR

    if not manifest.complete:
        raise ValidationError(
            f"{directory} is incomplete ({FILE} says complete: false): rerun the same `cifar10-fgs generate` "
            "command to finish it"
        )
    if manifest.malformed:
        name, why = sorted(manifest.malformed.items())[0]
        raise ManifestError(f"{directory / FILE}: {name}: {why}: regenerate the folder")
    for name, entry in sorted(manifest.shards.items()):
        shard = directory / name
        if not shard.is_file():
            raise ValidationError(f"{shard} is listed in {FILE} but missing: rerun `cifar10-fgs generate` to rewrite it")
        size = shard.stat().st_size
        if size != entry.bytes:
            raise ValidationError(
                f"{shard} has {size} bytes, {FILE} says {entry.bytes}: rerun `cifar10-fgs generate` "
                "(or `cifar10-fgs validate`) to find and rewrite it"
            )
    data_dir = directory / DATA_DIR
    extra = sorted(f"{DATA_DIR}/{p.name}" for p in data_dir.glob("*.arrow")
                   if f"{DATA_DIR}/{p.name}" not in manifest.shards) if data_dir.is_dir() else []
    if extra:
        raise ValidationError(
            f"{directory / extra[0]} is not listed in {FILE}: remove it (it would be loaded as part of the dataset)"
        )


def write(directory: str | Path, manifest: Manifest) -> None:
    """Write ``manifest`` atomically (fsynced temp file, renamed) as sorted, indented JSON."""
    from .provenance import write_json

    write_json(path(directory), manifest.to_json())
