"""Transfer (paper section IV): the target model on the original split and its adversarial copy.

Also: per-class accuracy, the original confidence of rows whose adversarial copy fooled the target vs
those it did not, a random-sign-noise control at the same per-image L-infinity, and the source
model's own (white-box) numbers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifar10_fgs.data import CLASS_NAMES, NUM_CLASSES
from cifar10_fgs.evaluate.joined import JoinedSplit
from cifar10_fgs.evaluate.metrics import (
    CONFIDENCE_GROUPS,
    Classification,
    SetMetrics,
    classify,
    confidence_split,
    linf_levels,
    per_class_accuracy,
    random_sign_control,
)
from cifar10_fgs.evaluate.results import classifier_info as _classifier_info
from cifar10_fgs.evaluate.results import md_table as _md_table
from cifar10_fgs.evaluate.results import progress_bar as _progress_bar
from cifar10_fgs.evaluate.results import rows_note as _rows_note
from cifar10_fgs.evaluate.skeleton import EvaluateOptions, EvaluationFiles, begin
from cifar10_fgs.formatting import fmt


@dataclass(frozen=True)
class TransferResult(EvaluationFiles):
    split: str
    num_rows_used: int
    num_rows_split: int
    original: SetMetrics
    adversarial: SetMetrics
    control: SetMetrics
    accuracy_drop: float
    control_accuracy_drop: float
    confidence: dict  # confidence_split() of the target
    report: dict  # everything written to json_path


@dataclass(frozen=True)
class TransferOptions(EvaluateOptions):
    name: str = "transfer"
    split: str = "test"  # the split evaluated
    seed: int = 0  # seeds the random-sign control (with each row's index)
    source_model: str | Path | None = None  # also report the attacked model's own (white-box) numbers


DEFINITIONS = {
    "sets": {
        "original": "the original images at the joined rows",
        "adversarial": "their adversarial copies from the dataset",
        "random_sign_control": "each original plus random +-1 signs times its adversarial copy's L-infinity "
        "(pixel levels), clipped to [0, 255]; signs from numpy default_rng([control_seed, index])",
        "original_all_rows": "the original images of every generated row, including rows absent from the dataset",
    },
    "confidence": {
        **{g: f"rows where {d}" for g, d in CONFIDENCE_GROUPS.items()},
        "mean_original_confidence": "mean softmax max of the target's logits on the original image",
        "mean_adversarial_confidence": "mean softmax max of the target's logits on the adversarial copy",
        "fooling_rate": "fooled / (fooled + held): of the originals the target gets right, "
        "the share whose adversarial copy it gets wrong",
    },
}


def evaluate_transfer(
    dataset_dir: str | Path, target_model: str | Path, options: TransferOptions = TransferOptions()
) -> TransferResult:
    """The target model on the original split and its adversarial copy (paper section IV).

    Also: per-class accuracy, a random-sign control (each original plus random +-1 signs at the
    same per-image L-infinity as its adversarial copy, seeded by ``options.seed`` and the row index),
    and the source model's white-box numbers when ``options.source_model`` is given. ``target_model`` may be a
    ``.keras`` or an ``.onnx`` file; ``options.model_input`` (a ``convention.Declared``) declares how the target
    takes its pixels, as a ``cifar10-fgs.json`` beside it may (see ``models.convention``). The source model is
    fed as ``generation.json`` records it was attacked (its sidecar must agree).
    """
    o = options
    name, split, seed, batch_size = o.name, o.split, o.seed, o.batch_size
    ev = begin("transfer", dataset_dir, name, [split], batch_size)
    target, target_info = _classifier_info(target_model, o.unsafe_model, o.model_input)
    models = {"target": target_info}
    source_model = None
    if o.source_model is not None:
        recorded = ev.generation.recorded_convention(o.source_model)  # fed as generate fed it
        source_model, info = _classifier_info(o.source_model, o.unsafe_model, recorded=recorded)
        info["generated_the_dataset"] = info["sha256"] == ev.generation.source_model_sha256
        models["source"] = info
    ev = ev.claim({"split": split, "control_seed": seed, "batch_size": batch_size}, models, o.overwrite)

    joined, cifar10 = ev.load(o)
    j = joined[split]
    bar = _progress_bar(
        3 + (3 if source_model is not None else 0) + (1 if j.failures else 0), f"transfer {split}", o.progress
    )
    linf = linf_levels(j.adversarial, j.original)
    sets = {
        "original": j.original,
        "adversarial": j.adversarial,
        "random_sign_control": random_sign_control(j.original, linf, seed, keys=j.index),
    }
    tgt = _classify_sets(target, sets, j.labels, batch_size, bar)
    full = tgt["original"].metrics()
    if j.failures:
        full = classify(target, j.original_split.images, j.original_split.labels, batch_size).metrics()
        bar.update(1)
    src = _classify_sets(source_model, sets, j.labels, batch_size, bar) if source_model is not None else {}
    bar.close()

    results = {
        "target": _target_results(tgt, full, j.labels),
        "perturbation": {
            "linf_levels_mean": float(linf.mean()),
            "linf_levels_median": float(np.median(linf)),
            "linf_levels_max": int(linf.max()),
            "unchanged_rows": int((linf == 0).sum()),
        },
    }
    if src:
        results["source"] = _source_results(src, j.columns["adversarial_prediction"])
    report = ev.report(joined, cifar10, DEFINITIONS, results)
    figures = {
        f"{name}_per_class.png": _per_class_figure(results["target"]["per_class_accuracy"], split),
        f"{name}_confidence.png": _confidence_figure(tgt["original"], tgt["adversarial"]),
    }
    w = ev.write(report, _transfer_markdown(report, j), figures, "Transfer to the target model")
    m = {k: c.metrics() for k, c in tgt.items()}
    t = results["target"]
    return TransferResult(
        **w.files(),
        split=split,
        num_rows_used=len(j),
        num_rows_split=j.num_rows_split,
        original=m["original"],
        adversarial=m["adversarial"],
        control=m["random_sign_control"],
        accuracy_drop=t["accuracy_drop"],
        control_accuracy_drop=t["random_sign_control_accuracy_drop"],
        confidence=t["confidence"],
        report=report,
    )


def _classify_sets(model, sets: dict, labels: np.ndarray, batch_size: int, bar) -> dict[str, Classification]:
    out = {}
    for set_name, images in sets.items():
        out[set_name] = classify(model, images, labels, batch_size)
        bar.update(1)
    return out


def _target_results(tgt: dict[str, Classification], full: SetMetrics, labels: np.ndarray) -> dict:
    m = {k: c.metrics() for k, c in tgt.items()}
    drop = m["original"].accuracy - m["adversarial"].accuracy
    control_drop = m["original"].accuracy - m["random_sign_control"].accuracy
    conf = confidence_split(tgt["original"], tgt["adversarial"])
    correct_first = conf["fooled"]["rows"] + conf["held"]["rows"]
    class_acc = {k: per_class_accuracy(tgt[k].correct, labels) for k in tgt}
    class_rows = np.bincount(labels, minlength=NUM_CLASSES)
    per_class = {
        CLASS_NAMES[c]: {"rows": int(class_rows[c]), **{k: class_acc[k][c] for k in tgt}} for c in range(NUM_CLASSES)
    }
    return {
        **{k: dataclasses.asdict(v) for k, v in m.items()},
        "original_all_rows": dataclasses.asdict(full),
        "accuracy_drop": drop,
        "loss_increase": m["adversarial"].loss - m["original"].loss,
        "random_sign_control_accuracy_drop": control_drop,
        "drop_beyond_random_noise": drop - control_drop,
        "confidence": conf,
        "fooling_rate": conf["fooled"]["rows"] / correct_first if correct_first else None,
        "per_class_accuracy": per_class,
    }


def _source_results(src: dict[str, Classification], stored_prediction: np.ndarray) -> dict:
    sm = {k: c.metrics() for k, c in src.items()}
    return {
        **{k: dataclasses.asdict(v) for k, v in sm.items()},
        "accuracy_drop": sm["original"].accuracy - sm["adversarial"].accuracy,
        "random_sign_control_accuracy_drop": sm["original"].accuracy - sm["random_sign_control"].accuracy,
        "agrees_with_stored_adversarial_prediction": float(
            (src["adversarial"].predictions == stored_prediction).mean()
        ),
    }


def _transfer_markdown(report: dict, j: JoinedSplit) -> str:
    r = report["results"]["target"]
    tfile = report["models"]["target"]["file"]
    sets = ("original", "adversarial", "random_sign_control")
    out = [
        f"Target model `{tfile}` on {_rows_note(j)}. The random-sign control adds random ±1 noise "
        "at the same per-image L∞ as each adversarial copy.\n\n"
    ]
    out.append(
        _md_table(
            ("", "Original set", "Adversarial set", "Random-sign control"),
            [
                ("Accuracy", *(fmt(r[s]["accuracy"]) for s in sets)),
                ("Loss", *(fmt(r[s]["loss"]) for s in sets)),
                ("Mean confidence", *(fmt(r[s]["mean_confidence"]) for s in sets)),
                ("Accuracy drop", "—", fmt(r["accuracy_drop"]), fmt(r["random_sign_control_accuracy_drop"])),
            ],
        )
    )
    c = r["confidence"]
    labels = {
        "fooled": "Fooled (correct → wrong)",
        "held": "Held (correct → correct)",
        "recovered": "Recovered (wrong → correct)",
        "both_wrong": "Both wrong",
    }
    out.append(
        "\nMean confidence (softmax max) of the target's classification of the *original* image, by what its "
        "adversarial copy did to the target:\n\n"
    )
    out.append(
        _md_table(
            ("Rows (target on original → on adversarial)", "Rows", "Mean original confidence"),
            [(labels[g], c[g]["rows"], fmt(c[g]["mean_original_confidence"])) for g in labels],
        )
    )
    pc = r["per_class_accuracy"]
    out.append("\nPer-class accuracy of the target:\n\n")
    out.append(
        _md_table(
            ("Class", "Rows", "Original", "Adversarial", "Random-sign control"),
            [(k, v["rows"], *(fmt(v[s]) for s in sets)) for k, v in pc.items()],
        )
    )
    if "source" in report["results"]:
        s = report["results"]["source"]
        sinfo = report["models"]["source"]
        note = "" if sinfo.get("generated_the_dataset") else " (not the model that generated the dataset)"
        out.append(f"\nSource model `{sinfo['file']}`{note}, white-box:\n\n")
        out.append(
            _md_table(
                ("", "Original set", "Adversarial set", "Random-sign control"),
                [("Accuracy", *(fmt(s[x]["accuracy"]) for x in sets)), ("Loss", *(fmt(s[x]["loss"]) for x in sets))],
            )
        )
    return "".join(out)


def _per_class_figure(per_class: dict, split: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.6))
    ax = fig.add_subplot()
    x = np.arange(NUM_CLASSES)
    for k, (key, label) in enumerate(
        (("original", "original"), ("adversarial", "adversarial"), ("random_sign_control", "random-sign control"))
    ):
        vals = [np.nan if v[key] is None else v[key] for v in per_class.values()]
        ax.bar(x + (k - 1) * 0.27, vals, 0.27, label=label)
    ax.set_xticks(x, list(per_class), rotation=30)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(f"Target per-class accuracy ({split} split)")
    ax.legend(fontsize=8)
    return fig


def _confidence_figure(orig: Classification, adv: Classification):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot()
    oc, ac = orig.correct, adv.correct
    conf = orig.confidence
    bins = np.linspace(0, 1, 21).tolist()  # the same 21 edges; matplotlib's stubs take a sequence
    for mask, label in ((oc & ~ac, "fooled (correct → wrong)"), (oc & ac, "held (correct → correct)")):
        if mask.any():
            ax.hist(conf[mask], bins=bins, alpha=0.6, density=True, label=f"{label}, n={int(mask.sum())}")
    ax.set_xlabel("target confidence on the original image (softmax max)")
    ax.set_ylabel("density")
    ax.set_title("Original confidence vs transfer success")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "the target gets no original right", ha="center", transform=ax.transAxes)
    return fig
