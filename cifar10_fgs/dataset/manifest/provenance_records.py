"""The records of ``generation.json`` that say what a folder holds and how it was made (see ``manifest``):
``ShardEntry`` (one shard file), ``SourceModel`` (the attacked model), ``DataSource`` (where CIFAR-10 was read),
``Worker`` (this folder's part of the work) and ``Timing`` (volatile seconds).

Each reads itself with ``from_json`` and writes itself back with ``to_json``, keys it does not know kept in ``extra``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cifar10_fgs.dataset.manifest.fields import ManifestError, Record, extra_keys, from_object, to_object


@dataclass(frozen=True)
class ShardEntry(Record):
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
            tuple(obj["index_range"]),
            tuple(obj["failures"]),
            obj.get("gradient_evaluations"),
            extra_keys(obj, cls),
        )


@dataclass(frozen=True)
class SourceModel(Record):
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
class DataSource(Record):
    source: str | None = None  # as given to generate
    splits: dict = field(default_factory=dict)  # split -> how it was read
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj) -> DataSource:
        obj = obj if isinstance(obj, dict) else {}
        return cls(obj.get("source"), dict(obj.get("splits") or {}), extra_keys(obj, cls))


@dataclass(frozen=True)
class Worker(Record):
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


@dataclass(frozen=True)
class Timing(Record):
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
