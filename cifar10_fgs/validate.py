"""``validate``: check a generated dataset folder against its manifest, its model and its source data.

``validate_dataset(DIR)`` reads the stored bytes themselves (``shards.read_shard``, never
``datasets.load_dataset``, whose cache can serve stale rows after an in-place rewrite) and returns a
``ValidationReport`` that names every failure by check, shard and row. The checks:

* files: every shard listed in ``generation.json`` is present with its sha256 and byte size,
  nothing else lies in ``data/``, and the manifest says ``complete``;
* rows: the Arrow schema carries the expected ``datasets`` features, every image decodes from its
  PNG bytes to 32x32x3 uint8, labels and predictions are classes 0-9, no original index appears
  twice, and the stored indices plus the manifest's listed failures cover each split's rows
  ``0..num_rows-1`` exactly once;
* with ``model_path``: the file is the generating model (sha256 equal to ``config.model_sha256``),
  and it misclassifies every stored image and predicts exactly the stored
  ``adversarial_prediction`` (inference with the generation's batch size, ``config.attack`` or
  ``config.onepixel``, so the logits are bitwise those that generate saw);
* with ``source``: the original split has the manifest's fingerprint, the stored ``linf``/``l2``
  equal the recomputed distances, ``linf <= step * iterations + 0.5 / 255`` (for a ``--method
  onepixel`` folder: at most one pixel differs), rows with ``iterations == 0`` equal their
  original, and ``original_image`` (if stored) is the original;
* if ``DIR/README.md`` has YAML front matter with ``dataset_info``: its split sizes equal the
  stored row counts and its features name the shard columns.

Shards are streamed: one thread hashes, reads and decodes the next shard while another runs the
model on a chunk of earlier ones, so memory holds about two shards plus two model chunks.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import Cifar10FgsError, ConfigError

log = logging.getLogger(__name__)

MANIFEST = "generation.json"
CARD = "README.md"
NORM_TOLERANCE = 1e-6  # stored vs recomputed linf / l2, in units of the pixel range
CONFIDENCE_TOLERANCE = 1e-5  # stored vs recomputed adversarial_confidence (a softmax probability)

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"

# Every check, in report order, with what it asserts.
CHECKS: dict[str, str] = {
    "manifest": "generation.json is well-formed, consistent with its config and complete",
    "shard_files": "every shard of every split is present in data/, nothing else is",
    "shard_integrity": "each shard's byte size and sha256 equal generation.json",
    "shard_schema": "each shard is a readable Arrow stream with the expected features and row count",
    "images": "every image decodes from its PNG bytes to 32x32x3 uint8",
    "values": "labels and predictions are classes 0-9; iterations, confidences and distances in range",
    "stored_predictions": "stored adversarial_prediction differs from the label and agrees with iterations",
    "indices": "every index lies in its shard's row range and appears once",
    "coverage": "stored indices plus listed failures cover rows 0..num_rows-1 of each split exactly once",
    "model_file": "the --model file is the generating model (sha256 equals config.model_sha256)",
    "misclassified": "the model misclassifies every stored image",
    "adversarial_prediction": "the model predicts the stored adversarial_prediction (and confidence)",
    "source_fingerprint": "the --source split has the fingerprint recorded in generation.json",
    "perturbation": f"stored linf and l2 equal the recomputed distances to the original (within {NORM_TOLERANCE:g})",
    "perturbation_bound": "fgs: linf <= step * iterations + 0.5 / pixel range, and <= max_linf when set; onepixel: "
                          "one pixel changed at most",
    "unchanged_rows": "rows with iterations == 0 equal their original exactly",
    "original_image": "the original_image column equals the original",
    "card": "README.md dataset_info split sizes equal the row counts and its features name the columns",
}
MODEL_CHECKS = ("misclassified", "adversarial_prediction")
SOURCE_CHECKS = ("perturbation", "perturbation_bound", "unchanged_rows", "original_image")
METHODS = ("fgs", "onepixel")  # config.method; manifests from before the one-pixel baseline have none (fgs)


class NotADatasetError(Cifar10FgsError):
    """A folder that is not a generated dataset at all (bad input, exit code 2)."""


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Failure:
    """One failed assertion; ``shard`` is the name relative to DIR, ``row`` its 0-based row."""

    check: str
    message: str
    split: str | None = None
    shard: str | None = None
    row: int | None = None
    index: int | None = None  # row of the original split, where known

    @property
    def location(self) -> str:
        parts = []
        if self.shard is not None:
            parts.append(self.shard)
        elif self.split is not None:
            parts.append(self.split)
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.index is not None:
            parts.append(f"index {self.index}")
        return " ".join(parts)

    def to_dict(self) -> dict:
        return {"check": self.check, "message": self.message, "split": self.split, "shard": self.shard,
                "row": self.row, "index": self.index}


@dataclass(frozen=True)
class CheckResult:
    name: str
    description: str
    status: str  # passed | failed | skipped
    checked: int  # items examined (rows, shards, splits or files, depending on the check)
    failures: int
    note: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "status": self.status,
                "checked": self.checked, "failures": self.failures, "note": self.note}


@dataclass(frozen=True)
class SplitCounts:
    split: str
    num_rows: int  # original rows attacked (config.splits[split].num_rows)
    stored_rows: int  # rows in the shards (unreadable or missing shards count as generation.json says)
    listed_failures: int  # rows generation.json lists as not fooled
    num_shards: int

    def to_dict(self) -> dict:
        return {"split": self.split, "num_rows": self.num_rows, "stored_rows": self.stored_rows,
                "listed_failures": self.listed_failures, "num_shards": self.num_shards}


@dataclass(frozen=True)
class ValidationReport:
    directory: str
    checks: tuple[CheckResult, ...]
    failures: tuple[Failure, ...]
    splits: tuple[SplitCounts, ...]
    model: str | None
    model_sha256: str | None
    source: str | None
    seconds: float
    library_versions: dict = field(default_factory=dict)
    commit: str | None = None  # the hub commit checked, for a hub:USER/NAME copy (see hub.validate_hub)

    @property
    def ok(self) -> bool:
        return not self.failures and all(c.status != FAILED for c in self.checks)

    @property
    def failed_checks(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks if c.status == FAILED)

    def check(self, name: str) -> CheckResult:
        return next(c for c in self.checks if c.name == name)

    def failures_of(self, check: str) -> tuple[Failure, ...]:
        return tuple(f for f in self.failures if f.check == check)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "directory": self.directory,
            "failed_checks": list(self.failed_checks),
            "checks": [c.to_dict() for c in self.checks],
            "failures": [f.to_dict() for f in self.failures],
            "splits": {s.split: s.to_dict() for s in self.splits},
            "model": self.model,
            "model_sha256": self.model_sha256,
            "source": self.source,
            "seconds": round(self.seconds, 3),
            "library_versions": dict(self.library_versions),
            "commit": self.commit,
        }

    def summary_line(self) -> str:
        if self.ok:
            skipped = sum(c.status == SKIPPED for c in self.checks)
            return f"{self.directory}: all {len(self.checks) - skipped} checks passed ({skipped} skipped)"
        names = ", ".join(self.failed_checks)
        return f"{self.directory}: {len(self.failures)} failures in checks {names}"

    def raise_for_failures(self) -> None:
        """Raise ``ValidationError`` (exit code 1) unless every check held."""
        from .errors import ValidationError

        if not self.ok:
            first = self.failures[0] if self.failures else None
            where = f"; first: {first.location + ': ' if first.location else ''}{first.message}" if first else ""
            raise ValidationError(
                f"{self.directory} failed validation ({len(self.failures)} failures in {', '.join(self.failed_checks)}"
                f"{where}): repair or regenerate the dataset"
            )


class _Collector:
    """Mutable bookkeeping while checking; frozen into a ValidationReport at the end."""

    def __init__(self):
        self.failures: list[Failure] = []
        self.counts: dict[str, int] = {name: 0 for name in CHECKS}
        self.failed: dict[str, int] = {name: 0 for name in CHECKS}
        self.skipped: dict[str, str] = {}

    def fail(self, check: str, message: str, **where) -> None:
        assert check in CHECKS, check
        self.failures.append(Failure(check, message, **where))
        self.failed[check] += 1

    def checked(self, check: str, n: int = 1) -> None:
        self.counts[check] += int(n)

    def skip(self, check: str, note: str) -> None:
        self.skipped.setdefault(check, note)

    def sorted_failures(self) -> tuple[Failure, ...]:
        """Failures grouped by check (in CHECKS order), then by shard and row."""
        order = {name: i for i, name in enumerate(CHECKS)}
        return tuple(sorted(self.failures, key=lambda f: (
            order[f.check], f.shard or "", -1 if f.row is None else f.row, -1 if f.index is None else f.index)))

    def results(self) -> tuple[CheckResult, ...]:
        out = []
        for name, desc in CHECKS.items():
            if self.failed[name]:
                status = FAILED
            elif name in self.skipped and not self.counts[name]:
                status = SKIPPED
            else:
                status = PASSED
            # a note also on checks that ran for some splits but were skipped for others
            out.append(CheckResult(name, desc, status, self.counts[name], self.failed[name], self.skipped.get(name, "")))
        return tuple(out)


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class _ShardSpec:
    name: str  # data/<split>-<i>-of-<n>.arrow
    split: str
    k: int
    lo: int  # first original row of the shard
    hi: int  # one past the last
    entry: dict | None  # generation.json's entry, None if not listed


@dataclass
class _ShardData:
    spec: _ShardSpec
    exists: bool = False
    size: int | None = None
    sha256: str | None = None
    table: object = None
    error: str | None = None
    images: np.ndarray | None = None  # decoded adversarial images, zeros where undecodable
    decoded: np.ndarray | None = None  # bool per row
    decode_errors: list = field(default_factory=list)  # (row, message)
    originals: np.ndarray | None = None  # decoded original_image column
    originals_decoded: np.ndarray | None = None
    original_errors: list = field(default_factory=list)
    source: object = None  # the original split's images (already cut to num_rows) or None
    source_problem: str | None = None  # set on the first shard of a split whose --source does not match
    source_loaded: bool = False  # this shard's read loaded its split from --source


@dataclass(frozen=True)
class _Config:
    splits: dict  # split -> {"fingerprint", "num_rows", "num_shards"}
    rows_per_shard: int
    with_originals: bool
    attack: object  # AttackConfig
    model_sha256: str | None
    method: str  # fgs | onepixel
    max_iterations: int  # fgs: attack.max_iterations; onepixel: DE generations
    predict_batch_size: int  # the batch size generate ran the model with (bitwise-equal logits)


def _parse_config(manifest: dict) -> _Config:
    """The manifest's config, or ValueError naming what is missing or malformed."""
    from .attack import AttackConfig
    from .data import check_split

    if not isinstance(manifest, dict):
        raise ValueError(f"holds a {type(manifest).__name__}, not an object")
    config = manifest.get("config")
    if not isinstance(config, dict):
        raise ValueError("has no 'config' object")
    for key in ("splits", "rows_per_shard", "attack"):
        if key not in config:
            raise ValueError(f"config lacks {key!r}")
    if not isinstance(manifest.get("shards"), dict):
        raise ValueError("has no 'shards' object")
    splits = config["splits"]
    if not isinstance(splits, dict) or not splits:
        raise ValueError("config.splits is empty")
    for s, info in splits.items():
        try:
            check_split(s)
        except Cifar10FgsError as exc:
            raise ValueError(f"config.splits: {exc}") from None
        if not isinstance(info, dict) or not isinstance(info.get("num_rows"), int) or info["num_rows"] < 1:
            raise ValueError(f"config.splits.{s}.num_rows is missing or not a positive integer")
    rps = config["rows_per_shard"]
    if not isinstance(rps, int) or rps < 1:
        raise ValueError(f"config.rows_per_shard {rps!r} is not a positive integer")
    try:
        attack = AttackConfig(**config["attack"])
    except (TypeError, ConfigError) as exc:
        raise ValueError(f"config.attack is invalid ({exc})") from None
    method = config.get("method") or "fgs"
    if method not in METHODS:
        raise ValueError(f"config.method {method!r} is unknown (expected one of {', '.join(METHODS)})")
    max_iterations, batch_size = attack.max_iterations, attack.batch_size // max(1, int(config.get("replicas", 1)))
    if method == "onepixel":
        op = config.get("onepixel")
        if not isinstance(op, dict) or not all(isinstance(op.get(k), int) for k in ("max_generations", "batch_size")):
            raise ValueError("config.onepixel lacks integer max_generations and batch_size")
        max_iterations, batch_size = op["max_generations"], op["batch_size"]
    return _Config(splits, rps, bool(config.get("with_originals", False)), attack, config.get("model_sha256"),
                   method, int(max_iterations), int(batch_size))


def _layout(cfg: _Config, manifest: dict, col: _Collector) -> list[_ShardSpec]:
    """The shards ``config`` implies, checked against the manifest's entries."""
    from .shards import num_shards, shard_name

    entries = manifest["shards"]
    specs = []
    for split, info in cfg.splits.items():
        n_rows = info["num_rows"]
        n = num_shards(n_rows, cfg.rows_per_shard)
        if info.get("num_shards") not in (None, n):
            col.fail("manifest", f"config.splits.{split}.num_shards is {info['num_shards']}, but {n_rows} rows at "
                     f"{cfg.rows_per_shard} per shard make {n}", split=split)
        for k in range(n):
            name = shard_name(split, k, n)
            lo, hi = k * cfg.rows_per_shard, min((k + 1) * cfg.rows_per_shard, n_rows)
            entry = entries.get(name)
            if entry is not None:
                _check_entry(name, entry, split, k, lo, hi, col)
                if not isinstance(entry, dict):
                    entry = None
            specs.append(_ShardSpec(name, split, k, lo, hi, entry))
    expected = {s.name for s in specs}
    for name in sorted(set(entries) - expected):
        col.fail("manifest", f"generation.json lists {name}, which is no shard of config.splits", shard=name)
    col.checked("manifest", len(entries))
    return specs


def _check_entry(name: str, entry, split: str, k: int, lo: int, hi: int, col: _Collector) -> None:
    if not isinstance(entry, dict):
        col.fail("manifest", "its generation.json entry is not an object", split=split, shard=name)
        return
    problems = []
    if entry.get("split") != split or entry.get("shard") != k:
        problems.append(f"names split {entry.get('split')!r} shard {entry.get('shard')!r}")
    if entry.get("index_range") != [lo, hi]:
        problems.append(f"has index_range {entry.get('index_range')!r}, expected [{lo}, {hi}]")
    for key in ("rows", "bytes"):
        if not isinstance(entry.get(key), int) or entry[key] < 0:
            problems.append(f"has no valid {key!r}")
    if not isinstance(entry.get("sha256"), str):
        problems.append("has no 'sha256'")
    fails = entry.get("failures")
    if not isinstance(fails, list) or not all(isinstance(i, int) for i in fails):
        problems.append("has no list of integer 'failures'")
    for p in problems:
        col.fail("manifest", f"its generation.json entry {p}", split=split, shard=name)


# --------------------------------------------------------------------------- reading (background thread)


def _decode_column(table, column: str):
    """Decode an Image column: (uint8 (N,32,32,3), ok mask, [(row, message)])."""
    from .data import IMAGE_SHAPE, decode_image

    n = table.num_rows
    out = np.zeros((n, *IMAGE_SHAPE), np.uint8)
    ok = np.zeros(n, bool)
    errors = []
    cells = table.column(column).combine_chunks()
    data = cells.field("bytes").to_pylist() if n else []
    valid = cells.is_valid().to_pylist() if n else []
    for i, b in enumerate(data):
        if not valid[i] or b is None:
            errors.append((i, f"{column} has no image bytes"))
            continue
        try:
            arr = decode_image(b, column)
        except Cifar10FgsError as exc:  # "<column> is not a readable image (...): expected ..."
            errors.append((i, str(exc).rsplit(": expected", 1)[0]))
            continue
        if arr.dtype != np.uint8 or arr.shape != IMAGE_SHAPE:
            errors.append((i, f"{column} decodes to {arr.dtype} {arr.shape}, not uint8 {IMAGE_SHAPE}"))
            continue
        out[i] = arr
        ok[i] = True
    return out, ok, errors


def _read_shard(directory: Path, spec: _ShardSpec, expected_schema, sources: "_SourceCache") -> _ShardData:
    """Hash, read and decode one shard (runs in the prefetch thread)."""
    import os

    from .provenance import sha256_file
    from .shards import read_shard

    d = _ShardData(spec)
    d.source, d.source_problem, d.source_loaded = sources.get(spec.split)
    path = directory / spec.name
    if not path.is_file():
        return d
    d.exists = True
    d.size = os.path.getsize(path)
    d.sha256 = sha256_file(path)
    try:
        table = read_shard(path)
    except Exception as exc:  # noqa: BLE001 - any Arrow/OS error means an unreadable shard
        d.error = f"is not a readable Arrow stream ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        return d
    d.table = table
    if not table.schema.remove_metadata().equals(expected_schema.remove_metadata()):
        return d  # reported by the schema check; rows are not interpreted
    d.images, d.decoded, d.decode_errors = _decode_column(table, "image")
    if "original_image" in table.column_names:
        d.originals, d.originals_decoded, d.original_errors = _decode_column(table, "original_image")
    return d


class _SourceCache:
    """The original split for the shard being read, loaded once per split (in the prefetch thread).

    ``get`` returns ``(images or None, problem or None, loaded now)``; the caller records the problem.
    """

    def __init__(self, source, cfg: _Config):
        self.source = source
        self.cfg = cfg
        self.split = None
        self.images = None

    def get(self, split: str):
        from .data import load_cifar10

        if self.source is None:
            return None, None, False
        if split == self.split:
            return self.images, None, False
        self.split, self.images = split, None
        info = self.cfg.splits[split]
        full = load_cifar10(self.source, split)
        n = info["num_rows"]
        if len(full) < n:
            return None, (f"--source has {len(full)} {split} images, fewer than the {n} rows the dataset was "
                          "generated from: pass the source the dataset was made from"), True
        fingerprint = full.head(n).fingerprint()
        if fingerprint != info.get("fingerprint"):
            return None, (f"the first {n} {split} images of --source have fingerprint {fingerprint[:12]}..., "
                          f"generation.json records {str(info.get('fingerprint'))[:12]}...: pass the source the "
                          "dataset was made from"), True
        self.images = full.images[:n]
        return self.images, None, True


def _prefetched(directory: Path, specs: list[_ShardSpec], expected_schemas, sources: _SourceCache):
    """Yield ``_ShardData`` in order, reading the next shard in a thread while the caller works."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="validate-read") as pool:
        def submit(spec):
            return pool.submit(_read_shard, directory, spec, expected_schemas, sources)

        pending = submit(specs[0]) if specs else None
        for i in range(len(specs)):
            current = pending
            pending = submit(specs[i + 1]) if i + 1 < len(specs) else None
            yield current.result()


# --------------------------------------------------------------------------- checks on one shard


class _SplitState:
    def __init__(self, num_rows: int):
        self.count = np.zeros(num_rows, np.int32)  # stored occurrences of each original row
        self.first = {}  # index -> (shard, row) of its first occurrence (only for duplicates' messages)
        self.listed = np.zeros(num_rows, np.int32)  # listed as not fooled in generation.json
        self.stored_rows = 0
        self.listed_failures = 0
        self.unverified: list[_ShardSpec] = []  # missing or unreadable shards: rows unknown


def _check_files(directory: Path, specs: list[_ShardSpec], col: _Collector) -> None:
    from .shards import DATA_DIR

    expected = {s.name for s in specs}
    data_dir = directory / DATA_DIR
    present = set()
    if data_dir.is_dir():
        for p in sorted(data_dir.rglob("*")):
            if p.is_dir():
                continue
            rel = p.relative_to(directory).as_posix()
            present.add(rel)
            col.checked("shard_files")
            if rel not in expected:
                col.fail("shard_files", f"foreign file {rel} in {DATA_DIR}/ (datasets would load it as part of the "
                         "dataset): remove it", shard=rel)
    for s in specs:
        if s.name not in present:
            col.checked("shard_files")
            col.fail("shard_files", f"shard {s.name} is missing (rows {s.lo}..{s.hi - 1} of {s.split}): "
                     "rerun the same generate command to resume", split=s.split, shard=s.name)
        elif s.entry is None:
            col.fail("shard_files", f"shard {s.name} is not listed in generation.json (written by another run?)",
                     split=s.split, shard=s.name)


def _check_shard(d: _ShardData, cfg: _Config, expected_schema, expected_features, state: _SplitState,
                 col: _Collector) -> bool:
    """File, schema and row checks of one shard; return True if its rows can be checked further."""
    import datasets

    from .data import NUM_CLASSES

    spec = d.spec
    where = {"split": spec.split, "shard": spec.name}
    entry = spec.entry
    if not d.exists:
        state.unverified.append(spec)
        return False
    col.checked("shard_integrity")
    if entry is not None:
        if isinstance(entry.get("bytes"), int) and d.size != entry["bytes"]:
            col.fail("shard_integrity", f"shard has {d.size} bytes, generation.json says {entry['bytes']} "
                     "(truncated or rewritten)", **where)
        elif d.sha256 != entry.get("sha256"):
            col.fail("shard_integrity", f"shard's sha256 is {d.sha256[:12]}..., generation.json says "
                     f"{str(entry.get('sha256'))[:12]}... (corrupted or rewritten)", **where)
    col.checked("shard_schema")
    if d.table is None:
        col.fail("shard_schema", f"shard {d.error}", **where)
        state.unverified.append(spec)
        return False
    table = d.table
    if not table.schema.remove_metadata().equals(expected_schema.remove_metadata()):
        col.fail("shard_schema", f"shard has columns {table.schema.names} of types "
                 f"{[str(t) for t in table.schema.types]}, expected {expected_schema.names} "
                 f"({'with' if cfg.with_originals else 'without'} original_image)", **where)
        state.unverified.append(spec)
        return False
    try:
        feats = datasets.Features.from_arrow_schema(table.schema)
    except Exception:  # noqa: BLE001 - malformed metadata
        feats = None
    if feats != expected_features:
        col.fail("shard_schema", "shard's schema metadata lacks the datasets features (ClassLabel names, Image): "
                 "datasets.load_dataset would not decode it", **where)
    n = table.num_rows
    if entry is not None and isinstance(entry.get("rows"), int) and n != entry["rows"]:
        col.fail("shard_schema", f"shard has {n} rows, generation.json says {entry['rows']}", **where)

    cols = {c: table.column(c).to_numpy() for c in table.column_names if c not in ("image", "original_image")}
    index = cols["index"].astype(np.int64)
    label = cols["label"]
    adv_pred = cols["adversarial_prediction"]
    orig_pred = cols["original_prediction"]
    iters = cols["iterations"]

    # images
    col.checked("images", n)
    for row, msg in d.decode_errors:
        col.fail("images", msg, row=row, index=int(index[row]), **where)
    if d.originals is not None:
        col.checked("images", n)
        for row, msg in d.original_errors:
            col.fail("images", msg, row=row, index=int(index[row]), **where)

    # values
    col.checked("values", n)

    def bad(mask, text):
        for row in np.flatnonzero(mask):
            col.fail("values", text(row), row=int(row), index=int(index[row]), **where)

    for name in ("label", "original_prediction", "adversarial_prediction"):
        v = cols[name]
        bad((v < 0) | (v >= NUM_CLASSES), lambda r, v=v, name=name: f"{name} {int(v[r])} is outside 0-9")
    bad((iters < 0) | (iters > cfg.max_iterations),
        lambda r: f"iterations {int(iters[r])} is outside 0..{cfg.max_iterations}")
    for name in ("original_confidence", "adversarial_confidence"):
        v = cols[name]
        bad(~np.isfinite(v) | (v < 0) | (v > 1), lambda r, v=v, name=name: f"{name} {float(v[r])!r} is outside [0, 1]")
    for name in ("linf", "l2"):
        v = cols[name]
        bad(~np.isfinite(v) | (v < 0), lambda r, v=v, name=name: f"{name} {float(v[r])!r} is negative or not finite")

    # stored predictions
    col.checked("stored_predictions", n)
    for row in np.flatnonzero(adv_pred == label):
        col.fail("stored_predictions", f"stored adversarial_prediction {int(adv_pred[row])} equals the label "
                 "(not adversarial)", row=int(row), index=int(index[row]), **where)
    for row in np.flatnonzero((iters == 0) & (orig_pred != adv_pred)):
        col.fail("stored_predictions", f"iterations is 0 (stored unchanged) but original_prediction "
                 f"{int(orig_pred[row])} differs from adversarial_prediction {int(adv_pred[row])}",
                 row=int(row), index=int(index[row]), **where)
    if "phase" in cols:  # the ladder's rung: "unchanged" exactly for rows stored with 0 iterations
        from .config import PHASES

        phase = cols["phase"]
        for row in np.flatnonzero((phase < 0) | (phase >= len(PHASES)) | ((phase == 0) != (iters == 0))):
            col.fail("stored_predictions", f"phase {int(phase[row])} does not agree with iterations {int(iters[row])} "
                     f"(phase {PHASES[0]!r} means 0 iterations)", row=int(row), index=int(index[row]), **where)
    for row in np.flatnonzero((iters > 0) & (orig_pred != label)):
        col.fail("stored_predictions", f"iterations is {int(iters[row])} but original_prediction "
                 f"{int(orig_pred[row])} differs from the label {int(label[row])} (the attack starts from correctly "
                 "classified images)", row=int(row), index=int(index[row]), **where)

    # indices
    col.checked("indices", n)
    in_range = (index >= spec.lo) & (index < spec.hi)
    for row in np.flatnonzero(~in_range):
        col.fail("indices", f"index {int(index[row])} lies outside this shard's rows {spec.lo}..{spec.hi - 1}",
                 row=int(row), index=int(index[row]), **where)
    num_rows = len(state.count)
    for row in np.flatnonzero((index >= 0) & (index < num_rows)):
        i = int(index[row])
        if state.count[i]:
            first_shard, first_row = state.first[i]
            col.fail("indices", f"index {i} is duplicated: already stored at {first_shard} row {first_row}",
                     row=int(row), index=i, **where)
        else:
            state.first[i] = (spec.name, int(row))
        state.count[i] += 1
    state.stored_rows += n
    return True


def _register_listed_failures(spec: _ShardSpec, state: _SplitState, col: _Collector) -> None:
    fails = spec.entry.get("failures") if spec.entry else None
    if not isinstance(fails, list):
        return
    for i in fails:
        if not isinstance(i, int):
            continue
        if not spec.lo <= i < spec.hi:
            col.fail("coverage", f"generation.json lists failure {i} outside the shard's rows {spec.lo}..{spec.hi - 1}",
                     split=spec.split, shard=spec.name, index=i)
            continue
        if state.listed[i]:
            col.fail("coverage", f"generation.json lists failure {i} twice", split=spec.split, shard=spec.name, index=i)
        state.listed[i] += 1
        state.listed_failures += 1


def _check_coverage(split: str, specs: list[_ShardSpec], state: _SplitState, col: _Collector) -> None:
    unverified = {s.name for s in state.unverified}
    col.checked("coverage", len(state.count))
    for s in specs:
        if s.name in unverified:
            col.fail("coverage", f"rows {s.lo}..{s.hi - 1} of {split} cannot be verified: their shard is missing "
                     "or unreadable", split=split, shard=s.name)
            continue
        count = state.count[s.lo:s.hi]
        listed = state.listed[s.lo:s.hi]
        for off in np.flatnonzero((count == 0) & (listed == 0)):
            i = s.lo + int(off)
            col.fail("coverage", f"row {i} of {split} is neither stored nor listed as a failure in generation.json",
                     split=split, shard=s.name, index=i)
        for off in np.flatnonzero((count > 0) & (listed > 0)):
            i = s.lo + int(off)
            col.fail("coverage", f"row {i} of {split} is stored but also listed as not fooled in generation.json",
                     split=split, shard=s.name, index=i)


def _check_source(d: _ShardData, cfg: _Config, col: _Collector) -> None:
    """linf/l2, the linf bound, unchanged rows and original_image against the original split."""
    from .attack import perturbation_norms

    originals = d.source
    spec = d.spec
    where = {"split": spec.split, "shard": spec.name}
    table = d.table
    index = table.column("index").to_numpy().astype(np.int64)
    iters = table.column("iterations").to_numpy()
    rows = np.flatnonzero(d.decoded & (index >= 0) & (index < len(originals)))
    if not len(rows):
        return
    orig = originals[index[rows]]
    adv = d.images[rows]
    pixel_range = cfg.attack.pixel_max - cfg.attack.pixel_min
    linf, l2 = perturbation_norms(adv, orig, pixel_range)
    col.checked("perturbation", len(rows))
    for name, recomputed in (("linf", linf), ("l2", l2)):
        stored = table.column(name).to_numpy()[rows].astype(np.float64)
        diff = np.abs(stored - recomputed.astype(np.float64))
        for j in np.flatnonzero(~(diff <= NORM_TOLERANCE)):
            r = int(rows[j])
            col.fail("perturbation", f"stored {name} {stored[j]:.7g} differs from the recomputed {float(recomputed[j]):.7g}",
                     row=r, index=int(index[r]), **where)
    col.checked("perturbation_bound", len(rows))
    if cfg.method == "onepixel":
        changed_pixels = (adv != orig).any(axis=-1).reshape(len(rows), -1).sum(axis=1)
        for j in np.flatnonzero(changed_pixels > 1):
            r = int(rows[j])
            col.fail("perturbation_bound", f"{int(changed_pixels[j])} pixels differ from the original: a one-pixel "
                     "attack changes one", row=r, index=int(index[r]), **where)
    else:
        bound = cfg.attack.step * iters[rows].astype(np.float64) + 0.5 / pixel_range + NORM_TOLERANCE
        if cfg.attack.radius_levels is not None:  # --max-linf: a hard ball, whole levels
            bound = np.minimum(bound, cfg.attack.radius_levels / pixel_range + NORM_TOLERANCE)
        for j in np.flatnonzero(linf.astype(np.float64) > bound):
            r = int(rows[j])
            col.fail("perturbation_bound", f"linf {float(linf[j]):.6g} exceeds step * iterations + 0.5/{pixel_range:g} = "
                     f"{bound[j] - NORM_TOLERANCE:.6g} for {int(iters[r])} iterations", row=r, index=int(index[r]), **where)
    zero = iters[rows] == 0
    col.checked("unchanged_rows", int(zero.sum()))
    changed = (adv != orig).reshape(len(rows), -1).any(axis=1)
    for j in np.flatnonzero(zero & changed):
        r = int(rows[j])
        col.fail("unchanged_rows", "iterations is 0 but the stored image differs from the original",
                 row=r, index=int(index[r]), **where)
    if d.originals is not None:
        ok = d.originals_decoded[rows]
        col.checked("original_image", int(ok.sum()))
        differs = (d.originals[rows] != orig).reshape(len(rows), -1).any(axis=1)
        for j in np.flatnonzero(ok & differs):
            r = int(rows[j])
            col.fail("original_image", "original_image differs from the --source original", row=r,
                     index=int(index[r]), **where)


def _predict_chunk(chunk: list[_ShardData], model, batch_size: int):
    """The model's predictions and confidences on the decoded images of ``chunk`` (predict thread)."""
    from .attack import predict_logits, softmax

    parts = [(d, np.flatnonzero(d.decoded)) for d in chunk]
    parts = [(d, rows) for d, rows in parts if len(rows)]
    if not parts:
        return []
    images = np.concatenate([d.images[rows] for d, rows in parts])
    logits = predict_logits(model, images, batch_size=batch_size)
    pred = logits.argmax(axis=1)
    conf = softmax(logits).max(axis=1).astype(np.float32)
    out, start = [], 0
    for d, rows in parts:
        out.append((d, rows, pred[start:start + len(rows)], conf[start:start + len(rows)]))
        start += len(rows)
    return out


def _record_predictions(results, col: _Collector) -> None:
    """Compare the model's predictions with the stored label, adversarial_prediction and confidence."""
    for d, rows, p, c in results:
        t = d.table
        index = t.column("index").to_numpy()[rows]
        label = t.column("label").to_numpy()[rows]
        stored = t.column("adversarial_prediction").to_numpy()[rows]
        stored_conf = t.column("adversarial_confidence").to_numpy()[rows]
        where = {"split": d.spec.split, "shard": d.spec.name}
        col.checked("misclassified", len(rows))
        col.checked("adversarial_prediction", len(rows))
        for j in np.flatnonzero(p == label):
            col.fail("misclassified", f"the model predicts the true label {int(label[j])}: the image is not adversarial",
                     row=int(rows[j]), index=int(index[j]), **where)
        for j in np.flatnonzero(p != stored):
            col.fail("adversarial_prediction", f"the model predicts {int(p[j])}, the stored adversarial_prediction is "
                     f"{int(stored[j])}", row=int(rows[j]), index=int(index[j]), **where)
        for j in np.flatnonzero((p == stored) & ~(np.abs(c - stored_conf) <= CONFIDENCE_TOLERANCE)):
            col.fail("adversarial_prediction", f"the model's confidence {float(c[j]):.7g} differs from the stored "
                     f"adversarial_confidence {float(stored_conf[j]):.7g}", row=int(rows[j]), index=int(index[j]), **where)


class _Predictor:
    """Loads the model and runs it on chunks of shards in its own thread, one chunk at a time.

    A chunk goes to the model as soon as the model is idle, so it starts on the first shard; while
    it works, the caller reads and checks the next shards into the following chunk (at most
    ``chunk_rows`` rows, then the caller waits). Fewer, larger calls retrace ``predict_logits``
    less often. Failures are recorded in the caller's thread.
    """

    def __init__(self, model_path, unsafe: bool, batch_size: int, chunk_rows: int, col: _Collector):
        from .models import load_model

        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="validate-predict")
        self.model = self.pool.submit(load_model, model_path, unsafe=unsafe)
        self.batch_size = batch_size
        self.chunk_rows = chunk_rows
        self.col = col
        self.chunk: list[_ShardData] = []
        self.rows = 0
        self.pending = None

    def add(self, d: _ShardData) -> None:
        self.chunk.append(d)
        self.rows += int(d.decoded.sum())
        if self.pending is None or self.pending.done() or self.rows >= self.chunk_rows:
            self._flush()

    def _flush(self) -> None:
        self._wait()
        if self.chunk:
            chunk, self.chunk, self.rows = self.chunk, [], 0
            self.pending = self.pool.submit(lambda: _predict_chunk(chunk, self.model.result(), self.batch_size))

    def _wait(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            _record_predictions(pending.result(), self.col)

    def finish(self) -> None:
        self._flush()
        self._wait()
        self.model.result()  # a model that cannot be loaded is bad input even if no row was read

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------- card


def front_matter(text: str) -> str | None:
    """The YAML between a leading ``---`` line and the next ``---`` line, or None."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            return "\n".join(lines[1:i])
    return None


def _check_card(directory: Path, columns: list[str], stored: dict[str, int], col: _Collector) -> None:
    import yaml

    readme = directory / CARD
    if not readme.is_file():
        col.skip("card", f"no {CARD}: write one with `cifar10-fgs card`")
        return
    fm = front_matter(readme.read_text(encoding="utf-8", errors="replace"))
    if fm is None:
        col.skip("card", f"{CARD} has no YAML front matter")
        return
    try:
        meta = yaml.safe_load(fm)
    except yaml.YAMLError as exc:
        col.checked("card")
        col.fail("card", f"{CARD} front matter is not valid YAML ({str(exc).splitlines()[0]})", shard=CARD)
        return
    info = meta.get("dataset_info") if isinstance(meta, dict) else None
    if info is None:
        col.skip("card", f"{CARD} front matter has no dataset_info")
        return
    if isinstance(info, list):
        chosen = [i for i in info if isinstance(i, dict) and i.get("config_name", "default") == "default"]
        info = chosen[0] if len(chosen) == 1 else (info[0] if len(info) == 1 else None)
    if not isinstance(info, dict):
        col.checked("card")
        col.fail("card", f"{CARD} dataset_info is not a mapping (or names no default config)", shard=CARD)
        return

    col.checked("card")
    feats = info.get("features")
    if isinstance(feats, dict):
        names = list(feats)
    elif isinstance(feats, list):
        names = [f.get("name") for f in feats if isinstance(f, dict)]
    else:
        names = None
    if names is None:
        col.fail("card", f"{CARD} dataset_info has no features list", shard=CARD)
    else:
        for c in columns:
            if c not in names:
                col.fail("card", f"{CARD} dataset_info.features lacks the shard column {c!r}", shard=CARD)
        for c in names:
            if c not in columns:
                col.fail("card", f"{CARD} dataset_info.features names {c!r}, which is no shard column", shard=CARD)

    splits = info.get("splits")
    if isinstance(splits, dict):
        splits = [{"name": k, **(v if isinstance(v, dict) else {})} for k, v in splits.items()]
    if not isinstance(splits, list):
        col.fail("card", f"{CARD} dataset_info has no splits list", shard=CARD)
        return
    card_counts = {s.get("name"): s.get("num_examples") for s in splits if isinstance(s, dict)}
    for split, rows in stored.items():
        col.checked("card")
        if split not in card_counts:
            col.fail("card", f"{CARD} dataset_info.splits lacks the {split} split ({rows} rows)", split=split, shard=CARD)
        elif card_counts[split] != rows:
            col.fail("card", f"{CARD} says the {split} split has {card_counts[split]} examples; the shards hold {rows}",
                     split=split, shard=CARD)
    for split in card_counts:
        if split not in stored:
            col.fail("card", f"{CARD} dataset_info.splits names {split!r}, which the dataset does not have",
                     split=str(split), shard=CARD)


# --------------------------------------------------------------------------- entry point


def validate_dataset(
    directory: str | Path,
    model_path: str | Path | None = None,
    source: str | Path | None = None,
    *,
    unsafe_model: bool = False,
    progress: bool = False,
    predict_rows: int = 16384,
) -> ValidationReport:
    """Check the dataset folder ``directory``; see the module docstring for every check.

    ``model_path`` enables the model checks, ``source`` (any ``load_cifar10`` source) the checks
    against the original images. Bad input (no such folder, no ``generation.json``, an unloadable
    model or source) raises a ``Cifar10FgsError``; failed checks are returned in the report.
    ``predict_rows`` is how many images the model sees per call (fewer calls, fewer retraces).
    """
    from tqdm.auto import tqdm

    from .provenance import library_versions, read_json, sha256_file
    from .shards import features

    t0 = time.time()
    directory = Path(directory)
    if not directory.is_dir():
        raise NotADatasetError(f"{directory} is not a folder: pass the folder `cifar10-fgs generate --out` wrote")
    if not (directory / MANIFEST).is_file():
        raise NotADatasetError(
            f"{directory} holds no {MANIFEST}: pass a folder written by `cifar10-fgs generate --out`"
        )
    col = _Collector()
    model_sha = sha256_file(model_path) if model_path is not None and Path(model_path).is_file() else None

    def report(splits=()) -> ValidationReport:
        return ValidationReport(
            directory=str(directory), checks=col.results(), failures=col.sorted_failures(), splits=tuple(splits),
            model=str(model_path) if model_path is not None else None, model_sha256=model_sha,
            source=str(source) if source is not None else None, seconds=time.time() - t0,
            library_versions=library_versions(),
        )

    try:
        manifest = read_json(directory / MANIFEST)
        cfg = _parse_config(manifest)
    except (OSError, ValueError) as exc:
        reason = str(exc)
        col.checked("manifest")
        col.fail("manifest", f"{MANIFEST} is unusable ({reason}): regenerate the dataset")
        for name in CHECKS:
            if name != "manifest":
                col.skip(name, f"{MANIFEST} is unusable")
        return report()

    from .generate import FORMAT_VERSION

    if manifest["config"].get("format_version") != FORMAT_VERSION:
        col.fail("manifest", f"format_version is {manifest['config'].get('format_version')!r}; this cifar10-fgs "
                 f"reads {FORMAT_VERSION}")
    if manifest.get("complete") is not True:
        col.fail("manifest", f"{MANIFEST} says complete: {manifest.get('complete')!r} (generation unfinished, or "
                 "another --shard-index has not merged its shards): rerun generate to finish")
    specs = _layout(cfg, manifest, col)
    _check_files(directory, specs, col)

    # model
    check_model = False
    if model_path is None:
        col.skip("model_file", "no --model given")
        for name in MODEL_CHECKS:
            col.skip(name, "model checks skipped: no --model given")
    else:
        from .models import load_model

        if model_sha is None:
            load_model(model_path, unsafe=unsafe_model)  # raises the one-line ModelError
        col.checked("model_file")
        if model_sha != cfg.model_sha256:
            col.fail("model_file", f"--model {model_path} has sha256 {model_sha[:12]}..., but the dataset was generated "
                     f"by {manifest.get('source_model', {}).get('path', 'a model')!r} with sha256 "
                     f"{str(cfg.model_sha256)[:12]}...: pass the generating model")
            for name in MODEL_CHECKS:
                col.skip(name, "skipped: --model is not the generating model")
        else:
            check_model = True
    if source is None:
        for name in ("source_fingerprint", *SOURCE_CHECKS):
            col.skip(name, "no --source given")
    elif not cfg.with_originals:
        col.skip("original_image", "the dataset stores no original_image column")

    expected_features = features(cfg.with_originals)
    expected_schema = expected_features.arrow_schema
    states = {s: _SplitState(info["num_rows"]) for s, info in cfg.splits.items()}
    sources = _SourceCache(source, cfg)
    total = sum(int(s.entry.get("rows", 0)) if s.entry and isinstance(s.entry.get("rows"), int) else 0 for s in specs)
    bar = tqdm(total=total, desc="validate", unit="row", disable=not progress, smoothing=0.1)
    predictor = (_Predictor(model_path, unsafe_model, cfg.predict_batch_size, predict_rows, col)
                 if check_model else None)
    try:
        for d in _prefetched(directory, specs, expected_schema, sources):
            spec = d.spec
            state = states[spec.split]
            if d.source_loaded:
                col.checked("source_fingerprint")
                if d.source_problem:
                    col.fail("source_fingerprint", d.source_problem, split=spec.split)
                    for name in SOURCE_CHECKS:
                        col.skip(name, f"skipped for {spec.split}: --source does not match")
            _register_listed_failures(spec, state, col)
            if _check_shard(d, cfg, expected_schema, expected_features, state, col):
                if d.source is not None:
                    _check_source(d, cfg, col)
                if predictor is not None:
                    predictor.add(d)
            elif d.table is not None:
                state.stored_rows += d.table.num_rows
            elif spec.entry and isinstance(spec.entry.get("rows"), int):
                state.stored_rows += spec.entry["rows"]
            if d.table is not None:
                bar.update(d.table.num_rows)
                bar.set_postfix(failures=len(col.failures), refresh=False)
            log.info("checked %s (%d failures so far)", spec.name, len(col.failures))
        if predictor is not None:
            predictor.finish()
    finally:
        bar.close()
        if predictor is not None:
            predictor.close()

    for split in cfg.splits:
        _check_coverage(split, [s for s in specs if s.split == split], states[split], col)
    _check_card(directory, list(expected_schema.names), {s: st.stored_rows for s, st in states.items()}, col)

    counts = [
        SplitCounts(s, cfg.splits[s]["num_rows"], states[s].stored_rows, states[s].listed_failures,
                    sum(1 for x in specs if x.split == s))
        for s in cfg.splits
    ]
    result = report(counts)
    log.info("%s", result.summary_line())
    return result
