"""`cifar10-fgs evaluate`: transfer, adversarial retraining and Gaussian filtering (paper sections IV-VI)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import click

from cifar10_fgs.config import GAUSSIAN_STDS, RetrainMode

from ._cli_utils import (
    emit_json,
    epochs_option,
    fmt,
    json_option,
    overwrite_option,
    predict_batch_size_option,
    quiet_option,
    seed_option,
    setup,
    source_option,
    table,
    unsafe_model_option,
    verbose_option,
)
from ._model_input import model_input_options

dataset_option = click.option(
    "--dataset",
    "dataset_dir",
    type=click.Path(file_okay=False),
    required=True,
    metavar="DIR",
    help="Dataset folder written by `generate` (read with datasets.load_dataset; results go to DIR/results/).",
)
eval_source_option = source_option(
    "The original CIFAR-10 the dataset was made from (default: the source recorded in DIR/generation.json)."
)
split_option = click.option(
    "--split",
    type=click.Choice(["test", "train"]),
    default="test",
    show_default=True,
    help="Which split to evaluate on.",
)
batch_size_option = predict_batch_size_option


def _name_option(default: str | None, help_default: str):
    return click.option(
        "--name",
        default=default,
        metavar="NAME",
        help=f"Results are written to DIR/results/NAME.json|.md|*.png (default: {help_default}).",
    )


def _parse_stds(ctx, param, value: str):
    try:
        return tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers (e.g. 0,0.5,1)") from None


def _parse_models(ctx, param, value: str):
    paths = [v.strip() for v in value.split(",") if v.strip()]
    if not paths:
        raise click.BadParameter("expected one or more .keras paths separated by commas")
    return paths


def _setup(verbose: bool) -> None:
    """Logging as every command; TensorFlow's retracing warnings (one per inference call) silenced unless -v."""
    setup(verbose)
    if not verbose:
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", message=".*shuffle=True. was passed.*")  # keras, on tf.data input


def _written(result, dataset_dir) -> None:
    paths = [result.json_path, result.markdown_path, *(str(Path(dataset_dir) / p) for p in result.plots)]
    click.echo("wrote " + ", ".join(paths))


def _fmt(x) -> str:
    return "n/a" if x is None else fmt(x)


@click.group("evaluate")
def command() -> None:
    """Evaluate the dataset: transfer to another model, adversarial retraining, Gaussian filtering.

    Each subcommand joins the adversarial rows to the original split by their `index` and writes
    DIR/results/NAME.json (with a ready markdown table for the dataset card), NAME.md and plots.
    """


@command.command("transfer")
@click.option(
    "--model",
    "model_paths",
    multiple=True,
    required=True,
    metavar="TARGET.keras|hf://USER/NAME",
    help="A model to test the adversarial images on (the paper's simple deep CNN); repeat for a "
    "leaderboard. A local .keras file or a Keras hub model hf://USER/NAME[@REVISION].",
)
@click.option(
    "--dataset",
    "dataset_dir",
    required=True,
    metavar="DIR|hub:USER/NAME[@REVISION]",
    help="Dataset folder written by `generate`, or a published copy on the hub (downloaded to the usual "
    "huggingface_hub cache).",
)
@eval_source_option
@click.option(
    "--source-model",
    "source_model_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="SOURCE.keras",
    help="Also report the attacked model's own (white-box) numbers (with a leaderboard: one more entry).",
)
@split_option
@seed_option("Seed of the random-sign noise control.")
@batch_size_option
@_name_option(None, "transfer; leaderboard for a leaderboard")
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
@json_option
@quiet_option
@verbose_option
def transfer(
    model_paths,
    dataset_dir,
    source,
    source_model_path,
    split,
    seed,
    batch_size,
    name,
    as_leaderboard,
    out_dir,
    unsafe_model,
    overwrite,
    as_json,
    quiet,
    verbose,
    model_input,
):
    """Accuracy and loss of a target model on the original and the adversarial split (paper section IV).

    With several --model (or an hf:// model, a hub: dataset, or --leaderboard): one leaderboard of all
    of them, sorted by adversarial accuracy, as NAME.json (RobustBench-style entries) and NAME.md.
    """
    _setup(verbose)
    from cifar10_fgs.hub import is_hub_ref, is_model_uri

    if as_leaderboard or len(model_paths) > 1 or is_hub_ref(dataset_dir) or any(is_model_uri(m) for m in model_paths):
        _leaderboard(
            model_paths,
            dataset_dir,
            source,
            source_model_path,
            split,
            seed,
            batch_size,
            name,
            out_dir,
            unsafe_model,
            overwrite,
            as_json,
            quiet,
            model_input,
        )
        return
    if out_dir is not None:
        raise click.UsageError("--out applies to a leaderboard: add --leaderboard, or omit --out")
    from cifar10_fgs.evaluate import evaluate_transfer

    r = evaluate_transfer(
        model_paths[0],
        dataset_dir,
        source,
        source_model_path=source_model_path,
        split=split,
        seed=seed,
        batch_size=batch_size,
        name=name or "transfer",
        overwrite=overwrite,
        unsafe_model=unsafe_model,
        progress=not (quiet or as_json),
        model_input=model_input,
    )
    if as_json:
        emit_json(r)
        return
    sets = (("original", r.original), ("adversarial", r.adversarial), ("random-sign control", r.control))
    click.echo(f"{r.num_rows_used} of {r.num_rows_split} {r.split} rows used")
    click.echo(
        table(
            [(k, fmt(m.accuracy), fmt(m.loss), fmt(m.mean_confidence)) for k, m in sets],
            ("set", "accuracy", "loss", "mean confidence"),
        )
    )
    c = r.confidence
    click.echo(
        f"accuracy drop {r.accuracy_drop:.4f} (random-sign control {r.control_accuracy_drop:.4f}); "
        f"mean original confidence: fooled {_fmt(c['fooled']['mean_original_confidence'])} "
        f"(n={c['fooled']['rows']}), held {_fmt(c['held']['mean_original_confidence'])} (n={c['held']['rows']})"
    )
    _written(r, dataset_dir)


def _leaderboard(
    model_paths,
    dataset_dir,
    source,
    source_model_path,
    split,
    seed,
    batch_size,
    name,
    out_dir,
    unsafe_model,
    overwrite,
    as_json,
    quiet,
    model_input,
) -> None:
    from cifar10_fgs.evaluate.leaderboard import DEFAULT_NAME, evaluate_leaderboard

    models = [*model_paths, *([source_model_path] if source_model_path else [])]
    board = evaluate_leaderboard(
        models,
        dataset_dir,
        source,
        out_dir=out_dir,
        name=name or DEFAULT_NAME,
        split=split,
        seed=seed,
        batch_size=batch_size,
        unsafe_model=unsafe_model,
        overwrite=overwrite,
        progress=not (quiet or as_json),
        model_input=model_input,
    )
    if as_json:
        emit_json(board)
        return
    click.echo(f"{board.dataset}: {board.num_rows_used} of {board.num_rows_split} {board.split} rows")
    click.echo(
        table(
            [
                (
                    e.rank,
                    e.name,
                    fmt(e.clean_acc),
                    fmt(e.adversarial_acc),
                    fmt(e.accuracy_drop),
                    fmt(e.random_sign_control_drop),
                    f"{e.parameters:,}",
                    f"{e.images_per_second:.0f}",
                    e.sha256[:12],
                )
                for e in board.entries
            ],
            (
                "rank",
                "model",
                "clean acc",
                "adversarial acc",
                "drop",
                "random-sign drop",
                "parameters",
                "images/s",
                "sha256",
            ),
        )
    )
    click.echo(f"wrote {board.json_path}, {board.markdown_path}")


@command.command("retrain")
@dataset_option
@eval_source_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    required=True,
    metavar="RETRAINED.keras",
    help="Where to save the retrained model (a .json with its provenance goes beside it).",
)
@click.option(
    "--mode",
    type=click.Choice([m.value for m in RetrainMode]),
    default=RetrainMode.ADVERSARIAL.value,
    show_default=True,
    help="adversarial: train on the adversarial train split (the paper); mixed: original + adversarial.",
)
@epochs_option("the target recipe's")
@click.option(
    "--target-model",
    "target_model_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="TARGET.keras",
    help="The original target network, to compare before and after.",
)
@seed_option("Training seed.")
@batch_size_option
@_name_option(None, "retrain, or retrain_mixed")
@unsafe_model_option
@overwrite_option()
@json_option
@quiet_option
@verbose_option
def retrain(
    dataset_dir,
    source,
    out,
    mode,
    epochs,
    target_model_path,
    seed,
    batch_size,
    name,
    unsafe_model,
    overwrite,
    as_json,
    quiet,
    verbose,
):
    """Adversarial training of the target architecture, then both test sets for both networks (section V)."""
    _setup(verbose)
    from cifar10_fgs.evaluate import evaluate_retrain

    r = evaluate_retrain(
        dataset_dir,
        out,
        source,
        mode=mode,
        epochs=epochs,
        target_model_path=target_model_path,
        seed=seed,
        batch_size=batch_size,
        name=name,
        overwrite=overwrite,
        unsafe_model=unsafe_model,
        progress=not (quiet or as_json),
    )
    if as_json:
        emit_json(r)
        return
    rows = []
    if r.target_original is not None:
        rows.append(
            ("original target", fmt(r.target_original.accuracy), fmt(r.target_adversarial.accuracy), fmt(r.drop_before))
        )
    rows.append(
        ("retrained", fmt(r.retrained_original.accuracy), fmt(r.retrained_adversarial.accuracy), fmt(r.drop_after))
    )
    click.echo(table(rows, ("network", "original acc", "adversarial acc", "drop")))
    click.echo(
        f"{'trained' if r.trained else 'reused'} {r.model_path} ({r.mode}, {r.epochs} epochs, "
        f"{r.train_seconds / 60:.1f} min of training)"
    )
    _written(r, dataset_dir)


_VARIANT_CHOICES = ("spatial-uint8", "spatial-float", "paper-scalar-float", "all")


@command.command("gaussian")
@click.option(
    "--models",
    "model_paths",
    required=True,
    callback=_parse_models,
    metavar="A.keras[,B.keras...]",
    help="Comma-separated models, e.g. TARGET.keras,RETRAINED.keras.",
)
@dataset_option
@eval_source_option
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
    type=click.Choice(_VARIANT_CHOICES),
    multiple=True,
    help="How to apply the filter (repeatable; default spatial-uint8): spatial-uint8 = each channel over "
    "height and width, rounded to uint8; spatial-float = the same, not rounded; paper-scalar-float = "
    "one sigma over (H, W, C) of each image, not rounded (our best reading of the paper); all = the three.",
)
@split_option
@batch_size_option
@_name_option("gaussian", "gaussian")
@unsafe_model_option
@model_input_options
@overwrite_option()
@json_option
@quiet_option
@verbose_option
def gaussian(
    model_paths,
    dataset_dir,
    source,
    stds,
    variants,
    split,
    batch_size,
    name,
    unsafe_model,
    overwrite,
    as_json,
    quiet,
    verbose,
    model_input,
):
    """Gaussian filtering as a defence: accuracy per variant, std, model and test set (paper section VI)."""
    _setup(verbose)
    from cifar10_fgs.evaluate import ALL_VARIANTS, DEFAULT_VARIANTS, SETS, cost_key, evaluate_gaussian

    if "all" in variants:
        variants = ALL_VARIANTS
    r = evaluate_gaussian(
        model_paths,
        dataset_dir,
        source,
        stds=stds,
        variants=variants or DEFAULT_VARIANTS,
        split=split,
        batch_size=batch_size,
        name=name,
        overwrite=overwrite,
        unsafe_model=unsafe_model,
        progress=not (quiet or as_json),
        model_input=model_input,
    )
    if as_json:
        emit_json(r)
        return
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
    click.echo(table(rows, headers))
    _written(r, dataset_dir)


@command.command("paper")
@dataset_option
@click.option(
    "--readme",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    metavar="README.md",
    help="Also put the comparison between this README's paper-comparison markers.",
)
@json_option
@quiet_option
@verbose_option
def paper(dataset_dir, readme, as_json, quiet, verbose):
    """The paper's numbers beside ours: DIR/results/paper.md and paper.json from the results present."""
    _setup(verbose)
    from cifar10_fgs.evaluate.comparison import splice_into_readme, write_paper_comparison

    r = write_paper_comparison(dataset_dir)
    if readme:
        splice_into_readme(readme, r, dataset_dir)
    if as_json:
        emit_json(r.report)
        return
    mark = {True: "yes", False: "no", None: "not measured"}
    click.echo(
        table(
            [(e.section, e.claim, e.label or "-", e.ours, mark[e.reproduced]) for e in r.effects],
            ("section", "effect in the paper", "run", "ours", "reproduced"),
        )
    )
    click.echo(f"wrote {r.json_path}, {r.markdown_path}")
