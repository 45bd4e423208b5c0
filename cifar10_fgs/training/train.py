"""Train either model with checkpoints that survive interruption, and record what was done.

``train_model`` writes ``MODEL.keras`` (the network and its weights, no optimizer state), ``MODEL.json`` beside
it (recipe, seed, data, test accuracy and loss, sha256, library versions, time), and keeps
``MODEL.keras.ckpt/`` (Keras ``BackupAndRestore``) plus ``MODEL.history.jsonl`` while training,
so rerunning the same command after a kill resumes from the last finished epoch.
``train_from_cifar10`` reads CIFAR-10 and trains on it. This module holds the run's flow and what it may
write or resume; the fit's Keras pieces are in ``fitting``, ``--init-from`` in ``init_from``, the saved
model and its ``MODEL.json`` in ``saved``.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from cifar10_fgs.data import Cifar10Split, load_cifar10, load_cifar10_rows
from cifar10_fgs.data.split import balanced_rows
from cifar10_fgs.errors import ConfigError, ExistingOutputError, OutputError
from cifar10_fgs.models.networks import check_keras_path
from cifar10_fgs.provenance import read_json, write_json
from cifar10_fgs.recipes import RECIPES, SOURCE_IMAGENET_RECIPE, Arch, TrainRecipe
from cifar10_fgs.training.averaging import final_weights, snapshot_callbacks
from cifar10_fgs.training.fitting import backup_callback, compiled_model, train_dataset, validation_callback
from cifar10_fgs.training.history import history_callback, history_file, read_history, seed_history
from cifar10_fgs.training.init_from import InitFrom, check_init, warm_start
from cifar10_fgs.training.saved import (
    TrainResult,
    model_metadata_path,
    read_model_metadata,
    save_final,
    trained_model_matches,
)

log = logging.getLogger(__name__)


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
    init = check_init(init_from, start_epoch, recipe, out)
    ckpt_dir = Path(f"{out}.ckpt")
    history_path = history_file(out)
    run_key = _run_key(arch, recipe, seed, train, init)

    keras.utils.set_random_seed(seed)
    steps_per_epoch = math.ceil(len(train) / recipe.batch_size)
    model = compiled_model(recipe, steps_per_epoch=steps_per_epoch)
    if init:  # before anything is written: a model that does not fit is refused with nothing to clean up
        warm_start(model, init, steps_per_epoch)
    _prepare_checkpoint_dir(out, ckpt_dir, history_path, run_key, overwrite)
    if init:
        seed_history(history_path, init.metadata.get("history") or [], start_epoch)
    train_ds = train_dataset(train, recipe, seed)

    t0 = time.time()
    model.fit(
        train_ds,
        epochs=recipe.epochs,
        verbose=1 if progress else 0,
        shuffle=False,
        initial_epoch=start_epoch,
        callbacks=[
            validation_callback(test),  # first: the callbacks after it see val_loss and val_accuracy
            *snapshot_callbacks(model, recipe, ckpt_dir, start_epoch),
            backup_callback(ckpt_dir / "backup"),
            history_callback(history_path),
            *callbacks,
        ],
    )
    seconds = time.time() - t0
    weights, averaged = final_weights(model.get_weights(), recipe, ckpt_dir)
    result = save_final(
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
    check_init(init_from, start_epoch, recipe, out)  # before the data is read
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
