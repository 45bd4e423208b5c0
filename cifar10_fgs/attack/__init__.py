"""The attack: pure functions over a batch of uint8 images, a model fed by its input convention (docs/attack.md).

``cifar10_fgs.attack(model, images, labels, *, convention=None, **settings)`` attacks a batch in one call:
this package is callable (``call.attack``: the model requirements are in its docstring).

* ``call``: the one-call attack on arrays (a keras.Model or .keras path, fed by its input convention);
* ``settings``: the settings by name, checked (an old folder's recorded pixel range 0..255 accepted);
* ``step``: one fast gradient sign step and the quantisation to stored bytes (pure functions);
* ``fgs``: the iterative fast gradient sign loop (settings: ``config.AttackConfig``);
* ``gradient``: its input-gradient function, one trace per batch size, and the batch sizes of the drain;
* ``schedule``: the order images enter the slots (a short stream by margin, so its drain is short);
* ``ladder``: what an image that stalls on the plain path tries next (the stall ladder);
* ``onepixel``: the one-pixel differential-evolution attack (``--method onepixel``).
"""

import sys
import types

from cifar10_fgs.attack.call import attack
from cifar10_fgs.attack.fgs import AttackRecord, attack_arrays, iterate_attack
from cifar10_fgs.attack.step import fgs_step, quantize
from cifar10_fgs.config import AttackConfig, OnePixelConfig

__all__ = [
    "AttackConfig",
    "AttackRecord",
    "OnePixelConfig",
    "attack",
    "attack_arrays",
    "fgs_step",
    "iterate_attack",
    "quantize",
]


class _CallablePackage(types.ModuleType):
    """``cifar10_fgs.attack`` is this package and, called, :func:`~cifar10_fgs.attack.call.attack` (a subpackage
    of the same name as a top-level function would otherwise shadow it once imported)."""

    def __call__(self, model, images, labels, *, convention=None, **settings) -> AttackRecord:
        return attack(model, images, labels, convention=convention, **settings)


sys.modules[__name__].__class__ = _CallablePackage
