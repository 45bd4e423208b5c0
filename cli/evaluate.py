"""`cifar10-fgs evaluate`: transfer, adversarial retraining and Gaussian filtering (paper sections IV-VI)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import click

from cifar10_fgs.config import GAUSSIAN_STDS, GAUSSIAN_VARIANTS, GaussianVariant, RetrainMode
from cifar10_fgs.data import SPLITS
from cifar10_fgs.evaluate import (
    GaussianOptions,
    RetrainOptions,
    TransferOptions,
    evaluate_gaussian,
    evaluate_retrain,
    evaluate_transfer,
)
from cifar10_fgs.evaluate.comparison import splice_into_readme, write_paper_comparison
from cifar10_fgs.evaluate.gaussian import cost_key
from cifar10_fgs.evaluate.leaderboard import LeaderboardOptions, evaluate_leaderboard
from cifar10_fgs.evaluate.metrics import SETS
from cifar10_fgs.hub import is_hub_ref, is_model_uri

from ._cli_utils import (
    Output,
    choice,
    cifar10_option,
    dataset_argument,
    epochs_option,
    examples,
    fmt,
    output_options,
    overwrite_option,
    predict_batch_size_option,
    seed_option,
    source_model_option,
    table,
    unsafe_model_option,
)
from ._model_input import model_input_options

ALL_VARIANTS = "all"  # --variant all: every GaussianVariant

eval_cifar10_option = cifar10_option(
    "The original CIFAR-10 the dataset was made from (default: the one recorded in DIR/generation.json)."
)
split_option = click.option(
    "--split",
    type=click.Choice(SPLITS),
    default="test",
    show_default=True,
    help="Which split to evaluate on.",
)
batch_size_option = predict_batch_size_option


def _model_option(metavar: str, text: str):
    """``--model``: a model being scored, repeatable (one --model per model)."""
    return click.option("--model", "models", multiple=True, required=True, metavar=metavar, help=text)


def _name_option(help_default: str):
    return click.option(
        "--name",
        default=None,
        metavar="NAME",
        help=f"Results are written to DIR/results/NAME.json|.md|*.png (default: {help_default}).",
    )


def _parse_stds(ctx, param, value: str):
    try:
        return tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers (e.g. 0,0.5,1)") from None


def _quiet_inference(output: Output) -> None:
    """TensorFlow's retracing warnings (one per inference call) silenced unless -v."""
    if not output.verbose:
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", message=".*shuffle=True. was passed.*")  # keras, on tf.data input


def _common(output: Output, cifar10, batch_size, name, overwrite, unsafe_model, model_input=None) -> dict:
    """The ``EvaluateOptions`` fields every subcommand sets (``name`` only when given: each has its default).

    Also silences TensorFlow's per-call warnings (``_quiet_inference``), as every subcommand starts here.
    """
    _quiet_inference(output)
    common = {"cifar10": cifar10, "batch_size": batch_size, "overwrite": overwrite, "unsafe_model": unsafe_model}
    common["progress"] = output.progress
    if model_input is not None:
        common["model_input"] = model_input
    return common if name is None else {**common, "name": name}


def _written(result, dataset_dir) -> str:
    paths = [result.json_path, result.markdown_path, *(str(Path(dataset_dir) / p) for p in result.plots)]
    return "wrote " + ", ".join(paths)


def _fmt(x) -> str:
    return "n/a" if x is None else fmt(x)


@click.group(
    "evaluate",
    epilog=examples(
        "cifar10-fgs evaluate transfer adv/dataset --model target.keras",
        "cifar10-fgs evaluate gaussian adv/dataset --model target.keras --model retrained.keras",
    ),
)
def command() -> None:
    """Evaluate the dataset: transfer to another model, adversarial retraining, Gaussian filtering.

    Each subcommand joins the adversarial rows to the original split by their `index` and writes
    DIR/results/NAME.json (with a ready markdown table for the dataset card), NAME.md and plots.
    """


@command.command(
    "transfer",
    epilog=examples(
        "cifar10-fgs evaluate transfer adv/dataset --model target.keras --source-model source.keras",
        "cifar10-fgs evaluate transfer hub:USER/NAME --model a.keras --model hf://USER/MODEL --out board",
    ),
)
@dataset_argument(hub=True)
@_model_option(
    "MODEL.keras|MODEL.onnx|hf://USER/NAME",
    "A model to test the adversarial images on (the paper's simple deep CNN); repeat for a leaderboard. "
    "A local .keras or .onnx file, or a hub model hf://USER/NAME[@REVISION] (a Keras config.json + "
    "model.weights.h5, or one .onnx file).",
)
@eval_cifar10_option
@source_model_option("Also report the attacked model's own (white-box) numbers (with a leaderboard: one more entry).")
@split_option
@seed_option("Seed of the random-sign noise control.")
@batch_size_option
@_name_option("transfer; leaderboard for a leaderboard")
@click.option(
    "--leaderboard",
    "as_leaderboard",
    is_flag=True,
    help="Write a leaderboard even for one local model (implied by several --model, hf:// or hub:).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    metavar="FOLDER",
    help="Leaderboard only: where NAME.json and NAME.md go (default: DIR/results, or . for hub:).",
)
@unsafe_model_option
@model_input_options
@overwrite_option()
@output_options
def transfer(
    dataset_dir,
    models,
    cifar10,
    source_model,
    split,
    seed,
    batch_size,
    name,
    as_leaderboard,
    out_dir,
    unsafe_model,
    model_input,
    overwrite,
    output: Output,
):
    """Accuracy and loss of a target model on the original and the adversarial split (paper section IV).

    With several --model (or an hf:// model, a hub: dataset, or --leaderboard): one leaderboard of all
    of them, sorted by adversarial accuracy, as NAME.json (RobustBench-style entries) and NAME.md.
    """

    common = _common(output, cifar10, batch_size, name, overwrite, unsafe_model, model_input)
    if as_leaderboard or len(models) > 1 or is_hub_ref(dataset_dir) or any(is_model_uri(m) for m in models):
        board = evaluate_leaderboard(
            dataset_dir,
            [*models, *([source_model] if source_model else [])],
            LeaderboardOptions(**common, split=split, seed=seed, out_dir=out_dir),
        )
        output.result(board, lambda: _leaderboard_text(board))
        return
    if out_dir is not None:
        raise click.UsageError("--out applies to a leaderboard: add --leaderboard, or omit --out")

    r = evaluate_transfer(
        dataset_dir, models[0], TransferOptions(**common, split=split, seed=seed, source_model=source_model)
    )
    output.result(r, lambda: _transfer_text(r, dataset_dir))


def _transfer_text(r, dataset_dir) -> list[str]:
    sets = (("original", r.original), ("adversarial", r.adversarial), ("random-sign control", r.control))
    c = r.confidence
    return [
        f"{r.num_rows_used} of {r.num_rows_split} {r.split} rows used",
        table(
            [(k, fmt(m.accuracy), fmt(m.loss), fmt(m.mean_confidence)) for k, m in sets],
            ("set", "accuracy", "loss", "mean confidence"),
        ),
        f"accuracy drop {r.accuracy_drop:.4f} (random-sign control {r.control_accuracy_drop:.4f}); "
        f"mean original confidence: fooled {_fmt(c['fooled']['mean_original_confidence'])} "
        f"(n={c['fooled']['rows']}), held {_fmt(c['held']['mean_original_confidence'])} (n={c['held']['rows']})",
        _written(r, dataset_dir),
    ]


def _leaderboard_text(board) -> list[str]:
    rows = [
        (
            e.rank,
            e.name,
            e.framework,
            fmt(e.clean_acc),
            fmt(e.adversarial_acc),
            fmt(e.accuracy_drop),
            fmt(e.random_sign_control_drop),
            f"{e.parameters:,}",
            f"{e.images_per_second:.0f}",
            e.sha256[:12],
        )
        for e in board.entries
    ]
    headers = (
        "rank",
        "model",
        "framework",
        "clean acc",
        "adversarial acc",
        "drop",
        "random-sign drop",
        "parameters",
        "images/s",
    )
    return [
        f"{board.dataset}: {board.num_rows_used} of {board.num_rows_split} {board.split} rows",
        table(rows, (*headers, "sha256")),
        f"wrote {board.json_path}, {board.markdown_path}",
    ]


@command.command(
    "retrain",
    epilog=examples(
        "cifar10-fgs evaluate retrain adv/dataset --out retrained.keras --target-model target.keras",
        "cifar10-fgs evaluate retrain adv/dataset --out mixed.keras --mode mixed --epochs 5",
    ),
)
@dataset_argument()
@eval_cifar10_option
@click.option(
    "--out",
    "retrained_model",
    type=click.Path(dir_okay=False),
    required=True,
    metavar="RETRAINED.keras",
    help="Where to save the retrained model (a .json with its provenance goes beside it).",
)
@click.option(
    "--mode",
    type=choice(RetrainMode),
    default=RetrainMode.ADVERSARIAL.value,
    show_default=True,
    help="adversarial: train on the adversarial train split (the paper); mixed: original + adversarial.",
)
@epochs_option("the target recipe's")
@click.option(
    "--target-model",
    "target_model",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="TARGET.keras",
    help="The original target network, to compare before and after.",
)
@seed_option("Training seed.")
@batch_size_option
@_name_option("retrain, or retrain_mixed")
@unsafe_model_option
@overwrite_option()
@output_options
def retrain(
    dataset_dir,
    cifar10,
    retrained_model,
    mode,
    epochs,
    target_model,
    seed,
    batch_size,
    name,
    unsafe_model,
    overwrite,
    output: Output,
):
    """Adversarial training of the target architecture, then both test sets for both networks (section V)."""

    common = _common(output, cifar10, batch_size, name, overwrite, unsafe_model)
    options = RetrainOptions(**common, mode=RetrainMode(mode), epochs=epochs, target_model=target_model, seed=seed)
    r = evaluate_retrain(dataset_dir, retrained_model, options)
    output.result(r, lambda: _retrain_text(r, dataset_dir))


def _retrain_text(r, dataset_dir) -> list[str]:
    rows = []
    if r.target_original is not None:
        rows.append(
            ("original target", fmt(r.target_original.accuracy), fmt(r.target_adversarial.accuracy), fmt(r.drop_before))
        )
    rows.append(
        ("retrained", fmt(r.retrained_original.accuracy), fmt(r.retrained_adversarial.accuracy), fmt(r.drop_after))
    )
    return [
        table(rows, ("network", "original acc", "adversarial acc", "drop")),
        f"{'trained' if r.trained else 'reused'} {r.model_path} ({r.mode}, {r.epochs} epochs, "
        f"{r.train_seconds / 60:.1f} min of training)",
        _written(r, dataset_dir),
    ]


@command.command(
    "gaussian",
    epilog=examples(
        "cifar10-fgs evaluate gaussian adv/dataset --model target.keras --model retrained.keras",
        "cifar10-fgs evaluate gaussian adv/dataset --model target.keras --std 0,0.5,1 --variant all",
    ),
)
@dataset_argument()
@_model_option(
    "MODEL.keras|MODEL.onnx",
    "A model (.keras or .onnx) to score after the filter; repeat for several (e.g. the target and a retrained one).",
)
@eval_cifar10_option
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
@batch_size_option
@_name_option("gaussian")
@unsafe_model_option
@model_input_options
@overwrite_option()
@output_options
def gaussian(
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
    common = _common(output, cifar10, batch_size, name, overwrite, unsafe_model, model_input)
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
    return [table(rows, headers), _written(r, dataset_dir)]


@command.command(
    "paper",
    epilog=examples(
        "cifar10-fgs evaluate paper adv/dataset", "cifar10-fgs evaluate paper adv/dataset --readme README.md"
    ),
)
@dataset_argument()
@click.option(
    "--readme",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    metavar="README.md",
    help="Also put the comparison between this README's paper-comparison markers.",
)
@overwrite_option("Replace a results/paper.json that is not a paper comparison.")
@output_options
def paper(dataset_dir, readme, overwrite, output: Output):
    """The paper's numbers beside ours: DIR/results/paper.md and paper.json from the results present."""
    _quiet_inference(output)

    r = write_paper_comparison(dataset_dir, overwrite=overwrite)
    if readme:
        splice_into_readme(readme, r, dataset_dir)
    mark = {True: "yes", False: "no", None: "not measured"}
    output.result(
        r.report,
        lambda: [
            table(
                [(e.section, e.claim, e.label or "-", e.ours, mark[e.reproduced]) for e in r.effects],
                ("section", "effect in the paper", "run", "ours", "reproduced"),
            ),
            f"wrote {r.json_path}, {r.markdown_path}",
        ],
    )
