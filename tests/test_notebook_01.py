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


def test_the_student_run_reports_every_exercise_not_attempted(results):
    verdicts = {v["id"]: v["verdict"] for v in results["verdicts"]}
    expected = {"01-etf", "01-etf-angle", "01-cosines", "01-nc1", "01-predict-order"}
    assert expected <= set(verdicts)
    assert all(verdict is None for verdict in verdicts.values())


def test_the_norm_ratio_is_sqrt_k_for_the_means_and_one_over_sqrt_n_for_the_sum(results):
    k, n = results["num_classes"], results["samples_per_class"]
    rows = {row["key"]: row for row in results["penalties"]}
    assert set(rows) == {"class", "sample", "sample_sum"}
    for row in rows.values():
        assert row["converged"] and row["etf_distance_means"] < 1e-5  # the same ETF shape
        assert row["ratio"] == pytest.approx(row["closed_form"], rel=1e-5)
    assert rows["class"]["ratio"] == pytest.approx(math.sqrt(k), rel=1e-5)
    assert rows["sample"]["ratio"] == pytest.approx(math.sqrt(k), rel=1e-5)  # same at balance
    assert rows["sample_sum"]["ratio"] == pytest.approx(1 / math.sqrt(n), rel=1e-5)
    assert rows["sample_sum"]["ratio"] < 1  # with the sum, the means are the shorter arrows


def test_only_the_final_3d_view_is_exact(results):
    """The prose: early snapshots are projections (d = K = 4), the end is exact."""
    assert results["views_exact"][0] is False
    assert results["views_exact"][-1] is True


def test_the_centring_convention_moves_mc_h_and_nc3_not_mc_w(results):
    c = results["centring"]
    assert c["counts"][0] > c["counts"][-1]  # imbalanced, or the two means coincide
    balanced, weighted = c["balanced"], c["weighted"]
    assert weighted["mc_means"] > balanced["mc_means"] + 0.3  # "much larger"
    assert weighted["self_duality"] > balanced["self_duality"] + 0.3
    assert weighted["mc_weights"] == pytest.approx(balanced["mc_weights"], abs=1e-12)


def test_the_real_network_moves_towards_collapse_but_stays_far_from_it(results):
    cnn, ufm_nc1 = results["cnn"], results["final"]["nc1"]
    start, end = cnn["start"], cnn["end"]
    assert len(set(cnn["counts"])) == 1  # balanced MNIST-1D
    assert start["epoch"] < end["epoch"] == cnn["epochs"]
    assert end["nc1"] < start["nc1"] / 10  # "falls by more than a factor of ten"
    assert end["self_duality"] < start["self_duality"]  # "the gap shrinks"
    assert end["ncc_agreement"] > start["ncc_agreement"]  # "more and more samples"
    for key in ("etf_distance_means", "etf_distance_weights", "self_duality"):
        assert end[key] > 0.1, key  # "well above zero"
    assert end["nc1"] > 1e6 * max(ufm_nc1, 1e-300)  # "nowhere near the UFM's"
