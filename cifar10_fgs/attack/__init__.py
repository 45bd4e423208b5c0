"""The attack: a pure function over a batch, with the pixel range explicit (see docs/attack.md).

* ``step``: one fast gradient sign step and the quantisation to stored bytes (pure functions);
* ``fgs``: the iterative fast gradient sign loop (settings: ``config.AttackConfig``);
* ``gradient``: its input-gradient function, one trace per batch size, and the batch sizes of the drain;
* ``schedule``: the order images enter the slots (a short stream by margin, so its drain is short);
* ``ladder``: what an image that stalls on the plain path tries next (the stall ladder);
* ``onepixel``: the one-pixel differential-evolution attack (``--method onepixel``).
"""

from cifar10_fgs.attack.fgs import AttackRecord, attack_arrays, iterate_attack
from cifar10_fgs.attack.step import fgs_step, quantize
from cifar10_fgs.config import AttackConfig, OnePixelConfig

__all__ = ["AttackConfig", "AttackRecord", "OnePixelConfig", "attack_arrays", "fgs_step", "iterate_attack", "quantize"]
