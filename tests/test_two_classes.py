"""K = 2: the smaller class is the minority, MC_W / MC_H (pairs of minority classes) are None.

Before, ``fit`` on ``make_gaussian_classes([50, 5])`` failed after its first epoch and
``ufm.simulate([50, 5])`` at once, both with a message about ``minority``, never passed.
"""

from __future__ import annotations

import json

import pytest

from allnc_edu import (
    data,
    experiments,
    groups,
    report,
    run_figures,
    ufm,
)
from allnc_edu.metrics import nc_metrics


@pytest.fixture(scope="module")
def two_classes() -> data.LongTailDataset:
    return data.make_gaussian_classes([50, 5], test_per_class=20, seed=1)


def test_the_minority_of_two_classes_is_the_smaller_one():
    assert groups.minority_classes([50, 5]) == [1]
    assert groups.minority_classes([5, 50]) == [0]
    assert groups.minority_classes([7, 7]) == [1]


@pytest.mark.parametrize("method", ["ce", "allnc", "etf-dr", "ldam-drw"])
def test_fit_trains_two_classes_to_the_end(two_classes, method):
    run = experiments.run_method(method, two_classes, epochs=2, batch_size=16, progress=False)
    assert run.complete and run.minority == [1]
    assert run.mc_weights is None and run.mc_means is None
    assert 0.0 <= run.minority_accuracy <= 1.0 and run.nc1 >= 0.0
    json.dumps(run.summary(), allow_nan=False)


def test_metrics_of_two_classes(two_classes):
    ds = two_classes
    got = nc_metrics(ds.train_x, ds.train_y, minority=groups.minority_classes(ds.counts))
    assert got.minority == [1] and got.mc_means is None
    assert got.etf_distance_means == pytest.approx(0.0, abs=1e-12)  # two points: always an ETF
    assert got.equinorm_means == pytest.approx(0.0, abs=1e-12)


def test_ufm_sweep_over_two_classes_runs_and_is_json():
    sweep = ufm.imbalance_sweep([1, 100], num_classes=2, n_max=100)
    assert [r["counts"] for r in sweep] == [[100, 100], [100, 1]]
    assert all(r["mc_weights"] is None and r["minority"] == [1] for r in sweep)
    json.dumps(sweep, allow_nan=False)


def test_figures_and_the_report_take_two_class_runs(two_classes, tmp_path):
    """MC_W / MC_H are None for K = 2: every figure, table and sentence must still be made."""
    runs = {
        name: experiments.run_method(
            name, two_classes, epochs=2, batch_size=16, progress=False, record_geometry=True
        )
        for name in ("ce", "allnc")
    }
    sweeps = {"step profile": ufm.imbalance_sweep([1, 10], num_classes=2, n_max=100)}
    run_figures.epoch_slider(runs["ce"])
    run_figures.simplex_views(runs)
    html_path, json_path = report.write_report(tmp_path, runs, sweeps)
    assert "<table" in html_path.read_text(encoding="utf-8")
    json.loads(json_path.read_text(encoding="utf-8"))
