"""``generate``'s options: ``GenerateOptions`` and its checks, which refuse a setting the chosen method would ignore."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cifar10_fgs.config import AttackConfig, Method, OnePixelConfig, SourceCheck, check_flags
from cifar10_fgs.data import DEFAULT_CIFAR10, SPLITS, check_split
from cifar10_fgs.dataset.shards import ROWS_PER_SHARD
from cifar10_fgs.errors import ConfigError
from cifar10_fgs.models.convention import Declared
from cifar10_fgs.models.inference import default_batch_size


@dataclass(frozen=True)
class GenerateOptions:
    cifar10: str | Path = DEFAULT_CIFAR10  # the CIFAR-10 input attacked (any load_cifar10 input)
    attack: AttackConfig | None = None  # None: attack_config() (the attack defaults, the device's batch size)
    splits: tuple[str, ...] = SPLITS
    limit: int | None = None  # a class-balanced subset of N rows of each split (data.split.balanced_rows)
    seed: int = 0  # seeds that subset (only with limit; the attack's own seed is AttackConfig.seed)
    rows_per_shard: int = ROWS_PER_SHARD
    with_originals: bool = False
    num_workers: int = 1  # machines sharing the work (CLI: --num-workers)
    worker_index: int = 0  # this machine's part: shards k with k % num_workers == worker_index (CLI: --worker-index)
    method: Method = Method.FGS
    source_check: SourceCheck | None = SourceCheck()  # None: attack the source even if near chance (--no-source-check)
    onepixel: OnePixelConfig = OnePixelConfig()  # method onepixel's settings (recorded in generation.json)
    # How the source model takes its pixels (models.convention; CLI: --input-*, --model-output), with the sidecar
    # beside the model; None and no sidecar: this project's convention (NHWC, [0, 255], logits)
    model_input: Declared | None = None


def parse_splits(split: str) -> tuple[str, ...]:
    if split == "all":
        return SPLITS
    return (check_split(split),)


def check_options(opts: GenerateOptions) -> None:
    check_flags(opts)
    for s in opts.splits:
        check_split(s)
    if opts.limit is not None and opts.limit < 1:
        raise ConfigError(f"--limit {opts.limit} is invalid: expected a positive number of images")
    if opts.rows_per_shard < 1:
        raise ConfigError(f"rows per shard {opts.rows_per_shard} is invalid: expected >= 1")
    if opts.method not in set(Method):
        raise ConfigError(f"unknown method {opts.method!r}: expected one of {', '.join(m.value for m in Method)}")
    if opts.method == Method.ONEPIXEL and opts.limit is None:
        raise ConfigError("--method onepixel takes seconds per image: pass --limit N (e.g. --limit 100)")
    if opts.method != Method.ONEPIXEL and opts.onepixel != OnePixelConfig():
        raise ConfigError("one-pixel settings (--population, --max-generations) apply to --method onepixel: omit them")
    if opts.method == Method.ONEPIXEL and opts.attack not in (None, AttackConfig(), attack_config()):
        raise ConfigError(  # only the defaults pass: the one-pixel baseline would ignore the FGS attack's settings
            "the FGS attack's settings (step, max iterations, max L-inf, escalation, batch size, ...) do not apply "
            "to --method onepixel: omit them (its settings: GenerateOptions.onepixel, --population, --max-generations)"
        )
    if opts.limit is None and opts.seed != 0:
        raise ConfigError(
            f"seed {opts.seed} seeds the --limit subset, and there is no limit: pass a limit, or seed the attack's "
            "random starts with AttackConfig(seed=...)"
        )
    if opts.num_workers < 1 or not (0 <= opts.worker_index < opts.num_workers):
        raise ConfigError(
            f"--worker-index {opts.worker_index} with --num-workers {opts.num_workers} is invalid: "
            "expected 0 <= worker-index < num-workers"
        )


def attack_config(batch_size: int | None = None, **settings) -> AttackConfig:
    """An ``AttackConfig`` whose batch size, unless given, follows the device (``inference.default_batch_size``)."""

    return AttackConfig(batch_size=batch_size or default_batch_size(), **settings)
