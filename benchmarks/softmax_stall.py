"""Confident images and a softmax model: does the attack stall? Before (probabilities taken for logits) and after.

    python benchmarks/softmax_stall.py --cifar10 DATA [--train-limit 10000] [--epochs 8] [--images 300]

Trains a small keras.io-style CNN (pixels x / 255 in, ``Dense(10, activation="softmax")`` out) on a
class-balanced subset of the train split, takes the test images it classifies correctly with ``p_y > 0.99``
(at most ``--images``, balanced by class where it can) and attacks them with ``cifar10_fgs.attack`` fed four ways:

* ``undeclared``: nothing declared, so [0, 255] pixels in and the probabilities taken for logits (what any
  Keras model got before conventions applied to Keras);
* ``probabilities_as_logits``: the right pixels ([0, 1]), the probabilities still taken for logits;
* ``log_probabilities``: the right pixels, logits = log(max(p, tiny)) (the fallback for a model whose softmax is
  hidden: here the model nested in a ``Sequential``, so no final softmax layer is seen);
* ``pre_softmax``: the right pixels, the logits before the final softmax (what a declared softmax model gets).

Every variant runs the default attack (``AttackConfig()``: 200 steps, the stall ladder) and the paper's loop alone
(``escalate=False``). "Fooled" is counted on the model fed as it expects (x / 255): for ``undeclared`` the
attacked graph is not the model's. Writes sorted JSON to ``benchmarks/softmax_stall.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def keras_io_cnn():
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
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ],
        name="keras_io_cnn",
    )


def confident_rows(p: np.ndarray, labels: np.ndarray, threshold: float, limit: int) -> np.ndarray:
    """Rows classified correctly with p_y > threshold, round-robin over the classes, at most ``limit``."""
    ok = (p.argmax(axis=1) == labels) & (p[np.arange(len(p)), labels] > threshold)
    per_class = [list(np.flatnonzero(ok & (labels == c))) for c in range(10)]
    rows: list[int] = []
    while len(rows) < limit and any(per_class):
        for c in range(10):
            if per_class[c] and len(rows) < limit:
                rows.append(per_class[c].pop(0))
    return np.sort(np.asarray(rows, np.int64))


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
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("softmax_stall.json"))
    args = p.parse_args(argv)

    keras.utils.set_random_seed(0)
    train, _, _ = load_cifar10_rows(args.source, "train", lambda y: balanced_rows(y, args.train_limit, 0))
    test = load_cifar10(args.source, "test")
    model = keras_io_cnn()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    t = time.perf_counter()
    model.fit(train.images / np.float32(255), train.labels, epochs=args.epochs, batch_size=64, verbose=2)
    train_seconds = time.perf_counter() - t

    def fed_as_expected(images):
        return model.predict(images.astype(np.float32) / 255, batch_size=500, verbose=0)

    probs = fed_as_expected(test.images)
    accuracy = float((probs.argmax(axis=1) == test.labels).mean())
    rows = confident_rows(probs, test.labels, args.threshold, args.images)
    images, labels = test.images[rows], test.labels[rows]
    p_y = probs[rows, labels]
    print(f"test accuracy {accuracy:.4f}; {len(rows)} confident images, p_y min {p_y.min():.6f}", flush=True)

    probs01 = InputConvention(Layout.NHWC, 1.0, None, None, Output.PROBABILITIES)
    as_logits01 = InputConvention(Layout.NHWC, 1.0, None, None, Output.LOGITS)
    nested = keras.Sequential([keras.Input((32, 32, 3)), model], name="nested")  # hides the final softmax layer
    variants = {
        "undeclared": (model, None),
        "probabilities_as_logits": (model, as_logits01),
        "log_probabilities": (nested, probs01),
        "pre_softmax": (model, probs01),
    }
    results = {}
    for loop, settings in (("default", {}), ("paper_loop", {"escalate": False})):
        for name, (m, conv) in variants.items():
            results[f"{loop}/{name}"] = run_variant(name, m, images, labels, conv, settings, fed_as_expected)
    out = {
        "command": " ".join(["python", *sys.argv]),
        "source": args.source,
        "model": {
            "architecture": "keras.io simple convnet, Dense(10, softmax)",
            "train_images": len(train),
            "epochs": args.epochs,
            "train_seconds": round(train_seconds, 1),
            "test_accuracy": round(accuracy, 4),
        },
        "images": {
            "count": len(rows),
            "threshold": args.threshold,
            "p_y_min": float(p_y.min()),
            "saturated": int((p_y == 1.0).sum()),  # p_y rounds to 1 in float32
            "per_class": np.bincount(labels, minlength=10).tolist(),
        },
        "results": results,
        "library_versions": library_versions(),
    }
    args.out.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
