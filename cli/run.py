"""`cifar10-fgs run` (to be written)."""

import click


@click.command("run")
def command():
    """Not yet available."""
    raise click.ClickException("not yet implemented")
