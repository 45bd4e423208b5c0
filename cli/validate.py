"""`cifar10-fgs validate`: check a generated dataset folder (files, rows, model, CIFAR-10 originals, card)."""

from __future__ import annotations

import click

from cifar10_fgs.hub import is_hub_ref
from cifar10_fgs.validate import validate_dataset
from cifar10_fgs.validate.hub import validate_hub

from ._cli_utils import (
    Output,
    cifar10_option,
    dataset_argument,
    examples,
    output_options,
    source_model_option,
    table,
    unsafe_model_option,
)
from ._model_input import model_input_options

MAX_LISTED = 30  # failures printed in the text summary (--json lists all)


@click.command(
    "validate",
    epilog=examples(
        "cifar10-fgs validate adv/dataset --source-model source.keras --cifar10 cifar-10-python.tar.gz",
        "cifar10-fgs validate hub:USER/NAME@main --json",
    ),
)
@dataset_argument(hub=True)
@source_model_option(
    "The generating model: check its sha256 and that it misclassifies every stored image "
    "as stored (skipped without it; for a hub: copy, default: its source_model/)."
)
@cifar10_option(
    "The original CIFAR-10: check its fingerprint and every row's distances to its original (skipped without it)."
)
@unsafe_model_option
@model_input_options
@output_options
def command(dataset_dir, source_model, cifar10, unsafe_model, model_input, output: Output):
    """Check DIR (or a published copy, hub:USER/NAME[@REVISION]) against generation.json, the source
    model and the CIFAR-10 originals; exit 1 if any check fails.

    A hub: copy is downloaded with huggingface_hub (usual cache, HF_ENDPOINT, HF_HUB_OFFLINE) and
    checked against the model it ships and, if the manifest names a hub: CIFAR-10 or --cifar10 is
    given, the originals; the report names the exact commit.

    Reads the shards' bytes directly (never a datasets cache). Checks: shard sha256/size, no missing or
    foreign files, complete manifest, every image decodes to 32x32x3, labels 0-9, indices unique and
    covering each split (with the listed failures); with --source-model: misclassified and predicted as
    stored; with --cifar10: linf/l2 and the linf bound; README.md dataset_info counts if present.
    The model is fed by the input convention generation.json records (nothing to declare); --input-* and
    --model-output, or a cifar10-fgs.json beside the model, must agree with it.
    """

    check = validate_hub if is_hub_ref(dataset_dir) else validate_dataset
    report = check(
        dataset_dir,
        source_model,
        cifar10=cifar10,
        unsafe_model=unsafe_model,
        progress=output.progress,
        model_input=model_input,
    )
    output.result(report.to_dict(), lambda: _text(report))
    report.raise_for_failures()


def _text(report) -> list[str]:
    rows = [
        (c.name, c.status.upper() if c.status == "failed" else c.status, c.checked, c.failures, c.note)
        for c in report.checks
    ]
    lines = [table(rows, ("check", "status", "checked", "failures", "note"))]
    lines.append(
        table(
            [(s.split, s.num_rows, s.stored_rows, s.listed_failures, s.num_shards) for s in report.splits],
            ("split", "images", "stored rows", "listed failures", "shards"),
        )
        if report.splits
        else ""
    )
    if report.failures:
        lines.append("")
        for f in report.failures[:MAX_LISTED]:
            lines.append(f"[{f.check}] {f.location + ': ' if f.location else ''}{f.message}")
        if len(report.failures) > MAX_LISTED:
            lines.append(f"... and {len(report.failures) - MAX_LISTED} more (--json lists them all)")
    if report.commit:
        lines.append(
            f"checked commit {report.commit} (model {report.model_sha256 or 'not checked'}, "
            f"CIFAR-10 {report.cifar10 or 'not checked'})"
        )
    lines.append(f"{report.summary_line()} in {report.seconds:.1f} s")
    return lines
