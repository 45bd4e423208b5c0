"""Adversarial retraining (paper section V): train the target architecture on the adversarial train split.

``mode="adversarial"`` trains on the adversarial train rows (the paper); ``"mixed"`` on the original
train split plus the adversarial rows. Both test sets are then measured for the retrained network and,
when given, the original target network, with the accuracy drop before and after.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cifar10_fgs.config import RetrainMode
from cifar10_fgs.data import Cifar10Split
from cifar10_fgs.errors import ConfigError, ExistingOutputError
from cifar10_fgs.evaluate.joined import JoinedSplit
from cifar10_fgs.evaluate.metrics import SETS, SetMetrics, classify
from cifar10_fgs.evaluate.results import check_name
from cifar10_fgs.evaluate.results import md_table as _md_table
from cifar10_fgs.evaluate.results import model_info as _model_info
from cifar10_fgs.evaluate.results import progress_bar as _progress_bar
from cifar10_fgs.evaluate.results import rows_note as _rows_note
from cifar10_fgs.evaluate.skeleton import EvaluateOptions, EvaluationFiles, begin
from cifar10_fgs.formatting import fmt
from cifar10_fgs.models.networks import check_keras_path
from cifar10_fgs.provenance import sha256_file
from cifar10_fgs.recipes import RECIPES, Arch
from cifar10_fgs.training.saved import read_model_metadata, trained_model_matches
from cifar10_fgs.training.train import train_model

log = logging.getLogger(__name__)


RETRAIN_MODES = tuple(m.value for m in RetrainMode)


@dataclass(frozen=True)
class RetrainResult(EvaluationFiles):  # its field names are the keys of `evaluate retrain --json`
    model_path: str  # the retrained model
    mode: str
    epochs: int
    trained: bool  # False if an identical earlier retraining at model_path was reused
    train_seconds: float  # total training time recorded for the model (all resumed runs)
    retrained_original: SetMetrics
    retrained_adversarial: SetMetrics
    drop_after: float
    target_original: SetMetrics | None
    target_adversarial: SetMetrics | None
    drop_before: float | None
    report: dict


def retrain_split(train: JoinedSplit, mode: str, where: str = "the dataset") -> Cifar10Split:
    """The training data of ``mode``: the adversarial rows, or every original row followed by them."""
    mode = _check_mode(mode)
    if mode == "adversarial":
        return Cifar10Split(train.adversarial, train.labels, f"adversarial train split of {where}", "train")
    if mode == "mixed":
        return Cifar10Split(
            np.concatenate([train.original_split.images, train.adversarial]),
            np.concatenate([train.original_split.labels, train.labels]),
            f"original + adversarial train split of {where}",
            "train",
        )
    raise AssertionError(mode)  # unreachable: _check_mode accepts only the modes above


def device_description() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = []
        for g in gpus:
            try:
                names.append(tf.config.experimental.get_device_details(g).get("device_name") or g.name)
            except Exception:  # noqa: BLE001 - details are best effort
                names.append(g.name)
        return ", ".join(names)
    return f"CPU ({os.cpu_count()} logical cores)"


@dataclass(frozen=True)
class RetrainOptions(EvaluateOptions):
    name: str | None = None  # None: "retrain" for the paper's mode, else "retrain_<mode>"
    mode: RetrainMode | str = RetrainMode.ADVERSARIAL  # what to train on
    epochs: int | None = None  # None: the target recipe's
    target_model: str | Path | None = None  # the original target network, measured before and after
    seed: int = 0  # training seed


DEFINITIONS = {
    "modes": {
        "adversarial": "trained on the adversarial train rows with their original labels",
        "mixed": "trained on every original train image plus the adversarial train rows",
    },
    "sets": {"original": "original test images at the joined rows", "adversarial": "their adversarial copies"},
    "accuracy_drop_before": "target (original network): accuracy on original minus on adversarial",
    "accuracy_drop_after": "retrained network: accuracy on original minus on adversarial",
    "training.seconds": "wall time of model.fit summed over epochs (all resumed runs), from the model's metadata",
}


def evaluate_retrain(
    dataset_dir: str | Path, retrained_model: str | Path, options: RetrainOptions = RetrainOptions()
) -> RetrainResult:
    """Adversarial training of the target architecture, then both test sets for both networks (section V).

    ``mode="adversarial"`` trains on the adversarial train rows (the paper); ``"mixed"`` on the
    original train split plus the adversarial rows. Labels are the original labels. The recipe is
    ``recipes.TARGET_RECIPE`` (``options.epochs`` overrides its epochs); ``training.train_model`` saves
    the model to ``retrained_model`` with its own metadata and resumes after an interruption. If ``retrained_model`` already
    holds a model trained by the same recipe, seed and data, it is reused instead of retrained.
    """
    o = options
    mode, epochs, seed, batch_size, progress = o.mode, o.epochs, o.seed, o.batch_size, o.progress
    retrained_model = Path(retrained_model)
    mode = _check_mode(mode)
    if epochs is not None and (int(epochs) != epochs or epochs < 1):
        raise ConfigError(f"--epochs {epochs} is invalid: expected an integer >= 1")
    if o.model_input:  # it would be ignored
        raise ConfigError(
            "model_input would be ignored: evaluate retrain trains and scores the target architecture as it is; drop it"
        )
    check_keras_path(retrained_model)
    name = check_name(o.name or ("retrain" if mode == "adversarial" else f"retrain_{mode}"))
    ev = begin("retrain", dataset_dir, name, ["train", "test"], batch_size)
    recipe = RECIPES[Arch.TARGET].with_epochs(epochs)
    claim_retrained_model(retrained_model, recipe, seed, o.overwrite)  # before the data is read
    models = {}
    target = None
    if o.target_model is not None:
        target, models["target"] = _model_info(o.target_model, o.unsafe_model)
    settings = {
        "mode": mode,
        "recipe": recipe.to_json(),
        "seed": seed,
        "batch_size": batch_size,
        "out": retrained_model.name,
    }
    ev = ev.claim(settings, models, o.overwrite)  # before training: the retrained model is an output

    joined, cifar10 = ev.load(o)
    te = joined["test"]
    train = retrain_split(joined["train"], mode, str(ev.dataset_dir))
    test = Cifar10Split(te.original, te.labels, f"{cifar10} (test rows of {ev.dataset_dir})", "test")
    meta, reused = _train(retrained_model, train, test, recipe, seed, o.overwrite, progress)
    retrained, models["retrained"] = _model_info(retrained_model, o.unsafe_model)

    bar = _progress_bar(2 + (2 if target is not None else 0), "retrain evaluation", progress)
    res: dict[str, dict[str, SetMetrics]] = {}
    for role, model in (("retrained", retrained), ("target", target)):
        if model is not None:
            res[role] = {}
            for set_name, images in (("original", te.original), ("adversarial", te.adversarial)):
                res[role][set_name] = classify(model, images, te.labels, batch_size).metrics()
                bar.update(1)
    bar.close()
    results = _results(res, mode, recipe.epochs, train, meta, reused, retrained_model)
    report = ev.report(joined, cifar10, DEFINITIONS, results)
    w = ev.write(
        report,
        _retrain_markdown(report, te),
        {f"{name}.png": _retrain_figure(results)},
        "Adversarial retraining of the target",
    )
    tgt = res.get("target", {})
    return RetrainResult(
        **w.files(),
        model_path=str(retrained_model),
        mode=mode,
        epochs=recipe.epochs,
        trained=not reused,
        train_seconds=results["training"]["seconds"],
        retrained_original=res["retrained"]["original"],
        retrained_adversarial=res["retrained"]["adversarial"],
        drop_after=results["accuracy_drop_after"],
        target_original=tgt.get("original"),
        target_adversarial=tgt.get("adversarial"),
        drop_before=results["accuracy_drop_before"],
        report=report,
    )


def claim_retrained_model(retrained_model: Path, recipe, seed: int, overwrite: bool) -> None:
    """A model at ``retrained_model`` not trained with ``recipe`` and ``seed`` is kept unless ``overwrite``
    (``ExistingOutputError``); one that was is reused if its data match too (known once the data are read)."""
    if overwrite or not retrained_model.exists():
        return
    meta = read_model_metadata(retrained_model)
    made = (meta.get("recipe"), meta.get("seed"), meta.get("sha256"))
    if made != (recipe.to_json(), seed, sha256_file(retrained_model)):
        raise ExistingOutputError(retrained_model, "was not retrained with this recipe and seed")


def _check_mode(mode) -> str:
    try:
        return RetrainMode(mode).value
    except ValueError:
        raise ConfigError(f"mode {mode!r} is invalid: expected one of {', '.join(RETRAIN_MODES)}") from None


def _train(
    retrained_model: Path, train: Cifar10Split, test: Cifar10Split, recipe, seed: int, overwrite: bool, progress: bool
) -> tuple[dict, bool]:
    """Train (or reuse an identical earlier training at ``retrained_model``): (the model's metadata, reused?)."""

    reused = trained_model_matches(retrained_model, train, recipe, seed)  # even with overwrite: it is the same model
    if reused:
        log.info("reusing %s: trained earlier with the same recipe, seed and data", retrained_model)
    else:
        log.info("training %s on %d images (%d epochs)", retrained_model, len(train), recipe.epochs)
        train_model(
            train,
            test,
            retrained_model,
            arch=Arch.TARGET,
            recipe=recipe,
            seed=seed,
            overwrite=overwrite,
            progress=progress,
        )
    return read_model_metadata(retrained_model), reused


def _results(
    res: dict[str, dict[str, SetMetrics]],
    mode: str,
    epochs: int,
    train: Cifar10Split,
    meta: dict,
    reused: bool,
    retrained_model: Path,
) -> dict:
    results: dict[str, Any] = {  # the results JSON object: per-role metrics, drops, training
        role: {
            **{k: dataclasses.asdict(v) for k, v in r.items()},
            "accuracy_drop": r["original"].accuracy - r["adversarial"].accuracy,
        }
        for role, r in res.items()
    }
    results["accuracy_drop_after"] = results["retrained"]["accuracy_drop"]
    results["accuracy_drop_before"] = results["target"]["accuracy_drop"] if "target" in res else None
    seconds = float(meta.get("train_seconds_total") or 0.0)
    results["training"] = {
        "mode": mode,
        "epochs": epochs,
        "train_images": len(train),
        "seconds": seconds,
        "minutes": round(seconds / 60.0, 2),
        "device": device_description(),
        "reused_existing_model": reused,
        "model_metadata": str(retrained_model.with_suffix(".json")),
        "train_data_fingerprint": train.fingerprint(),
        "history": meta.get("history", []),
    }
    return results


def _retrain_markdown(report: dict, te: JoinedSplit) -> str:
    r = report["results"]
    t = r["training"]
    rows = []
    if "target" in r:
        rows.append(
            (
                f"Original target `{report['models']['target']['file']}`",
                *(f"{fmt(r['target'][s]['accuracy'])} ({fmt(r['target'][s]['loss'])})" for s in SETS),
                fmt(r["target"]["accuracy_drop"]),
            )
        )
    rows.append(
        (
            f"Retrained `{report['models']['retrained']['file']}` ({t['mode']}, {t['epochs']} epochs)",
            *(f"{fmt(r['retrained'][s]['accuracy'])} ({fmt(r['retrained'][s]['loss'])})" for s in SETS),
            fmt(r["retrained"]["accuracy_drop"]),
        )
    )
    out = [f"Test set: {_rows_note(te)}. Cells: accuracy (loss).\n\n"]
    out.append(_md_table(("Network", "Original set", "Adversarial set", "Accuracy drop"), rows))
    if "target" not in r:
        out.append("\nPass `--target-model` to compare with the original target network.\n")
    out.append(
        f"\nRetraining: {t['train_images']} images, {t['epochs']} epochs, {t['minutes']:.1f} min on {t['device']}.\n"
    )
    return "".join(out)


def _retrain_figure(results: dict):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.6))
    ax = fig.add_subplot()
    roles = [r for r in ("target", "retrained") if r in results]
    x = np.arange(len(roles))
    for k, s in enumerate(SETS):
        vals = [results[r][s]["accuracy"] for r in roles]
        bars = ax.bar(x + (k - 0.5) * 0.38, vals, 0.38, label=f"{s} test set")
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks(x, ["original target" if r == "target" else "retrained" for r in roles])
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title("Adversarial retraining")
    ax.legend(fontsize=8, loc="lower right")
    return fig
