"""`cifar10-fgs combine`: merge the folders of several `generate --num-workers N --worker-index I` machines (workers)."""

from __future__ import annotations

import click

from ._cli_utils import emit_json, json_option, overwrite_option, setup, verbose_option


@click.command("combine")
@click.argument("parts", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="The combined dataset folder.")
@overwrite_option()
@json_option
@verbose_option
def command(parts, out_dir, overwrite, as_json, verbose):
    """Combine worker folders (same settings, disjoint shards) into one dataset folder with one manifest."""
    setup(verbose, tensorflow=False)
    from cifar10_fgs.generate.combine import combine_workers

    result = combine_workers(list(parts), out_dir, overwrite=overwrite)
    if as_json:
        emit_json(result)
        return
    for split, summ in result.summary.items():
        click.echo(f"{split}: {summ.num_rows} rows, fooled {summ.fooled_percent or 0:.2f}%")
    click.echo(f"combined {len(parts)} parts -> {result.out_dir}")
