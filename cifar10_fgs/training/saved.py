"""The trained model on disk and its ``MODEL.json``: the one writer and reader of that record.

``save_final`` writes the finished model (no optimizer state, flip-averaged and batch-norm recomputed as the recipe
says) with its provenance beside it; ``read_model_metadata`` reads it back; ``trained_model_matches`` says whether a
saved model is exactly a run's output; ``evaluate_model`` gives the accuracy and loss the record holds;
``TrainResult`` is what a run returns of it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cifar10_fgs.config import PREDICT_BATCH_SIZE
from cifar10_fgs.data import Cifar10Split
from cifar10_fgs.models.inference import predict_logits
from cifar10_fgs.models.networks import architecture, build_model, flip_averaged
from cifar10_fgs.provenance import library_versions, read_json, sha256_file, write_json
from cifar10_fgs.recipes import Arch, TrainRecipe
from cifar10_fgs.training.averaging import recompute_batchnorm

if TYPE_CHECKING:  # init_from reads the metadata through this module
    from cifar10_fgs.training.init_from import InitFrom

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What a finished training returns: where the model and its ``MODEL.json`` are, and the scores they record."""

    model_path: str  # a --json key of `train`, so not renamed
    metadata_path: str
    test_accuracy: float
    test_loss: float
    epochs: int
    seconds: float  # of training in this run
    sha256: str  # of the saved .keras file
    train_accuracy: float  # on the training images as given (no augmentation): its misses are stored unchanged
    train_loss: float


def trained_model_matches(path: str | Path, train: Cifar10Split, recipe: TrainRecipe, seed: int) -> bool:
    """True if ``path`` is a finished ``train_model`` output of exactly this data, recipe and seed."""
    path = Path(path)
    if not path.is_file():
        return False
    meta = read_model_metadata(path)
    return (
        meta.get("sha256") == sha256_file(path)
        and (meta.get("train_data") or {}).get("fingerprint") == train.fingerprint()
        and meta.get("recipe") == recipe.to_json()
        and meta.get("seed") == seed
    )


def model_metadata_path(model_path: str | Path) -> Path:
    return Path(model_path).with_suffix(".json")


def read_model_metadata(model_path: str | Path) -> dict:
    """The JSON that ``train_model`` wrote beside a model, or {} for a model from elsewhere."""
    meta = model_metadata_path(model_path)
    if meta.is_file():
        try:
            found = read_json(meta)
        except (OSError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}
    return {}


def evaluate_model(
    model, images: np.ndarray, labels: np.ndarray, batch_size: int = PREDICT_BATCH_SIZE
) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of a logits model on uint8 images."""

    logits = predict_logits(model, images, batch_size=batch_size)
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = float(-logp[np.arange(len(labels)), labels].mean())
    acc = float((logits.argmax(axis=1) == labels).mean())
    return acc, loss


def save_final(
    weights: list,
    out: Path,
    arch: Arch,
    recipe: TrainRecipe,
    seed: int,
    train: Cifar10Split,
    test: Cifar10Split,
    seconds: float,
    history: list[dict],
    init: InitFrom | None = None,
    averaged: Sequence[int] = (),
) -> TrainResult:
    """Save a clean model of ``weights`` (no optimizer state) to ``out`` with its metadata beside it.

    ``averaged``: the epochs ``weights`` average; the batch-norm statistics are then recomputed first (and
    always with ``recipe.recompute_batchnorm``).
    """
    final = build_model(recipe)
    final.set_weights(weights)
    if averaged or recipe.recompute_batchnorm:
        recompute_batchnorm(final, train.images, seed=seed)
    network = {}
    if recipe.flip_average:  # the network's own scores too: what the mirror adds stays visible
        network = {
            "name": final.name,
            "test_accuracy": evaluate_model(final, test.images, test.labels)[0],
            "train_accuracy": evaluate_model(final, train.images, train.labels)[0],
        }
        final = flip_averaged(final)
    acc, loss = evaluate_model(final, test.images, test.labels)
    train_acc, train_loss = evaluate_model(final, train.images, train.labels)
    tmp = out.with_name(f".{out.name}.tmp.keras")
    final.save(tmp)
    digest = sha256_file(tmp)
    meta = {
        "arch": arch.value,
        "architecture": architecture(final),
        "recipe": recipe.to_json(),
        "seed": seed,
        "epochs": recipe.epochs,
        "train_data": {"source": train.origin, "fingerprint": train.fingerprint(), "num_images": len(train)},
        "test_data": {"source": test.origin, "fingerprint": test.fingerprint(), "num_images": len(test)},
        "test_accuracy": acc,
        "test_loss": loss,
        "train_accuracy": train_acc,  # the training images without augmentation
        "train_loss": train_loss,
        "train_seconds_total": round(sum(r.get("seconds", 0) for r in history), 1) or round(seconds, 1),
        "history": history,
        **({"init_from": init.provenance()} if init else {}),
        **({"averaged_epochs": list(averaged)} if averaged else {}),  # SWA: the mean of these epochs' weights
        **({"network": network} if network else {}),  # flip_average: the scores of the network alone
        "sha256": digest,
        "outputs": "logits",
        "input": "uint8-range pixels [0, 255], shape (32, 32, 3)",
        "library_versions": library_versions(),
    }
    write_json(model_metadata_path(out), meta)  # first, so a model in place always has its metadata
    tmp.replace(out)
    log.info("test accuracy %.4f, loss %.4f; train split %.4f; saved %s", acc, loss, train_acc, out)
    return TrainResult(
        str(out), str(model_metadata_path(out)), acc, loss, recipe.epochs, seconds, digest, train_acc, train_loss
    )
