"""What test-time flip averaging adds to a trained network, on the test split (and optionally the train split).

    python benchmarks/flip_average.py --cifar10 DATA MODEL.keras [MODEL.keras ...] [--train]

For each model (a plain network, or a flip-averaged one: its network is taken out of it) prints the accuracy
of the network, of the network on mirrored images, of the mean of the two views' logits (what
``models.flip_averaged`` computes) and of the mean of their probabilities, and writes them as sorted JSON
to ``benchmarks/flip_average.json``, keyed by each model file's sha256.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def accuracies(network, images: np.ndarray, labels: np.ndarray) -> dict:
    from cifar10_fgs.models.inference import predict_logits, softmax

    plain = predict_logits(network, images)
    mirrored = predict_logits(network, images[:, :, ::-1].copy())
    return {
        "network": float((plain.argmax(1) == labels).mean()),
        "mirrored": float((mirrored.argmax(1) == labels).mean()),
        "logit_mean": float(((plain + mirrored).argmax(1) == labels).mean()),
        "probability_mean": float(((softmax(plain) + softmax(mirrored)).argmax(1) == labels).mean()),
    }


def main(argv=None) -> None:
    from cifar10_fgs.data import load_cifar10
    from cifar10_fgs.models.networks import architecture, load_model, network_of
    from cifar10_fgs.provenance import library_versions, sha256_file

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("--cifar10", required=True, help="CIFAR-10 input, as for `cifar10-fgs run --cifar10`")
    p.add_argument("--train", action="store_true", help="the train split too")
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("flip_average.json"))
    args = p.parse_args(argv)
    splits = {name: load_cifar10(args.cifar10, name) for name in ("test", *(("train",) if args.train else ()))}
    results = {}
    for path in args.models:
        model = load_model(path)
        network = network_of(model)
        t = time.perf_counter()
        row = {name: accuracies(network, s.images, s.labels) for name, s in splits.items()}
        row.update(file=path.name, architecture=architecture(model), seconds=round(time.perf_counter() - t, 1))
        digest = sha256_file(path)
        results[digest] = row
        print(path.name, json.dumps(row, sort_keys=True))
    out = {
        "command": " ".join(["python", *sys.argv]),
        "source": args.cifar10,
        "results": results,
        "library_versions": library_versions(),
    }
    args.out.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
