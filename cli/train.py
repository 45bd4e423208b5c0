"""`cifar10-fgs train`: train the source (EfficientNetB0) or target (simple deep CNN) model."""

from __future__ import annotations

import click

from cifar10_fgs.recipes import Arch
from cifar10_fgs.training.train import train_from_cifar10

from ._cli_utils import (
    Output,
    choice,
    cifar10_option,
    epochs_option,
    examples,
    output_options,
    overwrite_option,
    seed_option,
    train_limit_option,
)


@click.command(
    "train",
    epilog=examples(
        "cifar10-fgs train --arch source --cifar10 cifar-10-python.tar.gz --out models/source.keras",
        "cifar10-fgs train --arch target --out models/target.keras --epochs 1 --train-limit 1000",
    ),
)
@click.option(
    "--arch",
    type=choice(Arch),
    required=True,
    help="source: EfficientNetB0; target: the paper's simple deep CNN.",
)
@cifar10_option()
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    required=True,
    help="Where to save the model (.keras); a .json with its provenance goes beside it.",
)
@epochs_option()
@train_limit_option
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
@output_options
def command(arch, cifar10, out, epochs, train_limit, seed, init_from, start_epoch, imagenet, overwrite, output: Output):
    """Train a model; rerunning the same command after an interruption resumes from the last epoch."""

    result = train_from_cifar10(
        cifar10,
        out,
        arch=arch,
        epochs=epochs,
        train_limit=train_limit,
        seed=seed,
        imagenet=imagenet,
        overwrite=overwrite,
        progress=output.progress,
        init_from=init_from,
        start_epoch=start_epoch,
    )
    output.result(
        result,
        lambda: (
            f"saved {result.model_path}: test accuracy {result.test_accuracy:.4f}, loss {result.test_loss:.4f}; "
            f"train split {result.train_accuracy:.4f} ({result.epochs} epochs; {result.seconds:.0f} s of training in this run)"
        ),
    )
