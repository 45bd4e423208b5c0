"""``run``: the main job in one call, every stage skipped when its output exists and matches.

Workspace ``OUT/``::

    models/source.keras, target.keras, retrained.keras, retrained_mixed.keras   (+ .json provenance beside each)
    dataset/        the publishable folder: data/*.arrow, generation.json, README.md, figures/, results/
    run.json        what each stage did: its input key, output, seconds and headline numbers

Stages: load CIFAR-10 -> train source -> train target -> generate -> validate -> evaluate transfer ->
evaluate retrain (adversarial, then mixed) -> evaluate gaussian (every filter variant) -> paper comparison
(results/paper.md) -> card -> (upload). Training and generation resume from their
own checkpoints and shards, so a run killed anywhere continues where it stopped.

``quick`` (``run --quick``) is the quick trial: the models train with ``recipes.QUICK_RECIPES`` and the limits
not given come from ``recipes.QuickTrial()`` (class-balanced subsets, so every class is in every stage).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cifar10_fgs.config import RetrainMode, parse_choices
from cifar10_fgs.data import SPLITS, Cifar10Split, load_cifar10
from cifar10_fgs.dataset import manifest as mf
from cifar10_fgs.dataset.shards import CARD, RESULTS_DIR
from cifar10_fgs.errors import ExistingOutputError, ValidationError
from cifar10_fgs.evaluate import (
    ALL_VARIANTS,
    GaussianOptions,
    RetrainOptions,
    TransferOptions,
    evaluate_gaussian,
    evaluate_retrain,
    evaluate_transfer,
    write_paper_comparison,
)
from cifar10_fgs.evaluate.retrain import claim_retrained_model
from cifar10_fgs.generate.core import GenerateOptions, claim_dataset_dir, generate_dataset
from cifar10_fgs.provenance import sha256_file, write_json
from cifar10_fgs.publish.card import claim_readme, write_card
from cifar10_fgs.publish.upload import upload_dataset
from cifar10_fgs.recipes import Arch, TrainRecipe
from cifar10_fgs.run_setup import (
    RUN_FILE,
    RunOptions,
    check_given_models,
    claim_trained_model,
    quick_options,
    read_record,
    recipe_of,
)
from cifar10_fgs.training.train import train_model
from cifar10_fgs.validate import validate_dataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageResult:
    stage: str
    status: str  # "done" or "skipped"
    seconds: float
    detail: str


@dataclass(frozen=True)
class RunResult:  # its field names are the keys of `run --json`
    out_dir: str  # the workspace
    dataset_dir: str
    stages: tuple[StageResult, ...]
    summary: dict


def run_pipeline(
    workspace: str | Path,
    options: RunOptions = RunOptions(),
    *,
    progress: bool = False,
    overwrite: bool = False,
    on_stage: Callable[[StageResult], None] | None = None,
) -> RunResult:
    """Run every stage into the folder ``workspace`` (see the module docstring).

    Nothing in ``workspace`` that this run did not make with the same settings is replaced: a model trained with
    another recipe, data or seed (or not by ``train`` at all), a dataset generated with other settings, results
    or a card made otherwise. The run stops with a one-line ``ExistingOutputError`` before it trains or attacks,
    unless ``overwrite`` (``run --overwrite``), which every stage is given: the one way to retrain over the
    workspace's models and replace its dataset and results.
    """
    modes = parse_choices(RetrainMode, options.retrain_modes, "retrain mode")  # a bad mode fails before any work
    options = quick_options(options)
    recipe_of(Arch.SOURCE, options.source_epochs, options.quick)  # and so does a bad --source-epochs or --target-epochs
    recipe_of(Arch.TARGET, options.target_epochs, options.quick)
    check_given_models(options)
    try:
        run = _Run(Path(workspace), options, progress, on_stage, overwrite)
        data = run.load()
        run.check_outputs(data, modes)  # before any training: what the run would replace
        source_model = run.model(Arch.SOURCE, options.source_model, data)
        target_model = run.model(Arch.TARGET, options.target_model, data)
        manifest_sha, fooled = run.generate(source_model, data)
        run.validate(source_model, manifest_sha)
        run.evaluations(source_model, target_model, manifest_sha, modes)
        run.paper(manifest_sha)
        run.card_and_upload(source_model, manifest_sha)
    except ExistingOutputError as e:
        if "--name" not in e.alternative:
            raise
        raise ExistingOutputError(e.path, e.why, "choose another --out") from None  # run has no --name
    return RunResult(str(run.workspace), str(run.dataset_dir), tuple(run.stages), {"fooled_percent": fooled})


class _Run:
    """The workspace of one ``run_pipeline`` call: ``run.json`` and the stages done or skipped so far."""

    def __init__(self, workspace: Path, options: RunOptions, progress: bool, on_stage, overwrite: bool):
        self.workspace, self.options, self.progress, self.on_stage = workspace, options, progress, on_stage
        self.overwrite = overwrite  # given to every stage: replace what was made with other settings
        self.models = workspace / "models"
        self.dataset_dir = workspace / "dataset"
        self.record_path = workspace / RUN_FILE
        self.record = read_record(self.record_path, overwrite)
        workspace.mkdir(parents=True, exist_ok=True)
        self.stages: list[StageResult] = []
        self.reuse: dict[Arch, bool] = {}  # check_outputs: the workspace already holds this model

    def finish(self, stage: str, status: str, t0: float, detail: str, key=None, numbers=None) -> None:
        res = StageResult(stage, status, round(time.time() - t0, 1), detail)
        self.stages.append(res)
        if status == "done":
            self.record["stages"][stage] = {
                "key": key,
                "seconds": res.seconds,
                "detail": detail,
                "numbers": numbers or {},
            }
            write_json(self.record_path, self.record)
        if self.on_stage:
            self.on_stage(res)
        log.info("%s: %s (%.1fs) %s", stage, status, res.seconds, detail)

    def unchanged(self, stage: str, key) -> bool:
        return self.record["stages"].get(stage, {}).get("key") == key

    def load(self) -> dict:
        """1. the data, loaded once and handed to every stage that needs it."""
        t0, cifar10 = time.time(), self.options.cifar10
        data = {s: load_cifar10(cifar10, s) for s in SPLITS}
        self.finish(
            "load",
            "done",
            t0,
            f"{len(data['train'])} train + {len(data['test'])} test images from {cifar10}",
            key={s: d.fingerprint() for s, d in data.items()},
        )
        return data

    def check_outputs(self, data: dict, modes: tuple[RetrainMode, ...]) -> None:
        """Before any training: refuse (unless overwrite) a model, dataset or card this run would replace but did
        not make with the same settings. What needs the new dataset is checked again by its stage."""
        o = self.options
        for arch, given in ((Arch.SOURCE, o.source_model), (Arch.TARGET, o.target_model)):
            if given is None:
                path, train, recipe = self._training(arch, data)
                self.reuse[arch] = claim_trained_model(path, train, arch, recipe, o.seed, self.overwrite)
        for mode in modes:
            claim_retrained_model(
                self._retrained_path(mode), recipe_of(Arch.TARGET, o.retrain_epochs), o.seed, self.overwrite
            )
        source: str | Path | None = o.source_model  # None: a model still to be trained, which replaces any dataset
        if source is None and self.reuse[Arch.SOURCE]:
            source = self._training(Arch.SOURCE, data)[0]
        claim_dataset_dir(self.dataset_dir, source, self._generate_options(), data, overwrite=self.overwrite)
        claim_readme(self.dataset_dir / CARD, self.overwrite)

    def _generate_options(self) -> GenerateOptions:
        o = self.options  # the run's seed seeds the --limit subset (there is none without a limit)
        return GenerateOptions(
            cifar10=o.cifar10, attack=o.attack, limit=o.limit, seed=o.seed if o.limit is not None else 0
        )

    def _training(self, arch: Arch, data: dict) -> tuple[Path, Cifar10Split, TrainRecipe]:
        """(where ``arch`` is trained in the workspace, its training images, its recipe)."""
        o = self.options
        epochs = o.source_epochs if arch is Arch.SOURCE else o.target_epochs
        return (
            self.models / f"{arch.value}.keras",
            data["train"].balanced(o.train_limit, seed=o.seed),
            recipe_of(arch, epochs, o.quick),
        )

    def model(self, arch: Arch, given: str | None, data: dict) -> Path:
        """2-3. a model: the one given, the one already trained with these data and recipe, or a new one."""

        t0, name, o = time.time(), f"train_{arch.value}", self.options
        if given:
            self.finish(name, "skipped", t0, f"given: {given}")
            return Path(given)
        path, train, recipe = self._training(arch, data)
        if self.reuse[arch]:
            self.finish(name, "skipped", t0, f"{path} was trained with these data, recipe and seed")
            return path
        res = train_model(
            train,
            data["test"],
            path,
            arch=arch,
            recipe=recipe,
            seed=o.seed,
            overwrite=self.overwrite,
            progress=self.progress,
        )
        self.finish(
            name,
            "done",
            t0,
            f"test accuracy {res.test_accuracy:.4f}",
            key=res.sha256,
            numbers={"test_accuracy": res.test_accuracy, "test_loss": res.test_loss},
        )
        return path

    def generate(self, source_model: Path, data: dict) -> tuple[str, dict]:
        """4. generate (resumes from its shards; a finished folder is a no-op): (manifest sha256, fooled %)."""

        t0, o = time.time(), self.options
        gen = generate_dataset(
            self.dataset_dir,
            source_model,
            self._generate_options(),
            progress=self.progress,
            data=data,
            overwrite=self.overwrite,
            allow_failures=o.allow_failures,
        )
        manifest_sha = sha256_file(mf.path(self.dataset_dir))
        fooled = {s: v.fooled_percent for s, v in gen.summary.items()}
        self.finish(
            "generate",
            "done" if gen.images_attacked else "skipped",
            t0,
            f"{gen.images_attacked} images attacked; fooled % {fooled}",
            key=manifest_sha,
            numbers={
                s: {k: getattr(v, k) for k in ("fooled_percent", "mean_iterations", "already_misclassified")}
                for s, v in gen.summary.items()
            },
        )
        return manifest_sha, fooled

    def validate(self, source_model: Path, manifest_sha: str) -> None:
        """5. validate (once per manifest)."""
        t0 = time.time()
        if self.unchanged("validate", manifest_sha):
            self.finish("validate", "skipped", t0, "already validated")
            return

        report = validate_dataset(self.dataset_dir, source_model, cifar10=self.options.cifar10, progress=self.progress)
        if not report.ok:
            raise ValidationError(
                f"{self.dataset_dir} failed validation: run `cifar10-fgs validate {self.dataset_dir} --source-model "
                f"{source_model} --cifar10 {self.options.cifar10}` for the list"
            )
        self.finish("validate", "done", t0, "every stored image re-decoded and misclassified", key=manifest_sha)

    def evaluations(
        self, source_model: Path, target_model: Path, manifest_sha: str, modes: tuple[RetrainMode, ...]
    ) -> None:
        """6-8. transfer, retrain (each mode), gaussian: each skipped when its inputs are unchanged and its output exists."""
        o, d, results = self.options, self.dataset_dir, self.dataset_dir / RESULTS_DIR
        target_sha = sha256_file(target_model)
        t0 = time.time()
        key: list[object] = [manifest_sha, target_sha, sha256_file(source_model)]  # a stage's key: JSON
        if self.unchanged("transfer", key) and (results / "transfer.json").exists():
            self.finish("transfer", "skipped", t0, "results exist")
        else:
            tr = evaluate_transfer(
                d,
                target_model,
                TransferOptions(
                    cifar10=o.cifar10,
                    source_model=source_model,
                    seed=o.seed,
                    overwrite=self.overwrite,
                    progress=self.progress,
                ),
            )
            self.finish(
                "transfer",
                "done",
                t0,
                f"target accuracy {tr.original.accuracy:.4f} -> {tr.adversarial.accuracy:.4f}",
                key=key,
                numbers={"original": tr.original.accuracy, "adversarial": tr.adversarial.accuracy},
            )
        retrained = [self.retrain(mode, target_model, target_sha, manifest_sha) for mode in modes]
        t0 = time.time()
        key = [manifest_sha, target_sha, *(sha256_file(p) for p in retrained), [v.value for v in ALL_VARIANTS]]
        if self.unchanged("gaussian", key) and (results / "gaussian.json").exists():
            self.finish("gaussian", "skipped", t0, "results exist")
        else:
            evaluate_gaussian(
                d,
                [target_model, *retrained],
                GaussianOptions(
                    cifar10=o.cifar10, variants=ALL_VARIANTS, overwrite=self.overwrite, progress=self.progress
                ),
            )
            self.finish("gaussian", "done", t0, f"std sweep written ({len(ALL_VARIANTS)} filter variants)", key=key)

    def retrain(self, mode: RetrainMode, target_model: Path, target_sha: str, manifest_sha: str) -> Path:
        """7. retrain the target architecture in ``mode`` (stage ``retrain`` or ``retrain_<mode>``): the model's path."""

        t0, o = time.time(), self.options
        adversarial = mode is RetrainMode.ADVERSARIAL
        stage = "retrain" if adversarial else f"retrain_{mode.value}"
        path = self._retrained_path(mode)
        key = [manifest_sha, target_sha, mode.value, o.retrain_epochs, o.seed]
        if (
            self.unchanged(stage, key)
            and path.is_file()
            and (self.dataset_dir / RESULTS_DIR / f"{stage}.json").exists()
        ):
            self.finish(stage, "skipped", t0, f"{path} exists")
            return path
        rt = evaluate_retrain(
            self.dataset_dir,
            path,
            RetrainOptions(
                cifar10=o.cifar10,
                mode=mode,
                epochs=o.retrain_epochs,
                target_model=target_model,
                seed=o.seed,
                name=stage,
                overwrite=self.overwrite,
                progress=self.progress,
            ),
        )
        self.finish(
            stage,
            "done",
            t0,
            f"{mode.value}: retrained accuracy {rt.retrained_original.accuracy:.4f} / "
            f"{rt.retrained_adversarial.accuracy:.4f}, {rt.train_seconds / 60:.1f} min",
            key=key,
            numbers={
                "original": rt.retrained_original.accuracy,
                "adversarial": rt.retrained_adversarial.accuracy,
                "drop_after": rt.drop_after,
                "train_seconds": rt.train_seconds,
            },
        )
        return path

    def _retrained_path(self, mode: RetrainMode) -> Path:
        return self.models / ("retrained.keras" if mode is RetrainMode.ADVERSARIAL else f"retrained_{mode.value}.keras")

    def paper(self, manifest_sha: str) -> None:
        """9. the paper beside our numbers (cheap: always rewritten from the results files)."""

        t0 = time.time()
        paper = write_paper_comparison(self.dataset_dir, overwrite=self.overwrite)
        held = sum(e.reproduced is True for e in paper.effects)
        self.finish(
            "paper",
            "done",
            t0,
            f"{paper.markdown_path}: {held} of {len(paper.effects)} effects reproduced",
            key=manifest_sha,
        )

    def card_and_upload(self, source_model: Path, manifest_sha: str) -> None:
        """10. the card (cheap and deterministic: always rewritten, so it shows the latest results); 11. upload."""

        t0, o = time.time(), self.options
        write_card(self.dataset_dir, o.upload, cifar10=o.cifar10, overwrite=self.overwrite)
        self.finish("card", "done", t0, f"{self.dataset_dir / CARD}", key=manifest_sha)
        if o.upload:
            t0 = time.time()
            up = upload_dataset(
                self.dataset_dir,
                o.upload,
                private=o.private,
                source_model=source_model if o.ship_source_model else None,
                ship_source_model=o.ship_source_model,
                overwrite=self.overwrite,
            )
            self.finish(
                "upload",
                "done",
                t0,
                f"{up.url}: {len(up.uploaded)} files sent, {len(up.unchanged)} unchanged",
                key=manifest_sha,
            )
