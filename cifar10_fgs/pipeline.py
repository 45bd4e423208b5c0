"""``run``: the main job in one call, every stage skipped when its output exists and matches.

Workspace ``OUT/``::

    models/source.keras, target.keras, retrained.keras, retrained_mixed.keras   (+ .json provenance beside each)
    dataset/        the publishable folder: data/*.arrow, generation.json, README.md, figures/, results/
    run.json        what each stage did: its input key, output, seconds and headline numbers

Stages: load CIFAR-10 -> train source -> train target -> generate -> validate -> evaluate transfer ->
evaluate retrain (adversarial, then mixed) -> evaluate gaussian (every filter variant) -> paper comparison
(results/paper.md) -> card -> (upload). Training and generation resume from their
own checkpoints and shards, so a run killed anywhere continues where it stopped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .attack import AttackConfig
from .config import Arch
from .data import DEFAULT_SOURCE, SPLITS, load_cifar10
from .errors import ConfigError, ValidationError
from .provenance import read_json, sha256_file, write_json

log = logging.getLogger(__name__)

RUN_FILE = "run.json"


@dataclass(frozen=True)
class RunOptions:
    source: str = DEFAULT_SOURCE
    source_model: str | None = None  # use this .keras instead of training EfficientNetB0
    target_model: str | None = None  # use this .keras instead of training the simple deep CNN
    source_epochs: int | None = None  # None: the recipe's (config.SOURCE_RECIPE)
    target_epochs: int | None = None
    retrain_epochs: int | None = None
    retrain_mode: str = "both"  # adversarial (the paper), mixed (original + adversarial) or both
    limit: int | None = None  # attack only the first N images of each split (a quick run)
    train_limit: int | None = None  # train on a seeded random subset of N training images (a quick run)
    attack: AttackConfig = field(default_factory=AttackConfig)
    upload: str | None = None  # hub repo id; None: nothing leaves the machine
    private: bool = False
    upload_model: bool = True  # with upload: ship the source model under source_model/ too
    seed: int = 0
    allow_failures: bool = False  # accept images not fooled within max_iterations (listed in generation.json)


@dataclass(frozen=True)
class StageResult:
    stage: str
    status: str  # "done" or "skipped"
    seconds: float
    detail: str


@dataclass(frozen=True)
class RunResult:
    out_dir: str
    dataset_dir: str
    stages: tuple[StageResult, ...]
    summary: dict


def run_pipeline(out: str | Path, options: RunOptions = RunOptions(), *, progress: bool = False,
                 overwrite: bool = False, on_stage: Callable[[StageResult], None] | None = None) -> RunResult:
    """Run every stage into the workspace ``out`` (see the module docstring).

    ``overwrite`` lets a dataset generated with other settings (attack, limit, model) be replaced.
    """
    from .evaluate import ALL_VARIANTS, evaluate_gaussian, evaluate_transfer, write_paper_comparison
    from .generate import GenerateOptions, generate_dataset
    from .training import train_model, trained_model_matches

    _retrain_modes(options.retrain_mode)  # a bad mode fails before any work
    out = Path(out)
    models = out / "models"
    dataset = out / "dataset"
    out.mkdir(parents=True, exist_ok=True)
    record_path = out / RUN_FILE
    record = read_json(record_path) if record_path.exists() else {}
    record.setdefault("stages", {})
    stages: list[StageResult] = []

    def finish(stage: str, status: str, t0: float, detail: str, key=None, numbers=None):
        res = StageResult(stage, status, round(time.time() - t0, 1), detail)
        stages.append(res)
        if status == "done":
            record["stages"][stage] = {"key": key, "seconds": res.seconds, "detail": detail, "numbers": numbers or {}}
            write_json(record_path, record)
        if on_stage:
            on_stage(res)
        log.info("%s: %s (%.1fs) %s", stage, status, res.seconds, detail)

    def unchanged(stage: str, key) -> bool:
        return record["stages"].get(stage, {}).get("key") == key

    # 1. data, loaded once and handed to every stage that needs it
    t0 = time.time()
    data = {s: load_cifar10(options.source, s) for s in SPLITS}
    fingerprints = {s: d.fingerprint() for s, d in data.items()}
    finish("load", "done", t0, f"{len(data['train'])} train + {len(data['test'])} test images from {options.source}",
           key=fingerprints)

    # 2-3. models
    def model_stage(arch: Arch, given: str | None, epochs: int | None) -> Path:
        t0 = time.time()
        name = f"train_{arch.value}"
        if given:
            path = Path(given)
            finish(name, "skipped", t0, f"given: {path}")
            return path
        path = models / f"{arch.value}.keras"
        train = _subset(data["train"], options.train_limit, options.seed)
        recipe = _recipe(arch, epochs)
        if trained_model_matches(path, train, recipe, options.seed):
            finish(name, "skipped", t0, f"{path} was trained with these data, recipe and seed")
            return path
        res = train_model(train, data["test"], path, arch=arch, recipe=recipe, seed=options.seed,
                          overwrite=True, verbose=1 if progress else 0)
        finish(name, "done", t0, f"test accuracy {res.test_accuracy:.4f}", key=res.sha256,
               numbers={"test_accuracy": res.test_accuracy, "test_loss": res.test_loss})
        return path

    source_model = model_stage(Arch.SOURCE, options.source_model, options.source_epochs)
    target_model = model_stage(Arch.TARGET, options.target_model, options.target_epochs)

    # 4. generate (resumes from its shards; a finished folder is a no-op)
    t0 = time.time()
    gen = generate_dataset(source_model, options.source, dataset, options.attack, GenerateOptions(limit=options.limit),
                           progress=progress, data=data, overwrite=overwrite, allow_failures=options.allow_failures)
    manifest_sha = sha256_file(dataset / "generation.json")
    fooled = {s: v.get("fooled_percent") for s, v in gen.summary.items()}
    finish("generate", "done" if gen.images_attacked else "skipped", t0,
           f"{gen.images_attacked} images attacked; fooled % {fooled}", key=manifest_sha,
           numbers={s: {k: v.get(k) for k in ("fooled_percent", "mean_iterations", "already_misclassified")}
                    for s, v in gen.summary.items()})

    # 5. validate
    t0 = time.time()
    if unchanged("validate", manifest_sha):
        finish("validate", "skipped", t0, "already validated")
    else:
        from .validate import validate_dataset

        report = validate_dataset(dataset, source_model, options.source, progress=progress)
        if not report.ok:
            raise ValidationError(f"{dataset} failed validation: run `cifar10-fgs validate {dataset}` for the list")
        finish("validate", "done", t0, "every stored image re-decoded and misclassified", key=manifest_sha)

    # 6-8. evaluations
    target_sha = sha256_file(target_model)
    t0 = time.time()
    key = [manifest_sha, target_sha, sha256_file(source_model)]
    if unchanged("transfer", key) and (dataset / "results" / "transfer.json").exists():
        finish("transfer", "skipped", t0, "results exist")
    else:
        tr = evaluate_transfer(target_model, dataset, options.source, source_model_path=source_model,
                               seed=options.seed, overwrite=True, progress=progress)
        finish("transfer", "done", t0,
               f"target accuracy {tr.original.accuracy:.4f} -> {tr.adversarial.accuracy:.4f}", key=key,
               numbers={"original": tr.original.accuracy, "adversarial": tr.adversarial.accuracy})

    retrained = [_retrain_stage(mode, dataset, models, target_model, target_sha, manifest_sha, options, progress,
                                unchanged, finish) for mode in _retrain_modes(options.retrain_mode)]

    t0 = time.time()
    key = [manifest_sha, target_sha, *(sha256_file(p) for p in retrained), [v.value for v in ALL_VARIANTS]]
    if unchanged("gaussian", key) and (dataset / "results" / "gaussian.json").exists():
        finish("gaussian", "skipped", t0, "results exist")
    else:
        evaluate_gaussian([target_model, *retrained], dataset, options.source, variants=ALL_VARIANTS, overwrite=True,
                          progress=progress)
        finish("gaussian", "done", t0, f"std sweep written ({len(ALL_VARIANTS)} filter variants)", key=key)

    # 9. the paper beside our numbers (cheap: always rewritten from the results files)
    t0 = time.time()
    paper = write_paper_comparison(dataset)
    held = sum(e.reproduced is True for e in paper.effects)
    finish("paper", "done", t0, f"{paper.markdown_path}: {held} of {len(paper.effects)} effects reproduced",
           key=manifest_sha)

    # 10. card (cheap and deterministic: always rewritten so it shows the latest results)
    t0 = time.time()
    from .card import write_card

    write_card(dataset, options.upload, source=options.source)
    finish("card", "done", t0, f"{dataset / 'README.md'}", key=manifest_sha)

    # 11. upload
    if options.upload:
        from .upload import upload_dataset

        t0 = time.time()
        up = upload_dataset(dataset, options.upload, private=options.private,
                            include_model=source_model if options.upload_model else None,
                            ship_model=options.upload_model)
        finish("upload", "done", t0, f"{up.url}: {len(up.uploaded)} files sent, {len(up.unchanged)} unchanged",
               key=manifest_sha)

    return RunResult(str(out), str(dataset), tuple(stages), {"fooled_percent": fooled})


def _retrain_modes(mode: str) -> tuple[str, ...]:
    from .evaluate import RETRAIN_MODES

    if mode == "both":
        return RETRAIN_MODES
    if mode not in RETRAIN_MODES:
        raise ConfigError(f"retrain mode {mode!r} is unknown: expected adversarial, mixed or both")
    return (mode,)


def _retrain_stage(mode: str, dataset: Path, models: Path, target_model: Path, target_sha: str, manifest_sha: str,
                   options: RunOptions, progress: bool, unchanged, finish) -> Path:
    """Retrain the target architecture in ``mode`` (stage ``retrain`` or ``retrain_<mode>``): the model's path."""
    from . import evaluate

    t0 = time.time()
    stage = "retrain" if mode == "adversarial" else f"retrain_{mode}"
    path = models / ("retrained.keras" if mode == "adversarial" else f"retrained_{mode}.keras")
    key = [manifest_sha, target_sha, mode, options.retrain_epochs, options.seed]
    if unchanged(stage, key) and path.is_file() and (dataset / "results" / f"{stage}.json").exists():
        finish(stage, "skipped", t0, f"{path} exists")
        return path
    rt = evaluate.evaluate_retrain(dataset, path, options.source, mode=mode, epochs=options.retrain_epochs,
                                   target_model_path=target_model, seed=options.seed, name=stage, overwrite=True,
                                   progress=progress)
    finish(stage, "done", t0,
           f"{mode}: retrained accuracy {rt.retrained_original.accuracy:.4f} / {rt.retrained_adversarial.accuracy:.4f}"
           f", {rt.train_seconds / 60:.1f} min", key=key,
           numbers={"original": rt.retrained_original.accuracy, "adversarial": rt.retrained_adversarial.accuracy,
                    "drop_after": rt.drop_after, "train_seconds": rt.train_seconds})
    return path


def _subset(split, limit: int | None, seed: int):
    import numpy as np

    from .data import Cifar10Split

    if limit is None or limit >= len(split):
        return split
    pick = np.sort(np.random.default_rng(seed).choice(len(split), limit, replace=False))
    return Cifar10Split(split.images[pick], split.labels[pick], split.source, split.split)


def _recipe(arch: Arch, epochs: int | None):
    from .config import RECIPES

    return RECIPES[arch].with_epochs(epochs)
