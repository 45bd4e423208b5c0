"""`cifar10-fgs evaluate gaussian`: the Gaussian filter as a defence, per variant, std, model and set
(paper section VI)."""

from __future__ import annotations

import click

from cifar10_fgs.config import GAUSSIAN_STDS, GAUSSIAN_VARIANTS, GaussianVariant
from cifar10_fgs.evaluate import GaussianOptions, evaluate_gaussian
from cifar10_fgs.evaluate.gaussian import cost_key
from cifar10_fgs.evaluate.metrics import SETS
from cifar10_fgs.formatting import fmt

from .._cli_utils import (
    Output,
    choice,
    dataset_argument,
    evaluate_cifar10_option,
    examples,
    output_options,
    overwrite_option,
    predict_batch_size_option,
    results_name_option,
    scored_model_option,
    split_option,
    table,
    unsafe_model_option,
)
from .._model_input import model_input_options
from ._common import evaluate_options, written

ALL_VARIANTS = "all"  # --variant all: every GaussianVariant


def _parse_stds(ctx, param, value: str):
    try:
        return tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers (e.g. 0,0.5,1)") from None


@click.command(
    "gaussian",
    epilog=examples(
        "cifar10-fgs evaluate gaussian adv/dataset --model target.keras --model retrained.keras",
        "cifar10-fgs evaluate gaussian adv/dataset --model target.keras --std 0,0.5,1 --variant all",
    ),
)
@dataset_argument()
@scored_model_option(
    "MODEL.keras|MODEL.onnx",
    "A model (.keras or .onnx) to score after the filter; repeat for several (e.g. the target and a retrained one).",
)
@evaluate_cifar10_option
@click.option(
    "--std",
    "stds",
    default=",".join(f"{s:g}" for s in GAUSSIAN_STDS),
    show_default=True,
    callback=_parse_stds,
    help="Comma-separated Gaussian standard deviations in pixels (0 = no filter).",
)
@click.option(
    "--variant",
    "variants",
    type=choice(GaussianVariant, ALL_VARIANTS),
    multiple=True,
    help="How to apply the filter (repeatable; default spatial-uint8): spatial-uint8 = each channel over "
    "height and width, rounded to uint8; spatial-float = the same, not rounded; paper-scalar-float = "
    "one sigma over (H, W, C) of each image, not rounded (our best reading of the paper); all = the three.",
)
@split_option
@predict_batch_size_option
@results_name_option("gaussian")
@unsafe_model_option
@model_input_options
@overwrite_option()
@output_options
def command(
    dataset_dir,
    models,
    cifar10,
    stds,
    variants,
    split,
    batch_size,
    name,
    unsafe_model,
    model_input,
    overwrite,
    output: Output,
):
    """Gaussian filtering as a defence: accuracy per variant, std, model and test set (paper section VI)."""

    if ALL_VARIANTS in variants:
        variants = tuple(GaussianVariant)
    common = evaluate_options(output, cifar10, batch_size, name, overwrite, unsafe_model, model_input)
    options = GaussianOptions(**common, split=split, stds=stds, variants=variants or GAUSSIAN_VARIANTS)
    r = evaluate_gaussian(dataset_dir, list(models), options)
    output.result(r, lambda: _gaussian_text(r, dataset_dir))


def _gaussian_text(r, dataset_dir) -> list[str]:

    headers = ("variant", "std", *(f"{m}/{s}" for m in r.models for s in SETS), "ms/img")
    rows = [
        (
            v,
            f"{std:g}",
            *(fmt(r.accuracy(m, s, std, v)) for m in r.models for s in SETS),
            fmt(r.ms_per_image_batched[cost_key(v, std)]),
        )
        for v in r.variants
        for std in r.stds
    ]
    return [table(rows, headers), written(r, dataset_dir)]
