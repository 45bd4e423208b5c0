"""Weight averaging over the ends of the learning-rate cycles (SWA over SGDR snapshots), owned here.

Izmailov et al., *Averaging Weights Leads to Wider Optima and Better Generalization* (2018): the average
of the weights that a cyclic schedule reaches at the end of each cycle generalises better than any one
of them. Averaged weights do not match the batch-norm statistics of any of the models, so those are
recomputed afterwards over the training images, in training mode (the mean exactly; the variance as the
mean of the batch variances).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cifar10_fgs.errors import OutputError
from cifar10_fgs.provenance import atomic_write_bytes
from cifar10_fgs.recipes import BATCHNORM_BATCH, TrainRecipe

log = logging.getLogger(__name__)


def average_weights(weight_lists: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
    """The element-wise mean of several models' ``get_weights()``; non-float arrays are taken from the last."""
    if not weight_lists:
        raise ValueError("no weights to average")
    shapes = [[w.shape for w in ws] for ws in weight_lists]
    if any(s != shapes[0] for s in shapes):
        raise ValueError("the models to average have different weights: average models of one architecture")
    return [
        np.mean(np.stack(group), axis=0).astype(group[0].dtype)
        if np.issubdtype(group[0].dtype, np.floating)
        else np.array(group[-1])
        for group in zip(*weight_lists)
    ]


def recompute_batchnorm(model, images: np.ndarray, *, batch_size: int = BATCHNORM_BATCH, seed: int = 0) -> int:
    """Set every BatchNormalization layer's moving mean and variance to their average over ``images``.

    One pass in training mode, with the layers' momentum set per batch so the running statistics are
    the size-weighted average of the batches' (as PyTorch's ``update_bn`` does: the variance is the mean
    of the batch variances). Returns the number of layers updated.
    """
    import keras

    layers = [lay for lay in model._flatten_layers() if isinstance(lay, keras.layers.BatchNormalization)]
    if not layers:
        return 0
    momenta = [(lay.momentum, lay.trainable) for lay in layers]
    for lay in layers:
        lay.trainable = True  # Keras updates the statistics of trainable layers only
        lay.moving_mean.assign(np.zeros(lay.moving_mean.shape, "float32"))
        lay.moving_variance.assign(np.ones(lay.moving_variance.shape, "float32"))
    order = np.random.default_rng(seed).permutation(len(images))
    try:
        for start in range(0, len(order), batch_size):
            batch = images[np.sort(order[start : start + batch_size])].astype("float32")
            for lay in layers:  # weight each batch by its size: the running value is the mean so far
                lay.momentum = start / (start + len(batch))
            model(batch, training=True)
    finally:  # on an error the statistics are left half-computed: the caller discards the model
        for lay, (m, trainable) in zip(layers, momenta):
            lay.momentum, lay.trainable = m, trainable
    log.info("recomputed the statistics of %d batch-norm layers over %d images", len(layers), len(images))
    return len(layers)


def snapshot_path(ckpt_dir: Path, epoch: int) -> Path:
    """Where the weights at the end of ``epoch`` (a cycle end) are kept while training."""
    return Path(ckpt_dir) / f"cycle-end-{epoch:04d}.npz"


def save_snapshot(path: Path, weights: Sequence[np.ndarray]) -> None:
    """Write ``weights`` at once (a kill mid-write leaves no half file)."""
    buffer = io.BytesIO()
    np.savez(buffer, *weights)
    atomic_write_bytes(path, buffer.getvalue())


def load_snapshot(path: Path) -> list[np.ndarray]:
    with np.load(path) as z:
        return [z[f"arr_{i}"] for i in range(len(z.files))]


def snapshot_callback(ckpt_dir: Path, cycle_ends: Sequence[int], needed: Sequence[int] = ()):
    """A Keras callback saving the weights at the end of each epoch in ``cycle_ends`` (1-based).

    Put it before the checkpoint callback: a kill between the two then redoes the epoch, never loses
    its snapshot. ``needed``: all snapshots to average; at the first epoch it checks those before it.
    """
    import keras

    ends = set(cycle_ends)

    class _CycleEnds(keras.callbacks.Callback):
        first = True

        def on_epoch_begin(self, epoch, logs=None):  # after a resume: the epoch the checkpoint restored
            if self.first:
                self.first = False
                missing = [e for e in needed if e <= epoch and not snapshot_path(ckpt_dir, e).is_file()]
                if missing:
                    raise OutputError(
                        f"{ckpt_dir} lacks the weights of epochs {missing} to average: "
                        "pass --overwrite to train again from the start"
                    )

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 in ends:
                save_snapshot(snapshot_path(ckpt_dir, epoch + 1), self.model.get_weights())

    return _CycleEnds()


def averaged_epochs(recipe: TrainRecipe) -> list[int]:
    """The epochs (cycle ends) whose weights the recipe's saved model averages; [] for the last epoch's."""
    ends = [end for _, end, _ in recipe.cycles()]
    return ends if recipe.average_cycle_ends and len(ends) > 1 else []


def snapshot_callbacks(model, recipe: TrainRecipe, ckpt_dir: Path, start_epoch: int) -> list:
    """The callback keeping the cycle ends a run from ``start_epoch`` trains through (none without averaging).

    A run continued at a cycle end (``--init-from``) keeps ``model``'s weights now as that end's snapshot,
    so the average uses exactly the weights it started from.
    """
    epochs = averaged_epochs(recipe)[:-1]
    if not epochs:
        return []
    if start_epoch in epochs and not snapshot_path(ckpt_dir, start_epoch).is_file():
        save_snapshot(snapshot_path(ckpt_dir, start_epoch), model.get_weights())
    return [snapshot_callback(ckpt_dir, [e for e in epochs if e > start_epoch], needed=epochs)]


def final_weights(last: list[np.ndarray], recipe: TrainRecipe, ckpt_dir: Path) -> tuple[list[np.ndarray], list[int]]:
    """The weights to save and the epochs they average: the mean of the cycle ends, or ``last`` alone.

    ``last``: the weights after the last epoch; the earlier cycle ends are the snapshots in ``ckpt_dir``.
    """
    epochs = averaged_epochs(recipe)
    if not epochs:
        return last, []
    return average_weights([*(load_snapshot(snapshot_path(ckpt_dir, e)) for e in epochs[:-1]), last]), epochs
