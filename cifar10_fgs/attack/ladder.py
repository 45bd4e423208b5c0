"""The escalation ladder of the attack: per-slot state, stall detection and the start of each rung.

The ladder, its stall rules and the measurement behind its order are described once, in docs/attack.md.
Pure numpy, no TensorFlow: ``attack.fgs.iterate_attack`` asks the model, this module decides. Every
decision for a slot reads only that slot's own logits, image index and the seed, so an image's result
never depends on which images share its batch. The rung numbers this module uses (``config.Phase``)::

    0                 fgs        the paper's loss, from the original
    1                 runner_up  margin against the current runner-up, from the original
    2 .. 1+T          targeted   margin toward the original's 2nd, 3rd, ... runner-up class, from the original
    2+T, 3+T, ...     restart    a seeded random start inside the L-inf ball reached so far, then runner-up steps
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from cifar10_fgs.attack.step import fgs_step
from cifar10_fgs.config import NUM_LOGITS, PIXEL_MAX, PIXEL_MIN, Phase

LOSS_LOGSUMEXP = -1  # the paper's direction (phase fgs)
LOSS_RUNNER_UP = -2  # max_{j != y} z_j - z_y (phases runner_up and restart); a code k >= 0 aims at class k


def margin(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``z_y - max_{j != y} z_j`` per row: positive while the model is right, negative once fooled."""
    z = np.asarray(logits, np.float64)
    rows = np.arange(len(z))
    others = z.copy()
    others[rows, labels] = -np.inf
    return z[rows, labels] - others.max(axis=1)


def image_digest(image: np.ndarray) -> bytes:
    """A stable 128-bit digest of a uint8 image (the same in every process, unlike ``hash``)."""
    return hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).digest()


class Slots:
    """State of the ``B`` slots of a batched attack, one image per slot (``row`` -1: empty).

    ``acc`` is the float accumulator of the current path; ``path`` its length in steps (a restart
    starts with the steps its random offset stands for, so ``linf <= step * path`` always holds);
    ``spent`` counts the image's gradient steps over every path (its budget); ``reach`` the largest
    L-inf distance (levels) its paths from the original have reached (restarts start inside that ball).
    """

    def __init__(self, size: int, shape: tuple, config, classes: int = NUM_LOGITS):
        self.config = config
        self.row = np.full(size, -1, np.int64)
        self.acc = np.zeros((size, *shape), np.float64)
        self.origin = np.zeros((size, *shape), np.float64)
        self.label = np.zeros(size, np.int32)
        self.key = np.zeros(size, np.int64)  # the image's index, which seeds its restarts
        self.code = np.full(size, LOSS_LOGSUMEXP, np.int32)
        self.rung = np.zeros(size, np.int32)
        self.path = np.zeros(size, np.int32)
        self.taken = np.zeros(size, np.int32)  # steps taken on the current path (a restart's offset excluded)
        self.spent = np.zeros(size, np.int32)
        self.evaluated = np.zeros(size, np.int32)  # forward+backward passes, every path start included
        self.best = np.full(size, np.inf)
        self.stale = np.zeros(size, np.int32)
        self.reach = np.zeros(size)
        self.targets = np.zeros((size, classes - 1), np.int32)  # the original's other classes, most likely first
        self.seen: list[set] = [set() for _ in range(size)]

    def load(self, slots: np.ndarray, rows: np.ndarray, images: np.ndarray, labels: np.ndarray, keys: np.ndarray):
        self.row[slots] = rows
        self.origin[slots] = images[rows]
        self.acc[slots] = self.origin[slots]
        self.label[slots] = labels[rows]
        self.key[slots] = keys[rows]
        for field in (self.rung, self.path, self.spent, self.evaluated, self.stale):
            field[slots] = 0
        self.reach[slots] = 0.0
        self._start_path(slots)

    def phase(self, slots: np.ndarray) -> np.ndarray:
        """The ``PHASES`` index of each slot's current path (``unchanged`` where it took no step)."""
        t = self.config.targets
        rung = self.rung[slots]
        out = np.where(
            rung == 0,
            Phase.FGS.code,
            np.where(
                rung == 1,
                Phase.RUNNER_UP.code,
                np.where(rung <= 1 + t, Phase.TARGETED.code, Phase.RESTART.code),
            ),
        )
        return np.where(self.path[slots] == 0, Phase.UNCHANGED.code, out).astype(np.int8)

    def remember_targets(self, slots: np.ndarray, logits: np.ndarray) -> None:
        """Rank the other classes of each image by its original logits (for the targeted rungs)."""
        for s, z in zip(slots, logits):
            order = np.argsort(-np.asarray(z, np.float64), kind="stable")
            self.targets[s] = order[order != self.label[s]][: self.targets.shape[1]]

    def stalled(self, slots: np.ndarray, logits: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Update each slot's margin record and visited images; True where its path made no progress."""
        m = margin(logits, self.label[slots])
        better = m < self.best[slots]
        self.best[slots] = np.where(better, m, self.best[slots])
        self.stale[slots] = np.where(better, 0, self.stale[slots] + 1)
        out = (self.stale[slots] >= self.config.patience) | (self.taken[slots] >= self.config.path_steps)
        for i, s in enumerate(slots):
            d = image_digest(q[i])
            if d in self.seen[s]:
                out[i] = True  # a cycle: sign steps came back to an image this path already visited
            self.seen[s].add(d)
        return out

    def escalate(self, slots: np.ndarray) -> None:
        """Move each slot to the next rung and set up that rung's start."""
        self.rung[slots] += 1
        self._start_path(slots)

    def step(self, slots: np.ndarray, grad_sign: np.ndarray) -> None:
        cfg = self.config
        moved = fgs_step(self.acc[slots], grad_sign, cfg.step, PIXEL_MIN, PIXEL_MAX)
        moved = _project(moved, self.origin[slots], cfg.radius_levels)
        self.acc[slots] = moved
        self.path[slots] += 1
        self.taken[slots] += 1
        self.spent[slots] += 1
        # the ball restarts start in: the one reached from the original by the deterministic rungs, so a
        # restart's L-inf stays within 2 * path_steps steps however many restarts come before it
        fresh = self.rung[slots] < 2 + cfg.targets
        if fresh.any():
            s = slots[fresh]
            dist = np.abs(moved[fresh] - self.origin[s]).reshape(len(s), -1).max(axis=1)
            self.reach[s] = np.maximum(self.reach[s], dist)

    def _start_path(self, slots: np.ndarray) -> None:
        cfg = self.config
        t = cfg.targets
        for s in slots:
            rung = int(self.rung[s])
            self.best[s], self.stale[s], self.path[s], self.taken[s] = np.inf, 0, 0, 0
            self.seen[s] = set()
            if rung == 0:
                self.code[s] = LOSS_LOGSUMEXP
                self.acc[s] = self.origin[s]
            elif rung <= 1 + t:  # runner_up, then targeted toward the original's 2nd, 3rd, ... class
                self.code[s] = LOSS_RUNNER_UP if rung == 1 else self.targets[s][rung - 1]
                self.acc[s] = self.origin[s]
            else:
                self.code[s] = LOSS_RUNNER_UP
                self.acc[s], self.path[s] = self._random_start(s, restart=rung - 1 - t)

    def _random_start(self, s: int, restart: int) -> tuple[np.ndarray, int]:
        """Uniform noise inside the L-inf ball the image has reached (at least one step), seeded per image."""
        cfg = self.config
        offset = max(1, math.ceil(self.reach[s] / cfg.step_levels - 1e-9))
        radius = min(max(self.reach[s], cfg.step_levels), offset * cfg.step_levels)
        if cfg.radius_levels is not None:
            radius = min(radius, cfg.radius_levels)
        rng = np.random.default_rng([cfg.seed, int(self.key[s]), restart])
        start = self.origin[s] + rng.uniform(-radius, radius, self.origin[s].shape)
        start = _project(np.clip(start, PIXEL_MIN, PIXEL_MAX), self.origin[s], cfg.radius_levels)
        return start, offset


def _project(x: np.ndarray, origin: np.ndarray, radius: float | None) -> np.ndarray:
    return x if radius is None else np.clip(x, origin - radius, origin + radius)
