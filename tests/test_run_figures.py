"""plots' figures of finished runs: 3D views side by side, sliders over runs and over epochs."""

from __future__ import annotations

import pytest
import torch

from allnc_edu import run_figures
from allnc_edu.records import EpochRecord, RunConfig, RunResult

# from_dict: the flat run.json form, which both the flat and the nested RunConfig read
CONFIG = RunConfig.from_dict(
    {"dataset": "gaussian", "method": "ce", "epochs": 1, "batch_size": 16, "lr": 0.1}
)


def _geometry(seed: int, k: int = 4, d: int = 5) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return {
        "class_means": torch.randn(k, d, generator=gen).tolist(),
        "classifier": torch.randn(k, d, generator=gen).tolist(),
    }


def _run(epochs: int, *, geometry: bool = True) -> RunResult:
    history = [
        EpochRecord(
            epoch=e,
            lr=0.1,
            loss=1.0,
            train_s=1.0,
            samples=10,
            samples_per_s=10.0,
            train_acc=0.5,
            accuracy=0.5,
            nc={"mc_weights": 0.1, "mc_means": 0.2},
            geometry=_geometry(e) if geometry else None,
        )
        for e in range(1, epochs + 1)
    ]
    return RunResult(config=CONFIG, history=history, counts=[40, 30, 2, 1], num_classes=4,
                     minority=[2, 3], shot_groups={})  # fmt: skip


def test_runs_slider_shows_one_figure_per_step() -> None:
    fig = run_figures.runs_slider({"IR 1": _run(1), "IR 100": _run(1)})
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["IR 1", "IR 100"]
    per_figure = len(fig.data) // 2
    for i, step in enumerate(steps):
        visible = step.args[0]["visible"]
        assert sum(visible) == per_figure
        assert all(visible[i * per_figure : (i + 1) * per_figure])
    assert [t.visible for t in fig.data] == steps[0].args[0]["visible"]
    assert "MC_W" in steps[0].args[1]["title"].text


def test_epoch_slider_spaces_frames_and_keeps_the_last_epoch() -> None:
    fig = run_figures.epoch_slider(_run(30), max_frames=7)
    labels = [s.label for s in fig.layout.sliders[0].steps]
    epochs = [int(label.split()[-1]) for label in labels]
    assert 1 < len(labels) <= 7 and epochs[-1] == 30
    assert epochs == sorted(epochs)
    with pytest.raises(ValueError, match="record_geometry"):
        run_figures.epoch_slider(_run(2, geometry=False))


def test_simplex_views_puts_one_scene_per_run_with_one_legend() -> None:
    runs = {name: _run(1) for name in ("ce", "etf_dr", "allnc")}
    fig = run_figures.simplex_views(runs)
    scenes = [key for key in fig.layout.to_plotly_json() if key.startswith("scene")]
    assert len(scenes) == 3
    titles = [a.text for a in fig.layout.annotations]
    assert [t.split("<br>")[0] for t in titles] == list(runs)
    with pytest.raises(ValueError, match="record_geometry"):
        run_figures.simplex_views({"ce": _run(1, geometry=False)})


def test_metric_curves_read_epoch_records() -> None:
    fig = run_figures.run_metric_curves(_run(3))
    mc_w = next(t for t in fig.data if t.name == "MC_W")
    assert list(mc_w.x) == [1, 2, 3] and list(mc_w.y) == [0.1, 0.1, 0.1]


def test_runs_curves_figure_draws_each_run_in_its_colour_in_every_panel() -> None:
    fig = run_figures.runs_curves_figure({"CE": _run(3), "AllNC": _run(2)})
    assert len(fig.data) == 2 * 6  # six panels per run
    ce = [t for t in fig.data if t.name == "CE"]
    assert len({t.line.color for t in ce}) == 1 and [t.showlegend for t in ce].count(True) == 1
    mc_w = next(t for t in ce if t.xaxis == "x5")  # the MC_W panel
    assert list(mc_w.x) == [1, 2, 3] and list(mc_w.y) == [0.1, 0.1, 0.1]
    etf = [s.y0 for s in fig.layout.shapes if s.type == "line"]
    assert etf == pytest.approx([-1 / 3, -1 / 3])  # K = 4, in the MC_W and MC_H panels
    with pytest.raises(ValueError, match="empty"):
        run_figures.runs_curves_figure({})


def test_runs_curves_name_the_etf_value_in_the_legend_and_keep_their_panels_tall() -> None:
    fig = run_figures.runs_curves_figure({"CE": _run(3), "AllNC": _run(2)})
    assert not [a.text for a in fig.layout.annotations if "ETF value" in a.text]
    named = [s.name for s in fig.layout.shapes if s.showlegend]
    assert named == ["ETF value −1/(K−1) = −0.333"]  # one legend entry for both MC panels
    assert {s.legendgroup for s in fig.layout.shapes if s.type == "line"} == {"etf value"}
    margin = fig.layout.margin
    plot_px = fig.layout.height - (margin.t or 100) - (margin.b or 80)
    for i in range(1, 7):
        lo, hi = fig.layout[f"yaxis{i if i > 1 else ''}"].domain
        assert plot_px * (hi - lo) >= 200, f"panel {i} is squat"


def test_views_of_runs_are_two_to_a_row_from_four_runs_on_and_normalised() -> None:
    fig = run_figures.simplex_views({name: _run(1) for name in ("ce", "la", "etf-dr", "allnc")})
    scenes = [fig.layout[f"scene{i if i > 1 else ''}"] for i in range(1, 5)]
    assert len({tuple(s.domain.x) for s in scenes}) == 2
    assert [a.text.split("<br>")[0] for a in fig.layout.annotations] == [
        "ce",
        "la",
        "etf-dr",
        "allnc",
    ]
    for slider in (run_figures.runs_slider({"1": _run(1)}), run_figures.epoch_slider(_run(2))):
        assert slider.layout.meta["normalised"], "means and classifiers each at length 1"
