"""``squeeze.minority_squeeze``: direction and length told apart, on closed forms."""

from __future__ import annotations

import pytest
import torch

from allnc_edu.geometry import simplex_etf
from allnc_edu.squeeze import minority_squeeze


def _etf_means(lengths: list[float]) -> torch.Tensor:
    return torch.tensor(lengths, dtype=torch.float64)[:, None] * simplex_etf(len(lengths), 6)


def test_an_etf_of_unequal_lengths_squeezes_only_once_centred() -> None:
    """Minority means on the ETF directions but three times shorter: the raw and normalised
    views stay at -1/(K-1); centring by the balanced mean tilts them together."""
    means = _etf_means([3.0, 3.0, 1.0, 1.0])
    got = minority_squeeze(means, [1000, 1000, 10, 10], [2, 3], weight=simplex_etf(4, 6))
    assert got["raw"] == pytest.approx(-1 / 3, abs=1e-12)
    assert got["normalised"] == pytest.approx(-1 / 3, abs=1e-12)
    assert got["etf"] == pytest.approx(-1 / 3)
    assert got["norm_ratio"] == pytest.approx(1 / 3)
    assert got["own_classifier"] == pytest.approx(1.0)
    # Closed form: the balanced global mean g of the rows 3e_0, 3e_1, e_2, e_3; the centred
    # minority rows are e_2 - g and e_3 - g.
    e = simplex_etf(4, 6)
    g = (3 * e[0] + 3 * e[1] + e[2] + e[3]) / 4
    c2, c3 = e[2] - g, e[3] - g
    want = float(c2 @ c3 / (c2.norm() * c3.norm()))
    assert got["balanced"] == pytest.approx(want, abs=1e-12) and want > -1 / 3
    assert got["weighted"] > got["balanced"]  # the head weighs more in the weighted mean


def test_equal_lengths_give_the_etf_in_every_view() -> None:
    got = minority_squeeze(_etf_means([2.0] * 5), [50, 50, 5, 5, 5], [2, 3, 4])
    for view in ("raw", "balanced", "normalised"):
        assert got[view] == pytest.approx(-1 / 4, abs=1e-12), view
    assert "own_classifier" not in got


def test_a_real_squeeze_of_direction_survives_every_view() -> None:
    means = _etf_means([1.0, 1.0, 1.0, 1.0])
    means[3] = 0.9 * means[2] + 0.1 * means[3]  # minority 3 turned towards minority 2
    got = minority_squeeze(means, [100, 100, 100, 100], [2, 3])
    assert got["raw"] > 0.8 and got["normalised"] > 0.5 and got["balanced"] > 0.5


@pytest.mark.parametrize("minority", [[2], [2, 9], []])
def test_bad_minority_is_one_line(minority) -> None:
    with pytest.raises(ValueError, match="minority must name at least two classes"):
        minority_squeeze(_etf_means([1.0] * 4), [1, 1, 1, 1], minority)
