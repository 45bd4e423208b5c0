"""`cifar10-fgs validate`: check a generated dataset folder (files, rows, model, source, card)."""

from __future__ import annotations

import click

from ._cli_utils import (
    emit_json,
    json_option,
    quiet_option,
    setup,
    source_option,
    table,
    unsafe_model_option,
    verbose_option,
)

MAX_LISTED = 30  # failures printed in the text summary (--json lists all)


@click.command("validate")
@click.argument("directory", metavar="DIR|hub:USER/NAME[@REVISION]")
@click.option(
    "--model",
    "model_path",
    type=click.Path(),
    default=None,
    metavar="SOURCE.keras",
    help="The generating model: check its sha256 and that it misclassifies every stored image "
    "as stored (skipped without it; for a hub: copy, default: its source_model/).",
)
@source_option(
    "The original CIFAR-10: check its fingerprint and every row's distances to its original (skipped without it)."
)
@unsafe_model_option
@json_option
@quiet_option
@verbose_option
def command(directory, model_path, source, unsafe_model, as_json, quiet, verbose):
    """Check DIR (or a published copy, hub:USER/NAME[@REVISION]) against generation.json, the model and the
    source; exit 1 if any check fails.

    A hub: copy is downloaded with huggingface_hub (usual cache, HF_ENDPOINT, HF_HUB_OFFLINE) and
    checked against the model it ships and, if the manifest names a hub: source or --source is
    given, the originals; the report names the exact commit.

    Reads the shards' bytes directly (never a datasets cache). Checks: shard sha256/size, no missing or
    foreign files, complete manifest, every image decodes to 32x32x3, labels 0-9, indices unique and
    covering each split (with the listed failures); with --model: misclassified and predicted as stored;
    with --source: linf/l2 and the linf bound; README.md dataset_info counts if present.
    """
    setup(verbose)
    from cifar10_fgs.hub import is_hub_ref
    from cifar10_fgs.validate import validate_dataset
    from cifar10_fgs.validate.hub import validate_hub

    check = validate_hub if is_hub_ref(directory) else validate_dataset
    report = check(directory, model_path, source, unsafe_model=unsafe_model, progress=not (quiet or as_json))
    if as_json:
        emit_json(report.to_dict())
    else:
        rows = [
            (c.name, c.status.upper() if c.status == "failed" else c.status, c.checked, c.failures, c.note)
            for c in report.checks
        ]
        click.echo(table(rows, ("check", "status", "checked", "failures", "note")))
        click.echo(
            table(
                [(s.split, s.num_rows, s.stored_rows, s.listed_failures, s.num_shards) for s in report.splits],
                ("split", "images", "stored rows", "listed failures", "shards"),
            )
            if report.splits
            else ""
        )
        if report.failures:
            click.echo("")
            for f in report.failures[:MAX_LISTED]:
                click.echo(f"[{f.check}] {f.location + ': ' if f.location else ''}{f.message}")
            if len(report.failures) > MAX_LISTED:
                click.echo(f"... and {len(report.failures) - MAX_LISTED} more (--json lists them all)")
        if report.commit:
            click.echo(
                f"checked commit {report.commit} (model {report.model_sha256 or 'not checked'}, "
                f"source {report.source or 'not checked'})"
            )
        click.echo(f"{report.summary_line()} in {report.seconds:.1f} s")
    report.raise_for_failures()
