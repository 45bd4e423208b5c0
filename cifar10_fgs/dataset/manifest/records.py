"""The records of ``generation.json`` below the top level, as frozen dataclasses (see ``manifest``).

Each reads itself with ``from_json`` (ManifestError for what it cannot use) and writes itself back
with ``to_json``, keys it does not know kept in ``extra``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from cifar10_fgs.attack.settings import attack_config_of, attack_settings
from cifar10_fgs.config import PIXEL_RANGE, Method
from cifar10_fgs.data import check_split
from cifar10_fgs.dataset.manifest.rows import SplitRows
from cifar10_fgs.errors import ConfigError, DataSourceError, ValidationError
from cifar10_fgs.models.convention import KERAS_CONVENTION, InputConvention

FORMAT_VERSION = 1


class ManifestError(ValidationError):
    """``generation.json`` exists but is not a usable manifest (exit code 1: regenerate the folder)."""


# --------------------------------------------------------------------------- parsing helpers


def _obj(x, where: str) -> dict:
    if not isinstance(x, dict):
        raise ManifestError(f"{where} is not an object")
    return x


def _int(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ManifestError(f"{where} is {value!r}, not an integer")
    return value


def _bool(value, where: str) -> bool:
    if not isinstance(value, bool):
        raise ManifestError(f"{where} is {value!r}, not true or false")
    return value


def extra_keys(obj: dict, cls) -> dict:
    known = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in obj.items() if k not in known}


def from_object(cls, obj):
    """``cls`` from the JSON object ``obj`` (anything else reads as empty): known keys as fields, the rest ``extra``."""
    obj = obj if isinstance(obj, dict) else {}
    known = {f.name: obj[f.name] for f in dataclasses.fields(cls) if f.name in obj and f.name != "extra"}
    return cls(**known, extra=extra_keys(obj, cls))


def to_object(record) -> dict:
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


INDEX_IS_CIFAR10_ROW = "cifar10_row"  # Subset.index: the shards' ``index`` is the CIFAR-10 row (``rows``)


class StaleIndexError(ManifestError):
    """A ``--limit`` folder written when ``index`` was the position in the subset: refused, never mis-joined."""

    exit_code = 2


@dataclass(frozen=True)
class Subset:
    """How ``--limit`` chose a split's rows: ``data.split.balanced_rows(labels, limit, seed)`` of the source split.

    ``original_rows`` are those CIFAR-10 rows, ascending; the shards' ``index`` is one of them (``rows``).
    """

    limit: int
    seed: int
    original_rows: tuple[int, ...]
    rule: str = "balanced"  # the only rule; folders whose split has no subset took the first num_rows rows
    index: str = INDEX_IS_CIFAR10_ROW  # absent in folders whose ``index`` was the position in the subset
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj, where: str) -> Subset:
        obj = _obj(obj, where)
        if obj.get("rule") != "balanced":
            raise ManifestError(f"{where}.rule {obj.get('rule')!r} is unknown (expected 'balanced')")
        limit, seed, rows = obj.get("limit"), obj.get("seed"), obj.get("original_rows")
        if not isinstance(limit, int) or limit < 1 or not isinstance(seed, int):
            raise ManifestError(f"{where} lacks a positive integer 'limit' and an integer 'seed'")
        if not isinstance(rows, list) or len(rows) != limit or not all(isinstance(i, int) for i in rows):
            raise ManifestError(f"{where}.original_rows is not a list of {limit} integers")
        if obj.get("index") != INDEX_IS_CIFAR10_ROW and rows != list(range(limit)):  # positions are rows: no harm
            raise StaleIndexError(
                f"{where} is a --limit subset whose shards store `index` as the position in the subset, not the "
                "CIFAR-10 row (written by an older cifar10-fgs): regenerate it with the same `cifar10-fgs generate` "
                "command and --overwrite"
            )
        return cls(limit, seed, tuple(rows), "balanced", INDEX_IS_CIFAR10_ROW, extra_keys(obj, cls))

    def to_json(self) -> dict:
        return to_object(self)


@dataclass(frozen=True)
class SplitConfig:
    """One split as generated: ``num_rows`` rows of the source split, in ``num_shards`` shards.

    Without ``subset`` (no ``--limit``, or a folder from before ``--limit`` was class-balanced) they are the
    first ``num_rows`` rows; with it, the rows ``subset`` names. Either way the shards' ``index`` is the CIFAR-10 row.
    """

    num_rows: int
    fingerprint: str | None = None  # Cifar10Split.fingerprint() of those rows
    num_shards: int | None = None
    subset: Subset | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj, where: str) -> SplitConfig:
        obj = _obj(obj, where)
        n = obj.get("num_rows")
        if not isinstance(n, int) or n < 1:
            raise ManifestError(f"{where}.num_rows is missing or not a positive integer")
        subset = obj.get("subset")
        if subset is not None:
            subset = Subset.from_json(subset, f"{where}.subset")
            if subset.limit != n:
                raise ManifestError(f"{where}.subset.limit {subset.limit} differs from num_rows {n}")
        return cls(n, obj.get("fingerprint"), obj.get("num_shards"), subset, extra_keys(obj, cls))

    def to_json(self) -> dict:
        return to_object(self)

    def rows_of(self, data):
        """The rows of ``data`` (a whole source split, ``Cifar10Split``) this split was generated from."""
        if self.subset is None:
            return data.head(self.num_rows)
        return data.balanced(self.subset.limit, self.subset.seed)

    def rows(self) -> SplitRows:
        """The CIFAR-10 row of each generated position: the shards' ``index`` values (``rows``)."""
        return SplitRows(self.subset.original_rows if self.subset is not None else range(self.num_rows))


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
    # How the source model was fed (InputConvention.to_json()); None: this project's KERAS_CONVENTION, which is
    # never written, so folders made before conventions applied to Keras resume under the same key.
    input_convention: dict | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj) -> Config:

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
            raise ManifestError(
                f"config.method {obj.get('method')!r} is unknown (expected one of {', '.join(m.value for m in Method)})"
            ) from None
        onepixel = obj.get("onepixel")
        return cls(
            splits={s: SplitConfig.from_json(v, f"config.splits.{s}") for s, v in splits.items()},
            rows_per_shard=rps,
            attack=_obj(obj["attack"], "config.attack"),
            method=method,
            format_version=obj.get("format_version"),
            model_sha256=obj.get("model_sha256"),
            replicas=_int(obj.get("replicas", 1), "config.replicas"),
            with_originals=_bool(obj.get("with_originals", False), "config.with_originals"),
            onepixel=onepixel,
            input_convention=obj.get("input_convention"),
            extra=extra_keys(obj, cls),
        )

    def to_json(self) -> dict:
        return to_object(self)

    def source_convention(self) -> InputConvention:
        """How the source model was fed when the folder was made (``KERAS_CONVENTION`` when none is recorded)."""
        if self.input_convention is None:
            return KERAS_CONVENTION
        try:
            return InputConvention.from_json(self.input_convention, "config.input_convention", KERAS_CONVENTION)
        except ConfigError as exc:
            raise ManifestError(f"{exc}") from None

    def attack_config(self):
        """The recorded attack settings as an ``AttackConfig`` (an old folder's pixel range 0..255 accepted)."""
        try:
            return attack_config_of(self.attack, "config.attack")
        except ConfigError as exc:
            raise ManifestError(f"{exc}") from None

    def resume_key(self) -> dict:
        """What a folder must have been made with to be resumed or combined: the JSON, with an old folder's
        recorded pixel range (exactly 0..255, ``attack.settings.LEGACY_PIXEL_RANGE``) left out of ``attack``."""
        out = self.to_json()
        if isinstance(out.get("attack"), dict):
            try:
                out["attack"] = attack_settings(out["attack"], "config.attack")
            except ConfigError:
                pass  # another range: the key differs from every new run's, so the folder is not resumed
        return out

    def _onepixel(self, key: str) -> int:
        if not (
            isinstance(self.onepixel, dict)
            and all(isinstance(self.onepixel.get(k), int) for k in ("max_generations", "batch_size"))
        ):
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
        """The uint8 levels' range (255); a folder that records another pixel range is refused (ManifestError)."""
        self.attack_config()
        return PIXEL_RANGE


# --------------------------------------------------------------------------- shards, provenance, timing


@dataclass(frozen=True)
class ShardEntry:
    """One shard file: which original rows it covers and what its bytes hash to."""

    split: str
    shard: int  # k in data/<split>-<k>-of-<n>.arrow
    rows: int  # rows stored
    sha256: str
    bytes: int
    index_range: tuple[int, int]  # CIFAR-10 rows [first, last + 1) of the positions the shard covers (``rows``)
    failures: tuple[int, ...]  # CIFAR-10 rows among them not fooled (so not stored)
    gradient_evaluations: int | None = None  # forward+backward passes spent on the range (failures included)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj) -> ShardEntry:
        """The entry, or ManifestError naming every problem (``; ``-separated)."""
        if not isinstance(obj, dict):
            raise ManifestError("its generation.json entry is not an object")
        problems = [f"has no valid {k!r}" for k in ("rows", "bytes") if not isinstance(obj.get(k), int) or obj[k] < 0]
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
        return cls(
            obj["split"],
            obj["shard"],
            obj["rows"],
            obj["sha256"],
            obj["bytes"],
            tuple(rng),
            tuple(fails),
            obj.get("gradient_evaluations"),
            extra_keys(obj, cls),
        )

    def to_json(self) -> dict:
        return to_object(self)


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
    outputs: str = "logits"  # what the model returns: logits or probabilities (its input convention's output)
    train_accuracy: float | None = None  # on the unaugmented training images (its misses: the unchanged train rows)
    network: dict | None = None  # a flip-averaged model: its network's own name, test_accuracy and train_accuracy
    # How it was fed: layout, scale, mean, std, output, declared_by (where each field came from) and logits (how the
    # attack took them); folders made before conventions applied to Keras record none (this project's convention).
    input_convention: dict | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj) -> SourceModel:
        return from_object(cls, obj)

    def to_json(self) -> dict:
        return {
            **to_object(self),
            **{k: None for k in ("test_accuracy", "test_loss", "recipe", "train_data") if getattr(self, k) is None},
        }


@dataclass(frozen=True)
class DataSource:
    source: str | None = None  # as given to generate
    splits: dict = field(default_factory=dict)  # split -> how it was read
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj) -> DataSource:
        obj = obj if isinstance(obj, dict) else {}
        return cls(obj.get("source"), dict(obj.get("splits") or {}), extra_keys(obj, cls))

    def to_json(self) -> dict:
        return to_object(self)


@dataclass(frozen=True)
class Worker:
    """This folder's part of the work: shards ``k`` with ``k % num_workers == worker_index``."""

    num_workers: int = 1
    worker_index: int = 0
    combined_from: int | None = None  # set by ``combine``: how many worker folders were merged
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj) -> Worker:
        obj = obj if isinstance(obj, dict) else {}
        return cls(
            int(obj.get("num_workers", 1)),
            int(obj.get("worker_index", 0)),
            obj.get("combined_from"),
            extra_keys(obj, cls),
        )

    def to_json(self) -> dict:
        return to_object(self)


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
    def from_json(cls, obj) -> Timing:
        return from_object(cls, obj)

    def to_json(self) -> dict:
        out = to_object(self)
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
