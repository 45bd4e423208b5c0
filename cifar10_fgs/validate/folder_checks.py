"""The checks of a dataset folder as a whole, not of one shard's rows: the shards ``config`` implies against
``generation.json``'s entries (``layout``), the files in ``data/`` (``check_files``), and whether every row of a
split is stored or listed as not fooled exactly once (``SplitState``, ``register_listed_failures``,
``check_coverage``). ``report.CHECKS`` says what each check asserts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cifar10_fgs.dataset.manifest import Manifest, ShardEntry
from cifar10_fgs.dataset.shards import DATA_DIR, num_shards, shard_name
from cifar10_fgs.validate.reading import ShardSpec
from cifar10_fgs.validate.report import Collector


def layout(manifest: Manifest, col: Collector) -> list[ShardSpec]:
    """The shards ``config`` implies, checked against the manifest's entries."""

    cfg = manifest.config
    entries = manifest.shards
    specs = []
    for split, info in cfg.splits.items():
        n_rows = info.num_rows
        rows = info.cifar10_rows()
        n = num_shards(n_rows, cfg.rows_per_shard)
        if info.num_shards not in (None, n):
            col.fail(
                "manifest",
                f"config.splits.{split}.num_shards is {info.num_shards}, but {n_rows} rows at "
                f"{cfg.rows_per_shard} per shard make {n}",
                split=split,
            )
        for k in range(n):
            name = shard_name(split, k, n)
            lo, hi = k * cfg.rows_per_shard, min((k + 1) * cfg.rows_per_shard, n_rows)
            if name in manifest.malformed:
                for problem in manifest.malformed[name].split("; "):
                    col.fail("manifest", problem, split=split, shard=name)
            spec = ShardSpec(name, split, k, lo, hi, entries.get(name), rows)
            if spec.entry is not None:
                _check_entry(spec, spec.entry, col)
            specs.append(spec)
    expected = {s.name for s in specs}
    for name in sorted((set(entries) | set(manifest.malformed)) - expected):
        col.fail("manifest", f"generation.json lists {name}, which is no shard of config.splits", shard=name)
    col.checked("manifest", len(entries) + len(manifest.malformed))
    return specs


def _check_entry(spec: ShardSpec, entry: ShardEntry, col: Collector) -> None:
    """A well-formed entry names the shard it is listed under and the CIFAR-10 rows the config gives it."""
    where = {"split": spec.split, "shard": spec.name}
    if entry.split != spec.split or entry.shard != spec.k:
        col.fail("manifest", f"its generation.json entry names split {entry.split!r} shard {entry.shard!r}", **where)
    if entry.index_range != spec.index_range:
        lo, hi = spec.index_range
        col.fail(
            "manifest",
            f"its generation.json entry has index_range {list(entry.index_range)!r}, expected [{lo}, {hi}]",
            **where,
        )


class SplitState:
    """What a split's shards hold, by generated position (``ShardSpec.rows`` maps it to the CIFAR-10 row)."""

    def __init__(self, num_rows: int):
        self.count = np.zeros(num_rows, np.int32)  # stored occurrences of each position
        self.first: dict[int, tuple[str, int]] = {}  # position -> (shard, row) of its first occurrence (for messages)
        self.listed = np.zeros(num_rows, np.int32)  # listed as not fooled in generation.json
        self.stored_rows = 0
        self.listed_failures = 0
        self.unverified: list[ShardSpec] = []  # missing or unreadable shards: rows unknown


def check_files(dataset_dir: Path, specs: list[ShardSpec], col: Collector) -> None:

    expected = {s.name for s in specs}
    data_dir = dataset_dir / DATA_DIR
    present = set()
    if data_dir.is_dir():
        for p in sorted(data_dir.rglob("*")):
            if p.is_dir():
                continue
            rel = p.relative_to(dataset_dir).as_posix()
            present.add(rel)
            col.checked("shard_files")
            if rel not in expected:
                col.fail(
                    "shard_files",
                    f"foreign file {rel} in {DATA_DIR}/ (datasets would load it as part of the dataset): remove it",
                    shard=rel,
                )
    for s in specs:
        if s.name not in present:
            col.checked("shard_files")
            col.fail(
                "shard_files",
                f"shard {s.name} is missing ({s.span} of {s.split}): rerun the same generate command to resume",
                split=s.split,
                shard=s.name,
            )
        elif s.entry is None:
            col.fail(
                "shard_files",
                f"shard {s.name} is not listed in generation.json (written by another run?)",
                split=s.split,
                shard=s.name,
            )


def register_listed_failures(spec: ShardSpec, state: SplitState, col: Collector) -> None:
    for i in spec.entry.failures if spec.entry else ():
        p = int(spec.rows.positions([i])[0])
        if not spec.lo <= p < spec.hi:
            col.fail(
                "coverage",
                f"generation.json lists failure {i}, none of the shard's {spec.span}",
                split=spec.split,
                shard=spec.name,
                index=i,
            )
            continue
        if state.listed[p]:
            col.fail("coverage", f"generation.json lists failure {i} twice", split=spec.split, shard=spec.name, index=i)
        state.listed[p] += 1
        state.listed_failures += 1


def check_coverage(split: str, specs: list[ShardSpec], state: SplitState, col: Collector) -> None:
    unverified = {s.name for s in state.unverified}
    col.checked("coverage", len(state.count))
    for s in specs:
        if s.name in unverified:
            col.fail(
                "coverage",
                f"{s.span} of {split} cannot be verified: their shard is missing or unreadable",
                split=split,
                shard=s.name,
            )
            continue
        count = state.count[s.lo : s.hi]
        listed = state.listed[s.lo : s.hi]
        for mask, what in (
            ((count == 0) & (listed == 0), "is neither stored nor listed as a failure"),
            ((count > 0) & (listed > 0), "is stored but also listed as not fooled"),
        ):
            for off in np.flatnonzero(mask):
                i = int(s.rows.original_rows[s.lo + int(off)])
                col.fail(
                    "coverage", f"row {i} of {split} {what} in generation.json", split=split, shard=s.name, index=i
                )
