"""`cifar10-fgs evaluate paper`: the paper's numbers beside ours (DIR/results/paper.md, and a README's marked block)."""

from __future__ import annotations

import click

from cifar10_fgs.evaluate.comparison import splice_into_readme, write_paper_comparison

from .._cli_utils import Output, dataset_argument, examples, output_options, overwrite_option, table
from ._common import quiet_inference


@click.command(
    "paper",
    epilog=examples(
        "cifar10-fgs evaluate paper adv/dataset", "cifar10-fgs evaluate paper adv/dataset --readme README.md"
    ),
)
@dataset_argument()
@click.option(
    "--readme",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    metavar="README.md",
    help="Also put the comparison between this README's paper-comparison markers.",
)
@overwrite_option("Replace a results/paper.json that is not a paper comparison.")
@output_options
def command(dataset_dir, readme, overwrite, output: Output):
    """The paper's numbers beside ours: DIR/results/paper.md and paper.json from the results present."""
    quiet_inference(output)

    r = write_paper_comparison(dataset_dir, overwrite=overwrite)
    if readme:
        splice_into_readme(readme, r, dataset_dir)
    mark = {True: "yes", False: "no", None: "not measured"}
    output.result(
        r.report,
        lambda: [
            table(
                [(e.section, e.claim, e.label or "-", e.ours, mark[e.reproduced]) for e in r.effects],
                ("section", "effect in the paper", "run", "ours", "reproduced"),
            ),
            f"wrote {r.json_path}, {r.markdown_path}",
        ],
    )
