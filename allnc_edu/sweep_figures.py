"""Figures of unconstrained-features sweeps over the imbalance ratio: minority collapse of the
classifier (MC_W) and of the class means (MC_H), the minority norms, the band of complete
minority collapse (``geometry.complete_collapse``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .drawing import (
    BOTTOM_LEGEND,
    COLLAPSE_COLOUR,
    PALETTE,
    SWEEP_HEIGHT,
    etf_line,
    log_axis,
)
from .geometry import complete_collapse


def minority_collapse_sweep_figure(
    ratios: Sequence[float],
    mc_w: Sequence[float],
    mc_h: Sequence[float] | None = None,
    minority_norm_ratio: Sequence[float] | None = None,
    *,
    num_classes: int | None = None,
    title: str | None = None,
    collapse: tuple[float, float] | None = None,
) -> go.Figure:
    """MC_W (and MC_H) against the imbalance ratio on a log axis, and optionally the ratio of
    minority to majority classifier norms in a second panel. ``num_classes`` marks -1/(K-1);
    ``collapse`` = (last ratio below, first ratio at complete minority collapse), as from
    ``geometry.complete_collapse``, shades the band where MC_W reaches 1."""
    r = np.asarray(ratios, dtype=float)
    series = {"MC_W (classifiers)": mc_w, "MC_H (centred means)": mc_h}
    for name, values in {**series, "minority_norm_ratio": minority_norm_ratio}.items():
        if values is not None and len(values) != r.size:
            raise ValueError(f"{name} has {len(values)} values but there are {r.size} ratios")
    if r.size == 0 or (r <= 0).any():
        raise ValueError(f"ratios must be a non-empty sequence of positive numbers, got {ratios}")
    rows = 2 if minority_norm_ratio is not None else 1
    titles = ["minority collapse"] + (["minority / majority classifier norm"] * (rows - 1))
    fig = make_subplots(
        rows=rows, cols=1, shared_xaxes=True, subplot_titles=titles, vertical_spacing=0.12
    )
    for colour, (name, values) in zip(PALETTE, series.items(), strict=False):
        if values is not None:
            fig.add_trace(
                go.Scatter(
                    x=r, y=list(values), mode="lines+markers", name=name, line={"color": colour}
                ),
                row=1,
                col=1,
            )
    if num_classes:
        etf_line(fig, num_classes, row=1)
    if collapse is not None:
        below, at = collapse
        fig.add_vrect(  # named in the legend: a label on the panel would cover the curves
            x0=below,
            x1=at,
            fillcolor=COLLAPSE_COLOUR,
            opacity=0.2,
            line_width=0,
            layer="below",
            name=f"complete collapse (MC_W = 1) between IR {below:.0f} and {at:.0f}",
            showlegend=True,
        )
    if minority_norm_ratio is not None:
        fig.add_trace(
            go.Scatter(
                x=r,
                y=list(minority_norm_ratio),
                mode="lines+markers",
                name="norm ratio",
                line={"color": PALETTE[2]},
            ),
            row=2,
            col=1,
        )
    fig.update_xaxes(**log_axis(r))
    fig.update_xaxes(title_text="imbalance ratio n_max / n_min", row=rows, col=1)
    fig.update_layout(
        title=title or "Minority collapse against imbalance",
        height=SWEEP_HEIGHT[rows],  # each panel as tall whether the figure has one or two
        legend=BOTTOM_LEGEND,
        margin={"b": 105},
    )
    return fig


def sweep_records_figure(
    records: Sequence[Mapping[str, Any]],
    *,
    norms: bool = True,
    title: str | None = None,
    collapse: tuple[float, float] | None = None,
) -> go.Figure:
    """:func:`minority_collapse_sweep_figure` of ``ufm.imbalance_sweep`` records (dicts with
    ``ratio``, ``counts``, ``mc_weights``, ``mc_means`` and ``weight_norm_ratio``), with the
    classifier-norm panel when ``norms`` and the ``collapse`` band when given."""
    if not records:
        raise ValueError("records is empty: run ufm.imbalance_sweep over at least one ratio")
    return minority_collapse_sweep_figure(
        [r["ratio"] for r in records],
        [r["mc_weights"] for r in records],
        [r["mc_means"] for r in records],
        [r["weight_norm_ratio"] for r in records] if norms else None,
        num_classes=len(records[0]["counts"]),
        title=title,
        collapse=collapse,
    )


def sweep_figures(sweeps: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, go.Figure]:
    """One :func:`sweep_records_figure` per ``ufm.imbalance_sweep`` result (``{title:
    records}``), titled "UFM: title", the band of complete minority collapse
    (``geometry.complete_collapse``) shaded where the sweep reaches it, the norm panel left out when
    every classifier norm ratio is 1 (a fixed classifier)."""
    out = {}
    for name, records in sweeps.items():
        norms = any(abs(r["weight_norm_ratio"] - 1) > 1e-6 for r in records)  # fixed W: all 1
        no_mc_w = any(r["mc_weights"] is None for r in records)  # one minority class
        out[name] = sweep_records_figure(
            records,
            norms=norms,
            title=f"UFM: {name}",
            collapse=None if no_mc_w else complete_collapse(records),
        )
    return out
