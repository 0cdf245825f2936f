"""Notebook 02 (minority collapse): every claim of its prose, on its JSON."""

from __future__ import annotations

import itertools

import pytest
from _notebooks import run_notebook

pytestmark = pytest.mark.notebook
NAME = "02_minority_collapse"


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    return run_notebook(NAME, tmp_path_factory)


def etf_value(results: dict) -> float:
    return -1 / (results["num_classes"] - 1)


def non_decreasing(values: list[float], tol: float = 1e-9) -> bool:
    return all(b >= a - tol for a, b in itertools.pairwise(values))


def test_ce_minority_collapse_grows_with_imbalance(results):
    assert results["ratios"][0] == 1 and len(results["ratios"]) >= 3
    mc_w, mc_h = results["mc_weights"], results["mc_means"]
    assert mc_w[0] == pytest.approx(etf_value(results), abs=1e-5)
    assert non_decreasing(mc_w) and mc_w[-1] > mc_w[0]
    assert non_decreasing(mc_h) and mc_h[-1] > mc_h[0]
    assert mc_w[-1] > 0.9  # "nearly merged", hence also above 0.5
    assert mc_h[-1] > 0.5


def test_ce_minority_rows_shrink(results):
    assert results["weight_norm_ratios"][0] == pytest.approx(1.0, abs=1e-5)
    assert results["weight_norm_ratios"][-1] < 1.0
    assert results["mean_norm_ratios"][-1] < 1.0


def test_fixed_etf_holds_the_classifier_but_not_the_means(results):
    etf = etf_value(results)
    for mc_w in results["etf_mc_weights"]:
        assert mc_w == pytest.approx(etf, abs=1e-6)
    mc_h = results["etf_mc_means"]
    assert mc_h[0] == pytest.approx(etf, abs=1e-5)
    assert non_decreasing(mc_h) and mc_h[-1] > etf + 0.1
    assert results["etf_mean_norm_ratios"][-1] < 1.0
    duality = results["etf_self_duality"]
    assert duality[0] < 1e-5 and duality[-1] > duality[0] + 0.1


def test_seli_distances_shrink_with_weight_decay(results):
    decays = results["seli_weight_decays"]
    assert all(a > b for a, b in itertools.pairwise(decays))
    for key in ("seli_distances", "seli_means_distances"):
        assert all(a > b for a, b in itertools.pairwise(results[key])), key


def test_seli_minority_classifiers_lean_together_while_embeddings_spread(results):
    seli, etf = results["seli_mc"], etf_value(results)
    assert etf < seli["weights"] < 1.0
    assert seli["means"] < etf


def test_p2p_restores_classifiers_and_means_at_the_largest_ratio(results):
    p2p, etf = results["p2p"], etf_value(results)
    assert all(p2p["converged"])
    assert p2p["mc_weights"][-1] < results["mc_weights"][-1]
    assert p2p["mc_means"][-1] < results["mc_means"][-1]
    assert p2p["mc_weights"][-1] == pytest.approx(etf, abs=0.1)
    assert p2p["mc_means"][-1] == pytest.approx(etf, abs=0.1)


def test_complete_minority_collapse_sets_in_at_a_threshold(results):
    t = results["threshold"]
    assert all(t["converged"]), "near the threshold every run must converge, or it is an artefact"
    below, at = t["bracket"]
    assert 150 <= below < at <= 250  # K = 4, weight decay 5e-3: about IR 200
    for ratio, mc_w, mc_h in zip(t["ratios"], t["mc_weights"], t["mc_means"], strict=True):
        if ratio <= below:
            assert mc_w < 0.999
        if ratio >= at:
            assert mc_w >= 0.999 and mc_h >= 0.999  # classifiers and means both merge
    assert t["n_max"] >= 100_000 and results["explorer_n_max"] >= 10_000


def test_the_student_run_reports_every_exercise_not_attempted(results):
    verdicts = {v["id"]: v["verdict"] for v in results["verdicts"]}
    expected = {"02-mc-w", "02-mc-w-zero", "02-complete-collapse", "02-predict-fixed-etf"}
    assert expected <= set(verdicts)
    assert all(verdict is None for verdict in verdicts.values())


def test_a_second_seed_lands_on_the_same_mc_w_at_the_threshold(results):
    t = results["threshold"]
    other = t["other_seed"]
    assert all(other["converged"])
    first_seed = dict(zip(t["ratios"], t["mc_weights"], strict=True))
    for ratio, mc_w in zip(t["bracket"], other["mc_weights"], strict=True):
        assert mc_w == pytest.approx(first_seed[ratio], abs=1e-3)


def test_same_weight_decay_the_penalty_decides_whether_the_minority_means_squeeze(results):
    comparison, etf = results["penalty_comparison"], etf_value(results)
    assert comparison["counts"][0] / comparison["counts"][-1] == max(results["ratios"])
    per_class, per_sample = comparison["class"], comparison["sample"]
    assert per_class["converged"] and per_sample["converged"]
    for r in (per_class, per_sample):
        assert r["mc_weights"] > etf + 0.5  # both squeeze the minority classifiers
    assert per_class["mc_means"] > 0.99 and per_class["mean_norm_ratio"] < 1  # merged, short
    assert per_sample["mc_means"] < etf  # spread apart, below the ETF value ...
    assert per_sample["mean_norm_ratio"] > 1  # ... and longer than the majority's


def test_seli_each_drop_is_smaller_than_the_one_before(results):
    speed = results["seli_convergence"]
    for key in ("weight_drops", "means_drops"):
        drops = speed[key]
        assert all(d > 0 for d in drops), key
        assert all(b < a for a, b in itertools.pairwise(drops)), key


def test_fixed_etf_raw_minority_means_keep_their_direction_and_only_shrink(results):
    """The prose: on their own rows, at the ETF angle raw and normalised; the centred squeeze is
    length seen through centring, larger still on the sample-weighted mean."""
    etf, rows = etf_value(results), results["etf_squeeze"]
    assert [r["ratio"] for r in rows] == results["ratios"]
    for r in rows:
        assert len(r["own_cosines"]) == len(r["minority"]) >= 2
        assert min(r["own_cosines"]) > 0.9999, r["ratio"]  # "cosine 1.000 at every ratio"
        assert r["own_classifier"] > 0.9999
        assert r["raw"] == pytest.approx(etf, abs=1e-4), r["ratio"]
        assert r["normalised"] == pytest.approx(etf, abs=1e-4), r["ratio"]
        assert r["weighted"] >= r["balanced"] - 1e-9  # "larger still"
    lengths = [r["norm_ratio"] for r in rows]
    assert lengths[0] == pytest.approx(1.0, abs=1e-6)
    assert all(b < a for a, b in itertools.pairwise(lengths)) and lengths[-1] < 0.5
    centred = [r["balanced"] for r in rows]
    assert non_decreasing(centred) and centred[-1] > etf + 0.5
    assert centred == pytest.approx(results["etf_mc_means"], abs=1e-6)  # the sweep's MC_H
