"""What notebooks 01 and 02 measure with the UFM (allnc_edu.lessons_ufm), checked against closed
forms and hand-made configurations."""

from __future__ import annotations

import math

import pytest
import torch

from allnc_edu import geometry, lessons_ufm, ufm
from allnc_edu.data import long_tail_counts


def test_norm_ratio_is_sqrt_k_for_the_means_and_one_over_sqrt_n_for_the_sum() -> None:
    rows = {r["key"]: r for r in lessons_ufm.norm_ratios_by_penalty(4, 20, 5e-3)}
    assert list(rows) == [key for key, *_ in lessons_ufm.PENALTIES]
    for row in rows.values():
        assert row["converged"] and row["etf_distance_means"] < 1e-6
        assert row["ratio"] == pytest.approx(row["closed_form"], rel=1e-6)
    assert rows["class"]["ratio"] == pytest.approx(2.0, rel=1e-6)
    assert rows["sample"]["ratio"] == pytest.approx(2.0, rel=1e-6)
    assert rows["sample_sum"]["ratio"] == pytest.approx(1 / math.sqrt(20), rel=1e-6)


def test_norm_ratios_refuse_bad_arguments() -> None:
    with pytest.raises(ValueError, match="samples_per_class"):
        lessons_ufm.norm_ratios_by_penalty(4, 0, 5e-3)
    with pytest.raises(ValueError, match="weight_decay"):
        lessons_ufm.norm_ratios_by_penalty(4, 10, 0.0)


def _fixed_etf_means(short: float) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """Counts, raw means (two long, two short along a K = 4 ETF) and the ETF classifier."""
    etf = geometry.simplex_etf(4, 4)
    means = etf * torch.tensor([[3.0], [3.0], [short], [short]], dtype=torch.float64)
    return [1000, 1000, 10, 10], means, etf


def test_centring_views_differ_under_imbalance_and_leave_mc_w_alone() -> None:
    counts, means, weight = _fixed_etf_means(0.5)
    views = lessons_ufm.centring_views(counts, means, weight, [2, 3])
    assert set(views) == set(lessons_ufm.CENTRINGS)
    balanced, weighted = views["balanced"], views["weighted"]
    assert weighted["mc_means"] > balanced["mc_means"] > -1 / 3
    assert weighted["self_duality"] > balanced["self_duality"] > 0
    assert weighted["mc_weights"] == pytest.approx(balanced["mc_weights"]) == pytest.approx(-1 / 3)
    same = lessons_ufm.centring_views([10] * 4, means, weight, [2, 3])  # balanced counts
    assert same["balanced"] == pytest.approx(same["weighted"])
    text = lessons_ufm.centring_text(views)
    assert all(name in text for name in lessons_ufm.CENTRINGS.values())


def test_centring_toggle_prints_both_without_a_kernel(capsys) -> None:
    counts, means, weight = _fixed_etf_means(0.5)
    assert lessons_ufm.centring_toggle(counts, means, weight, [2, 3]) is None
    printed = capsys.readouterr().out
    assert "class-balanced" in printed and "sample-weighted" in printed


def test_centring_toggle_switches_the_convention(monkeypatch) -> None:
    pytest.importorskip("ipywidgets")
    monkeypatch.setattr(lessons_ufm, "widgets_available", lambda: True)
    counts, means, weight = _fixed_etf_means(0.5)
    views = lessons_ufm.centring_views(counts, means, weight, [2, 3])
    box = lessons_ufm.centring_toggle(counts, means, weight, [2, 3])
    control, shown = box.children
    assert control.value == "balanced" and "class-balanced" in shown.value
    assert f"{views['balanced']['mc_means']:+.3f}" in shown.value
    control.value = "weighted"
    assert "sample-weighted" in shown.value
    assert f"{views['weighted']['mc_means']:+.3f}" in shown.value


def test_metric_table_has_a_row_per_metric_and_marks_missing_values() -> None:
    table = lessons_ufm.metric_table(
        {"A": {"nc1": 1.5e-3, "mc_means": -0.25}, "B": {"nc1": 2.0, "ncc_agreement": None}}
    )
    lines = table.splitlines()
    assert len(lines) == 1 + len(lessons_ufm.TABLE_ROWS)
    assert "1.50e-03" in lines[1] and "2.00e+00" in lines[1]
    assert "-0.250" in table and "n/a" in table


def test_raw_and_centred_of_a_fixed_etf_run_keeps_direction_and_loses_length() -> None:
    counts = long_tail_counts(1000, 4, 100, profile="step")
    run = ufm.simulate(counts, classifier="etf")
    s = lessons_ufm.raw_and_centred(run)
    assert s["minority"] == [2, 3] and len(s["own_cosines"]) == 2
    assert min(s["own_cosines"]) > 0.9999
    assert s["raw"] == pytest.approx(-1 / 3, abs=1e-4)
    assert s["normalised"] == pytest.approx(-1 / 3, abs=1e-4)
    assert s["balanced"] > 0 and s["weighted"] > s["balanced"]
    assert s["norm_ratio"] < 0.5
    assert s["mean_norms"][2] < s["mean_norms"][0]


def test_the_penalty_decides_whether_the_minority_means_squeeze() -> None:
    counts = long_tail_counts(1000, 4, 1000, profile="step")
    out = lessons_ufm.penalty_comparison(counts, 5e-3)
    assert set(out) == {"class", "sample"}
    assert out["class"]["mc_means"] > 0.99 and out["class"]["mean_norm_ratio"] < 1
    assert out["sample"]["mc_means"] < -1 / 3 and out["sample"]["mean_norm_ratio"] > 1
    assert all(r["mc_weights"] > 0.5 and r["converged"] for r in out.values())


def test_seli_convergence_drops_and_slopes() -> None:
    sweep = [
        {"weight_decay": 1e-2, "weight_distance": 0.4, "means_distance": 0.8},
        {"weight_decay": 1e-3, "weight_distance": 0.2, "means_distance": 0.4},
        {"weight_decay": 1e-4, "weight_distance": 0.15, "means_distance": 0.1},
    ]
    speed = lessons_ufm.seli_convergence(sweep)
    assert speed["weight_drops"] == pytest.approx([0.2, 0.05])
    assert speed["means_drops"] == pytest.approx([0.4, 0.3])
    assert speed["weight_slopes"] == pytest.approx([math.log10(2), math.log10(4 / 3)])
    assert speed["means_slopes"] == pytest.approx([math.log10(2), math.log10(4)])
    with pytest.raises(ValueError, match="two weight decays"):
        lessons_ufm.seli_convergence(sweep[:1])
