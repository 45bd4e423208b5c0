"""How each model of the paper is trained: ``Arch`` (the two models), ``TrainRecipe`` (a training recipe with its
units), the recipes ``SOURCE_RECIPE``, ``TARGET_RECIPE`` and ``SOURCE_IMAGENET_RECIPE`` (``RECIPES`` by
architecture), and the quick trial's (``QUICK_RECIPES``, ``QuickTrial``: what ``run --quick`` limits).

Why each recipe is what it is, with the measured history of every recipe tried: docs/models.md.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, replace

from cifar10_fgs.config import check_flags
from cifar10_fgs.errors import ConfigError


class Arch(str, enum.Enum):
    """The two models of the paper."""

    SOURCE = "source"  # EfficientNetB0, attacked to make the dataset
    TARGET = "target"  # the paper's "simple deep CNN" (Fig. 2), the transfer target


@dataclass(frozen=True)
class TrainRecipe:
    """How a model is trained. Units: epochs are passes over the training split; lr per step."""

    arch: Arch
    epochs: int
    batch_size: int  # images per step
    optimizer: str  # "sgd" (nesterov) or "adam"
    peak_lr: float  # learning rate at the end of warm-up
    warmup_epochs: float  # linear warm-up from peak/10 to peak, then cosine decay to 0 (in every cycle)
    momentum: float  # SGD only
    weight_decay: float  # decoupled, per step, multiplied by the learning rate
    label_smoothing: float
    augment: bool  # random horizontal flip + reflect-pad-4 random 32x32 crop, through tf.data
    dropout_rate: float = 0.0  # before the classifier (source only; the target has Fig. 2's)
    drop_connect_rate: float = 0.0  # stochastic depth (source only); 0 suits short schedules
    cifar_strides: bool = True  # source only: stage 4 at stride 1, so the last stages see 2x2, not 1x1
    weights: str | None = None  # source only: None (from scratch) or "imagenet" (needs internet)
    input_resize: int | None = None  # source only: upsample inside the model to this side (pixels), e.g. 224
    # Warm restarts (SGDR): ((epoch, peak_lr), ...). At each epoch a new cycle begins (warm-up, then
    # cosine to 0 at the next restart or at ``epochs``); () is one cycle over all epochs.
    restarts: tuple[tuple[int, float], ...] = ()
    # SWA over the cycles (averaging.py): the saved weights are the mean of the weights at the end of every
    # cycle, with batch-norm statistics recomputed on the training images. False: the last epoch's weights.
    average_cycle_ends: bool = False
    # Test-time flip averaging: the saved model is the trained network wrapped so that its logits are the
    # mean of the network's logits on the image and on its mirror image (shared weights; the classifier
    # airbench and most CIFAR evaluations use). Training is unchanged; each prediction costs 2 passes.
    flip_average: bool = False
    # Recompute the batch-norm statistics over the training images (as after averaging) before saving. A few
    # epochs at a high learning rate leave the moving averages behind the weights: the quick trial's source
    # scored 0.149 on 2,000 test images with them and 0.425 with recomputed ones (same weights).
    recompute_batchnorm: bool = False

    def __post_init__(self):
        check_flags(self)
        epochs = [e for e, _ in self.restarts]
        if epochs != sorted(set(epochs)) or any(not 0 < e < self.epochs for e in epochs):
            raise ConfigError(f"restarts {self.restarts!r}: epochs must be increasing and inside (0, {self.epochs})")
        if self.restarts and self.epochs - epochs[-1] <= self.warmup_epochs:
            raise ConfigError(
                f"the last cycle ({epochs[-1]}..{self.epochs}) is no longer than its warm-up and would "
                f"end at its peak: pass --epochs {epochs[-1]} or {epochs[-1] + int(self.warmup_epochs) + 1}+"
            )

    def with_epochs(self, epochs: int | None) -> TrainRecipe:
        """This recipe over ``epochs`` (None: unchanged); restarts at or after the new end are dropped.

        Only the last cycle changes length, e.g. the 65-epoch source with ``epochs=30`` is its first cycle and
        with ``epochs=50`` its first two. A source schedule cut short also recomputes its batch-norm statistics
        at the end: over a few epochs Keras' moving averages lag the weights (measured in docs/models.md: the
        65-epoch recipe cut to 4 epochs on 10,000 images scored 0.1009 with them, 0.4693 with recomputed ones).
        The target has no batch norm, so its recipe only changes length.
        """
        if epochs is None or epochs == self.epochs:
            return self
        cut = epochs < self.epochs and self.arch is Arch.SOURCE
        return replace(
            self,
            epochs=epochs,
            restarts=tuple(r for r in self.restarts if r[0] < epochs),
            recompute_batchnorm=self.recompute_batchnorm or cut,
        )

    def to_json(self) -> dict:
        """The recipe as plain JSON (the one form saved in model metadata, checkpoints and settings).

        Fields added later are left out at their defaults (``restarts`` empty, no averaging), so recipes
        saved before they existed still compare equal.
        """
        out = {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in asdict(self).items()}
        out["restarts"] = [list(r) for r in self.restarts]
        for field, default in (
            ("restarts", []),
            ("average_cycle_ends", False),
            ("flip_average", False),
            ("recompute_batchnorm", False),
        ):
            if out[field] == default:
                del out[field]
        return out

    def training_json(self) -> dict:
        """``to_json()`` without what only changes how the trained network is saved (``flip_average``,
        ``recompute_batchnorm``): the key a checkpoint resumes under and the part a continued model is compared on."""
        out = self.to_json()
        out.pop("flip_average", None)
        out.pop("recompute_batchnorm", None)
        return out

    def cycles(self) -> tuple[tuple[int, int, float], ...]:
        """The learning-rate cycles as (first epoch, end epoch, peak lr)."""
        starts = [(0, self.peak_lr), *self.restarts]
        ends = [e for e, _ in starts[1:]] + [self.epochs]
        return tuple((s, end, lr) for (s, lr), end in zip(starts, ends))


# EfficientNetB0 from scratch at 32x32 (CIFAR strides), three warm-restart cycles, flip-averaged: why, and the
# measured history of every recipe tried, in docs/models.md.
SOURCE_RECIPE = TrainRecipe(
    arch=Arch.SOURCE,
    batch_size=128,
    optimizer="sgd",
    peak_lr=0.1,
    warmup_epochs=1.0,
    momentum=0.9,
    weight_decay=5e-3,
    label_smoothing=0.1,
    augment=True,
    dropout_rate=0.1,
    drop_connect_rate=0.0,
    cifar_strides=True,
    epochs=65,
    restarts=((30, 0.05), (50, 0.02)),
    flip_average=True,
)

# The paper's target: the Keras "simple deep CNN" (Fig. 2). About 0.75 test accuracy in minutes.
TARGET_RECIPE = TrainRecipe(
    arch=Arch.TARGET,
    epochs=15,
    batch_size=128,
    optimizer="adam",
    peak_lr=1e-3,
    warmup_epochs=0.5,
    momentum=0.0,
    weight_decay=0.0,
    label_smoothing=0.0,
    augment=True,
)

# For users with a GPU and internet: ImageNet weights fine-tuned at 224x224 (the image is upsampled
# inside the model, which still takes 32x32 pixels). The standard route to a 0.95+ CIFAR-10 EfficientNet;
# about 40x the compute of SOURCE_RECIPE per epoch, so not the default on a CPU.
SOURCE_IMAGENET_RECIPE = TrainRecipe(
    arch=Arch.SOURCE,
    epochs=5,
    batch_size=64,
    optimizer="sgd",
    peak_lr=0.01,
    warmup_epochs=0.5,
    momentum=0.9,
    weight_decay=1e-5,
    label_smoothing=0.1,
    augment=True,
    dropout_rate=0.2,
    drop_connect_rate=0.2,
    cifar_strides=False,
    weights="imagenet",
    input_resize=224,
)

RECIPES = {Arch.SOURCE: SOURCE_RECIPE, Arch.TARGET: TARGET_RECIPE}
BATCHNORM_BATCH = 500  # images per forward pass while averaging recomputes batch-norm statistics


# --- The quick trial (``run --quick``): every stage in minutes, with numbers that mean something -------------
# The source: EfficientNetB0 at CIFAR strides, 4 epochs over QuickTrial().train_limit balanced images, one cosine
# cycle at a high peak, no augmentation or regularisation (too few steps to over-fit), batch-norm statistics
# recomputed at the end. Measured on the JPEG copy of CIFAR-10 (10,000 balanced train images): training-mode
# accuracy 0.43 after the 4th epoch; 0.149 on 2,000 balanced test images with Keras's moving averages, 0.425
# with recomputed statistics. The 65-epoch recipe cut to 2 epochs on 5,000 images scored 0.12 (near chance).
QUICK_SOURCE_RECIPE = TrainRecipe(
    arch=Arch.SOURCE,
    epochs=4,
    batch_size=128,
    optimizer="sgd",
    peak_lr=0.2,
    warmup_epochs=0.5,
    momentum=0.9,
    weight_decay=5e-4,
    label_smoothing=0.0,
    augment=False,
    dropout_rate=0.0,
    cifar_strides=True,
    recompute_batchnorm=True,
)
QUICK_TARGET_RECIPE = TARGET_RECIPE.with_epochs(5)
QUICK_RECIPES = {Arch.SOURCE: QUICK_SOURCE_RECIPE, Arch.TARGET: QUICK_TARGET_RECIPE}


# Measured (`run --quick` on the JPEG copy of CIFAR-10, idle 2-core CPU): 7 min 15 s to 8 min 41 s wall, source
# test accuracy 0.4295 on all 10,000 test images, target 0.4787; 20 images per class per split, all fooled
# (docs/models.md).
@dataclass(frozen=True)
class QuickTrial:
    """What ``run --quick`` limits (options given explicitly win); its models train with ``QUICK_RECIPES``."""

    train_limit: int = 10_000  # training images of both models: the class-balanced subset (1,000 per class)
    limit: int = 200  # images attacked per split: the class-balanced subset (20 per class)
    retrain_epochs: int = 2  # adversarial (and mixed) retraining of the target
