"""experiments: runs by name, summaries, comparison tables and the figure helpers."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from allnc_edu import experiments as ex
from allnc_edu.data import LongTailDataset, load_dataset, long_tail_counts, make_gaussian_classes
from allnc_edu.train import TrainResult, make_report

COUNTS = [64, 32, 16, 8]  # minority (K - K//2 fewest) = classes 2 and 3
TINY = {"batch_size": 16, "device": "cpu", "progress": False}


@pytest.fixture(scope="module")
def data() -> LongTailDataset:
    return make_gaussian_classes(COUNTS, dim=6, test_per_class=12, seed=0)


def _nc(**values) -> dict:
    fields = dict.fromkeys(ex.NC_FIELDS, 0.5)
    return {**fields, "num_classes": len(COUNTS), **values}


def _record(epoch: int, per_class: list[float], geometry: dict | None = None, **nc) -> dict:
    record = {
        "epoch": epoch,
        "loss": 1.0 / epoch,
        "train_s": 2.0,
        "train_acc": 0.9,
        "test_acc": sum(per_class) / len(per_class),
        "test_many": None,
        "test_medium": 0.75,
        "test_few": 0.125,
        "test_per_class": per_class,
        "nc": _nc(**nc),
    }
    if geometry is not None:
        record["geometry"] = geometry
    return record


def _result(data: LongTailDataset, history: list[dict]) -> TrainResult:
    config = {"method": "ce", "epochs": len(history)}
    return TrainResult(history=history, report=make_report(config, data, history), config=config)


def _geometry(seed: int, k: int = 4, d: int = 5) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return {
        "class_means": torch.randn(k, d, generator=gen).tolist(),
        "classifier": torch.randn(k, d, generator=gen).tolist(),
    }


def test_summarize_averages_per_class_accuracy_over_the_minority(data) -> None:
    per_class = [1.0, 0.5, 0.25, 0.0]
    history = [_record(1, [0.0] * 4, nc1=2.0), _record(2, per_class, nc1=0.3, mc_means=0.8)]
    s = ex.summarize(_result(data, history), data)
    assert s["minority"] == [2, 3]
    assert s["minority_accuracy"] == pytest.approx((0.25 + 0.0) / 2)
    assert s["majority_accuracy"] == pytest.approx((1.0 + 0.5) / 2)
    assert s["accuracy"] == pytest.approx(sum(per_class) / 4)
    assert (s["many"], s["medium"], s["few"]) == (None, 0.75, 0.125)
    assert s["nc1"] == 0.3 and s["mc_means"] == 0.8  # the last epoch, not the first
    assert s["train_s"] == pytest.approx(4.0) and s["epochs"] == 2
    assert [h["epoch"] for h in s["history"]] == [1, 2]
    assert s["history"][0]["minority_accuracy"] == 0.0 and s["geometry"] is None


def test_summarize_keeps_only_evaluated_epochs_and_the_last_geometry(data) -> None:
    skipped = {k: v for k, v in _record(1, [0.5] * 4).items() if k in ("epoch", "loss", "train_s")}
    last = _geometry(2)
    history = [skipped, _record(2, [0.5] * 4, _geometry(1)), _record(3, [0.5] * 4, last)]
    s = ex.summarize(_result(data, history), data)
    assert [h["epoch"] for h in s["history"]] == [2, 3]
    assert s["geometry"] == last


def test_summarize_rejects_other_data_and_unevaluated_runs(data) -> None:
    result = _result(data, [_record(1, [0.5] * 4)])
    other = make_gaussian_classes([8, 8, 8, 8], dim=6, test_per_class=4, seed=0)
    with pytest.raises(ValueError, match="counts"):
        ex.summarize(result, other)
    with pytest.raises(ValueError, match="no evaluated epoch"):
        ex.summarize(TrainResult(history=[], report={"nc": None}), data)


def test_key_numbers_are_json_scalars_without_history(data) -> None:
    s = ex.summarize(_result(data, [_record(1, [0.5] * 4, _geometry(0))]), data)
    numbers = ex.key_numbers({"ce": s})
    assert set(numbers["ce"]) <= set(ex.KEY_FIELDS)
    assert {
        "accuracy",
        "minority_accuracy",
        "nc1",
        "self_duality",
        "mc_weights",
        "mc_means",
    } <= set(numbers["ce"])
    assert json.loads(json.dumps(numbers)) == numbers


def test_run_method_is_reproducible_and_routes_options(data) -> None:
    a = ex.run_method("la", data, epochs=2, seed=3, tau=0.5, lr=0.05, **TINY)
    b = ex.run_method("la", data, epochs=2, seed=3, tau=0.5, lr=0.05, **TINY)
    c = ex.run_method("la", data, epochs=2, seed=4, tau=0.5, lr=0.05, **TINY)
    assert a["options"] == {"tau": 0.5} and a["method"] == "la"
    assert a["nc1"] == b["nc1"] and a["accuracy"] == b["accuracy"]
    assert a["nc1"] != c["nc1"]  # the seed sets the initialisation
    assert a["epochs"] == 2 and len(a["history"]) == 2
    with pytest.raises(ValueError, match="no option"):
        ex.run_method("ce", data, epochs=1, tau=0.5, **TINY)


def test_run_method_records_geometry_of_every_evaluated_epoch(data) -> None:
    s = ex.run_method("ce", data, epochs=2, record_geometry=True, **TINY)
    k = len(COUNTS)
    for record in s["history"]:
        g = record["geometry"]
        assert torch.tensor(g["class_means"]).shape[0] == k
        assert torch.tensor(g["classifier"]).shape == torch.tensor(g["class_means"]).shape
    assert s["geometry"] == s["history"][-1]["geometry"]


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
    assert out["adjusted"]["method"] == "la" and out["adjusted"]["options"] == {"tau": 2.0}
    assert len(out["plain"]["history"]) == 2 and len(out["short"]["history"]) == 1
    with pytest.raises(ValueError, match="method"):
        ex.compare_methods({"x": {"tau": 1.0}}, data, epochs=1)
    with pytest.raises(ValueError, match="empty"):
        ex.compare_methods({}, data, epochs=1)


def test_results_table_escapes_names_and_marks_missing_values() -> None:
    s = {key: 0.25 for key, _, _ in ex.TABLE_COLUMNS} | {"few": None}
    rows = ex.table_rows({"<b>run</b>": s})
    assert len(rows) == 2 and len(rows[0]) == len(rows[1]) == len(ex.TABLE_COLUMNS) + 1
    assert rows[1][rows[0].index("few")] == "n/a"
    assert rows[1][rows[0].index("test acc")] == "25.0%"
    table = ex.results_table({"<b>run</b>": s}, caption="IR 100")
    assert "&lt;b&gt;run&lt;/b&gt;" in table and "<b>" not in table
    assert table.count("<tr>") == 2 and "<caption>IR 100</caption>" in table


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


def _summary_with_epochs(epochs: int) -> dict:
    history = [
        {"epoch": e, "geometry": _geometry(e), "mc_weights": 0.1, "mc_means": 0.2}
        for e in range(1, epochs + 1)
    ]
    return {"method": "ce", "minority": [2, 3], "history": history, "geometry": _geometry(0)}


def test_slider_figure_shows_one_figure_per_step() -> None:
    summaries = {"IR 1": _summary_with_epochs(1), "IR 100": _summary_with_epochs(1)}
    for s in summaries.values():
        s.update(mc_weights=0.1, mc_means=0.2)
    fig = ex.runs_slider(summaries)
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["IR 1", "IR 100"]
    per_figure = len(fig.data) // 2
    for i, step in enumerate(steps):
        visible = step.args[0]["visible"]
        assert sum(visible) == per_figure
        assert all(visible[i * per_figure : (i + 1) * per_figure])
    assert [t.visible for t in fig.data] == steps[0].args[0]["visible"]


def test_epoch_slider_spaces_frames_and_keeps_the_last_epoch() -> None:
    fig = ex.epoch_slider(_summary_with_epochs(30), max_frames=7)
    labels = [s.label for s in fig.layout.sliders[0].steps]
    assert 1 < len(labels) <= 7 and labels[-1] == "epoch 30"
    epochs = [int(label.split()[1]) for label in labels]
    assert epochs == sorted(epochs)
    with pytest.raises(ValueError, match="record_geometry"):
        ex.epoch_slider({"method": "ce", "minority": [2, 3], "history": [{"epoch": 1}]})


def test_simplex_views_puts_one_scene_per_run_with_one_legend() -> None:
    summaries = {name: _summary_with_epochs(1) for name in ("ce", "etf_dr", "allnc")}
    fig = ex.simplex_views(summaries)
    scenes = [key for key in fig.layout.to_plotly_json() if key.startswith("scene")]
    assert len(scenes) == 3
    titles = [a.text for a in fig.layout.annotations]
    assert [t.split("<br>")[0] for t in titles] == list(summaries)
    assert all("projection" in t for t in titles)  # K = 4 in d = 5: the note says so
    notes = [line for t in titles for line in t.split("<br>")[1:]]
    assert notes and all(
        len(line.removeprefix("<sup>").removesuffix("</sup>")) <= 40 for line in notes
    )
    per_run = len(fig.data) // 3
    assert all(t.showlegend is False for t in fig.data[per_run:])
    with pytest.raises(ValueError, match="record_geometry"):
        ex.simplex_views({"ce": {"geometry": None}})
