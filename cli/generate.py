"""`cifar10-fgs generate`: attack CIFAR-10 into a publishable folder of Arrow shards."""

from __future__ import annotations

import click

from cifar10_fgs.config import ATTACK_MAX_ITERATIONS, ATTACK_STEP, PIXEL_RANGE, ROWS_PER_SHARD, SOURCE_CHECK, Method

from ._cli_utils import (
    allow_failures_option,
    batch_size_option,
    emit_json,
    fmt,
    json_option,
    limit_option,
    overwrite_option,
    quiet_option,
    setup,
    source_option,
    table,
    unsafe_model_option,
    verbose_option,
)


@click.command("generate")
@click.option("--model", "model_path", type=click.Path(), required=True, help="Source model (.keras) to attack.")
@source_option()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    required=True,
    help="Dataset folder to write (resumes if it exists).",
)
@click.option("--split", default="all", show_default=True, help="train, test or all.")
@limit_option
@click.option(
    "--step",
    type=float,
    default=ATTACK_STEP,
    show_default=True,
    help=f"Step as a fraction of the pixel range ({ATTACK_STEP:g} = {ATTACK_STEP * PIXEL_RANGE:g} levels).",
)
@click.option(
    "--max-iterations",
    type=int,
    default=ATTACK_MAX_ITERATIONS,
    show_default=True,
    help="Gradient steps per image, over every phase, before it counts as not fooled.",
)
@click.option(
    "--max-linf",
    type=float,
    default=None,
    help="Hard L-inf budget (fraction of the range, e.g. 0.03): steps are projected onto that ball; "
    "images not fooled inside it count as not fooled.",
)
@click.option(
    "--escalate/--no-escalate",
    default=True,
    show_default=True,
    help="Escalate stalled images (runner-up margin, targeted, random restarts); --no-escalate: the paper's loop only.",
)
@batch_size_option
@click.option(
    "--rows-per-shard",
    type=click.IntRange(min=1),
    default=ROWS_PER_SHARD,
    show_default=True,
    help="Rows per Arrow shard file.",
)
@click.option("--with-originals", is_flag=True, help="Also store each original image (column original_image).")
@click.option(
    "--num-workers",
    "--num-shards",
    "num_workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Machines (workers) sharing the work; each writes its own folder, `combine` merges them.",
)
@click.option(
    "--worker-index",
    "--shard-index",
    "worker_index",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="This machine's part of the work, 0..num-workers-1.",
)
@click.option(
    "--method",
    type=click.Choice([m.value for m in Method]),
    default=Method.FGS.value,
    show_default=True,
    help="fgs: the paper's attack; onepixel: Su et al.'s differential evolution baseline (needs --limit).",
)
@click.option(
    "--no-source-check",
    is_flag=True,
    help="Attack the model even if it is near chance or calls most images one class (checked before attacking).",
)
@allow_failures_option()
@unsafe_model_option
@overwrite_option()
@json_option
@quiet_option
@verbose_option
def command(
    model_path,
    source,
    out_dir,
    split,
    limit,
    step,
    max_iterations,
    max_linf,
    escalate,
    batch_size,
    rows_per_shard,
    with_originals,
    num_workers,
    worker_index,
    method,
    no_source_check,
    allow_failures,
    unsafe_model,
    overwrite,
    as_json,
    quiet,
    verbose,
):
    """Turn every image adversarial: step in the sign of the loss gradient until the model is fooled."""
    setup(verbose)
    from cifar10_fgs.generate.core import GenerateOptions, attack_config, generate_dataset, parse_splits

    config = attack_config(batch_size, step=step, max_iterations=max_iterations, max_linf=max_linf, escalate=escalate)
    options = GenerateOptions(
        splits=parse_splits(split),
        limit=limit,
        rows_per_shard=rows_per_shard,
        with_originals=with_originals,
        num_workers=num_workers,
        worker_index=worker_index,
        method=Method(method),
        source_check=None if no_source_check else SOURCE_CHECK,
    )
    result = generate_dataset(
        model_path,
        source,
        out_dir,
        config,
        options,
        overwrite=overwrite,
        allow_failures=allow_failures,
        unsafe_model=unsafe_model,
        progress=not (quiet or as_json),
    )
    if as_json:
        emit_json(result)
        return
    rows = []
    for s, summ in result.summary.items():
        rows.append(
            (
                s,
                summ.num_images,
                summ.num_rows,
                fmt(summ.fooled_percent or 0.0, 2),
                summ.already_misclassified or 0,
                fmt(summ.mean_iterations or 0.0, 2),
                fmt(summ.linf.max if summ.linf else 0.0),
                len(summ.failures),
            )
        )
    click.echo(
        table(rows, ("split", "images", "stored", "fooled %", "already wrong", "mean iters", "max Linf", "failures"))
    )
    click.echo(
        f"{result.images_attacked} images attacked in {result.seconds:.1f} s "
        f"({result.images_per_second:.3g} img/s, {result.gradient_evaluations} gradient evaluations) -> {result.out_dir}"
    )
