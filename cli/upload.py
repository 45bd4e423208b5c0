"""`cifar10-fgs upload`: publish a finished dataset folder to the Hugging Face hub."""

from __future__ import annotations

import click

from ._cli_utils import emit_json, json_option, no_source_model_option, private_option, setup, table, verbose_option


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


@click.command("upload")
@click.argument("dataset_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--repo-id", required=True, metavar="USER/NAME", help="Dataset repo to create or update.")
@private_option()
@click.option(
    "--revision", default=None, metavar="BRANCH", help="Branch to commit to (created if missing; default main)."
)
@click.option("--dry-run", is_flag=True, help="List the files, sizes and target without contacting the hub.")
@click.option(
    "--model",
    "--include-model",
    "include_model",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="SOURCE.keras",
    help="The source model to ship under source_model/ (must match generation.json's sha256; default: "
    "DIR/../models/NAME or DIR/../NAME, NAME as generation.json records it).",
)
@no_source_model_option()
@json_option
@verbose_option
def command(dataset_dir, repo_id, private, revision, dry_run, include_model, no_source_model, as_json, verbose):
    """Upload README.md, generation.json, data/*.arrow, figures/, results/ and the source model of DIR.

    The token comes from HF_TOKEN or `hf auth login`.
    """
    setup(verbose, tensorflow=False)
    from cifar10_fgs.publish.upload import upload_dataset

    result = upload_dataset(
        dataset_dir,
        repo_id,
        private=private,
        revision=revision,
        dry_run=dry_run,
        include_model=include_model,
        ship_model=not no_source_model,
    )
    if as_json:
        emit_json(result)
        return
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
    visibility = "private" if private else "public unless the repo exists"
    if result.dry_run:
        click.echo(f"dry run: would upload to {result.url} (revision {result.revision or 'main'}, {visibility})")
        click.echo(table([(f.path_in_repo, f.bytes) for f in result.files], ("file", "bytes")))
        click.echo(f"{len(result.files)} files, {_mb(result.total_bytes)}; commit message: {result.commit_message}")
        return
    if not result.uploaded:
        click.echo(f"nothing to upload: {result.url} already holds all {len(result.files)} files")
        return
    sent = sum(f.bytes for f in result.files if f.path_in_repo in set(result.uploaded))
    commits = ", ".join(c[:12] for c in result.commits if c) or "?"
    click.echo(
        f"uploaded {len(result.uploaded)} files ({_mb(sent)}), {len(result.unchanged)} unchanged -> "
        f"{result.url} (commit {commits})"
    )
