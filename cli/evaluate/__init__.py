"""`cifar10-fgs evaluate`: one module per subcommand, as the huggingface_hub CLI has one per command.

``transfer`` (paper section IV, and leaderboards), ``retrain`` (section V), ``gaussian`` (section VI) and
``paper`` (the paper's numbers beside ours). Their options and the printer are declared once, in
``cli._cli_utils``; ``_common`` holds what every subcommand does first and last.
"""

from __future__ import annotations

import click

from .._cli_utils import examples
from . import gaussian, paper, retrain, transfer

SUBCOMMANDS = (transfer, retrain, gaussian, paper)


@click.group(
    "evaluate",
    epilog=examples(
        "cifar10-fgs evaluate transfer adv/dataset --model target.keras",
        "cifar10-fgs evaluate gaussian adv/dataset --model target.keras --model retrained.keras",
    ),
)
def command() -> None:
    """Evaluate the dataset: transfer to another model, adversarial retraining, Gaussian filtering.

    Each subcommand joins the adversarial rows to the original split by their `index` and writes
    DIR/results/NAME.json (with a ready markdown table for the dataset card), NAME.md and plots.
    """


for _module in SUBCOMMANDS:
    command.add_command(_module.command)
