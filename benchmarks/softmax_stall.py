"""Confident images and a softmax model: does the attack stall? Before (probabilities taken for logits) and after.

    python benchmarks/softmax_stall.py --cifar10 DATA [--train-limit 10000] [--epochs 8] [--images 300]
                                      [--dropout 0.5] [--model-file M.keras]

Trains a small keras.io-style CNN (pixels x / 255 in, ``Dense(10, activation="softmax")`` out) on a
class-balanced subset of the train split (or loads ``--model-file`` when it exists; a trained model is saved
there), then attacks two sets of images the model classifies correctly, at most ``--images`` each, balanced by
class where it can:

* ``confident``: test images with ``p_y > --threshold`` (0.99);
* ``saturated``: images whose ``p_y`` is exactly 1 in float32 (every other probability rounds to 0), from the
  test split, topped up from the train split when the test split has too few.

Each set is attacked with ``cifar10_fgs.attack`` fed four ways:

* ``undeclared``: nothing declared, so [0, 255] pixels in and the probabilities taken for logits (what any
  Keras model got before conventions applied to Keras);
* ``undeclared_pixels_pre_softmax``: the same wrong [0, 255] pixels, but the logits before the softmax: it
  isolates the softmax (the graph attacked is the same function of the pixels as ``undeclared``'s);
* ``probabilities_as_logits``: the right pixels ([0, 1]), the probabilities still taken for logits;
* ``log_probabilities``: the right pixels, logits = log(max(p, tiny)) (the fallback for a model whose softmax is
  hidden: here the model nested in a ``Sequential``, so no final softmax layer is seen);
* ``pre_softmax``: the right pixels, the logits before the final softmax (what a declared softmax model gets).

Every variant runs the default attack (``AttackConfig()``: 200 steps, the stall ladder) and the paper's loop alone
(``escalate=False``). "Fooled" is counted on the model fed as it expects (x / 255): for the ``undeclared``
variants the attacked graph is not the model's, so ``fooled_by_the_attacked_graph`` is reported too, with
``zero_gradient_at_the_original``: images whose first gradient is exactly zero (a saturated softmax).
Writes sorted JSON to ``benchmarks/softmax_stall.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def keras_io_cnn(dropout: float = 0.5):
    import keras

    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dropout(dropout),
            layers.Dense(10, activation="softmax"),
        ],
        name="keras_io_cnn",
    )


def chosen_rows(ok: np.ndarray, labels: np.ndarray, limit: int) -> np.ndarray:
    """Rows where ``ok``, round-robin over the classes, at most ``limit``, ascending."""
    per_class = [list(np.flatnonzero(ok & (labels == c))) for c in range(10)]
    rows: list[int] = []
    while len(rows) < limit and any(per_class):
        for c in range(10):
            if per_class[c] and len(rows) < limit:
                rows.append(per_class[c].pop(0))
    return np.sort(np.asarray(rows, np.int64))


def trained_model(args, train):
    """(the keras.io CNN: loaded from ``--model-file`` if it exists, else trained (and saved there), train seconds)."""
    import keras

    if args.model_file is not None and args.model_file.exists():
        return keras.saving.load_model(args.model_file), None
    model = keras_io_cnn(args.dropout)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    t = time.perf_counter()
    model.fit(train.images / np.float32(255), train.labels, epochs=args.epochs, batch_size=64, verbose=2)
    seconds = round(time.perf_counter() - t, 1)
    if args.model_file is not None:
        model.save(args.model_file)
    return model, seconds


def image_sets(args, fed_as_expected, test, train) -> tuple[dict, float]:
    """{set name: (images, labels, description)} of the ``confident`` and ``saturated`` sets; test accuracy."""
    probs = {"test": fed_as_expected(test.images)}
    accuracy = float((probs["test"].argmax(axis=1) == test.labels).mean())
    p_y = probs["test"][np.arange(len(test)), test.labels]
    right = probs["test"].argmax(axis=1) == test.labels
    rows = chosen_rows(right & (p_y > args.threshold), test.labels, args.images)
    sets = {"confident": (test.images[rows], test.labels[rows], _describe(rows, p_y[rows], test.labels[rows]))}
    sat_rows = chosen_rows(right & (p_y == 1.0), test.labels, args.images)
    images, labels, where = test.images[sat_rows], test.labels[sat_rows], {"test": len(sat_rows)}
    if len(sat_rows) < args.images:
        pt = fed_as_expected(train.images)
        pt_y = pt[np.arange(len(train)), train.labels]
        more = chosen_rows(
            (pt.argmax(axis=1) == train.labels) & (pt_y == 1.0), train.labels, args.images - len(sat_rows)
        )
        images, labels = np.concatenate([images, train.images[more]]), np.concatenate([labels, train.labels[more]])
        where["train"] = len(more)
    sets["saturated"] = (
        images,
        labels,
        {**_describe(np.arange(len(labels)), np.ones(len(labels)), labels), "from": where},
    )
    for name, (_, _, info) in sets.items():
        print(name, json.dumps(info, sort_keys=True), flush=True)
    return sets, accuracy


def _describe(rows, p_y, labels) -> dict:
    return {
        "count": len(rows),
        "p_y_min": float(p_y.min()) if len(rows) else None,
        "saturated": int((p_y == 1.0).sum()),  # p_y rounds to 1 in float32
        "per_class": np.bincount(labels, minlength=10).tolist(),
    }


def zero_gradients(model, images, labels, convention) -> int:
    """Images whose loss gradient (the attack's first step) is exactly zero: the saturated-softmax stall."""
    from cifar10_fgs.attack.call import _fed
    from cifar10_fgs.attack.gradient import make_gradient_fn

    fn, zero = make_gradient_fn(_fed(model, convention).model), 0
    for i in range(0, len(images), 100):
        x, y = images[i : i + 100].astype(np.float32), labels[i : i + 100].astype(np.int32)
        _, g = fn(x, y)
        zero += int((np.abs(np.asarray(g)).reshape(len(x), -1).sum(axis=1) == 0).sum())
    return zero


def run_variant(name: str, model, images, labels, convention, settings: dict, fed_as_expected) -> dict:
    import cifar10_fgs

    t = time.perf_counter()
    rec = cifar10_fgs.attack(model, images, labels, convention=convention, **settings)
    fooled = fed_as_expected(rec.adversarial).argmax(axis=1) != labels
    steps = rec.iterations[fooled]
    row = {
        "fooled": int(fooled.sum()),
        "of": len(labels),
        "fooled_fraction": round(float(fooled.mean()), 4),
        "fooled_by_the_attacked_graph": int(rec.fooled.sum()),
        "mean_iterations_of_fooled": round(float(steps.mean()), 2) if len(steps) else None,
        "median_linf_levels_of_fooled": float(np.median(rec.linf[fooled]) * 255) if fooled.any() else None,
        "gradient_evaluations": int(rec.evaluations.sum()),
        "zero_gradient_at_the_original": zero_gradients(model, images, labels, convention),
        "seconds": round(time.perf_counter() - t, 1),
    }
    print(name, json.dumps(row, sort_keys=True), flush=True)
    return row


def main(argv=None) -> None:
    import keras

    from cifar10_fgs.data import load_cifar10, load_cifar10_rows
    from cifar10_fgs.data.split import balanced_rows
    from cifar10_fgs.models.convention import InputConvention, Layout, Output
    from cifar10_fgs.provenance import library_versions

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cifar10", dest="source", required=True, help="CIFAR-10 input, as for `cifar10-fgs run --cifar10`")
    p.add_argument("--train-limit", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--images", type=int, default=300, help="confident test images attacked, at most")
    p.add_argument("--threshold", type=float, default=0.99)
    p.add_argument("--dropout", type=float, default=0.5, help="before the classifier (keras.io: 0.5; 0 over-fits)")
    p.add_argument("--model-file", type=Path, default=None, help="load this model if it exists, else save it here")
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("softmax_stall.json"))
    args = p.parse_args(argv)

    keras.utils.set_random_seed(0)
    train, _, _ = load_cifar10_rows(args.source, "train", lambda y: balanced_rows(y, args.train_limit, 0))
    test = load_cifar10(args.source, "test")
    model, train_seconds = trained_model(args, train)

    def fed_as_expected(images):
        return model.predict(images.astype(np.float32) / 255, batch_size=500, verbose=0)

    sets, test_accuracy = image_sets(args, fed_as_expected, test, train)
    probs01 = InputConvention(Layout.NHWC, 1.0, None, None, Output.PROBABILITIES)
    as_logits01 = InputConvention(Layout.NHWC, 1.0, None, None, Output.LOGITS)
    nested = keras.Sequential([keras.Input((32, 32, 3)), model], name="nested")  # hides the final softmax layer
    probs255 = InputConvention(Layout.NHWC, 255.0, None, None, Output.PROBABILITIES)
    variants = {
        "undeclared": (model, None),
        "undeclared_pixels_pre_softmax": (model, probs255),
        "probabilities_as_logits": (model, as_logits01),
        "log_probabilities": (nested, probs01),
        "pre_softmax": (model, probs01),
    }
    results = {}
    for set_name, (images, labels, _) in sets.items():
        if not len(labels):
            continue
        for loop, settings in (("default", {}), ("paper_loop", {"escalate": False})):
            for name, (m, conv) in variants.items():
                key = f"{set_name}/{loop}/{name}"
                results[key] = run_variant(key, m, images, labels, conv, settings, fed_as_expected)
    out = {
        "command": " ".join(["python", *sys.argv]),
        "source": args.source,
        "model": {
            "architecture": f"keras.io simple convnet, dropout {args.dropout:g}, Dense(10, softmax)",
            "train_images": len(train),
            "epochs": args.epochs,
            "train_seconds": train_seconds,
            "test_accuracy": round(test_accuracy, 4),
        },
        "images": {name: info for name, (_, _, info) in sets.items()},
        "results": results,
        "library_versions": library_versions(),
    }
    args.out.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
