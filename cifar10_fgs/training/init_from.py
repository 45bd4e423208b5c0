"""Continuing a saved model's training (``--init-from``, ``--start-epoch``).

``check_init`` checks the model continued from against the recipe (one-line errors before anything is read or
written), ``InitFrom`` is what a run records of it, and ``warm_start`` loads its weights and moves the schedule on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from cifar10_fgs.errors import ConfigError, one_line
from cifar10_fgs.models.networks import load_model, network_of
from cifar10_fgs.provenance import sha256_file
from cifar10_fgs.recipes import TrainRecipe
from cifar10_fgs.training.averaging import averaged_epochs
from cifar10_fgs.training.saved import read_model_metadata

log = logging.getLogger(__name__)


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


def check_init(init_from: str | Path | None, start_epoch: int, recipe: TrainRecipe, out: Path) -> InitFrom | None:
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


def warm_start(model, init: InitFrom, steps_per_epoch: int) -> None:
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
