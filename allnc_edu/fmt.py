"""Numbers and words as a reader should see them: fixed decimals, no "-0.000", no "1 steps"."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence


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


def html_table(rows: Sequence[Sequence[str]], caption: str | None = None) -> str:
    """An HTML table of text cells: ``rows[0]`` the header, the rest the body, every cell
    escaped (display it with ``IPython.display.HTML``)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:]
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def plural(count: int, word: str, many: str | None = None) -> str:
    """A count with its word: "1 step", "2 steps" (``many`` for irregular plurals:
    ``plural(3, "class", "classes")``)."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def nbytes_text(nbytes: float) -> str:
    """A number of bytes as a reader should see it: "850.0 MB", "45.0 TB"."""
    for unit in ("B", "kB", "MB", "GB"):
        if nbytes < 1000:
            return f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes:,.1f} TB"


def error_line(err: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
