"""Exceptions that carry a one-line, user-facing message.

Library code raises these for bad input; the CLI maps them to a single line on
stderr and exit code 2 (see ``cli/_errors.py``).  Anything else is a bug and is
reported as such.
"""

from __future__ import annotations


class Cifar10FgsError(Exception):
    """Base class: ``str(err)`` is a complete one-line message naming the problem and the fix."""

    exit_code = 2


class Cifar10Error(Cifar10FgsError):
    """The CIFAR-10 input (``--cifar10``) is missing, malformed, unreachable, or not the one a dataset was made from."""


class ModelError(Cifar10FgsError):
    """A model file that is not a usable 32x32x3 -> 10 Keras classifier."""


class ConfigError(Cifar10FgsError):
    """Settings that are out of range or incompatible with each other."""


class OutputError(Cifar10FgsError):
    """An output folder that cannot be written without losing earlier work."""


class ExistingOutputError(OutputError):
    """Something is already where a call would write (a model, dataset, results file or card) that it did not make
    with the same settings: it is kept, and the call stops before any work. ``overwrite=True`` (``--overwrite``)
    replaces it; the message names that and ``alternative`` (another ``--out``, another ``--name`` ...)."""

    def __init__(self, path, why: str, alternative: str = "choose another --out"):
        self.path, self.why, self.alternative = str(path), why, alternative
        super().__init__(f"{path} {why}: pass --overwrite to replace it, or {alternative}")

    def __reduce__(self):
        return type(self), (self.path, self.why, self.alternative)


class ValidationError(Cifar10FgsError):
    """A generated dataset folder that fails validation."""

    exit_code = 1


class NotADatasetError(ValidationError):
    """A folder that is not a generated dataset at all: bad input (exit code 2), not a failed check."""

    exit_code = 2


class HubError(Cifar10FgsError):
    """The Hugging Face hub could not be reached or refused the request."""


def one_line(exc: BaseException, limit: int = 200) -> str:
    """``exc`` as ``Type: first words`` on one line (library messages must stay one line)."""
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
