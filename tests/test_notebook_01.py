"""Notebook 01 (neural collapse on balanced data): every claim of its prose, on its JSON."""

from __future__ import annotations

import math

import pytest
from _notebooks import run_notebook

pytestmark = pytest.mark.notebook
NAME = "01_neural_collapse"


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    return run_notebook(NAME, tmp_path_factory)


@pytest.mark.parametrize("k", [3, 4])
def test_simplex_etf_cosines_and_angles_are_the_closed_form(results, k):
    cosines = results["etf_cosines"][str(k)]
    angles = results["etf_angles"][str(k)]
    off_angle = math.degrees(math.acos(-1 / (k - 1)))  # 120 for K = 3, 109.47 for K = 4
    for i in range(k):
        for j in range(k):
            want = 1.0 if i == j else -1 / (k - 1)
            assert cosines[i][j] == pytest.approx(want, abs=1e-12)
            assert angles[i][j] == pytest.approx(0.0 if i == j else off_angle, abs=1e-5)


def test_the_balanced_ufm_reaches_an_exact_simplex_etf(results):
    final = results["final"]
    assert results["converged"]
    assert final["nc1"] < 1e-8 and final["nc1"] < 1e-6 * results["nc1_initial"]
    assert final["etf_distance_means"] < 1e-5
    assert final["etf_distance_weights"] < 1e-5
    assert final["self_duality"] < 1e-5
    assert results["ncc_agreement"] == 1.0
    k = results["num_classes"]
    assert final["mc_weights"] == pytest.approx(-1 / (k - 1), abs=1e-5)
    assert final["mc_means"] == pytest.approx(-1 / (k - 1), abs=1e-5)


def test_norms_are_equal_and_balance_the_two_weight_decays(results):
    final, k = results["final"], results["num_classes"]
    w_norms, h_norms = final["classifier_norms"], final["mean_norms"]
    assert max(w_norms) - min(w_norms) < 1e-5 * max(w_norms)
    assert max(h_norms) - min(h_norms) < 1e-5 * max(h_norms)
    # equal weight decays: K ||w||^2 = ||m||^2 at the optimum, so ||m|| = sqrt(K) ||w||
    assert h_norms[0] / w_norms[0] == pytest.approx(math.sqrt(k), rel=1e-5)
    closed = results["closed_form_norms"]
    assert w_norms[0] == pytest.approx(closed["classifier"], rel=1e-4)
    assert h_norms[0] == pytest.approx(closed["means"], rel=1e-4)


def test_features_collapse_before_the_means_reach_the_etf(results):
    first, later = results["snapshots"]
    assert first["nc1"] > later["nc1"] > results["final"]["nc1"]
    assert later["nc1"] < 1e-3  # features already on their means ...
    assert later["etf_distance_means"] > 0.1  # ... while the means are not yet an ETF
    assert first["etf_distance_means"] > later["etf_distance_means"]
