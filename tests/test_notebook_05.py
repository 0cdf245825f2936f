"""Notebook 05 (long-tailed benchmark), SMOKE mode on the CPU: every method trained, finite
numbers, accuracies in [0, 1], and the stand-in data set named as such."""

from __future__ import annotations

import math

import pytest
from _notebooks import run_notebook

pytestmark = pytest.mark.notebook
NAME = "05_long_tailed_benchmark"
METHODS = ["ce", "la", "ldam-drw", "etf-dr", "allnc"]
FIELDS = ("accuracy", "minority_accuracy", "nc1", "self_duality", "mc_weights", "mc_means")


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    return run_notebook(NAME, tmp_path_factory)


def test_every_method_has_finite_numbers(results):
    assert set(results) == {*METHODS, "_meta"}
    for name in METHODS:
        for field in FIELDS:
            value = results[name][field]
            assert value is not None and math.isfinite(value), (name, field)
        for field in ("accuracy", "minority_accuracy"):
            assert 0.0 <= results[name][field] <= 1.0, (name, field)
        assert results[name]["epochs"] == results["_meta"]["epochs"]


def test_cpu_runs_the_mnist1d_stand_in(results):
    meta = results["_meta"]
    assert meta["smoke"] is True and meta["device"]
    assert meta["dataset"] == "mnist1d" and meta["real_benchmark"] is False  # no CIFAR here


def test_minority_is_the_smaller_half(results):
    counts, minority = results["_meta"]["counts"], results["_meta"]["minority"]
    k = len(counts)
    assert len(minority) == k - k // 2
    assert max(counts[c] for c in minority) <= min(counts[c] for c in range(k) if c not in minority)


def test_etf_classifier_stays_an_etf(results):
    k = len(results["_meta"]["counts"])
    assert results["etf-dr"]["mc_weights"] == pytest.approx(-1 / (k - 1), abs=1e-4)
