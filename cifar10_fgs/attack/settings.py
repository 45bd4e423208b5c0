"""The attack's settings by name: checked, and as old ``generation.json`` files record them.

``AttackConfig`` lost its pixel range (pixels are always uint8 levels; a model's own range is its input
convention, ``models.convention``). Folders made before still record ``pixel_min`` 0 and ``pixel_max`` 255 in
``config.attack``: exactly those values are accepted (and dropped) when such a folder is read, resumed,
combined or validated; any other recorded range is refused in one line.
"""

from __future__ import annotations

from dataclasses import fields

from cifar10_fgs.config import PIXEL_MAX, PIXEL_MIN, AttackConfig
from cifar10_fgs.errors import ConfigError

# What folders generated before the pixel range left ``AttackConfig`` record in ``config.attack``
LEGACY_PIXEL_RANGE = {"pixel_min": PIXEL_MIN, "pixel_max": PIXEL_MAX}


def attack_settings(settings: dict, where: str = "attack settings", *, legacy: bool = True) -> dict:
    """``settings`` (AttackConfig fields by name) without the legacy pixel range, checked: a one-line ConfigError for
    an unknown name, or a pixel range other than the uint8 levels [0, 255] (``legacy`` False: unknown names too)."""
    out = dict(settings)
    for key, value in LEGACY_PIXEL_RANGE.items():
        if key in out and legacy:
            got = out.pop(key)
            if isinstance(got, bool) or got != value:
                raise ConfigError(
                    f"{where}: {key} {got!r} is not supported: pixels are uint8 levels [0, 255]; a model that takes "
                    "another range declares it in its input convention (e.g. --input-scale 1)"
                )
    known = [f.name for f in fields(AttackConfig)]
    unknown = sorted(set(out) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown setting {unknown[0]!r}: expected some of {', '.join(known)}")
    return out


def parse_attack_config(settings: dict, where: str = "attack settings") -> AttackConfig:
    """The ``AttackConfig`` of ``settings`` (see :func:`attack_settings`); one-line ConfigError if invalid."""
    try:
        return AttackConfig(**attack_settings(settings, where))
    except TypeError as exc:  # a field of the wrong type that the checks did not reach
        raise ConfigError(f"{where}: {exc}") from None
