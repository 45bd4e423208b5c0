"""`cifar10-fgs upload`: publish a finished dataset folder to the Hugging Face hub."""

from __future__ import annotations

import click

from cifar10_fgs.publish.upload import upload_dataset

from ._cli_utils import (
    Output,
    dataset_argument,
    examples,
    no_source_model_option,
    output_options,
    overwrite_option,
    private_option,
    source_model_option,
    table,
)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


@click.command(
    "upload",
    epilog=examples(
        "cifar10-fgs upload adv/dataset --repo-id USER/NAME --dry-run",
        "cifar10-fgs upload adv/dataset --repo-id USER/NAME --source-model source.keras --private",
    ),
)
@dataset_argument()
@click.option("--repo-id", required=True, metavar="USER/NAME", help="Dataset repo to create or update.")
@private_option()
@click.option(
    "--revision", default=None, metavar="BRANCH", help="Branch to commit to (created if missing; default main)."
)
@click.option("--dry-run", is_flag=True, help="List the files, sizes and target without contacting the hub.")
@source_model_option(
    "The source model to ship under source_model/ (must match generation.json's sha256; default: "
    "DIR/../models/NAME or DIR/../NAME, NAME as generation.json records it)."
)
@no_source_model_option()
@overwrite_option(
    "Replace a dataset generated with other settings that the repo (branch) holds: its data, figures, results and "
    "model files this folder lacks are deleted in the same commit (the hub keeps the old commits)."
)
@output_options(tensorflow=False)
def command(dataset_dir, repo_id, private, revision, dry_run, source_model, no_source_model, overwrite, output: Output):
    """Upload README.md, generation.json, data/*.arrow, figures/, results/ and the source model of DIR.

    The token comes from HF_TOKEN or `hf auth login`.
    """

    result = upload_dataset(
        dataset_dir,
        repo_id,
        private=private,
        revision=revision,
        dry_run=dry_run,
        source_model=source_model,
        ship_source_model=not no_source_model,
        overwrite=overwrite,
    )
    if not output.as_json:
        for w in result.warnings:
            click.echo(f"warning: {w}", err=True)
    output.result(result, lambda: _text(result, private))


def _text(result, private: bool) -> list[str]:
    visibility = "private" if private else "public unless the repo exists"
    if result.dry_run:
        return [
            f"dry run: would upload to {result.url} (revision {result.revision or 'main'}, {visibility})",
            table([(f.path_in_repo, f.bytes) for f in result.files], ("file", "bytes")),
            f"{len(result.files)} files, {_mb(result.total_bytes)}; commit message: {result.commit_message}",
        ]
    if not result.uploaded:
        return [f"nothing to upload: {result.url} already holds all {len(result.files)} files"]
    sent = sum(f.bytes for f in result.files if f.path_in_repo in set(result.uploaded))
    commits = ", ".join(c[:12] for c in result.commits if c) or "?"
    return [
        f"uploaded {len(result.uploaded)} files ({_mb(sent)}), {len(result.unchanged)} unchanged -> "
        f"{result.url} (commit {commits})"
    ]
