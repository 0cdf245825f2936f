"""Figures of trained runs (``records.RunResult``): metrics over epochs for several runs, the 3D
simplex view of each run's recorded geometry side by side, and sliders over runs or epochs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .drawing import (
    MINUS,
    PALETTE,
    etf_line,
    log_axis,
)
from .fmt import fixed
from .plots import metric_curves, side_by_side, simplex_figure, slider_figure
from .records import EpochRecord, RunResult

#: Panels of :func:`runs_curves_figure`: (``records.EpochRecord`` field, title, y-axis type).
_RUN_PANELS = (
    ("accuracy", "test accuracy", "linear"),
    ("minority_accuracy", "minority-class test accuracy", "linear"),
    ("nc1", "NC1", "log"),
    ("self_duality", "self-duality (NC3)", "linear"),
    ("mc_weights", "MC_W (minority classifiers)", "linear"),
    ("mc_means", "MC_H (minority class means)", "linear"),
)


def runs_curves_figure(runs: Mapping[str, Any]) -> go.Figure:
    """Several runs over epochs (``{legend name: records.RunResult}``): test accuracy,
    minority accuracy, NC1, self-duality, MC_W and MC_H of each run's evaluated epochs, one
    colour per run in every panel, the MC panels marking the ETF value -1/(K-1). The runs must
    share one number of classes."""
    if not runs:
        raise ValueError("runs is empty: nothing to plot")
    ks = {int(run.num_classes) for run in runs.values()}
    if len(ks) != 1:
        raise ValueError(f"the runs must share one number of classes, got {sorted(ks)}")
    fig = make_subplots(rows=2, cols=3, subplot_titles=[p[1] for p in _RUN_PANELS])
    for i, (name, run) in enumerate(runs.items()):
        for j, (key, _, _) in enumerate(_RUN_PANELS):
            pts = [(r.epoch, getattr(r, key)) for r in run.evaluated if getattr(r, key) is not None]
            fig.add_trace(
                go.Scatter(
                    x=[p[0] for p in pts],
                    y=[p[1] for p in pts],
                    mode="lines+markers",
                    marker={"size": 3},
                    line={"color": PALETTE[i % len(PALETTE)]},
                    name=str(name),
                    legendgroup=str(name),
                    showlegend=j == 0,
                ),
                row=j // 3 + 1,
                col=j % 3 + 1,
            )
    for j, (_, _, yscale) in enumerate(_RUN_PANELS):
        row, col = j // 3 + 1, j % 3 + 1
        if yscale == "log":
            shown = [v for t in fig.select_traces(row=row, col=col) for v in t.y]
            fig.update_yaxes(**log_axis(shown), row=row, col=col)
    k = ks.pop()
    for col in (2, 3):  # the MC_W and MC_H panels
        etf_line(fig, k, row=2, col=col, showlegend=col == 2)
    fig.update_xaxes(title_text="epoch", row=2)
    fig.update_layout(
        height=720,
        title="Metrics over training (NC metrics on the training set)",
        legend={"tracegroupgap": 2},
    )
    return fig


def simplex_views(
    runs: Mapping[str, Any],
    *,
    height: int | None = None,
    title: str | None = None,
    columns: int | None = None,
) -> go.Figure:
    """The 3D simplex view (:func:`simplex_figure`, means and classifiers each normalised) of
    each run's last recorded geometry, side by side (:func:`side_by_side`, ``columns`` views per
    row), headed by run name and its MC_W / MC_H; minority classes thick. ``runs``:
    ``{name: records.RunResult}`` trained with ``record_geometry=True``."""
    figures = {
        name: _run_simplex(name, run, f"{name}<br>{_mc_text(run)}") for name, run in runs.items()
    }
    return side_by_side(figures, height=height, title=title, columns=columns)


def runs_slider(runs: Mapping[Any, Any], *, label: str = "", title: str | None = None) -> go.Figure:
    """A slider over runs (``{key: records.RunResult}``, e.g. keyed by imbalance ratio): the 3D
    view of each run's last recorded geometry, the step labelled by its key (after ``label``),
    the title giving its MC_W and MC_H."""
    figures = {
        name: _run_simplex(name, run, f"{title or run.method}, {label}{name}: {_mc_text(run)}")
        for name, run in runs.items()
    }
    return slider_figure(figures, label=label)


def epoch_slider(run: Any, *, max_frames: int = 12, title: str | None = None) -> go.Figure:
    """A slider over (at most ``max_frames``, evenly spaced, always the last) recorded epochs of
    one run (``records.RunResult``): the 3D view of its class means and classifier rows at each
    epoch; steps are labelled by epoch number."""
    records = [r for r in run.history if r.geometry is not None]
    if not records:
        raise ValueError("the run has no recorded geometry: train it with record_geometry=True")
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    step = -(-len(records) // max_frames)
    picked = records[::-1][::step][::-1]
    heading = title or run.method
    figures = {
        r.epoch: simplex_figure(
            r.geometry["class_means"],
            r.geometry["classifier"],
            minority=run.minority,
            title=f"{heading}, epoch {r.epoch}: {_mc_text(r)}",
            normalise=True,
        )
        for r in picked
    }
    return slider_figure(figures, label="epoch ")


def _mc_text(run: RunResult | EpochRecord) -> str:
    """'MC_W +0.23, MC_H +0.11' of a run or an epoch record."""
    w, h = run.mc_weights, run.mc_means
    text = f"MC_W {fixed(w, 2, signed=True)}, MC_H {fixed(h, 2, signed=True)}"
    return text.replace("-", MINUS)


def _run_simplex(name: Any, run: Any, title: str) -> go.Figure:
    """:func:`simplex_figure` of a run's last recorded geometry, minority thick, means and
    classifiers each scaled to average length 1 (a network's features and classifier rows have
    unrelated scales)."""
    geometry = run.geometry
    if geometry is None:
        raise ValueError(f"run {name!r} has no geometry: train it with record_geometry=True")
    return simplex_figure(
        geometry["class_means"],
        geometry["classifier"],
        minority=run.minority,
        title=title,
        normalise=True,
    )


def run_metric_curves(run: RunResult, *, title: str | None = None) -> go.Figure:
    """:func:`plots.metric_curves` of a trained run's evaluated epochs (NC metrics of the
    training set by epoch)."""
    rows = [{"epoch": r.epoch, **(r.nc or {})} for r in run.evaluated]
    return metric_curves(rows, x="epoch", title=title)
