"""How each record of ``generation.json`` reads and writes its JSON object (see ``manifest``).

``ManifestError`` (a file that exists but is not a usable manifest), the typed readers of one value,
``from_object`` / ``to_object``: known keys as fields, keys a record does not know kept in its ``extra``, and
``Record``, the base whose ``to_json`` (``to_object``) every record shares unless it writes more.
"""

from __future__ import annotations

import dataclasses

from cifar10_fgs.config import Method
from cifar10_fgs.errors import ValidationError


class ManifestError(ValidationError):
    """``generation.json`` exists but is not a usable manifest (exit code 1: regenerate the folder)."""


def obj_of(x, where: str) -> dict:
    if not isinstance(x, dict):
        raise ManifestError(f"{where} is not an object")
    return x


def int_of(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ManifestError(f"{where} is {value!r}, not an integer")
    return value


def bool_of(value, where: str) -> bool:
    if not isinstance(value, bool):
        raise ManifestError(f"{where} is {value!r}, not true or false")
    return value


def extra_keys(obj: dict, cls) -> dict:
    """The keys of ``obj`` that are not fields of ``cls``."""
    known = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in obj.items() if k not in known}


def from_object(cls, obj):
    """``cls`` from the JSON object ``obj`` (anything else reads as empty): known keys as fields, the rest ``extra``."""
    obj = obj if isinstance(obj, dict) else {}
    known = {f.name: obj[f.name] for f in dataclasses.fields(cls) if f.name in obj and f.name != "extra"}
    return cls(**known, extra=extra_keys(obj, cls))


def to_object(record) -> dict:
    """A record as its JSON object: known fields (None left out) plus the ``extra`` keys it was read with."""
    out = {}
    for f in dataclasses.fields(record):
        if f.name == "extra":
            continue
        v = getattr(record, f.name)
        if v is None:
            continue
        if hasattr(v, "to_json"):
            v = v.to_json()
        elif isinstance(v, dict):
            v = {k: (x.to_json() if hasattr(x, "to_json") else x) for k, x in v.items()}
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v.value if isinstance(v, Method) else v
    return {**getattr(record, "extra", {}), **out}


class Record:
    """A record of ``generation.json``: ``to_json`` writes it back as ``to_object`` does, unless it says otherwise."""

    def to_json(self) -> dict:
        return to_object(self)
