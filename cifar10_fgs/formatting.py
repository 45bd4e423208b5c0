"""How numbers are written: results markdown, the dataset card, the leaderboard and the CLI's tables.

``fmt(x, digits)`` is every table's number: ``digits`` decimals (4 unless a column says otherwise), an
int written like a float (``3`` -> ``3.0000``), and ``missing`` where there is no value (None): "—"
by default, "n/a" or "not measured" where a table says so. ``percent`` is the same with a ``%``
sign; ``quantity`` writes a value in its unit (the paper comparison's rows).
"""

from __future__ import annotations

MISSING = "—"
DURATION_UNITS = ("min", "h", "ms", "s")  # written with 4 significant digits, not 4 decimals


def fmt(x: float | None, digits: int = 4, missing: str = MISSING) -> str:
    """``x`` with ``digits`` decimals, or ``missing`` for None."""
    return missing if x is None else f"{x:.{digits}f}"


def percent(x: float | None, digits: int = 2, missing: str = MISSING) -> str:
    """``x`` (already in percent) with ``digits`` decimals and a ``%`` sign, or ``missing`` for None."""
    return missing if x is None else f"{fmt(x, digits)}%"


def quantity(x: float | None, unit: str, missing: str = MISSING) -> str:
    """``x`` in ``unit``: a percentage as ``percent``, a duration with 4 significant digits and its unit, else
    ``fmt``."""
    if x is None:
        return missing
    if unit == "%":
        return percent(x)
    if unit in DURATION_UNITS:
        return f"{x:.4g} {unit}"
    return fmt(x)
