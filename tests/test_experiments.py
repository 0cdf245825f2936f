"""experiments: runs by name return typed RunResults; options are routed; comparisons."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from allnc_edu import experiments as ex
from allnc_edu.allnc import AllNCConfig
from allnc_edu.data import LongTailDataset, load_dataset, long_tail_counts, make_gaussian_classes
from allnc_edu.records import SUMMARY_FIELDS, RunResult

COUNTS = [64, 32, 16, 8]  # minority (K - K//2 fewest) = classes 2 and 3
TINY = {"batch_size": 16, "device": "cpu", "progress": False}


@pytest.fixture(scope="module")
def data() -> LongTailDataset:
    return make_gaussian_classes(COUNTS, dim=6, test_per_class=12, seed=0)


def test_run_method_is_reproducible_and_routes_options(data) -> None:
    a = ex.run_method("la", data, epochs=2, seed=3, tau=0.5, lr=0.05, **TINY)
    b = ex.run_method("la", data, epochs=2, seed=3, tau=0.5, lr=0.05, **TINY)
    c = ex.run_method("la", data, epochs=2, seed=4, tau=0.5, lr=0.05, **TINY)
    assert isinstance(a, RunResult)
    assert a.options == {"tau": 0.5} and a.method == "la" and a.config.train.lr == 0.05
    assert a.nc1 == b.nc1 and a.accuracy == b.accuracy
    assert a.nc1 != c.nc1  # the seed sets the initialisation
    assert a.epochs == 2 and len(a.history) == 2 and a.minority == [2, 3]
    with pytest.raises(ValueError, match="no option"):
        ex.run_method("ce", data, epochs=1, tau=0.5, **TINY)


def test_run_method_records_every_allnc_option(data) -> None:
    run = ex.run_method("allnc", data, epochs=1, hycon=False, **TINY)
    assert run.options == {**AllNCConfig().as_dict(), "hycon": False}  # defaults included
    assert set(run.options) == {f.name for f in dataclasses.fields(AllNCConfig)}


def test_run_method_records_geometry_of_every_evaluated_epoch(data) -> None:
    run = ex.run_method("ce", data, epochs=2, record_geometry=True, **TINY)
    k = len(COUNTS)
    for record in run.evaluated:
        g = record.geometry
        assert torch.tensor(g["class_means"]).shape[0] == k
        assert torch.tensor(g["classifier"]).shape == torch.tensor(g["class_means"]).shape
    assert run.geometry == run.history[-1].geometry


def test_run_method_needs_a_backbone_for_unknown_data(data) -> None:
    renamed = dataclasses.replace(data, name="my-data")
    with pytest.raises(ValueError, match="backbone"):
        ex.run_method("ce", renamed, epochs=1, **TINY)


def test_compare_methods_applies_common_options_then_each_runs_own(data) -> None:
    runs = {
        "plain": {"method": "ce"},
        "adjusted": {"method": "la", "tau": 2.0},
        "short": {"method": "ce", "metrics_every": 2},
    }
    out = ex.compare_methods(runs, data, epochs=2, metrics_every=1, **TINY)
    assert list(out) == ["plain", "adjusted", "short"]
    assert out["adjusted"].method == "la" and out["adjusted"].options == {"tau": 2.0}
    assert len(out["plain"].evaluated) == 2 and len(out["short"].evaluated) == 1
    numbers = ex.key_numbers(out)
    assert list(numbers["plain"]) == list(SUMMARY_FIELDS)
    assert json.loads(json.dumps(numbers)) == numbers
    with pytest.raises(ValueError, match="method"):
        ex.compare_methods({"x": {"tau": 1.0}}, data, epochs=1)
    with pytest.raises(ValueError, match="empty"):
        ex.compare_methods({}, data, epochs=1)


def test_load_ratios_matches_separate_loads() -> None:
    options = {"profile": "step", "n_max": 40, "seed": 1}
    loaded = ex.load_ratios("mnist1d", [1, 10], **options)
    assert list(loaded) == [1, 10]
    for ratio, d in loaded.items():
        assert d.counts == long_tail_counts(40, 10, ratio, "step")
    alone = load_dataset("mnist1d", imbalance_ratio=10, **options)
    assert torch.equal(alone.train_x, loaded[10].train_x)
    assert torch.equal(alone.test_y, loaded[10].test_y)
    gauss = ex.load_ratios("gaussian", [1, 4], n_max=20)
    assert gauss[4].counts == long_tail_counts(20, 10, 4, "exp")
    with pytest.raises(ValueError, match="empty"):
        ex.load_ratios("mnist1d", [])
