"""Numbers and words as a reader sees them."""

from __future__ import annotations

import pytest

from allnc_edu.fmt import fixed, html_table, plural


@pytest.mark.parametrize(
    ("value", "kw", "shown"),
    [
        (1.0, {}, "1.000"),  # the same decimals as its neighbours ("1" beside "0.265" was wrong)
        (0.26531, {}, "0.265"),
        (6.3e-35, {}, "0.000"),  # tiny values are 0 to the shown precision
        (-1e-9, {}, "0.000"),  # never "-0.000"
        (-0.3333, {"signed": True}, "-0.333"),
        (0.5, {"signed": True}, "+0.500"),
        (0.0, {"signed": True}, "0.000"),
        (None, {}, "n/a"),
        (0.12345, {"decimals": 2}, "0.12"),
    ],
)
def test_fixed(value, kw, shown) -> None:
    assert fixed(value, **kw) == shown


def test_plural() -> None:
    assert plural(1, "step") == "1 step"
    assert plural(2, "step") == "2 steps"
    assert plural(0, "class", "classes") == "0 classes"


def test_html_table_escapes_every_cell_and_the_caption():
    page = html_table([["a<b", "c"], ["1 & 2", "3"]], caption="x > y")
    assert page == (
        "<table><caption>x &gt; y</caption><thead><tr><th>a&lt;b</th><th>c</th></tr></thead>"
        "<tbody><tr><td>1 &amp; 2</td><td>3</td></tr></tbody></table>"
    )
    assert "<caption>" not in html_table([["h"]])
