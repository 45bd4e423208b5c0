"""`cifar10-fgs card` (to be written)."""

import click


@click.command("card")
def command():
    """Not yet available."""
    raise click.ClickException("not yet implemented")
