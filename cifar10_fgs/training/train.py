"""Train either model with checkpoints that survive interruption, and record what was done.

``train_model`` writes ``MODEL.keras`` (the network and its weights, no optimizer state), ``MODEL.json`` beside
it (recipe, seed, data, test accuracy and loss, sha256, library versions, time), and keeps
``MODEL.keras.ckpt/`` (Keras ``BackupAndRestore``) plus ``MODEL.history.jsonl`` while training,
so rerunning the same command after a kill resumes from the last finished epoch.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifar10_fgs.config import PREDICT_BATCH_SIZE, RECIPES, SOURCE_IMAGENET_RECIPE, Arch, TrainRecipe
from cifar10_fgs.data import NUM_CLASSES, Cifar10Split, load_cifar10, load_cifar10_rows
from cifar10_fgs.data.split import balanced_rows
from cifar10_fgs.errors import ConfigError, ExistingOutputError, OutputError, one_line
from cifar10_fgs.models.inference import predict_logits
from cifar10_fgs.models.networks import (
    architecture,
    build_model,
    check_keras_path,
    flip_averaged,
    load_model,
    network_of,
)
from cifar10_fgs.provenance import library_versions, read_json, sha256_file, write_json
from cifar10_fgs.training.averaging import averaged_epochs, final_weights, recompute_batchnorm, snapshot_callbacks
from cifar10_fgs.training.history import history_callback, history_file, read_history, seed_history

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    model_path: str
    metadata_path: str
    test_accuracy: float
    test_loss: float
    epochs: int
    seconds: float
    sha256: str
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


def _lr_schedule(recipe: TrainRecipe, steps_per_epoch: int):
    """Per step: in each of ``recipe.cycles()``, linear warm-up from peak/10 to peak, then cosine to 0."""
    import keras

    cycles = [
        (start * steps_per_epoch, max(1, (end - start) * steps_per_epoch), peak) for start, end, peak in recipe.cycles()
    ]
    warmup = max(1, int(recipe.warmup_epochs * steps_per_epoch))

    def cycle_lr(step, length, peak):
        warm = peak * (0.1 + 0.9 * step / warmup)
        progress = keras.ops.clip((step - warmup) / max(1, length - warmup), 0.0, 1.0)
        return keras.ops.where(step < warmup, warm, 0.5 * peak * (1.0 + keras.ops.cos(math.pi * progress)))

    class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            step = keras.ops.cast(step, "float32")
            lr = cycle_lr(step, cycles[0][1], cycles[0][2])
            for start, length, peak in cycles[1:]:
                lr = keras.ops.where(step >= start, cycle_lr(step - start, length, peak), lr)
            return lr

        def get_config(self):
            return {}

    return WarmupCosine()


def _optimizer(recipe: TrainRecipe, steps_per_epoch: int):
    import keras

    lr = _lr_schedule(recipe, steps_per_epoch)
    wd = recipe.weight_decay or None
    if recipe.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=recipe.momentum, nesterov=True, weight_decay=wd)
    if recipe.optimizer == "adam":
        return keras.optimizers.Adam(lr, weight_decay=wd)
    raise ConfigError(f"unknown optimizer {recipe.optimizer!r}: expected 'sgd' or 'adam'")


def make_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, *, augment: bool, shuffle: bool, seed: int):
    """tf.data pipeline of float32 [0, 255] images; augmentation is flip + reflect-pad-4 crop."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))
    if shuffle:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)

    def prepare(x, y):
        x = tf.cast(x, tf.float32)
        if augment:
            x = tf.image.random_flip_left_right(x)
            x = tf.pad(x, [[4, 4], [4, 4], [0, 0]], mode="REFLECT")
            x = tf.image.random_crop(x, (32, 32, 3))
        return x, y

    return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(tf.data.AUTOTUNE)


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


def train_model(
    train: Cifar10Split,
    test: Cifar10Split,
    out: str | Path,
    *,
    arch: Arch | str = Arch.TARGET,
    recipe: TrainRecipe | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
    callbacks: Sequence = (),
    init_from: str | Path | None = None,
    start_epoch: int = 0,
) -> TrainResult:
    """Train ``arch`` on ``train``, evaluate on ``test``, save to ``out`` (a ``.keras`` path).

    ``progress``: Keras' progress bar per epoch (``fit(verbose=1)``), else silent.

    ``callbacks``: extra Keras callbacks, run after the checkpoint and history ones (so an epoch
    they see end is already saved).
    ``init_from``, ``start_epoch``: continue the recipe's schedule at ``start_epoch`` from the weights
    of a saved model (e.g. a 50-epoch model into the 65-epoch recipe's third cycle). The optimizer
    state (momentum) starts fresh; the provenance records the model continued from. ``start_epoch``
    equal to ``recipe.epochs`` trains nothing: the model is saved as the recipe saves it (e.g. flip-averaged).
    """
    import keras

    arch = Arch(arch)
    recipe = recipe or RECIPES[arch]
    out = Path(out)
    _check_out(out, overwrite)
    init = _check_init(init_from, start_epoch, recipe, out)
    ckpt_dir = Path(f"{out}.ckpt")
    history_path = history_file(out)
    run_key = _run_key(arch, recipe, seed, train, init)

    keras.utils.set_random_seed(seed)
    steps_per_epoch = math.ceil(len(train) / recipe.batch_size)
    model = _compiled_model(recipe, steps_per_epoch=steps_per_epoch)
    if init:  # before anything is written: a model that does not fit is refused with nothing to clean up
        _warm_start(model, init, steps_per_epoch)
    _prepare_checkpoint_dir(out, ckpt_dir, history_path, run_key, overwrite)
    if init:
        seed_history(history_path, init.metadata.get("history") or [], start_epoch)
    train_ds = make_dataset(
        train.images, train.labels, recipe.batch_size, augment=recipe.augment, shuffle=True, seed=seed
    )
    train_ds = train_ds.map(lambda x, y: (x, _one_hot(y)))

    t0 = time.time()
    model.fit(
        train_ds,
        epochs=recipe.epochs,
        verbose=1 if progress else 0,
        shuffle=False,
        initial_epoch=start_epoch,
        callbacks=[
            _validation_callback(test),  # first: the callbacks after it see val_loss and val_accuracy
            *snapshot_callbacks(model, recipe, ckpt_dir, start_epoch),
            _backup_callback(ckpt_dir / "backup"),
            history_callback(history_path),
            *callbacks,
        ],
    )
    seconds = time.time() - t0
    weights, averaged = final_weights(model.get_weights(), recipe, ckpt_dir)
    result = _save_final(
        weights, out, arch, recipe, seed, train, test, seconds, read_history(history_path), init, averaged
    )
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return result


def _run_key(arch: Arch, recipe: TrainRecipe, seed: int, train: Cifar10Split, init: InitFrom | None = None) -> dict:
    """What makes two trainings the same run: a checkpoint resumes only under its own key (JSON as saved)."""
    key = {
        "arch": arch.value,
        "recipe": recipe.training_json(),
        "seed": seed,
        "train": train.fingerprint(),
        "n_train": len(train),
        **({"init": init.key()} if init else {}),
    }
    return json.loads(json.dumps(key, default=str))


def claim_model_out(
    out: str | Path, train: Cifar10Split, *, arch: Arch, recipe: TrainRecipe, seed: int, overwrite: bool
) -> bool:
    """Before any work: True if ``out`` already holds this training (reuse it), False if it may be trained there.

    Raises ``ExistingOutputError`` if training would replace a model, provenance JSON or checkpoint that was
    not made with this data, recipe and seed, unless ``overwrite``.
    """
    out = Path(out)
    if trained_model_matches(out, train, recipe, seed):
        return True
    _check_out(out, overwrite)
    _checkpoint_resumes(Path(f"{out}.ckpt"), _run_key(Arch(arch), recipe, seed, train), overwrite)
    return False


@dataclass(frozen=True)
class InitFrom:
    """The saved model a run continues (``--init-from``), and the epoch of the schedule it continues at."""

    path: str
    sha256: str
    start_epoch: int
    metadata: dict  # the JSON ``train`` wrote beside it ({} for a model from elsewhere)

    def key(self) -> dict:
        """What makes two runs the same continuation (the checkpoint may resume only then)."""
        return {"sha256": self.sha256, "start_epoch": self.start_epoch}

    def provenance(self) -> dict:
        m = self.metadata
        return {
            "path": self.path,
            "sha256": self.sha256,
            "start_epoch": self.start_epoch,
            "recipe": m.get("recipe"),
            "epochs": m.get("epochs"),
            "test_accuracy": m.get("test_accuracy"),
        }


def _check_init(init_from: str | Path | None, start_epoch: int, recipe: TrainRecipe, out: Path) -> InitFrom | None:
    """``init_from`` checked against the recipe and ``out`` (None without one); one-line errors for bad input."""
    if init_from is None:
        if start_epoch:
            raise ConfigError("--start-epoch needs --init-from: name the model whose training it continues")
        return None
    init_from = Path(init_from)
    if init_from.resolve() == out.resolve():
        raise ConfigError(f"--init-from {init_from} is also --out: write the continued model to another path")
    load_model(init_from)  # a one-line ModelError for a missing, foreign or broken file
    starts = [start for start, _, _ in recipe.cycles()]
    if start_epoch not in (
        *starts,
        recipe.epochs,
    ):  # the end: nothing to train, the model is saved as the recipe saves it
        raise ConfigError(
            f"--start-epoch {start_epoch} is not where a cycle of the recipe begins ({starts}) or its "
            f"end ({recipe.epochs}): continue at a restart, or pass --epochs to move it"
        )
    meta = read_model_metadata(init_from)
    if averaged_epochs(recipe) and meta.get("averaged_epochs"):
        raise ConfigError(
            f"{init_from} is an average of epochs {meta['averaged_epochs']}, not the weights at the end "
            f"of epoch {start_epoch}: continue from the model of the last epoch"
        )
    missing = [e for e in averaged_epochs(recipe)[:-1] if e < start_epoch]
    if missing:
        raise ConfigError(
            f"the recipe averages the end of every cycle, but epochs {missing} come before "
            f"--start-epoch {start_epoch}: continue from the end of the first cycle"
        )
    if start_epoch and meta.get("epochs") not in (None, start_epoch):
        raise ConfigError(
            f"--start-epoch {start_epoch} but {init_from} was trained for {meta['epochs']} epochs: "
            f"pass --start-epoch {meta['epochs']}"
        )
    done = recipe.with_epochs(start_epoch).training_json() if start_epoch else {}
    if done and meta.get("recipe") and any(meta["recipe"].get(k, v) != v for k, v in done.items()):
        log.warning("%s was trained with another recipe than the first %d epochs of this one", init_from, start_epoch)
    return InitFrom(str(init_from), sha256_file(init_from), start_epoch, meta)


def _warm_start(model, init: InitFrom, steps_per_epoch: int) -> None:
    """Load ``init``'s weights into ``model`` and move its schedule to ``init.start_epoch``."""
    try:
        model.set_weights(network_of(load_model(init.path)).get_weights())
    except ValueError as e:
        raise ConfigError(
            f"--init-from {init.path} does not fit this model ({one_line(e)}): name a model of the same --arch"
        ) from None
    step = init.start_epoch * steps_per_epoch
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(step)
    log.info("continuing %s at epoch %d (step %d)", init.path, init.start_epoch, step)


def _check_out(out: Path, overwrite: bool) -> None:
    """``out`` (a ``.keras`` path) may be written: not a folder, and not a file unless ``overwrite``."""
    check_keras_path(out)
    if out.is_dir():
        raise OutputError(f"{out} is a folder: pass a file path ending in .keras as --out")
    if overwrite:
        return
    if out.exists():
        raise ExistingOutputError(out, "already exists")
    meta = model_metadata_path(out)
    if meta.exists() and not {"recipe", "sha256"} <= read_model_metadata(out).keys():
        raise ExistingOutputError(meta, f"is in the way: it is not the provenance `train` writes beside {out.name}")


def _checkpoint_resumes(ckpt_dir: Path, run_key: dict, overwrite: bool) -> bool:
    """True if ``ckpt_dir`` holds this run (``run_key``); one of another run is refused unless ``overwrite``."""
    if not ckpt_dir.exists():
        return False
    run_path = ckpt_dir / "run.json"
    if (read_json(run_path) if run_path.exists() else None) == run_key:
        return True
    if not overwrite:
        raise ExistingOutputError(ckpt_dir, "holds a checkpoint of a different training run")
    return False


def _prepare_checkpoint_dir(out: Path, ckpt_dir: Path, history_path: Path, run_key: dict, overwrite: bool) -> None:
    """Keep ``ckpt_dir`` to resume only if it holds this run (``run_key``), else discard it or refuse (``out`` checked)."""
    if _checkpoint_resumes(ckpt_dir, run_key, overwrite):
        log.info("resuming from %s", ckpt_dir)
    else:  # a fresh run: a checkpoint of another (overwritten) run, and its history rows, do not belong to it
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        history_path.unlink(missing_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    write_json(ckpt_dir / "run.json", run_key)


def _compiled_model(recipe: TrainRecipe, steps_per_epoch: int):
    """``build_model(recipe)`` compiled with the recipe's optimizer, schedule and label-smoothed loss."""
    import keras

    model = build_model(recipe)
    model.compile(
        optimizer=_optimizer(recipe, steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=recipe.label_smoothing),
        metrics=["accuracy"],
    )
    return model


def _save_final(
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


def _backup_callback(backup_dir: Path):
    """Keras BackupAndRestore; with a second copy so a kill while saving cannot lose the checkpoint."""
    import keras

    try:
        return keras.callbacks.BackupAndRestore(str(backup_dir), delete_checkpoint=False, double_checkpoint=True)
    except TypeError:  # Keras < 3.4
        return keras.callbacks.BackupAndRestore(str(backup_dir), delete_checkpoint=False)


def _validation_callback(test: Cifar10Split):
    """``val_loss`` (the compiled loss) and ``val_accuracy`` on ``test`` into each epoch's logs.

    What ``fit(validation_data=...)`` reports, computed through ``inference.predict_logits``: the model's
    inference graph traced once, where Keras would trace a test function of its own for every model
    (all sharing one code object, so a few short fits in a row count as retracing to TensorFlow).
    """
    import keras

    class Validation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if logs is None:
                return
            logits = predict_logits(self.model, test.images, batch_size=PREDICT_BATCH_SIZE)
            targets = keras.ops.one_hot(test.labels, NUM_CLASSES)
            logs["val_loss"] = float(keras.ops.convert_to_numpy(self.model.loss(targets, logits)))
            logs["val_accuracy"] = float((logits.argmax(axis=1) == test.labels).mean())

    return Validation()


def _one_hot(y):
    import tensorflow as tf

    return tf.one_hot(y, 10)


def train_from_cifar10(
    cifar10: str | Path,
    out: str | Path,
    *,
    arch: Arch | str,
    epochs: int | None = None,
    train_limit: int | None = None,
    seed: int = 0,
    imagenet: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    init_from: str | Path | None = None,
    start_epoch: int = 0,
) -> TrainResult:
    """Load CIFAR-10 from ``cifar10`` and train ``arch`` on it (``train_limit``: the seeded class-balanced subset).

    ``init_from``, ``start_epoch``: see ``train_model``.
    """

    arch = Arch(arch)
    out = Path(out)
    _check_out(out, overwrite)
    if imagenet and arch != Arch.SOURCE:
        raise ConfigError("--imagenet applies to the source model only: drop it or use --arch source")

    recipe = (SOURCE_IMAGENET_RECIPE if imagenet else RECIPES[arch]).with_epochs(epochs)
    _check_init(init_from, start_epoch, recipe, out)  # before the data is read
    if train_limit is None:
        train = load_cifar10(cifar10, "train")
    else:  # the seeded class-balanced subset, in the input's order (as --limit); an image folder decodes only it
        train, _, _ = load_cifar10_rows(
            cifar10, "train", lambda labels: balanced_rows(labels, min(train_limit, len(labels)), seed)
        )
    test = load_cifar10(cifar10, "test")
    return train_model(
        train,
        test,
        out,
        arch=arch,
        recipe=recipe,
        seed=seed,
        overwrite=overwrite,
        progress=progress,
        init_from=init_from,
        start_epoch=start_epoch,
    )
