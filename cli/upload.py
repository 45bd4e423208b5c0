"""`cifar10-fgs upload` (to be written)."""

import click


@click.command("upload")
def command():
    """Not yet available."""
    raise click.ClickException("not yet implemented")
