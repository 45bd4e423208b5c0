"""`cifar10-fgs run`: the main job in one command (train, generate, validate, evaluate, card, upload)."""

from __future__ import annotations

import click

from cifar10_fgs.config import RetrainMode
from cifar10_fgs.generate.core import attack_config
from cifar10_fgs.pipeline import RunOptions, run_pipeline

from ._cli_utils import (
    Output,
    allow_failures_option,
    batch_size_option,
    choice,
    cifar10_option,
    examples,
    limit_option,
    no_source_model_option,
    out_dir_option,
    output_options,
    overwrite_option,
    private_option,
    source_model_option,
    table,
    train_limit_option,
)

BOTH = "both"  # --retrain-mode: every RetrainMode in turn


@click.command(
    "run",
    epilog=examples(
        "cifar10-fgs run --cifar10 cifar-10-python.tar.gz --out ws",
        "cifar10-fgs run --out ws --source-model source.keras --target-model target.keras --upload USER/NAME",
    ),
)
@cifar10_option()
@out_dir_option("Workspace: models/, dataset/ (the publishable folder) and run.json.", dest="workspace")
@source_model_option("Attack this source model instead of training one.")
@click.option(
    "--target-model",
    type=click.Path(dir_okay=False),
    default=None,
    help="Use this target model instead of training one.",
)
@click.option(
    "--source-epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Epochs for the source model (default: the recipe's).",
)
@click.option(
    "--target-epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Epochs for the target model (default: the recipe's).",
)
@click.option("--retrain-epochs", type=click.IntRange(min=1), default=None, help="Epochs for adversarial retraining.")
@click.option(
    "--retrain-mode",
    type=choice(RetrainMode, BOTH),
    default=BOTH,
    show_default=True,
    help="adversarial: retrain on the adversarial train split (the paper); mixed: original + adversarial; both: each in turn.",
)
@click.option(
    "--quick",
    is_flag=True,
    help="The quick trial, minutes on a CPU: short recipes and class-balanced limits (recipes.QuickTrial(); "
    "--limit, --train-limit, --*-epochs still win).",
)
@limit_option
@train_limit_option
@batch_size_option
@overwrite_option(
    "Replace what the workspace holds but this run did not make with the same settings: retrain over its models "
    "(one of yours, or of another recipe), replace its dataset and results. Without it the run stops first."
)
@click.option(
    "--upload", "repo_id", default=None, metavar="USER/NAME", help="Upload the dataset to this hub repo at the end."
)
@private_option("With --upload: ")
@no_source_model_option("With --upload: ")
@allow_failures_option("Go on")
@output_options
def command(
    cifar10,
    workspace,
    source_model,
    target_model,
    source_epochs,
    target_epochs,
    retrain_epochs,
    retrain_mode,
    quick,
    limit,
    train_limit,
    batch_size,
    overwrite,
    repo_id,
    private,
    no_source_model,
    allow_failures,
    output: Output,
):
    """Everything, resumable: rerun the same command after an interruption to continue."""
    options = RunOptions(  # refuses options that would be ignored (--private without --upload, ...)
        cifar10=cifar10,
        source_model=source_model,
        target_model=target_model,
        source_epochs=source_epochs,
        target_epochs=target_epochs,
        retrain_epochs=retrain_epochs,
        retrain_modes=tuple(RetrainMode) if retrain_mode == BOTH else (RetrainMode(retrain_mode),),
        limit=limit,
        train_limit=train_limit,
        quick=quick,
        attack=attack_config(batch_size),
        upload=repo_id,
        private=private,
        ship_source_model=not no_source_model,
        allow_failures=allow_failures,
    )
    result = run_pipeline(
        workspace,
        options,
        progress=output.progress,
        overwrite=overwrite,
        on_stage=lambda s: output.note(f"[{s.stage}] {s.status} in {s.seconds:.1f}s: {s.detail}"),
    )
    output.result(
        result,
        lambda: [
            table(
                [(s.stage, s.status, f"{s.seconds:.1f}", s.detail) for s in result.stages],
                ("stage", "status", "seconds", "detail"),
            ),
            f"dataset: {result.dataset_dir}  (load with datasets.load_dataset({result.dataset_dir!r}))",
        ],
    )
