"""`cifar10-fgs generate`: attack CIFAR-10 into a publishable folder of Arrow shards."""

from __future__ import annotations

import click

from cifar10_fgs.config import PIXEL_RANGE, ROWS_PER_SHARD, AttackConfig, Method, OnePixelConfig, SourceCheck
from cifar10_fgs.data import SPLITS
from cifar10_fgs.formatting import fmt
from cifar10_fgs.generate.core import GenerateOptions, attack_config, generate_dataset
from cifar10_fgs.generate.options import parse_splits

from ._cli_utils import (
    Output,
    allow_failures_option,
    batch_size_option,
    choice,
    cifar10_option,
    examples,
    limit_option,
    out_dir_option,
    output_options,
    overwrite_option,
    refuse_given,
    source_model_option,
    table,
    unsafe_model_option,
)
from ._model_input import model_input_options

ALL_SPLITS = "all"
DEFAULT = AttackConfig()  # the defaults the options show
ONEPIXEL = OnePixelConfig()
FGS_ONLY = ("step", "max_iterations", "max_linf", "escalate")  # options of the FGS attack (refused with onepixel)
ONEPIXEL_ONLY = ("population", "max_generations")


@click.command(
    "generate",
    epilog=examples(
        "cifar10-fgs generate --source-model source.keras --out adv/dataset",
        "cifar10-fgs generate --source-model source.keras --cifar10 cifar-10-python.tar.gz --out ds --limit 100",
    ),
)
@source_model_option("The source model (.keras) to attack.", required=True)
@cifar10_option()
@out_dir_option("Dataset folder to write (resumes if it exists).")
@click.option(
    "--split",
    type=click.Choice([*SPLITS, ALL_SPLITS]),
    default=ALL_SPLITS,
    show_default=True,
    help="Split(s) to attack.",
)
@limit_option
@click.option(
    "--step",
    type=float,
    default=DEFAULT.step,
    show_default=True,
    help=f"Step as a fraction of the pixel range ({DEFAULT.step:g} = {DEFAULT.step * PIXEL_RANGE:g} levels).",
)
@click.option(
    "--max-iterations",
    type=int,
    default=DEFAULT.max_iterations,
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
    "num_workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Machines (workers) sharing the work; each writes its own folder, `combine` merges them.",
)
@click.option(
    "--worker-index",
    "worker_index",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="This machine's part of the work, 0..num-workers-1.",
)
@click.option(
    "--method",
    type=choice(Method),
    default=Method.FGS.value,
    show_default=True,
    help="fgs: the paper's attack; onepixel: Su et al.'s differential evolution baseline (needs --limit; "
    "takes --population, --max-generations and --batch-size, not the FGS options).",
)
@click.option(
    "--population",
    type=click.IntRange(min=5),
    default=ONEPIXEL.population,
    show_default=True,
    help="--method onepixel: candidate pixels per differential-evolution generation.",
)
@click.option(
    "--max-generations",
    type=click.IntRange(min=1),
    default=ONEPIXEL.max_generations,
    show_default=True,
    help="--method onepixel: generations per image before it counts as not fooled.",
)
@click.option(
    "--no-source-check",
    is_flag=True,
    help="Attack the model even if it is near chance or calls most images one class (checked before attacking).",
)
@allow_failures_option()
@unsafe_model_option
@model_input_options
@overwrite_option()
@output_options
def command(
    source_model,
    cifar10,
    dataset_dir,
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
    population,
    max_generations,
    no_source_check,
    allow_failures,
    unsafe_model,
    model_input,
    overwrite,
    output: Output,
):
    """Turn every image adversarial: step in the sign of the loss gradient until the model is fooled.

    Writes DIR/data/<split>-<i>-of-<n>.arrow and DIR/generation.json; rerun the same command to resume.
    """

    ctx, method = click.get_current_context(), Method(method)
    config, onepixel = None, ONEPIXEL  # the FGS attack's settings, or the one-pixel baseline's
    if method is Method.ONEPIXEL:
        refuse_given(ctx, FGS_ONLY, "--method fgs")
        onepixel = OnePixelConfig(
            population=population, max_generations=max_generations, batch_size=batch_size or ONEPIXEL.batch_size
        )
    else:
        refuse_given(ctx, ONEPIXEL_ONLY, "--method onepixel")
        config = attack_config(
            batch_size, step=step, max_iterations=max_iterations, max_linf=max_linf, escalate=escalate
        )
    options = GenerateOptions(
        cifar10=cifar10,
        attack=config,
        splits=parse_splits(split),
        limit=limit,
        rows_per_shard=rows_per_shard,
        with_originals=with_originals,
        num_workers=num_workers,
        worker_index=worker_index,
        method=method,
        source_check=None if no_source_check else SourceCheck(),
        onepixel=onepixel,
        model_input=model_input,
    )
    result = generate_dataset(
        dataset_dir,
        source_model,
        options,
        overwrite=overwrite,
        allow_failures=allow_failures,
        unsafe_model=unsafe_model,
        progress=output.progress,
    )
    output.result(result, lambda: _text(result))


def _text(result) -> list[str]:
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
    return [
        table(rows, ("split", "images", "stored", "fooled %", "already wrong", "mean iters", "max Linf", "failures")),
        f"{result.images_attacked} images attacked in {result.seconds:.1f} s "
        f"({result.images_per_second:.3g} img/s, {result.gradient_evaluations} gradient evaluations) -> {result.out_dir}",
    ]
