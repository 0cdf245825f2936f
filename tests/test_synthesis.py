"""synthesis: correlations of geometry with accuracy over hand-made study records whose
correlations are known, the contrasts, the sentences and the figure."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from allnc_edu import synthesis as S


def _run(method: str, seed: int, **values: float) -> dict:
    base = {"accuracy": 0.5, "minority_accuracy": 0.2, "mc_weights": 0.0, "mc_means": 0.0,
            "nc1": 1.0, "self_duality": 0.5}  # fmt: skip
    return {"method": method, "seed": seed, **base, **values}


def _record(runs: list[dict], **settings) -> dict:
    base = {"dataset": "mnist1d", "profile": "step", "imbalance_ratio": 100.0, "epochs": 20,
            "split": "test", "n_max": None, "weight_decay": 0.01, "augment": True,
            "batch_size": None, "lr": None, "sets": {}, "methods": [], "seeds": []}  # fmt: skip
    return {"settings": {**base, **settings}, "runs": runs}


def _simpson() -> list[dict]:
    """Two settings, three methods, seeds 0 and 1. Within each setting and seed a higher MC_H
    goes with a lower accuracy; the hard setting has both lower, so the raw values mixed
    across settings go the other way."""
    easy = [_run(m, 0, accuracy=a, mc_means=h) for m, a, h in
            (("x", 0.9, 0.0), ("y", 0.8, 0.1), ("z", 0.7, 0.2))]  # fmt: skip
    easy += [_run(m, 1, accuracy=a, mc_means=h) for m, a, h in
             (("x", 0.9, 0.0), ("y", 0.8, 0.2), ("z", 0.7, 0.1))]  # fmt: skip
    hard = [_run(m, s, accuracy=a, mc_means=h) for s in (0, 1) for m, a, h in
            (("x", 0.5, -0.6), ("y", 0.4, -0.5), ("z", 0.3, -0.4))]  # fmt: skip
    return S.points_from_record(_record(easy)) + S.points_from_record(
        _record(hard, profile="exp", augment=False)
    )


def test_pearson_known_values_and_refusals() -> None:
    assert S.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert S.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert S.pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert S.pearson([1, 2], [1, 2]) is None  # too few pairs
    assert S.pearson([1, 1, 1], [1, 2, 3]) is None  # no spread
    with pytest.raises(ValueError, match="equally long"):
        S.pearson([1, 2, 3], [1, 2])


def test_setting_labels_tell_settings_apart_and_ignore_recipe_defaults() -> None:
    settings = _record([])["settings"]
    assert S.setting_label(settings) == "MNIST-1D, step, IR 100, 20 epochs, wd 0.01, shifted"
    # the recipe's own batch size and learning rate, written out, are the same setting
    assert S.setting_label({**settings, "batch_size": 128, "lr": 0.1}) == S.setting_label(settings)
    assert "batch size 64" in S.setting_label({**settings, "batch_size": 64})
    assert "validation split" in S.setting_label({**settings, "split": "validation"})
    assert "n_max 100" in S.setting_label({**settings, "n_max": 100})
    cifar = {**settings, "dataset": "cifar10-lt", "profile": "exp", "augment": None,
             "epochs": 5, "weight_decay": 0.005}  # fmt: skip
    assert S.setting_label(cifar) == "CIFAR-10-LT, exp, IR 100, 5 epochs, wd 0.005"


def test_points_carry_setting_method_seed_and_etf() -> None:
    points = S.points_from_record(_record([_run("ce", 2, nc1=None)]), source="mine")
    (p,) = points
    assert (p["method"], p["seed"], p["source"]) == ("ce", 2, "mine")
    assert p["etf"] == pytest.approx(-1 / 9) and p["nc1"] is None
    runs = S.points_from_runs({"la": _run("la", 0)}, _record([])["settings"], seed=3)
    assert runs[0]["method"] == "la" and runs[0]["seed"] == 3
    assert runs[0]["source"] == "this notebook"
    assert runs[0]["setting"] == S.setting_label(_record([])["settings"]) + " (this notebook)"
    unknown = S.points_from_record(_record([_run("ce", 0)], dataset="somewhere"))
    assert unknown[0]["etf"] is None


def test_value_logs_nc1_and_skips_what_is_missing() -> None:
    assert S.value({"nc1": 100.0}, "nc1") == pytest.approx(2.0)
    assert S.value({"nc1": 0.0}, "nc1") is None
    assert S.value({"mc_means": None}, "mc_means") is None
    assert S.value({"mc_means": -0.25}, "mc_means") == -0.25


def test_centring_removes_each_groups_mean_and_drops_lone_points() -> None:
    points = [{"setting": "a", "seed": 0, "x": 1.0, "y": 10.0},
              {"setting": "a", "seed": 0, "x": 3.0, "y": 30.0},
              {"setting": "b", "seed": 0, "x": 7.0, "y": 1.0}]  # fmt: skip
    xs, ys, kept = S.centred(points, "x", "y", S.ACROSS_METHODS)
    assert xs == [-1.0, 1.0] and ys == [-10.0, 10.0] and kept == points[:2]


def test_correlation_within_settings_is_not_the_raw_one() -> None:
    points = _simpson()
    c = S.correlation(points, "mc_means", "accuracy")
    assert c["r"] == pytest.approx(-0.875)  # 12 centred pairs: sum xy -0.07, x^2 = y^2 = 0.08
    assert c["raw_r"] > 0.5  # mixing the settings reverses the sign
    per_seed = {row["seed"]: row["r"] for row in c["per_seed"]}
    assert per_seed[0] == pytest.approx(-1.0)
    # seed 1: the easy setting's y and z swapped their MC_H; by hand
    xs = np.array([-0.1, 0.1, 0.0, -0.1, 0.0, 0.1])
    ys = np.array([0.1, 0.0, -0.1, 0.1, 0.0, -0.1])
    assert per_seed[1] == pytest.approx(np.corrcoef(xs, ys)[0, 1])
    assert per_seed[1] == pytest.approx(-0.75)
    assert c["seed_min"] == pytest.approx(-1.0) and c["seed_max"] == pytest.approx(-0.75)
    assert c["seed_mean"] == pytest.approx((per_seed[0] + per_seed[1]) / 2)
    assert c["n"] == 12 and c["settings"] == 2
    with pytest.raises(ValueError, match="metric must be one of"):
        S.correlation(points, "accuracy", "mc_means")


def test_correlation_across_seeds_of_one_method() -> None:
    """Every method's seeds: the better MC_W, the more accurate, one method far above the
    other; across seeds r = -1 whatever the methods' levels."""
    runs = [_run(m, s, mc_weights=w + off, accuracy=a + lift) for m, off, lift in
            (("ce", 0.5, 0.0), ("la", 0.0, 0.3)) for s, w, a in
            ((0, 0.1, 0.5), (1, 0.2, 0.4), (2, 0.3, 0.3))]  # fmt: skip
    c = S.correlation(S.points_from_record(_record(runs)), "mc_weights", "accuracy")
    assert c["seed_r"] == pytest.approx(-1.0) and c["seed_n"] == 6
    assert c["r"] == pytest.approx(-1.0)  # across methods: ce higher MC_W and less accurate
    assert c["seed_interval"] is None  # two (setting, method) groups: too few to resample


def test_bootstrap_interval_is_deterministic_and_brackets_r() -> None:
    rng = np.random.default_rng(1)
    runs = [_run(m, s, mc_means=float(h), accuracy=float(0.5 - h + 0.05 * e))
            for m in ("a", "b", "c", "d") for s in range(4)
            for h, e in [rng.normal(size=2)]]  # fmt: skip
    points = S.points_from_record(_record(runs))
    low, high = S.bootstrap(points, "mc_means", "accuracy", S.ACROSS_METHODS)
    r = S.correlation(points, "mc_means", "accuracy")["r"]
    assert low <= r <= high and high - low < 0.5
    assert S.bootstrap(points, "mc_means", "accuracy", S.ACROSS_METHODS) == (low, high)


def test_changes_say_r_before_and_after() -> None:
    before = S.correlations(_simpson(), metrics=("mc_means",), outcomes=("accuracy",))
    extra = S.points_from_runs(
        {m: _run(m, 0, accuracy=a, mc_means=h) for m, a, h in (("x", 0.2, 0.5), ("y", 0.9, 0.0))},
        _record([])["settings"], seed=0,
    )  # fmt: skip
    after = S.correlations(_simpson() + extra, metrics=("mc_means",), outcomes=("accuracy",))
    (sentence,) = S.changes(before, after, "one more setting")
    assert sentence.startswith("MC_H against accuracy: r = -0.87 over the study records, ")
    assert f"{after[0]['r']:+.2f} with one more setting (per seed" in sentence
    assert after[0]["settings"] == 3


def test_pool_keeps_the_first_of_a_repeated_run() -> None:
    first = S.points_from_record(_record([_run("ce", 0, accuracy=0.1)]), source="study")
    again = S.points_from_record(_record([_run("ce", 0, accuracy=0.9), _run("gbbn", 0)]))
    pooled = S.pool(first, again)
    assert [(p["method"], p["accuracy"]) for p in pooled] == [("ce", 0.1), ("gbbn", 0.5)]


def test_read_points_skips_missing_files_and_refuses_others(tmp_path) -> None:
    good = tmp_path / "study.json"
    good.write_text(json.dumps(_record([_run("ce", 0), _run("la", 0)])))
    points = S.read_points([tmp_path / "missing.json", good])
    assert [p["method"] for p in points] == ["ce", "la"]
    assert points[0]["source"] == "study record"
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="not a study record"):
        S.read_points([bad])


def _contrast_points() -> list[dict]:
    etf = -1 / 9
    step = [_run("ce", s, minority_accuracy=0.0, mc_weights=0.4, mc_means=0.2) for s in (0, 1)]
    step += [_run("la", s, minority_accuracy=0.4, mc_weights=0.5, mc_means=-0.1) for s in (0, 1)]
    step += [_run("allnc", s, minority_accuracy=0.7, mc_weights=-0.1) for s in (0, 1)]
    step += [_run("gbbn", 0, accuracy=0.8, minority_accuracy=0.72, mc_weights=-0.05)]
    exp = [_run("ce", 0, minority_accuracy=0.2, mc_weights=etf + 0.05, mc_means=etf - 0.05),
           _run("la", 0, minority_accuracy=0.6, mc_weights=etf, mc_means=etf)]  # fmt: skip
    return S.points_from_record(_record(step)) + S.points_from_record(_record(exp, profile="exp"))


def test_contrasts_count_what_the_sentences_say() -> None:
    c = S.contrasts(_contrast_points())
    lc = c["la_vs_ce"]
    assert len(lc["rows"]) == 2 and lc["la_more_accurate"] == 2
    assert lc["gain_min"] == pytest.approx(0.4) and lc["gain_max"] == pytest.approx(0.4)
    assert lc["la_as_squeezed"] == 1  # step: 0.5 >= 0.4; exp: LA below CE
    assert lc["la_most_squeezed"] == 1  # step only
    near = c["ce_near_etf"]
    assert near["settings"] == ["MNIST-1D, exp, IR 100, 20 epochs, wd 0.01, shifted"]
    assert near["ce_minority_max"] == pytest.approx(0.2)
    assert near["la_minority_min"] == pytest.approx(0.6)
    (row,) = c["gbbn_vs_allnc"]
    assert row["seeds"] == [0] and row["methods"]["gbbn"]["accuracy"] == pytest.approx(0.8)
    sentences = S.findings([], c)
    assert "LA's minority accuracy is higher in 2 of them (by 40.0 points)" in sentences[0]
    assert "within 0.1 of the ETF value in 1 setting" in sentences[1]
    assert "its minority accuracy there is 20.0% (LA's: 60.0%)" in sentences[1]
    assert "GBBN alone against full AllNC" in sentences[2] and "80.0% vs 50.0%" in sentences[2]
    empty = S.contrasts(S.points_from_record(_record([_run("allnc", 0)])))
    assert empty == {"la_vs_ce": None, "ce_near_etf": None, "gbbn_vs_allnc": []}


def test_findings_say_strength_sign_and_its_stability() -> None:
    table = S.correlations(_simpson(), metrics=("mc_means",), outcomes=("accuracy",))
    (sentence,) = S.findings(table)
    assert sentence.startswith("MC_H against accuracy, across methods: r = -0.87")
    assert "a strong link" in sentence and "the same sign in every seed" in sentence
    assert "runs with a lower MC_H than the other methods of their setting" in sentence
    flipped = [dict(table[0], per_seed=[{"seed": 0, "r": -0.5, "n": 3},
                                        {"seed": 1, "r": 0.2, "n": 3}])]  # fmt: skip
    assert "the sign varies by seed" in S.findings(flipped)[0]
    assert [S.strength(r) for r in (0.05, -0.2, 0.45, -0.9, None)] == [
        "no", "weak", "moderate", "strong", "no measurable"]  # fmt: skip


def test_table_rows_and_html() -> None:
    table = S.correlations(_simpson())
    rows = S.correlation_rows(table)
    assert len(rows) == 1 + len(S.OUTCOMES) * len(S.GEOMETRY)
    assert rows[0][:3] == ["outcome", "metric", "r across methods"]
    assert rows[3][1] == "log10 NC1" and rows[4][1] == "self-duality gap"
    text = S.correlation_html(table, caption="c < d")
    assert text.startswith("<table><caption>c &lt; d</caption>") and text.count("<tr>") == 9
    assert json.loads(json.dumps(table)) == [
        {**c, "seed_interval": None if c["seed_interval"] is None else list(c["seed_interval"])}
        for c in table
    ]  # JSON-ready


def test_figure_has_a_panel_per_metric_and_outcome() -> None:
    points = _simpson()
    fig = S.figure(points)
    titles = [a.text for a in fig.layout.annotations]
    assert len(titles) == len(S.OUTCOMES) * len(S.GEOMETRY)
    assert titles[1] == "r = -0.87 (seeds -1.00 to -0.75)"  # MC_H against accuracy
    methods = {t.name for t in fig.data}
    assert methods == {"x", "y", "z"}
    assert sum(t.showlegend is True for t in fig.data) == 3  # one legend entry per method
    shown = [t for t in fig.data if t.name == "x" and t.xaxis == "x2"]
    assert len(shown) == 1 and len(shown[0].x) == 4  # two settings x two seeds
    assert all(math.isfinite(v) for t in fig.data for v in t.x)


def test_read_notebook_points_reads_a_notebooks_study_or_nothing(tmp_path) -> None:
    record = _record([_run("gbbn", 0), _run("allnc", 0)])
    path = tmp_path / "04.json"
    path.write_text(json.dumps({"runs": record["runs"], "study_settings": record["settings"]}))
    points = S.read_notebook_points(path, source="notebook 04")
    assert [(p["method"], p["source"]) for p in points] == [
        ("gbbn", "notebook 04"), ("allnc", "notebook 04")]  # fmt: skip
    # a setting of its own: a re-run of a study's configuration is not pooled with the study
    assert points[0]["setting"] == S.setting_label(record["settings"]) + " (notebook 04)"
    assert S.read_notebook_points(tmp_path / "missing.json", source="x") == []
    older = tmp_path / "older.json"
    older.write_text(json.dumps({"runs": record["runs"]}))  # no study_settings
    assert S.read_notebook_points(older, source="x") == []
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert S.read_notebook_points(broken, source="x") == []
