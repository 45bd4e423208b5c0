"""`cifar10-fgs card`: write the dataset card (README.md) and its figures into a dataset folder."""

from __future__ import annotations

import click

from cifar10_fgs.config import CARD_EXAMPLES, CARD_MAX_EXAMPLES
from cifar10_fgs.publish.card import write_card

from ._cli_utils import Output, cifar10_option, dataset_argument, examples, output_options, overwrite_option, setup


@click.command(
    "card", epilog=examples("cifar10-fgs card adv/dataset --repo-id USER/NAME --cifar10 cifar-10-python.tar.gz")
)
@dataset_argument()
@click.option(
    "--repo-id",
    default=None,
    metavar="USER/NAME",
    help="Hub repo the card's loading examples name (default: a local path).",
)
@cifar10_option(
    "The CIFAR-10 DIR was generated from: only to draw original images when DIR has no original_image column."
)
@click.option(
    "--examples",
    type=click.IntRange(min=1, max=CARD_MAX_EXAMPLES),
    default=CARD_EXAMPLES,
    show_default=True,
    help="Images in the example figures.",
)
@overwrite_option("Replace a README.md that was not written by `cifar10-fgs card`.")
@output_options(tensorflow=False)
def command(dataset_dir, repo_id, cifar10, examples, overwrite, output: Output):
    """Write DIR/README.md (a Hugging Face dataset card generated from the shards) and DIR/figures/."""
    if cifar10 == "keras":  # keras.datasets: TensorFlow's start-up lines silenced as in the other commands
        setup(output.verbose)

    result = write_card(dataset_dir, repo_id, cifar10=cifar10, examples=examples, overwrite=overwrite)
    output.result(result, lambda: _text(result))


def _text(result) -> list[str]:
    rows = ", ".join(f"{s} {n}" for s, n in result.splits.items())
    return [
        f"wrote {result.path} ({rows} rows; figures: {', '.join(result.figures) or 'none'})",
        *(f"note: {note}" for note in result.notes),
    ]
