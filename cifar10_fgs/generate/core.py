"""``generate``: attack whole CIFAR-10 splits into a publishable, resumable dataset folder.

Layout of ``DIR``::

    data/<split>-<i:05d>-of-<n:05d>.arrow   shards, visible only when complete
    generation.json                         settings, provenance, per-shard sha256, summary
    .lock                                   held (flock) while a generate runs

Shard ``i`` of a split holds the fooled rows among its rows ``[i*R, (i+1)*R)`` (R rows per shard) of the
split: all of it, or the ``--limit`` subset. Every row is named by its CIFAR-10 row (``index``, also under
``--limit``: ``dataset.manifest.rows``); rows not fooled within ``max_iterations`` are listed so in
``generation.json``.
Rerunning the same command resumes from the first missing shard; the result is byte-identical to
an uninterrupted run because each image's result does not depend on what it was batched with.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifar10_fgs.attack.gradient import make_gradient_fn
from cifar10_fgs.config import AttackConfig, Method, OnePixelConfig, check_attack_config
from cifar10_fgs.data import Cifar10Split, load_cifar10, load_cifar10_rows
from cifar10_fgs.data.split import balanced_rows
from cifar10_fgs.dataset import manifest as mf
from cifar10_fgs.dataset.folder import check_writable, clear_outputs, folder_lock, prepare_dataset_dir, shard_done
from cifar10_fgs.dataset.manifest import Manifest
from cifar10_fgs.dataset.shards import (
    TMP_DIR,
    num_shards,
    read_columns,
    shard_name,
)
from cifar10_fgs.dataset.stats import COLUMNS, SplitSummary, split_statistics
from cifar10_fgs.errors import Cifar10FgsError, ConfigError
from cifar10_fgs.generate.check import check_source_model
from cifar10_fgs.generate.options import GenerateOptions, attack_config, check_options
from cifar10_fgs.generate.originals import OriginalLogits
from cifar10_fgs.generate.stream import ShardRouter, attack_stream, plan_shards
from cifar10_fgs.generate.writer import ManifestWriter, ShardWriter
from cifar10_fgs.models.convention import Declared
from cifar10_fgs.models.inference import device_strategy
from cifar10_fgs.models.keras_input import FedModel, load_keras
from cifar10_fgs.models.networks import architecture
from cifar10_fgs.provenance import dumps_sorted, library_versions, sha256_file
from cifar10_fgs.training.saved import read_model_metadata

log = logging.getLogger(__name__)


class AttackFailuresError(Cifar10FgsError):
    """Some images were not fooled within max_iterations (everything else was written)."""

    exit_code = 1


def _load_model_info(source_model: Path, declared: Declared | None, unsafe: bool, strategy=None):
    """(the source model fed as declared, its ``source_model`` record)."""
    from contextlib import nullcontext

    with strategy.scope() if strategy is not None else nullcontext():
        fed = load_keras(source_model, [declared], unsafe=unsafe)
    meta = read_model_metadata(source_model)
    info = mf.SourceModel(
        path=source_model.name,
        sha256=sha256_file(source_model),
        architecture=architecture(fed.network),
        test_accuracy=meta.get("test_accuracy"),
        test_loss=meta.get("test_loss"),
        recipe=meta.get("recipe"),
        train_data=meta.get("train_data"),
        outputs=fed.convention.output.value,
        train_accuracy=meta.get("train_accuracy"),
        network=meta.get("network"),
        input_convention=fed.record(),
    )
    return fed, info


def summarize(dataset_dir: Path, manifest: Manifest, split: str) -> SplitSummary:
    """Summary statistics of one split, computed from the shards' stored columns (``stats``)."""
    import pyarrow as pa

    listed = manifest.shards_of(split)
    table = read_columns(dataset_dir, [n for n, _ in listed], COLUMNS) if listed else pa.table({c: [] for c in COLUMNS})
    total = sum(e.rows + len(e.failures) for _, e in listed)  # every row of a shard is stored or a failure
    st = split_statistics(table, total, manifest.failures(split))
    evaluations = [e.gradient_evaluations for _, e in listed if e.gradient_evaluations is not None]
    return SplitSummary.of(st, manifest.config, sum(evaluations) if len(evaluations) == len(listed) else None)


@dataclass(frozen=True)
class GenerateResult:  # its field names are the keys of `generate --json`
    out_dir: str  # the dataset folder written
    summary: dict[str, SplitSummary]
    seconds: float
    images_attacked: int
    gradient_evaluations: int
    failures: dict

    @property
    def images_per_second(self) -> float:
        return self.images_attacked / self.seconds if self.seconds else 0.0


def generate_dataset(
    dataset_dir: str | Path,
    source_model: str | Path,
    options: GenerateOptions = GenerateOptions(),
    *,
    overwrite: bool = False,
    allow_failures: bool = False,
    unsafe_model: bool = False,
    progress: bool = False,
    data: dict[str, Cifar10Split] | None = None,
) -> GenerateResult:
    """Attack the splits of ``options.cifar10`` with the model at ``source_model`` into ``dataset_dir``.

    ``data`` may pass already-loaded splits (keyed by split) instead of reading ``options.cifar10`` again.
    ``options.attack`` defaults to :func:`attack_config` (the attack defaults, the device's batch size).
    """
    check_options(options)
    config = attack_config() if options.attack is None else options.attack
    check_attack_config(config)
    dataset_dir = Path(dataset_dir)
    source_model = Path(source_model)
    check_writable(dataset_dir)

    strategy = device_strategy() if options.method == Method.FGS else None
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    if config.batch_size % replicas:
        raise ConfigError(
            f"batch size {config.batch_size} does not split over {replicas} GPUs: pass a multiple of {replicas}"
        )
    fed, model_info = _load_model_info(source_model, options.model_input, unsafe_model, strategy)
    model = fed.model  # uint8 levels in, logits out: the loaded model itself in this project's convention

    splits, subsets, sizes = _limited_splits(options, data)
    key = _settings(config, options, model_info.sha256, replicas, splits, subsets, fed)
    resume = prepare_dataset_dir(dataset_dir, key, overwrite)
    originals = OriginalLogits(model)  # the check's rows, then the entry order's: each predicted once
    if resume is None:  # a folder resumed with the same settings was checked, with this model, when it was begun
        check_source_model(originals, source_model, next(iter(splits.values())), options.source_check)
    dataset_dir.mkdir(parents=True, exist_ok=True)

    with folder_lock(dataset_dir):
        resume = prepare_dataset_dir(dataset_dir, key, overwrite)  # again, under the lock: the folder may have moved on
        if resume is None:
            clear_outputs(dataset_dir)
            manifest = Manifest(
                config=key,
                source_model=model_info,
                data_source=mf.DataSource(str(options.cifar10), {s: d.origin for s, d in splits.items()}),
                library_versions=library_versions(),
                worker=mf.Worker(options.num_workers, options.worker_index),
            )
        else:
            manifest = resume.replace(complete=False)
        mf.write(dataset_dir, manifest)
        return _run(
            model, splits, sizes, dataset_dir, manifest, config, options, allow_failures, progress, strategy, originals
        )


def claim_dataset_dir(
    dataset_dir: str | Path,
    source_model: str | Path | None,
    options: GenerateOptions,
    data: dict[str, Cifar10Split],
    *,
    overwrite: bool = False,
) -> None:
    """Before a model is trained for it: refuse (``ExistingOutputError``) a folder that ``generate_dataset`` with
    these settings would replace, unless ``overwrite``. ``source_model`` None: a model still to be trained, so any
    dataset already there would be replaced. ``data``: the loaded splits (``run``)."""
    check_options(options)
    config = attack_config() if options.attack is None else options.attack
    strategy = device_strategy() if options.method == Method.FGS else None
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    fed, sha = None, ""
    if source_model is not None:
        fed, info = _load_model_info(Path(source_model), options.model_input, False, strategy)
        sha = info.sha256
    splits, subsets, _ = _limited_splits(options, data)
    prepare_dataset_dir(Path(dataset_dir), _settings(config, options, sha, replicas, splits, subsets, fed), overwrite)


def _limited_splits(options: GenerateOptions, data):
    """The rows each split is generated from: all of them, or with ``--limit`` the recorded balanced subset.

    Returns (those rows by split, the ``--limit`` subsets by split, the CIFAR-10 split's size by split).
    With ``--limit``, an image folder or tarball decodes only the subset's rows (``load_cifar10_rows``).
    """
    splits: dict[str, Cifar10Split] = {}
    subsets: dict[str, mf.Subset] = {}
    sizes: dict[str, int] = {}
    for split in options.splits:
        given = data.get(split) if data else None
        if options.limit is None:
            splits[split] = given if given is not None else load_cifar10(options.cifar10, split)
            sizes[split] = len(splits[split])
            continue
        choose = _balanced_subset(split, options.limit, options.seed)
        if given is not None:
            rows = choose(given.labels)
            splits[split], sizes[split] = given.take(rows), len(given)
        else:
            splits[split], rows, sizes[split] = load_cifar10_rows(options.cifar10, split, choose)
        subsets[split] = mf.Subset(options.limit, options.seed, tuple(rows.tolist()))
        counts = np.bincount(splits[split].labels, minlength=10).tolist()
        log.info("%s: %d rows, per class %s", split, len(rows), counts)
    return splits, subsets, sizes


def _balanced_subset(split: str, limit: int, seed: int):
    """labels -> the seeded class-balanced rows of ``--limit``, or a one-line error if the split is smaller."""

    def choose(labels: np.ndarray) -> np.ndarray:
        if limit > len(labels):
            raise ConfigError(
                f"--limit {limit} is larger than the {split} split ({len(labels)} images): pass --limit {len(labels)} or less"
            )
        return balanced_rows(labels, limit, seed)

    return choose


def _settings(
    config: AttackConfig,
    options: GenerateOptions,
    model_sha256: str,
    replicas: int,
    splits,
    subsets,
    fed: FedModel | None,
) -> mf.Config:
    """The manifest's ``config``: what a folder must have been made with to be resumed (``fed`` None: a model still
    to be trained, in this project's convention)."""
    onepixel = None
    if options.method == Method.ONEPIXEL:
        onepixel = _jsonable(dataclasses.asdict(options.onepixel))
    return mf.Config(
        splits={
            s: mf.SplitConfig(len(d), d.fingerprint(), num_shards(len(d), options.rows_per_shard), subsets.get(s))
            for s, d in splits.items()
        },
        rows_per_shard=options.rows_per_shard,
        attack=_jsonable(dataclasses.asdict(config)),
        method=Method(options.method),
        format_version=mf.FORMAT_VERSION,
        model_sha256=model_sha256,
        replicas=replicas,
        with_originals=options.with_originals,
        onepixel=onepixel,
        input_convention=None if fed is None or fed.is_default else fed.convention.to_json(),
    )


def _jsonable(obj):
    import json

    return json.loads(dumps_sorted(obj))


def _run(
    model, splits, sizes, dataset_dir, manifest, config, options, allow_failures, progress, strategy, originals
) -> GenerateResult:
    """Attack this worker's unfinished shards of ``splits``, then write the summary and the final manifest.

    ``sizes``: each CIFAR-10 split's size (a row's stream id, which seeds its restarts, counts the splits before it).
    """
    record = ManifestWriter(dataset_dir, manifest)
    gradient_fn = _gradient_fn(model, strategy) if options.method == Method.FGS else None
    config = options.onepixel if options.method == Method.ONEPIXEL else config  # the method's own settings
    t_start = time.time()
    attacked = grad_evals = 0
    writer = ShardWriter(dataset_dir, options.with_originals, record)
    try:
        worker = (options.num_workers, options.worker_index)
        plan = plan_shards(splits, sizes, dataset_dir, manifest, options.rows_per_shard, worker)
        if plan.streams:
            router = ShardRouter(splits, plan, options.rows_per_shard, writer.submit)
            attacked, grad_evals = attack_stream(
                model,
                splits,
                plan,
                config,
                options.method,
                gradient_fn,
                originals,
                router,
                writer.raise_errors,
                progress,
            )
            log.info("attacked %d images in %.1fs", sum(len(r) for _, r in plan.streams), time.time() - t_start)
        writer.wait()
    finally:
        writer.close()  # after a failure, queued shards are not attempted
    run = _RunTotals(time.time() - t_start, attacked, grad_evals)
    return _finish(dataset_dir, record.manifest, splits, config, options.rows_per_shard, run, allow_failures)


def _gradient_fn(model, strategy):
    """The attack's gradient function, with deterministic ops on a GPU (cuDNN backward passes are otherwise not)."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        tf.config.experimental.enable_op_determinism()
    return make_gradient_fn(model, strategy)


@dataclass(frozen=True)
class _RunTotals:
    seconds: float
    images: int
    gradient_evaluations: int


def _finish(
    dataset_dir: Path,
    manifest: Manifest,
    splits: dict[str, Cifar10Split],
    config: AttackConfig | OnePixelConfig,
    rps: int,
    run: _RunTotals,
    allow_failures: bool,
) -> GenerateResult:
    """Write the summary, completeness and timing into the manifest; raise if images were not fooled."""
    summary = {s: summarize(dataset_dir, manifest, s) for s in splits}
    failures = {s: list(summary[s].failures) for s in splits if summary[s].failures}
    all_present = all(
        shard_done(
            dataset_dir,
            shard_name(s, k, num_shards(len(d), rps)),
            manifest.shards.get(shard_name(s, k, num_shards(len(d), rps))),
        )
        for s, d in splits.items()
        for k in range(num_shards(len(d), rps))
    )
    timing = manifest.timing
    if run.images:
        timing = dataclasses.replace(
            timing,
            seconds_total=round((timing.seconds_total or 0.0) + run.seconds, 2),
            runs=(timing.runs or 0) + 1,
            last_run_seconds=round(run.seconds, 2),
            last_run_images=run.images,
            last_run_gradient_evaluations=run.gradient_evaluations,
            last_run_batch_size=config.batch_size,
        )
    mf.write(dataset_dir, manifest.replace(summary=summary, complete=all_present, timing=timing))
    shutil.rmtree(dataset_dir / TMP_DIR, ignore_errors=True)
    result = GenerateResult(str(dataset_dir), summary, run.seconds, run.images, run.gradient_evaluations, failures)
    if failures and not allow_failures:
        listed = "; ".join(f"{s}: {v[:10]}{' ...' if len(v) > 10 else ''}" for s, v in failures.items())
        if isinstance(config, OnePixelConfig):
            budget, option = f"{config.max_generations} generations", "--max-generations"
        else:
            budget, option = f"{config.max_iterations} iterations", "--max-iterations"
        raise AttackFailuresError(
            f"{sum(map(len, failures.values()))} images were not fooled within {budget} ({listed}): raise "
            f"{option}, or pass --allow-failures to accept them (listed in {mf.FILE})"
        )
    return result
