"""The attack: a pure function over a batch, with the pixel range explicit (see docs/attack.md).

* ``fgs``: the iterative fast gradient sign loop and its settings;
* ``gradient``: its input-gradient function, one trace per batch size, and the batch sizes of the drain;
* ``ladder``: what an image that stalls on the plain path tries next (the stall ladder);
* ``onepixel``: the one-pixel differential-evolution attack (``--method onepixel``).
"""

from cifar10_fgs.attack.fgs import AttackConfig, AttackRecord, attack_arrays, fgs_step, iterate_attack

__all__ = ["AttackConfig", "AttackRecord", "attack_arrays", "fgs_step", "iterate_attack"]
