"""The ``config`` record of ``generation.json`` as frozen dataclasses (see ``manifest``): ``Config`` (the settings
that made the folder), ``SplitConfig`` (one split as generated) and ``Subset`` (the rows ``--limit`` chose).

Each reads itself with ``from_json`` (ManifestError for what it cannot use) and writes itself back
with ``to_json``, keys it does not know kept in ``extra``. The other records are ``provenance_records``;
the JSON helpers they share are ``fields``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cifar10_fgs.attack.settings import attack_settings, parse_attack_config
from cifar10_fgs.config import PIXEL_RANGE, Method
from cifar10_fgs.data import check_split
from cifar10_fgs.dataset.manifest.fields import ManifestError, Record, bool_of, extra_keys, int_of, obj_of
from cifar10_fgs.dataset.manifest.rows import SplitRows
from cifar10_fgs.errors import Cifar10Error, ConfigError
from cifar10_fgs.models.convention import KERAS_CONVENTION, InputConvention

FORMAT_VERSION = 1


INDEX_IS_CIFAR10_ROW = "cifar10_row"  # Subset.index: the shards' ``index`` is the CIFAR-10 row (``rows``)


class StaleIndexError(ManifestError):
    """A ``--limit`` folder written when ``index`` was the position in the subset: refused, never mis-joined."""

    exit_code = 2


@dataclass(frozen=True)
class Subset(Record):
    """How ``--limit`` chose a split's rows: ``data.split.balanced_rows(labels, limit, seed)`` of the CIFAR-10 split.

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
        obj = obj_of(obj, where)
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


@dataclass(frozen=True)
class SplitConfig(Record):
    """One split as generated: ``num_rows`` rows of the CIFAR-10 split, in ``num_shards`` shards.

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
        obj = obj_of(obj, where)
        n = obj.get("num_rows")
        if not isinstance(n, int) or n < 1:
            raise ManifestError(f"{where}.num_rows is missing or not a positive integer")
        subset = obj.get("subset")
        if subset is not None:
            subset = Subset.from_json(subset, f"{where}.subset")
            if subset.limit != n:
                raise ManifestError(f"{where}.subset.limit {subset.limit} differs from num_rows {n}")
        return cls(n, obj.get("fingerprint"), obj.get("num_shards"), subset, extra_keys(obj, cls))

    def rows_of(self, data):
        """The rows of ``data`` (a whole CIFAR-10 split, ``Cifar10Split``) this split was generated from."""
        if self.subset is None:
            return data.head(self.num_rows)
        return data.balanced(self.subset.limit, self.subset.seed)

    def cifar10_rows(self) -> SplitRows:
        """The CIFAR-10 row of each generated position: the shards' ``index`` values (``SplitRows.original_rows``)."""
        return SplitRows(self.subset.original_rows if self.subset is not None else range(self.num_rows))


@dataclass(frozen=True)
class Config(Record):
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

        obj = obj_of(obj, "config")
        for key in ("splits", "rows_per_shard", "attack"):
            if key not in obj:
                raise ManifestError(f"config lacks {key!r}")
        splits = obj_of(obj["splits"], "config.splits")
        if not splits:
            raise ManifestError("config.splits is empty")
        for s in splits:
            try:
                check_split(s)
            except Cifar10Error as exc:
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
            attack=obj_of(obj["attack"], "config.attack"),
            method=method,
            format_version=obj.get("format_version"),
            model_sha256=obj.get("model_sha256"),
            replicas=int_of(obj.get("replicas", 1), "config.replicas"),
            with_originals=bool_of(obj.get("with_originals", False), "config.with_originals"),
            onepixel=onepixel,
            input_convention=obj.get("input_convention"),
            extra=extra_keys(obj, cls),
        )

    def recorded_convention(self) -> InputConvention:
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
            return parse_attack_config(self.attack, "config.attack")
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
