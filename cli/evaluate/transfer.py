"""`cifar10-fgs evaluate transfer`: a target model on the original and the adversarial split (paper section IV),
or a leaderboard of several models (local, ``hf://`` or on a ``hub:`` dataset)."""

from __future__ import annotations

import click

from cifar10_fgs.evaluate import TransferOptions, evaluate_transfer
from cifar10_fgs.evaluate.leaderboard import LeaderboardOptions, evaluate_leaderboard
from cifar10_fgs.formatting import fmt
from cifar10_fgs.hub import is_hub_ref, is_model_uri

from .._cli_utils import (
    Output,
    dataset_argument,
    evaluate_cifar10_option,
    examples,
    output_options,
    overwrite_option,
    predict_batch_size_option,
    results_name_option,
    scored_model_option,
    seed_option,
    source_model_option,
    split_option,
    table,
    unsafe_model_option,
)
from .._model_input import model_input_options
from ._common import evaluate_options, written


@click.command(
    "transfer",
    epilog=examples(
        "cifar10-fgs evaluate transfer adv/dataset --model target.keras --source-model source.keras",
        "cifar10-fgs evaluate transfer hub:USER/NAME --model a.keras --model hf://USER/MODEL --out board",
    ),
)
@dataset_argument(hub=True)
@scored_model_option(
    "MODEL.keras|MODEL.onnx|hf://USER/NAME",
    "A model to test the adversarial images on (the paper's simple deep CNN); repeat for a leaderboard. "
    "A local .keras or .onnx file, or a hub model hf://USER/NAME[@REVISION] (a Keras config.json + "
    "model.weights.h5, or one .onnx file).",
)
@evaluate_cifar10_option
@source_model_option("Also report the attacked model's own (white-box) numbers (with a leaderboard: one more entry).")
@split_option
@seed_option("Seed of the random-sign noise control.")
@predict_batch_size_option
@results_name_option("transfer; leaderboard for a leaderboard")
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
def command(
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

    common = evaluate_options(output, cifar10, batch_size, name, overwrite, unsafe_model, model_input)
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
        f"mean original confidence: fooled {fmt(c['fooled']['mean_original_confidence'], missing='n/a')} "
        f"(n={c['fooled']['rows']}), held {fmt(c['held']['mean_original_confidence'], missing='n/a')} (n={c['held']['rows']})",
        written(r, dataset_dir),
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
