"""`cifar10-fgs evaluate` (to be written)."""

import click


@click.command("evaluate")
def command():
    """Not yet available."""
    raise click.ClickException("not yet implemented")
