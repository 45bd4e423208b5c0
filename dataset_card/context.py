"""``build_context(inputs) -> dict``: every value the card template shows, as a pure function of its inputs.

This module holds the field descriptions, the summary, the attack, model and provenance tables and the
limitations; the statistics tables are ``statistics``'.
"""

from __future__ import annotations

import json
from pathlib import PurePath

from cifar10_fgs.formatting import fmt

from .render import (
    MARKER,
    CardInputs,
    architecture_name,
    convention_text,
    feature_type,
    md_table,
    method_name,
    ordered_splits,
    pretty_name,
)
from .statistics import statistics_tables

FIELD_DESCRIPTIONS = {
    "image": "The adversarial image: 32x32 RGB, lossless PNG, exactly the uint8 pixels the source model misclassifies.",
    "label": "The true CIFAR-10 class of the original image.",
    "index": "Row of the original image in the CIFAR-10 source split (in the source's own order), for a whole split "
    "and a `--limit` subset alike: joins back to the original, row `index` of that split.",
    "original_prediction": "The source model's prediction on the original image.",
    "original_confidence": "Softmax probability of `original_prediction` on the original image.",
    "adversarial_prediction": "The source model's prediction on the adversarial image (never equal to `label`).",
    "adversarial_confidence": "Softmax probability of `adversarial_prediction` on the adversarial image.",
    "iterations": "Steps on the path that fooled the image (for `restart`, including the steps its random start stands "
    "for), so linf <= 0.01 * iterations; 0 means the model already misclassified the original, stored "
    "unchanged.",
    "phase": "How the image was fooled (ClassLabel): `unchanged` (already misclassified), `fgs` (the paper's sign "
    "steps), `runner_up` (margin against the current runner-up, after the paper's path stalled), "
    "`targeted` (margin toward the original's 2nd/3rd runner-up class), `restart` (a seeded random start "
    "inside the L-inf ball reached so far, then runner-up steps). Every path starts at the original.",
    "linf": "L-infinity norm of (adversarial - original), as a fraction of the pixel range [0, 255].",
    "l2": "L2 norm of (adversarial - original) over all 3072 values, as a fraction of the pixel range.",
    "original_image": "The original CIFAR-10 image (PNG), as read from the source.",
}
METHOD_FIELD_DESCRIPTIONS = {
    "onepixel": {
        "iterations": "Differential-evolution generations run (0 if the initial population already fooled the model, "
        "or the original was already misclassified).",
    },
}


def _name(path) -> str:
    return PurePath(str(path)).name or str(path)


def _limitations(inputs: CardInputs) -> list[str]:
    m, stats = inputs.manifest, inputs.stats
    cifar10 = str(m.data_source.source or "")
    if any(t in cifar10.lower() for t in ("jpeg", "jpg")):
        out = [
            "The source images were read from a JPEG re-encoding of CIFAR-10, not the original batches: "
            "their pixels are close to, but not the same as, the canonical CIFAR-10 pixels, and the "
            "`index` column follows that copy's order. Join back to the originals only with the same source."
        ]
    else:
        out = [
            f"The `index` column is the row in the source split as read from `{_name(cifar10)}` (in that "
            "source's order); join back to the originals only with the same source."
        ]
    acc = m.source_model.test_accuracy
    if isinstance(acc, (int, float)) and acc < 0.9:
        out.append(
            f"The source model reaches only {acc:.4f} test accuracy, so many images were already misclassified "
            "and are stored unchanged. Filter on `original_prediction == label` for images the attack "
            "actually changed."
        )
    elif any(s.already_misclassified for s in stats.values()):
        out.append(
            "Images the source model already misclassified are stored unchanged; filter on "
            "`original_prediction == label` for images the attack actually changed."
        )
    out.append(
        "The perturbations are made against one model (white-box). They transfer only weakly to other "
        "architectures: the seed paper measured a 2.57-point accuracy drop on a simple deep CNN. Accuracy "
        "on this set measures robustness to this specific attack on this specific model, not adversarial "
        "robustness in general."
    )
    fails = sum(s.not_fooled for s in stats.values())
    if fails:
        out.append(
            f"{fails} images were not fooled within the attack's budget and "
            "are absent (their indices are listed in `generation.json`), so the splits are not complete."
        )
    for s, st in stats.items():
        present = [inputs.class_names[i] for i in range(len(inputs.class_names)) if st.confusion[i].sum()]
        if len(present) < len(inputs.class_names):
            out.append(
                f"The {s} split holds only {len(present)} of the 10 classes ({', '.join(present) or 'none'}): "
                "it is not a class-balanced sample of CIFAR-10 (e.g. the first rows of a source sorted by class)."
            )
    partial = [s for s, st in stats.items() if st.num_images < inputs.full_split_sizes.get(s, st.num_images)]
    splits = inputs.manifest.config.splits
    sampled = [s for s in partial if s in splits and splits[s].subset is not None]
    first = [s for s in partial if s not in sampled]
    if sampled:
        out.append(
            "A seeded class-balanced subset of "
            + ", ".join(f"{stats[s].num_images} {s}" for s in sampled)
            + " images was attacked (a `--limit` run), not whole CIFAR-10 splits. `index` is still the CIFAR-10 "
            "row; `generation.json`'s `config.splits.<split>.subset.original_rows` lists the subset's rows."
        )
    if first:
        out.append(
            "Only the first "
            + ", ".join(f"{stats[s].num_images} {s}" for s in first)
            + " images were attacked (a `--limit` run), not whole CIFAR-10 splits."
        )
    out.append(
        "Every image is stored as the exact uint8 pixels the attack produced (lossless PNG). Re-encoding "
        "(JPEG, resizing) or a different preprocessing may undo the perturbation."
    )
    return out


def _attack(inputs: CardInputs) -> tuple[list[tuple[str, str]], str]:
    """(rows of the attack table, the "how it was generated" paragraph)."""
    cfg = inputs.manifest.config
    attack = cfg.attack
    if inputs.method == "onepixel":
        settings = cfg.onepixel
        rows = [
            (
                "attack",
                "one-pixel attack (Su, Vargas and Sakurai 2019): differential evolution over one pixel "
                "(row, column, r, g, b) minimising the probability of the true class",
            ),
            (
                "settings",
                ", ".join(f"{k} {v}" for k, v in sorted(settings.items()))
                if isinstance(settings, dict)
                else "not recorded in generation.json (the cifar10-fgs defaults of the generating version)",
            ),
            ("stop rule", "per image, as soon as a candidate image is misclassified"),
            ("`iterations`", "differential-evolution generations run"),
        ]
        how = (
            "Each image is attacked by differential evolution over a single pixel: candidates set one pixel to "
            "any colour, and the search stops at the first candidate the source model misclassifies. Images the "
            "model already misclassifies are stored unchanged; images never fooled are left out. This is the "
            "paper's slow baseline, far more expensive per image than the gradient attack."
        )
        return rows, how
    levels = f"{cfg.step * cfg.pixel_range:g}"
    rows = [
        ("attack", "untargeted iterative fast gradient sign (Goodfellow et al. 2014), one sign step per iteration"),
        ("step", f"{attack['step']} of the pixel range = {levels} levels per iteration"),
        ("max iterations", str(attack["max_iterations"])),
        ("pixel range", "[0, 255] (uint8 levels, clipped every step)"),
        ("loss", "logsumexp of the other logits minus the true logit (same gradient sign as cross-entropy)"),
        ("stop rule", "per image, as soon as the rounded uint8 image is misclassified"),
        ("batch size", str(attack.get("batch_size", ""))),
    ]
    how = (
        "Each image starts at its original pixels. At every iteration the uint8 image is classified by the "
        "source model; if it is misclassified the image is stored, otherwise it moves one step of "
        f"{attack['step']} × (pixel range) = {levels} levels in the direction of the sign of the loss "
        "gradient with respect to the input, and is clipped to the pixel range. Images still correctly "
        f"classified after {attack['max_iterations']} iterations count as not fooled and are left out. The "
        "stored image is exactly the uint8 image the model misclassified."
    )
    return rows, how


def _model_rows(inputs: CardInputs) -> tuple[list, list]:
    """(rows of the source-model table, rows of its training-recipe table)."""
    model = inputs.manifest.source_model
    num = lambda v: fmt(v) if isinstance(v, (int, float)) else "not recorded"  # noqa: E731
    rows = [
        (
            "architecture",
            f"{architecture_name(inputs.manifest, inputs.flip_suffix)} (`{model.architecture or 'unknown'}`)",
        ),
        ("file", f"`{model.path or 'unknown'}`"),
        ("sha256", f"`{model.sha256 or 'unknown'}`"),
        ("outputs", str(model.outputs)),
        ("input convention", convention_text(model.input_convention)),
        ("test accuracy", num(model.test_accuracy)),
        ("test loss", num(model.test_loss)),
    ]
    if isinstance(model.train_accuracy, (int, float)):  # recorded by `train` since it measures the train split
        rows.append(("train-split accuracy (unaugmented)", num(model.train_accuracy)))
    network = model.network or {}
    if isinstance(network.get("test_accuracy"), (int, float)):  # flip-averaged: what the network scores alone
        rows.append(
            (
                "the network alone (no flip averaging)",
                f"test accuracy {num(network['test_accuracy'])}, train split {num(network.get('train_accuracy'))}",
            )
        )
    if model.train_data:
        rows.append(
            (
                "training data",
                f"{model.train_data.get('num_images', '?')} images from `{_name(model.train_data.get('source', '?'))}`",
            )
        )
    recipe = [
        (k, json.dumps(v) if isinstance(v, (dict, list)) or v is None else str(v))
        for k, v in sorted((model.recipe or {}).items())
    ]
    return rows, recipe


def _provenance(inputs: CardInputs) -> dict:
    """The data, shard and timing tables."""
    m, layout = inputs.manifest, inputs.layout
    data_rows = [
        (
            s,
            str(m.config.splits[s].num_rows),
            str(m.config.splits[s].num_shards or ""),
            f"`{m.config.splits[s].fingerprint or ''}`",
        )
        for s in ordered_splits(m.config.splits)
    ]
    shard_rows = [
        (f"`{name}`", str(rows), str(m.shards[name].bytes), f"`{m.shards[name].sha256}`")
        for s in layout.splits.values()
        for name, rows in zip(s.files, s.rows)
    ]
    return {
        "data_source": _name(m.data_source.source or "unknown"),
        "data_table": md_table(
            ["split", "images attacked", "shards", "sha256 fingerprint of pixels + labels"], data_rows
        ),
        "rows_per_shard": m.config.rows_per_shard,
        "shard_table": md_table(["file", "rows", "bytes", "sha256"], shard_rows),
        "versions": ", ".join(f"{k} {v}" for k, v in sorted(m.library_versions.items())),
        "attack_seconds": f"{m.timing.attack_seconds:.1f}",
    }


def build_context(inputs: CardInputs) -> dict:
    """Every name the template uses."""
    m, layout = inputs.manifest, inputs.layout
    cfg = m.config
    split_names = list(layout.splits)
    descriptions = {**FIELD_DESCRIPTIONS, **METHOD_FIELD_DESCRIPTIONS.get(inputs.method, {})}
    fields = [(f"`{name}`", feature_type(feat), descriptions.get(name, "")) for name, feat in layout.features.items()]
    attack_rows, how = _attack(inputs)
    model_rows, recipe_rows = _model_rows(inputs)
    summary = (
        f"{layout.num_examples} adversarial CIFAR-10 images ("
        + ", ".join(f"{s.num_examples} {s.name}" for s in layout.splits.values())
        + f") made with an untargeted {method_name(inputs.method)} on a CIFAR-10 "
        + f"{architecture_name(m, inputs.flip_suffix).split(' (')[0]}, "
        + ("following" if inputs.method == "fgs" else "as the baseline of")
        + " Sean Johnson, *Adversarial Machine Learning with Untargeted Fast Gradient Sign Attack on CIFAR10 "
        "EfficientNet* (UMass Amherst). Every stored image is misclassified by the source model."
    )
    return {
        "marker": MARKER,
        "pretty_name": pretty_name(inputs),
        "summary": summary,
        "repo_id": inputs.repo_id,
        "load_path": inputs.repo_id or f"path/to/{inputs.folder_name}",
        "split_names": split_names,
        "first_split": split_names[0],
        "fields_table": md_table(["field", "type", "description"], fields),
        "class_names": ", ".join(f"{i} {n}" for i, n in enumerate(inputs.class_names)),
        "has_originals": "original_image" in layout.features,
        "attack_table": md_table(["setting", "value"], attack_rows),
        "model_table": md_table(["", ""], model_rows),
        "shipped_model": inputs.shipped_model if inputs.repo_id else None,  # (model, provenance) in the repo
        "model_convention": convention_text(inputs.manifest.source_model.input_convention),
        "recipe_table": md_table(["recipe", "value"], recipe_rows) if recipe_rows else "",
        **_provenance(inputs),
        **statistics_tables(inputs),
        "figures": inputs.figures,
        "notes": list(inputs.notes),
        "results": list(inputs.results),
        "paper_comparison": inputs.paper_comparison,
        "results_tables": {r.name: md_table(["metric", "value"], r.numbers) for r in inputs.results if r.numbers},
        "limitations": _limitations(inputs),
        "method": inputs.method,
        "how_generated": how,
        "step": cfg.attack["step"],
        "step_levels": f"{cfg.step * cfg.pixel_range:g}",
        "max_iterations": cfg.attack["max_iterations"],
        "patience": cfg.attack.get("patience", "-"),
    }
