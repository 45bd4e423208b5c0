"""`cifar10-fgs evaluate retrain`: adversarial training of the target architecture, then both test sets for
both networks (paper section V)."""

from __future__ import annotations

import click

from cifar10_fgs.config import RetrainMode
from cifar10_fgs.evaluate import RetrainOptions, evaluate_retrain
from cifar10_fgs.formatting import fmt

from .._cli_utils import (
    Output,
    choice,
    dataset_argument,
    epochs_option,
    evaluate_cifar10_option,
    examples,
    output_options,
    overwrite_option,
    predict_batch_size_option,
    results_name_option,
    seed_option,
    table,
    unsafe_model_option,
)
from ._common import evaluate_options, written


@click.command(
    "retrain",
    epilog=examples(
        "cifar10-fgs evaluate retrain adv/dataset --out retrained.keras --target-model target.keras",
        "cifar10-fgs evaluate retrain adv/dataset --out mixed.keras --mode mixed --epochs 5",
    ),
)
@dataset_argument()
@evaluate_cifar10_option
@click.option(
    "--out",
    "retrained_model",
    type=click.Path(dir_okay=False),
    required=True,
    metavar="RETRAINED.keras",
    help="Where to save the retrained model (a .json with its provenance goes beside it).",
)
@click.option(
    "--mode",
    type=choice(RetrainMode),
    default=RetrainMode.ADVERSARIAL.value,
    show_default=True,
    help="adversarial: train on the adversarial train split (the paper); mixed: original + adversarial.",
)
@epochs_option("the target recipe's")
@click.option(
    "--target-model",
    "target_model",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="TARGET.keras",
    help="The original target network, to compare before and after.",
)
@seed_option("Training seed.")
@predict_batch_size_option
@results_name_option("retrain, or retrain_mixed")
@unsafe_model_option
@overwrite_option()
@output_options
def command(
    dataset_dir,
    cifar10,
    retrained_model,
    mode,
    epochs,
    target_model,
    seed,
    batch_size,
    name,
    unsafe_model,
    overwrite,
    output: Output,
):
    """Adversarial training of the target architecture, then both test sets for both networks (section V)."""

    common = evaluate_options(output, cifar10, batch_size, name, overwrite, unsafe_model)
    options = RetrainOptions(**common, mode=RetrainMode(mode), epochs=epochs, target_model=target_model, seed=seed)
    r = evaluate_retrain(dataset_dir, retrained_model, options)
    output.result(r, lambda: _retrain_text(r, dataset_dir))


def _retrain_text(r, dataset_dir) -> list[str]:
    rows = []
    if r.target_original is not None:
        rows.append(
            ("original target", fmt(r.target_original.accuracy), fmt(r.target_adversarial.accuracy), fmt(r.drop_before))
        )
    rows.append(
        ("retrained", fmt(r.retrained_original.accuracy), fmt(r.retrained_adversarial.accuracy), fmt(r.drop_after))
    )
    return [
        table(rows, ("network", "original acc", "adversarial acc", "drop")),
        f"{'trained' if r.trained else 'reused'} {r.model_path} ({r.mode}, {r.epochs} epochs, "
        f"{r.train_seconds / 60:.1f} min of training)",
        written(r, dataset_dir),
    ]
