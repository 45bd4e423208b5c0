"""`cifar10-fgs validate` (to be written)."""

import click


@click.command("validate")
def command():
    """Not yet available."""
    raise click.ClickException("not yet implemented")
