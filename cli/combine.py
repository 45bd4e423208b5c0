"""`cifar10-fgs combine`: merge the folders of several `generate --num-workers N --worker-index I` machines (workers)."""

from __future__ import annotations

import click

from cifar10_fgs.generate.combine import combine_workers

from ._cli_utils import Output, examples, out_dir_option, output_options, overwrite_option


@click.command("combine", epilog=examples("cifar10-fgs combine part0 part1 --out adv/dataset"))
@click.argument("parts", nargs=-1, required=True, metavar="PART...", type=click.Path(file_okay=False))
@out_dir_option("The combined dataset folder.")
@overwrite_option()
@output_options(tensorflow=False)
def command(parts, dataset_dir, overwrite, output: Output):
    """Combine worker folders (same settings, disjoint shards) into one dataset folder with one manifest."""

    result = combine_workers(dataset_dir, list(parts), overwrite=overwrite)
    output.result(
        result,
        lambda: [
            *(
                f"{split}: {s.num_rows} rows, fooled {s.fooled_percent or 0:.2f}%"
                for split, s in result.summary.items()
            ),
            f"combined {len(parts)} parts -> {result.out_dir}",
        ],
    )
