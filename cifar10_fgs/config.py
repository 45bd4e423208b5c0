"""Every hyperparameter in one documented place, with its unit; the training recipes are ``recipes``.

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
from dataclasses import dataclass, fields

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


def check_batch_size(batch_size: int) -> None:
    """Every batch size (attack, inference, evaluation) is a whole number >= 1, or a one-line ConfigError."""
    if int(batch_size) != batch_size or batch_size < 1:
        raise ConfigError(f"batch size {batch_size} is invalid: expected an integer >= 1")


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
    check_batch_size(cfg.batch_size)
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


# --------------------------------------------------------------------------- inference and batching

GPU_BATCH_SIZE = 1024  # attack slots per forward+backward per GPU (on CPU: AttackConfig().batch_size)
PREDICT_BATCH_SIZE = 512  # images per inference call (evaluate, default of predict_logits)
RANKED_STREAM_ROWS = 2048  # a generate stream of at most this many rows enters by margin (attack.schedule)
VALIDATE_PREDICT_ROWS = 16384  # images validate gathers for one model call (fewer calls pad fewer tail batches)

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

SOURCE_MODEL_SEARCH = ("../models", "..")  # where upload looks for the source model, relative to the dataset folder
