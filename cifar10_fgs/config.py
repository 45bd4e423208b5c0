"""Every hyperparameter in one documented place, with its unit.

Pixels are uint8 levels in [0, 255] everywhere: the attack steps, clips and stores uint8 levels, so an
attack step of 0.01 *of the pixel range* is 2.55 levels. Both of this project's models take the levels
as they are (normalisation is inside the model) and output **logits**; probabilities are
``softmax(logits)``, so the paper's final softmax layer is folded into the loss (``from_logits=True``)
and into the reported confidences. Any other model declares how it takes the levels and what it returns
(``models.convention``: layout, [0, 1] or [0, 255], mean/std, logits or probabilities); the attack then
runs on the model fed as it declares, still over uint8 levels.
"""

from __future__ import annotations

import enum
import math
from dataclasses import asdict, dataclass, fields, replace

from cifar10_fgs.errors import ConfigError

PIXEL_MIN = 0.0  # lowest pixel level
PIXEL_MAX = 255.0  # highest pixel level
PIXEL_RANGE = PIXEL_MAX - PIXEL_MIN
NUM_LOGITS = 10  # model outputs: one logit per CIFAR-10 class


class Method(str, enum.Enum):
    """How ``generate`` makes an image adversarial."""

    FGS = "fgs"  # the paper's iterative fast gradient sign attack
    ONEPIXEL = "onepixel"  # Su et al.'s one-pixel differential evolution: the slow baseline


class RetrainMode(str, enum.Enum):
    """What ``evaluate retrain`` trains the target architecture on."""

    ADVERSARIAL = "adversarial"  # the adversarial train rows with their original labels (the paper)
    MIXED = "mixed"  # every original train image, then the adversarial train rows


class GaussianVariant(str, enum.Enum):
    """How the Gaussian defence is applied (see ``evaluate.filters``)."""

    SPATIAL_UINT8 = "spatial-uint8"
    SPATIAL_FLOAT = "spatial-float"
    PAPER_SCALAR_FLOAT = "paper-scalar-float"

    @property
    def sigma_axes(self) -> tuple[int, ...]:
        """Which (N, H, W, C) axes get ``std`` (the rest get 0)."""
        return (1, 2, 3) if self is GaussianVariant.PAPER_SCALAR_FLOAT else (1, 2)

    @property
    def rounds(self) -> bool:
        return self is GaussianVariant.SPATIAL_UINT8

    @property
    def description(self) -> str:
        return VARIANT_DESCRIPTIONS[self]


def parse_choices(kind: type[enum.Enum], values, what: str) -> tuple:
    """``values`` as members of the enum ``kind``: one-line ConfigError for an unknown, missing or repeated one."""
    known = ", ".join(x.value for x in kind)
    out = []
    for v in values:
        try:
            out.append(kind(v))
        except ValueError:
            raise ConfigError(f"{what} {v!r} is unknown: expected one of {known}") from None
    if not out:
        raise ConfigError(f"no {what} given: expected one or more of {known}")
    if len(set(out)) != len(out):
        raise ConfigError(f"a {what} is listed twice: list each once")
    return tuple(out)


VARIANT_DESCRIPTIONS = {
    GaussianVariant.SPATIAL_UINT8: "per image and channel over height and width, rounded to uint8",
    GaussianVariant.SPATIAL_FLOAT: "per image and channel over height and width, float (not rounded)",
    GaussianVariant.PAPER_SCALAR_FLOAT: "scalar sigma over (H, W, C) of each image, so also across the colour "
    "channels; float (not rounded); our best reading of the paper",
}


# --- The attack ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttackConfig:
    """Settings of the iterative FGS attack (``cifar10_fgs.attack.fgs``); ``AttackConfig()`` is the default.

    Pixels are always uint8 levels [PIXEL_MIN, PIXEL_MAX] (a model's own range is its input convention,
    ``models.convention``). The stall ladder these settings drive is described in docs/attack.md.
    """

    step: float = 0.01  # fraction of the pixel range per step: 0.01 of [0, 255] = 2.55 levels, as in the paper
    max_iterations: int = 200  # gradient steps per image over every phase; the range is crossed after 100
    batch_size: int = 256  # slots per forward+backward on a CPU (the measured knee; on GPU: GPU_BATCH_SIZE)
    escalate: bool = True  # False: the paper's loop only (a stalled image keeps stepping until its budget ends)
    patience: int = 10  # steps without a new lowest margin (z_y - max_{j!=y} z_j) before a path counts as stalled
    path_steps: int = 30  # steps one path may take before it counts as stalled (0.30 of the range; escalate only)
    targets: int = 2  # targeted phase: how many of the original's runner-up classes (2nd, 3rd, ...) are tried
    seed: int = 0  # seeds the random starts of the restart phase, per image index
    max_linf: float | None = None  # hard L-inf budget, a fraction of the pixel range (None: unbounded, the paper's)

    def __post_init__(self):
        check_attack_config(self)

    @property
    def step_levels(self) -> float:
        return self.step * PIXEL_RANGE

    @property
    def radius_levels(self) -> float | None:
        """The ``max_linf`` ball's radius in whole pixel levels (floored, so stored bytes stay inside)."""
        if self.max_linf is None:
            return None
        return float(math.floor(self.max_linf * PIXEL_RANGE + 1e-9))


def check_flags(settings) -> None:
    """Every ``bool`` field of the dataclass ``settings`` holds True or False: a string such as "False" (read from a
    file or the environment) would otherwise count as true and be followed silently."""
    for f in fields(settings):
        value = getattr(settings, f.name)
        if f.type in ("bool", bool) and not isinstance(value, bool):
            raise ConfigError(
                f"{f.name}={value!r} is not True or False: pass a bool (a string such as 'False' would count as true)"
            )


def check_attack_config(cfg: AttackConfig) -> None:
    check_flags(cfg)
    if not (0.0 < cfg.step < 1.0):
        raise ConfigError(f"step {cfg.step} is out of range: expected 0 < step < 1 (a fraction of the pixel range)")
    if int(cfg.max_iterations) != cfg.max_iterations or cfg.max_iterations < 1:
        raise ConfigError(f"max-iterations {cfg.max_iterations} is invalid: expected an integer >= 1")
    if int(cfg.batch_size) != cfg.batch_size or cfg.batch_size < 1:
        raise ConfigError(f"batch size {cfg.batch_size} is invalid: expected an integer >= 1")
    if int(cfg.patience) != cfg.patience or cfg.patience < 1:
        raise ConfigError(f"stall patience {cfg.patience} is invalid: expected an integer >= 1 (steps)")
    if int(cfg.path_steps) != cfg.path_steps or cfg.path_steps < 1:
        raise ConfigError(f"path steps {cfg.path_steps} is invalid: expected an integer >= 1 (steps per path)")
    if int(cfg.targets) != cfg.targets or not 0 <= cfg.targets <= 8:
        raise ConfigError(f"targets {cfg.targets} is invalid: expected 0..8 runner-up classes")
    if cfg.max_linf is not None and not (0.0 < cfg.max_linf <= 1.0):
        raise ConfigError(
            f"max-linf {cfg.max_linf} is out of range: expected 0 < max-linf <= 1 (a fraction of the range)"
        )
    if cfg.max_linf is not None and math.floor(cfg.max_linf * PIXEL_RANGE + 1e-9) < 1:
        raise ConfigError(f"max-linf {cfg.max_linf} is below one pixel level: expected at least {1 / PIXEL_RANGE:.4g}")


@dataclass(frozen=True)
class OnePixelConfig:
    """The one-pixel baseline (``cifar10_fgs.attack.onepixel``; Su, Vargas and Sakurai 2019)."""

    population: int = 400  # candidate pixels per differential-evolution generation (SciPy's popsize: this / 5)
    max_generations: int = 100  # generations per image before it counts as not fooled
    seed: int = 0  # seeds SciPy's differential evolution (the same seed for every image)
    batch_size: int = 512  # images per forward pass when a generation's population is evaluated

    def __post_init__(self):
        if self.population < 5 or self.max_generations < 1:
            raise ConfigError("one-pixel settings invalid: expected population >= 5 and max generations >= 1")


# --- The source model's check before ``generate`` attacks (cifar10_fgs.generate.check) ------------------------


@dataclass(frozen=True)
class SourceCheck:
    """``generate`` predicts a class-balanced sample of the originals before attacking and refuses a source that
    cannot be fooled meaningfully: one near chance, or one that calls most images one class. Fractions in [0, 1]."""

    sample_images: int = 500  # originals predicted (a balanced subset of the split attacked first)
    min_images: int = 100  # with fewer originals there is too little to judge: the check is skipped
    min_accuracy: float = 0.15  # accuracy at or below this is near chance (1/10 for CIFAR-10)
    max_class_share: float = 0.5  # most one predicted class may get, unless the labels give it as much


class Phase(str, enum.Enum):
    """How an image was fooled: the attack's escalation ladder, in order (see ``attack``).

    A path starts at the original (or, for ``restart``, at a seeded random point inside the L-inf ball the
    image has reached so far) and steps 0.01 of the range in the sign of the input gradient of a loss:
    """

    UNCHANGED = "unchanged"  # the source already got the original wrong: stored as it is, 0 steps
    FGS = "fgs"  # the paper's loss, logsumexp_{j!=y} z_j - z_y (same sign as the cross-entropy gradient)
    RUNNER_UP = "runner_up"  # margin against the current runner-up: max_{j!=y} z_j - z_y (CW / DLR style)
    TARGETED = "targeted"  # margin toward one of the original's next runner-ups: z_k - z_y (APGD-T / FAB-T style)
    RESTART = "restart"  # a random start inside the ball reached so far, then runner-up margin steps (PGD style)
    ONEPIXEL = "onepixel"  # not a rung: rows of the one-pixel baseline (``generate --method onepixel``)

    @property
    def code(self) -> int:
        """This phase's integer in the ``phase`` ClassLabel (its position in the enum)."""
        return list(Phase).index(self)


PHASES = tuple(p.value for p in Phase)  # the ``phase`` ClassLabel's names in the shards, in Phase's order


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


# --------------------------------------------------------------------------- inference and batching

GPU_BATCH_SIZE = 1024  # attack slots per forward+backward per GPU (on CPU: AttackConfig().batch_size)
PREDICT_BATCH_SIZE = 512  # images per inference call (evaluate, default of predict_logits)
RANKED_STREAM_ROWS = 2048  # a generate stream of at most this many rows enters by margin (attack.schedule)
VALIDATE_PREDICT_ROWS = 16384  # images validate hands the model per call (fewer calls retrace less)

# --------------------------------------------------------------------------- statistics

PERCENTILES = (50, 90, 99)  # of the perturbation distributions generation.json reports per split and phase

# --------------------------------------------------------------------------- evaluation

GAUSSIAN_STDS = (0.0, 0.25, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0)  # Gaussian filter standard deviations, in pixels; 0 = none
GAUSSIAN_VARIANTS = (GaussianVariant.SPATIAL_UINT8,)  # what `evaluate gaussian` applies by default; `run` sweeps all
BLUR_MODE = "reflect"  # scipy.ndimage default: edges mirrored (d c b a | a b c d | d c b a)
BLUR_TRUNCATE = 4.0  # scipy.ndimage default: kernel radius = round(4 * std), in standard deviations
BLUR_CHUNK = 4096  # images per vectorised gaussian_filter call (bounds the float32 copy to ~50 MB)

# --------------------------------------------------------------------------- dataset folder

ROWS_PER_SHARD = 5000  # rows per Arrow shard file

# --------------------------------------------------------------------------- validate tolerances

NORM_TOLERANCE = 1e-6  # stored vs recomputed linf / l2, in units of the pixel range
CONFIDENCE_TOLERANCE = 1e-5  # stored vs recomputed adversarial_confidence (a softmax probability)

# --------------------------------------------------------------------------- dataset card

CARD_EXAMPLES = 4  # images in the card's example figures
CARD_MAX_EXAMPLES = 16
PERCEPTIBLE_WEIGHT = 0.3  # the card's "perceptible noise" figure: weight x 255 x sign(perturbation)

# --------------------------------------------------------------------------- upload

UPLOAD_MODEL_SEARCH = ("../models", "..")  # where upload looks for the source model, relative to the dataset folder
