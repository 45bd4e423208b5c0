"""The ``cifar10-fgs`` command group: one module per command, errors mapped in ``_errors``."""

from __future__ import annotations

import click

from cifar10_fgs import __version__

from ._cli_utils import examples
from ._errors import exit_with_friendly_errors


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=examples(
        "cifar10-fgs run --cifar10 cifar-10-python.tar.gz --out ws",
        "cifar10-fgs validate ws/dataset --source-model ws/models/source.keras",
    ),
)
@click.version_option(__version__, prog_name="cifar10-fgs")
def cli() -> None:
    """Build, validate, publish and evaluate an adversarial CIFAR-10 (iterative fast gradient sign).

    The main job is `cifar10-fgs run --cifar10 DATA --out DIR`. Every command takes the CIFAR-10 input as
    --cifar10 DATA, the attacked model as --source-model M.keras, models to score as --model (repeatable),
    the dataset folder as its first argument DIR, and --json, -q, -v. Set CIFAR10_FGS_DEBUG=1 for tracebacks.
    """


def _register() -> None:
    from . import card, combine, evaluate, generate, run, train, upload, validate

    for module in (train, generate, combine, validate, card, upload, evaluate, run):
        cli.add_command(module.command)


_register()


def main() -> None:
    exit_with_friendly_errors(cli)


if __name__ == "__main__":
    main()
