"""Is a short training of the source usable? The source recipe cut to a few epochs, scored both ways.

    python benchmarks/short_source.py --cifar10 DATA [--epochs 4] [--train-limit 10000] [--out DIR]

Trains ``recipes.SOURCE_RECIPE`` cut to ``--epochs`` on the seeded class-balanced ``--train-limit`` training
images (what ``cifar10-fgs train --arch source --epochs 4 --train-limit 10000`` trains), once, and scores the
same weights on every test image twice: with Keras' moving batch-norm averages (what a cut schedule saved
before it recomputed them) and with the statistics recomputed over the training images (what ``train`` saves
now, ``TrainRecipe.with_epochs``). For each: test accuracy, the largest share of one predicted class, and
whether ``generate``'s source check (``config.SourceCheck``) accepts it. Writes ``benchmarks/short_source.json``
and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent


def score(model, test, check) -> dict:
    from cifar10_fgs.models.inference import predict_logits

    pred = predict_logits(model, test.images, batch_size=512).argmax(axis=1)
    accuracy = float((pred == test.labels).mean())
    share = float(np.bincount(pred, minlength=10).max() / len(pred))
    accepted = accuracy > check.min_accuracy and share <= check.max_class_share
    return {"test_accuracy": round(accuracy, 4), "largest_class_share": round(share, 4), "source_check": accepted}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cifar10", required=True, help="any CIFAR-10 copy load_cifar10 reads (e.g. an image tarball)")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--train-limit", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="folder for the model (default: a temporary one)")
    args = ap.parse_args()

    from cifar10_fgs.config import SourceCheck
    from cifar10_fgs.data import load_cifar10, load_cifar10_rows
    from cifar10_fgs.data.split import balanced_rows
    from cifar10_fgs.models.networks import load_model, network_of
    from cifar10_fgs.recipes import SOURCE_RECIPE, Arch
    from cifar10_fgs.training.averaging import recompute_batchnorm
    from cifar10_fgs.training.train import train_model

    train, _, _ = load_cifar10_rows(args.cifar10, "train", lambda y: balanced_rows(y, args.train_limit, args.seed))
    test = load_cifar10(args.cifar10, "test")
    cut = SOURCE_RECIPE.with_epochs(args.epochs)
    moving = dataclasses.replace(cut, recompute_batchnorm=False)  # the same training, saved without the recompute
    out = Path(args.out or tempfile.mkdtemp()) / "short_source.keras"
    t0 = time.time()
    train_model(train, test, out, arch=Arch.SOURCE, recipe=moving, seed=args.seed, overwrite=True)
    seconds = time.time() - t0
    model = load_model(out)
    check = SourceCheck()
    before = score(model, test, check)
    t1 = time.time()
    recompute_batchnorm(network_of(model), train.images, seed=args.seed)
    after = score(model, test, check)
    report = {
        "command": f"train --arch source --epochs {args.epochs} --train-limit {args.train_limit}",
        "recipe_recomputes_batchnorm": cut.recompute_batchnorm,
        "train_seconds": round(seconds, 1),
        "recompute_seconds": round(time.time() - t1, 1),
        "test_images": len(test),
        "moving_averages": before,
        "recomputed": after,
    }
    (HERE / "short_source.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(f"{report['command']}: {seconds:.0f} s of training, {len(test)} test images")
    print("| batch-norm statistics | test accuracy | largest class share | generate's source check |")
    print("|---|---|---|---|")
    for name, r in (("Keras moving averages", before), ("recomputed (what train saves)", after)):
        verdict = "accepts" if r["source_check"] else "refuses"
        print(f"| {name} | {r['test_accuracy']:.4f} | {r['largest_class_share']:.3f} | {verdict} |")


if __name__ == "__main__":
    main()
