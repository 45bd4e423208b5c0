"""`cifar10-fgs card`: write the dataset card (README.md) and its figures into a dataset folder."""

from __future__ import annotations

import click

from cifar10_fgs.config import CARD_EXAMPLES, CARD_MAX_EXAMPLES

from ._cli_utils import emit_json, json_option, overwrite_option, setup, source_option, verbose_option


@click.command("card")
@click.argument("dataset_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.option(
    "--repo-id",
    default=None,
    metavar="USER/NAME",
    help="Hub repo the card's loading examples name (default: a local path).",
)
@source_option(
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
@json_option
@verbose_option
def command(dataset_dir, repo_id, source, examples, overwrite, as_json, verbose):
    """Write DIR/README.md (a Hugging Face dataset card generated from the shards) and DIR/figures/."""
    setup(verbose, tensorflow=(source == "keras"))
    from cifar10_fgs.publish.card import write_card

    result = write_card(dataset_dir, repo_id, source=source, examples=examples, overwrite=overwrite)
    if as_json:
        emit_json(result)
        return
    rows = ", ".join(f"{s} {n}" for s, n in result.splits.items())
    click.echo(f"wrote {result.path} ({rows} rows; figures: {', '.join(result.figures) or 'none'})")
    for note in result.notes:
        click.echo(f"note: {note}")
