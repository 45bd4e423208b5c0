"""What ``run`` checks before any work: its options (``RunOptions``), and what it may replace in its workspace.

Options that would be ignored are refused when ``RunOptions`` is made (``--private`` without ``--upload``, ...).
Only what the run made itself with the same settings is replaced: ``run_pipeline`` checks the workspace with
these before it trains or attacks, so a model at ``models/<arch>.keras`` that ``train`` did not make from these
data, recipe and seed (a model of the user's, or one of another recipe such as the full one under ``--quick``),
or a ``run.json`` that is not run's record is kept, and the run stops with one line naming ``--overwrite``
(``run --overwrite`` replaces them) or another ``--out``. The pipeline checks the retrained models, the dataset
and the card at the same time with their stages' own checks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from cifar10_fgs.config import AttackConfig, RetrainMode, check_flags
from cifar10_fgs.data import DEFAULT_CIFAR10, Cifar10Split
from cifar10_fgs.errors import ConfigError, ExistingOutputError, ModelError
from cifar10_fgs.provenance import read_json
from cifar10_fgs.recipes import QUICK_RECIPES, RECIPES, Arch, QuickTrial, TrainRecipe
from cifar10_fgs.training.train import claim_model_out

RUN_FILE = "run.json"  # what each stage of a run did: its input key, output, seconds and headline numbers


@dataclass(frozen=True)
class RunOptions:
    cifar10: str = DEFAULT_CIFAR10
    source_model: str | None = None  # use this .keras instead of training EfficientNetB0
    target_model: str | None = None  # use this .keras instead of training the simple deep CNN
    source_epochs: int | None = None  # None: the recipe's (recipes.SOURCE_RECIPE)
    target_epochs: int | None = None
    retrain_epochs: int | None = None
    retrain_modes: tuple[RetrainMode, ...] = tuple(RetrainMode)  # retrained in turn: adversarial (the paper), mixed
    limit: int | None = None  # attack a seeded class-balanced subset of N images of each split (a quick run)
    train_limit: int | None = None  # train on the seeded class-balanced subset of N training images (a quick run)
    quick: bool = False  # the quick trial (recipes.QuickTrial()): its recipes, and its limits where none are given
    attack: AttackConfig | None = None  # None: generate.attack_config() (the batch size follows the device)
    upload: str | None = None  # hub repo id; None: nothing leaves the machine
    private: bool = False
    ship_source_model: bool = True  # with upload: ship the source model under source_model/ too
    seed: int = 0
    allow_failures: bool = False  # accept images not fooled within max_iterations (listed in generation.json)

    def __post_init__(self):
        """Options that would be ignored are refused, before any work (the CLI's flags named)."""
        check_flags(self)
        if self.upload is None:
            for flag, given in (("--private", self.private), ("--no-source-model", not self.ship_source_model)):
                if given:
                    raise ConfigError(f"{flag} applies to an upload: add --upload USER/NAME, or omit {flag}")
        for role, model, epochs in (
            ("source", self.source_model, self.source_epochs),
            ("target", self.target_model, self.target_epochs),
        ):
            if model is not None and epochs is not None:
                raise ConfigError(
                    f"--{role}-epochs trains the {role} model, but --{role}-model gives it: omit one of them"
                )
        if self.source_model is not None and self.target_model is not None and self.train_limit is not None:
            raise ConfigError(
                "--train-limit limits the training of the source and target models, but both are given: omit it"
            )


def quick_options(options: RunOptions) -> RunOptions:
    """``options`` with the quick trial's limits and retrain epochs (``recipes.QuickTrial()``) where none are given
    (a train limit only if a model is trained)."""
    if not options.quick:
        return options
    trains = options.source_model is None or options.target_model is None
    given = {k: getattr(options, k) for k in ("limit", "retrain_epochs", *(("train_limit",) if trains else ()))}
    preset = {k: getattr(QuickTrial(), k) for k in given}
    return dataclasses.replace(options, **{k: preset[k] if v is None else v for k, v in given.items()})


def recipe_of(arch: Arch, epochs: int | None, quick: bool = False) -> TrainRecipe:
    """The recipe ``run`` trains ``arch`` with (``epochs``: the recipe's if None; ``quick``: the quick trial's)."""
    return (QUICK_RECIPES if quick else RECIPES)[arch].with_epochs(epochs)


def check_given_models(options: RunOptions) -> None:
    """Before any work: a ``--source-model`` or ``--target-model`` that is not a file (else found only at its stage)."""
    for flag, given in (("--source-model", options.source_model), ("--target-model", options.target_model)):
        if given is not None and not Path(given).is_file():
            raise ModelError(f"{flag} {given} is not a file: pass a trained .keras model, or omit {flag} to train one")


def read_record(path: Path, overwrite: bool) -> dict:
    """``run.json`` as an earlier run left it ({"stages": {}} if none); a file of another kind is kept unless overwrite."""
    if not path.exists():
        return {"stages": {}}
    try:
        record = read_json(path)
    except (OSError, ValueError):
        record = None
    if isinstance(record, dict) and isinstance(record.get("stages"), dict):
        return record
    if overwrite:
        return {"stages": {}}
    raise ExistingOutputError(path, "is not the record `cifar10-fgs run` keeps of a workspace")


def claim_trained_model(
    path: Path, train: Cifar10Split, arch: Arch, recipe: TrainRecipe, seed: int, overwrite: bool
) -> bool:
    """True if ``path`` holds this training (reuse it); False if ``run`` may train there (nothing in the way, or
    ``overwrite``); ``ExistingOutputError`` naming ``--<arch>-model`` if it holds a model made otherwise."""
    try:
        return claim_model_out(path, train, arch=arch, recipe=recipe, seed=seed, overwrite=overwrite)
    except ExistingOutputError as e:
        if e.path != str(path):  # its provenance JSON or a checkpoint in the way
            raise
        raise ExistingOutputError(
            path,
            "was not trained by `run` with these data, recipe and seed",
            f"--{arch.value}-model {path} to use it as it is, or choose another --out",
        ) from None
