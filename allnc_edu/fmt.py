"""Numbers and words as a reader should see them: fixed decimals, no "-0.000", no "1 steps"."""

from __future__ import annotations

import math


def fixed(value: float | None, decimals: int = 3, *, signed: bool = False) -> str:
    """``value`` with exactly ``decimals`` decimals; values that round to zero print as 0 (never
    "-0.000" nor "6.3e-35"), ``signed`` adds "+" to positive values, None prints as "n/a"."""
    if value is None:
        return "n/a"
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if round(value, decimals) == 0:
        value = 0.0
    return f"{value:{'+' if signed and value != 0 else ''}.{decimals}f}"


def plural(count: int, word: str, many: str | None = None) -> str:
    """A count with its word: "1 step", "2 steps" (``many`` for irregular plurals:
    ``plural(3, "class", "classes")``)."""
    return f"{count} {word if count == 1 else many or word + 's'}"
