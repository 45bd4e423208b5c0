"""Export a Keras model of this project to ONNX and check that the export predicts what Keras predicts.

    pip install "cifar10-fgs[onnx]" tf2onnx
    python benchmarks/export_onnx.py target.keras target-onnx/target.onnx --check ../shared/data/cifar10-jpeg.tar.gz

Keras 3 exports through tf2onnx (``model.export(path, format="onnx")``). The file takes what the Keras
model takes, NHWC pixels in [0, 255], so ``cifar10-fgs.json`` beside it declares ``{"layout": "NHWC",
"scale": 255}`` (put the export in a folder of its own: the sidecar applies to every ``.onnx`` there).
With ``--check DATA`` the first ``--rows`` test images of DATA (any CIFAR-10 source ``load_cifar10``
reads) go through both the Keras model and the ONNX file (in onnxruntime, as ``evaluate transfer``
runs it); the script prints how many predictions agree and the largest logit difference, and fails
unless every prediction agrees. The export is refused over an existing file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from cifar10_fgs.models.convention import SIDECAR
from cifar10_fgs.provenance import sha256_file

SIDECAR_TEXT = {"layout": "NHWC", "scale": 255, "output": "logits"}


def export(model_path: Path, out: Path) -> dict:
    from cifar10_fgs.models.networks import load_model

    try:
        import tf2onnx  # noqa: F401 - Keras imports it itself; checked here to say what to install
    except ImportError:
        sys.exit("Keras 3 exports to ONNX through tf2onnx, which is not installed: pip install tf2onnx")
    if out.exists() or (out.parent / SIDECAR).exists():
        sys.exit(f"{out} or {out.parent / SIDECAR} exists: choose another folder (nothing is overwritten)")
    model = load_model(model_path)
    model(np.zeros((1, 32, 32, 3), np.float32), training=False)  # Keras exports only a model that has been called
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    model.export(str(out), format="onnx", verbose=False)
    (out.parent / SIDECAR).write_text(json.dumps(SIDECAR_TEXT, indent=2) + "\n")
    return {"seconds": round(time.time() - t0, 1), "sha256": sha256_file(out), "keras_sha256": sha256_file(model_path)}


def check(model_path: Path, out: Path, data: str, rows: int, batch_size: int) -> dict:
    """Both models on the first ``rows`` test images of ``data``: agreement, logit difference, accuracies."""
    from cifar10_fgs.data import load_cifar10
    from cifar10_fgs.evaluate.metrics import classify
    from cifar10_fgs.models.forward import load_classifier

    test = load_cifar10(data, "test")
    pick = np.random.default_rng(0).permutation(len(test.labels))[:rows]  # the JPEG copy is sorted by class
    images, labels = test.images[pick], test.labels[pick]
    keras_model, onnx_model = load_classifier(model_path), load_classifier(out)
    k = classify(keras_model, images, labels, batch_size)
    o = classify(onnx_model, images, labels, batch_size)
    return {
        "rows": int(len(labels)),
        "same_prediction": int((k.predictions == o.predictions).sum()),
        "max_abs_logit_difference": float(np.abs(k.logits - o.logits).max()),
        "keras_accuracy": k.accuracy,
        "onnx_accuracy": o.accuracy,
        "onnx": onnx_model.describe(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="the .keras model (e.g. the trained target)")
    parser.add_argument("out", type=Path, help="the .onnx file to write (in a folder of its own)")
    parser.add_argument("--check", metavar="DATA", help="CIFAR-10 to compare the two on (its test split)")
    parser.add_argument("--rows", type=int, default=500, help="test images compared (a seeded random sample)")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    report = {"model": str(args.model), "out": str(args.out), "export": export(args.model, args.out)}
    if args.check:
        report["check"] = check(args.model, args.out, args.check, args.rows, args.batch_size)
    print(json.dumps(report, indent=2, sort_keys=True))
    if args.check and report["check"]["same_prediction"] != report["check"]["rows"]:
        sys.exit("the export predicts differently from the Keras model on some images")


if __name__ == "__main__":
    main()
