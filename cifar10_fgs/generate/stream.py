"""One attack stream over a worker's unfinished shards: which rows (the plan), attacking them, routing records to shards.

``generate`` attacks every unfinished shard of every split as one stream, so the batch drains (the tail) only once;
:class:`ShardRouter` hands a shard to the writer as soon as all its rows are attacked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifar10_fgs.attack.fgs import AttackRecord, iterate_attack
from cifar10_fgs.attack.onepixel import iterate_onepixel
from cifar10_fgs.attack.schedule import entry_order
from cifar10_fgs.config import RANKED_STREAM_ROWS, AttackConfig, Method, OnePixelConfig
from cifar10_fgs.data import Cifar10Split
from cifar10_fgs.dataset.folder import shard_done
from cifar10_fgs.dataset.manifest import Manifest, SplitRows
from cifar10_fgs.dataset.shards import num_shards, shard_name
from cifar10_fgs.generate.originals import OriginalLogits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """This worker's unfinished shards as one stream of rows, so the batch drains (the tail) only once.

    A split's rows are its positions ``0..len-1`` (all of it, or the ``--limit`` subset); position ``p`` is CIFAR-10
    row ``rows[split].original_rows[p]``. A row's stream id is its split's offset (the sizes of the CIFAR-10 splits before it)
    plus its CIFAR-10 row: the id the attack seeds its restarts with, the same for a row under ``--limit`` as in a
    whole-split run. Shards are keyed by (split, shard number).
    """

    offsets: dict[str, int]  # split -> stream id of its CIFAR-10 row 0
    rows: dict[str, SplitRows]  # split -> the CIFAR-10 row of each position
    streams: list[tuple[str, np.ndarray]]  # (split, positions) of each unfinished shard, in stream order
    pending: dict[tuple[str, int], int]  # (split, shard) -> rows it holds

    def ids(self) -> np.ndarray:
        """The stream id of every row of ``streams``, in order."""
        return np.concatenate([self.offsets[s] + self.rows[s].original_rows[p] for s, p in self.streams])


def plan_shards(
    splits: dict[str, Cifar10Split],
    sizes: dict[str, int],
    dataset_dir: Path,
    manifest: Manifest,
    rps: int,
    worker: tuple[int, int],
) -> Plan:
    """The shards (``rps`` rows each) of this worker (``k % num_workers == worker_index``, ``worker`` being the two)
    not complete in ``dataset_dir``; ``sizes``: each CIFAR-10 split's size."""
    num_workers, worker_index = worker
    offsets, rows, streams, pending = {}, {}, [], {}
    base = 0
    for split, data in splits.items():
        offsets[split] = base
        rows[split] = manifest.config.splits[split].cifar10_rows()
        n = num_shards(len(data), rps)
        mine = [k for k in range(n) if k % num_workers == worker_index]
        todo = [
            k
            for k in mine
            if not shard_done(dataset_dir, shard_name(split, k, n), manifest.shards.get(shard_name(split, k, n)))
        ]
        if not todo:
            log.info("%s: all %d shards present, nothing to do", split, len(mine))
        for k in todo:
            positions = np.arange(k * rps, min((k + 1) * rps, len(data)))
            streams.append((split, positions))
            pending[(split, k)] = len(positions)
        base += sizes[split]
    return Plan(offsets, rows, streams, pending)


class ShardRouter:
    """Routes attack records (by stream id) to their shards; submits a shard once all its rows are in."""

    def __init__(self, splits: dict[str, Cifar10Split], plan: Plan, rows_per_shard: int, submit: Callable[..., None]):
        self.splits = splits
        self.offsets = plan.offsets
        self.rows = plan.rows
        self.names = list(plan.offsets)
        self.bases = np.array([plan.offsets[s] for s in self.names])
        self.pending = dict(plan.pending)
        self.parts: dict[tuple[str, int], list[AttackRecord]] = {key: [] for key in plan.pending}
        self.t0: dict[tuple[str, int], float] = {}
        self.rps = rows_per_shard
        self.submit = submit

    def add(self, rec: AttackRecord) -> None:
        which = np.searchsorted(self.bases, rec.index, side="right") - 1
        for w in np.unique(which):
            split = self.names[int(w)]
            sub = rec.take(np.flatnonzero(which == w))
            sub.index = sub.index - self.offsets[split]  # the CIFAR-10 row
            self._add_split(split, sub)

    def _add_split(self, split: str, sub: AttackRecord) -> None:
        """Add records of ``split`` (indexed by CIFAR-10 row) to their shards."""
        rps = self.rps
        data = self.splits[split]
        n = num_shards(len(data), rps)
        shard_of = self.rows[split].positions(sub.index) // rps
        for k in np.unique(shard_of).tolist():
            key = (split, k)
            sel = np.flatnonzero(shard_of == k)
            self.parts[key].append(sub.take(sel))
            self.pending[key] -= len(sel)
            self.t0.setdefault(key, time.time())
            if self.pending[key] == 0:
                shard = slice(k * rps, (k + 1) * rps)
                rows = self.rows[split].shard(k, rps)
                self.submit(split, k, n, self.parts.pop(key), data.images[shard], rows, time.time() - self.t0[key])


def attack_stream(
    model,
    splits: dict[str, Cifar10Split],
    plan: Plan,
    config: AttackConfig | OnePixelConfig,  # the settings of ``method``
    method: Method,
    gradient_fn,
    originals: OriginalLogits,
    router: ShardRouter,
    after_record: Callable[[], None],
    progress: bool,
) -> tuple[int, int]:
    """Attack the plan's rows as one stream, routing each record to its shard and calling ``after_record``.

    A short stream enters the attack by the model's margin on its originals (``attack.schedule``), read
    from ``originals``.

    Returns (images attacked, gradient evaluations).
    """
    from tqdm.auto import tqdm

    images = np.concatenate([splits[s].images[r] for s, r in plan.streams])
    labels = np.concatenate([splits[s].labels[r] for s, r in plan.streams])
    ids = plan.ids()
    attacked = grad_evals = fooled_count = iter_sum = 0
    bar = tqdm(
        total=len(ids),
        desc="generate " + "+".join(sorted({s for s, _ in plan.streams})),
        unit="img",
        disable=not progress,
        smoothing=0.1,
    )
    if method == Method.ONEPIXEL:
        assert isinstance(config, OnePixelConfig)  # the settings of ``method`` (``core`` picks them together)
        records = iterate_onepixel(model, images, labels, config, indices=ids)
    else:
        assert isinstance(config, AttackConfig)
        order = _entry_order(originals, splits, plan, labels)
        records = iterate_attack(model, images, labels, config, indices=ids, gradient_fn=gradient_fn, order=order)
    for rec in records:
        router.add(rec)
        attacked += len(rec)
        grad_evals += int(rec.evaluations.sum())
        fooled_count += int(rec.fooled.sum())
        iter_sum += int(rec.iterations.sum())
        bar.update(len(rec))
        done = max(1, bar.n)
        bar.set_postfix(fooled=f"{100.0 * fooled_count / done:.1f}%", iters=f"{iter_sum / done:.2f}", refresh=False)
        after_record()
    bar.close()
    return attacked, grad_evals


def _entry_order(originals: OriginalLogits, splits: dict[str, Cifar10Split], plan: Plan, labels: np.ndarray):
    """A short stream's entry order: by the model's margin on its originals (``attack.schedule``); else row order."""
    if len(labels) > RANKED_STREAM_ROWS:
        return None
    logits = np.concatenate([originals.of(splits[split], rows) for split, rows in plan.streams])
    log.info("the %d rows enter by margin, largest first", len(labels))
    return entry_order(logits, labels)
