"""`cifar10-fgs train`: train the source (EfficientNetB0) or target (simple deep CNN) model."""

from __future__ import annotations

import click

from cifar10_fgs.config import Arch

from ._cli_utils import (
    emit_json,
    epochs_option,
    json_option,
    overwrite_option,
    quiet_option,
    seed_option,
    setup,
    source_option,
    train_limit_option,
    verbose_option,
)


@click.command("train")
@click.option(
    "--arch",
    type=click.Choice([a.value for a in Arch]),
    required=True,
    help="source: EfficientNetB0; target: the paper's simple deep CNN.",
)
@source_option()
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    required=True,
    help="Where to save the model (.keras); a .json with its provenance goes beside it.",
)
@epochs_option()
@train_limit_option
@click.option(
    "--limit", "old_limit", type=click.IntRange(min=1), default=None, hidden=True
)  # the old name of --train-limit
@seed_option()
@click.option(
    "--init-from",
    type=click.Path(dir_okay=False),
    default=None,
    help="Continue the schedule from this model's weights (with --start-epoch), e.g. a 50-epoch source into the 65-epoch recipe.",
)
@click.option(
    "--start-epoch",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="With --init-from: the epoch of the schedule to continue at (the epochs that model was trained for); "
    "the recipe's last epoch trains nothing and saves that model as the recipe saves it.",
)
@click.option(
    "--imagenet",
    is_flag=True,
    help="Source only: fine-tune ImageNet weights at 224x224 (needs internet; meant for a GPU).",
)
@overwrite_option()
@json_option
@quiet_option
@verbose_option
def command(
    arch,
    source,
    out,
    epochs,
    train_limit,
    old_limit,
    seed,
    init_from,
    start_epoch,
    imagenet,
    overwrite,
    as_json,
    quiet,
    verbose,
):
    """Train a model; rerunning the same command after an interruption resumes from the last epoch."""
    setup(verbose)
    from cifar10_fgs.training.train import train_from_source

    result = train_from_source(
        source,
        out,
        arch=arch,
        epochs=epochs,
        limit=train_limit or old_limit,
        seed=seed,
        imagenet=imagenet,
        overwrite=overwrite,
        verbose=0 if (quiet or as_json) else 1,
        init_from=init_from,
        start_epoch=start_epoch,
    )
    if as_json:
        emit_json(result)
    else:
        click.echo(
            f"saved {result.model_path}: test accuracy {result.test_accuracy:.4f}, loss {result.test_loss:.4f}; "
            f"train split {result.train_accuracy:.4f} ({result.epochs} epochs; {result.seconds:.0f} s of training in this run)"
        )
