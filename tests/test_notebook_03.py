"""Notebook 03 (class-mean squeezing): every claim of its prose, on its JSON.

CI runs the SMOKE parameters (20 epochs, weight decay 0.01, only ratios 1 and 100); the same
claims hold for the default run (60 epochs, weight decay 5e-3, ratios 1, 10, 30, 100), which the
notebook's author measured.
"""

from __future__ import annotations

import pytest
from _notebooks import run_notebook

pytestmark = pytest.mark.notebook
NAME = "03_class_mean_squeezing"
KEYS = {"accuracy", "minority_accuracy", "nc1", "self_duality", "mc_weights", "mc_means"}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    return run_notebook(NAME, tmp_path_factory)


@pytest.fixture(scope="module")
def etf(results) -> float:
    return -1 / (results["settings"]["num_classes"] - 1)


def test_json_holds_the_three_runs_and_the_minority(results) -> None:
    for key in ("balanced", "ce", "etf_dr"):
        assert KEYS <= set(results[key]), key
    settings = results["settings"]
    counts, minority = settings["counts"], settings["minority"]
    assert len(minority) == len(counts) - len(counts) // 2
    assert max(counts[c] for c in minority) < min(
        n for c, n in enumerate(counts) if c not in minority
    ), "minority = the classes with the fewest training samples"
    assert results["balanced"]["imbalance_ratio"] == 1
    assert results["ce"]["imbalance_ratio"] == settings["imbalance_ratio"] >= 100


def test_balanced_run_sits_near_the_etf_with_even_accuracy(results, etf) -> None:
    balanced = results["balanced"]
    assert balanced["mc_weights"] == pytest.approx(etf, abs=0.1)
    assert balanced["mc_means"] == pytest.approx(etf, abs=0.1)
    assert balanced["minority_accuracy"] >= balanced["majority_accuracy"] - 0.05


def test_long_tail_squeezes_classifiers_and_means(results) -> None:
    balanced, ce = results["balanced"], results["ce"]
    assert ce["mc_weights"] > balanced["mc_weights"] + 0.2  # "well above"
    assert ce["mc_means"] > balanced["mc_means"]
    assert ce["minority_accuracy"] < balanced["minority_accuracy"] - 0.5  # "far below"


def test_fixed_etf_fixes_the_classifier_but_not_the_means(results, etf) -> None:
    balanced, ce, fixed = results["balanced"], results["ce"], results["etf_dr"]
    assert fixed["mc_weights"] == pytest.approx(etf, abs=1e-4)
    assert fixed["mc_means"] > etf + 0.3
    assert fixed["self_duality"] > ce["self_duality"]
    assert fixed["self_duality"] > balanced["self_duality"]
    assert abs(fixed["minority_accuracy"] - ce["minority_accuracy"]) < 0.05  # "within a few"
    assert fixed["minority_accuracy"] < balanced["minority_accuracy"] - 0.5


def test_nc1_alone_does_not_reveal_the_squeeze(results) -> None:
    assert results["etf_dr"]["nc1"] < results["ce"]["nc1"]


def test_fixed_etf_classifier_is_flat_over_training(results, etf) -> None:
    history = results["etf_dr_mc_weights_history"]
    assert len(history) >= 2
    assert all(v == pytest.approx(etf, abs=1e-4) for v in history)


def test_squeeze_grows_from_balanced_to_the_largest_ratio(results) -> None:
    sweep = results["sweep"]
    assert sweep["ratios"][0] == 1 and sweep["ratios"] == sorted(sweep["ratios"])
    for key in ("mc_weights", "mc_means"):
        assert sweep[key][-1] > sweep[key][0], key
    assert sweep["minority_accuracy"][-1] < sweep["minority_accuracy"][0]
