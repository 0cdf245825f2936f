"""Plotly figure builders: pure functions of arrays (or metric histories) returning go.Figure.

Colours are hex strings only (plotly 7 rejects fractional ``rgb()``): one colour-blind-safe
colour per class, Okabe-Ito first, then Paul Tol's "muted" scheme, cycled beyond 16 classes.
Minority classes are drawn dashed with open markers, and named "(minority)" in the legend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ._checks import ArrayLike, as_float64
from .geometry import cosine_matrix, project_to_3d, simplex_etf

OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
TOL_MUTED = ("#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677")
PALETTE = (*OKABE_ITO, "#000000", *TOL_MUTED, "#882255", "#AA4499")
ETF_COLOUR = "#BBBBBB"
MEAN_SYMBOL, WEIGHT_SYMBOL = "circle", "diamond"


def class_colours(num_classes: int) -> list[str]:
    """One hex colour per class (cycled after ``len(PALETTE)`` classes)."""
    return [PALETTE[i % len(PALETTE)] for i in range(int(num_classes))]


def simplex_figure(
    means: ArrayLike | None = None,
    weight: ArrayLike | None = None,
    *,
    features: ArrayLike | None = None,
    labels: ArrayLike | None = None,
    minority: Sequence[int] | None = None,
    show_etf: bool = True,
    title: str | None = None,
    class_names: Sequence[str] | None = None,
    max_points_per_class: int = 200,
    height: int = 550,
) -> go.Figure:
    """Class means and classifier vectors as 3D arrows from the origin.

    Args:
        means: (K, d) class means; drawn centred on their class-balanced mean (the NC convention),
            as lines ending in a circle.
        weight: (K, d) classifier rows, drawn as lines ending in a diamond.
        features: (N, d) sample features with ``labels`` (N,): a faint point cloud, shifted by the
            same centre as the means (at most ``max_points_per_class`` per class, evenly spaced).
        minority: class indices drawn dashed with open markers and named "(minority)".
        show_etf: draw the simplex ETF nearest to the arrows (rotated onto the classifier rows, or
            the means without a classifier, and scaled to their mean length) as a faint reference.
        title: figure title; a second line says whether the 3D view is exact or a projection.
        class_names: legend names (default "class k").

    Uses ``geometry.project_to_3d``: for K <= 4 the view preserves lengths and angles; for K > 4
    it is the best 3D projection, and the title says so.
    """
    if means is None and weight is None:
        raise ValueError("simplex_figure needs means, weight or both")
    arrays = {}
    if means is not None:
        arrays["mean"] = as_float64(means, "means", ndim=2)
    if weight is not None:
        arrays["classifier"] = as_float64(weight, "weight", ndim=2)
    k, d = next(iter(arrays.values())).shape
    if any(a.shape != (k, d) for a in arrays.values()):
        raise ValueError(
            f"means and weight must both be (K, d), got {[tuple(a.shape) for a in arrays.values()]}"
        )
    if k < 2:
        raise ValueError(f"need at least 2 classes, got {k}")
    centre = arrays["mean"].mean(dim=0) if "mean" in arrays else torch.zeros(d, dtype=torch.float64)
    if "mean" in arrays:
        arrays["mean"] = arrays["mean"] - centre
    minority_set = _check_indices(minority, k)
    names = _class_names(class_names, k)

    proj = project_to_3d(*arrays.values())
    coords = dict(zip(arrays, (c.numpy() for c in proj.coords), strict=True))
    basis = proj.basis.numpy()[:d]  # project_to_3d pads d < 3 with zeros
    colours = class_colours(k)
    fig = go.Figure()
    extent = max(float(np.abs(c).max()) for c in coords.values())

    if features is not None:
        cloud = _feature_cloud(features, labels, k, d, centre, max_points_per_class)
        for c, pts in cloud.items():
            xyz = pts @ basis
            extent = max(extent, float(np.abs(xyz).max(initial=0.0)))
            fig.add_trace(
                go.Scatter3d(
                    x=xyz[:, 0],
                    y=xyz[:, 1],
                    z=xyz[:, 2],
                    mode="markers",
                    marker={"size": 2, "color": colours[c], "opacity": 0.35},
                    name=f"{names[c]} samples",
                    legendgroup=names[c],
                    showlegend=False,
                )
            )
    if show_etf:
        ref_source = arrays.get("classifier", arrays.get("mean"))
        ref = _nearest_etf(ref_source) @ basis
        fig.add_trace(_etf_trace(ref))
    for kind, xyz in coords.items():
        symbol = MEAN_SYMBOL if kind == "mean" else WEIGHT_SYMBOL
        for c in range(k):
            mino = c in minority_set
            fig.add_trace(
                go.Scatter3d(
                    x=[0.0, xyz[c, 0]],
                    y=[0.0, xyz[c, 1]],
                    z=[0.0, xyz[c, 2]],
                    mode="lines+markers",
                    line={"color": colours[c], "width": 6, "dash": "dash" if mino else "solid"},
                    marker={
                        "size": [0, 6],
                        "color": colours[c],
                        "symbol": f"{symbol}-open" if mino else symbol,
                    },
                    name=f"{names[c]} {kind}" + (" (minority)" if mino else ""),
                    legendgroup=names[c],
                    meta={"kind": kind, "class": c, "minority": mino},
                )
            )
    if minority_set:
        fig.add_trace(
            go.Scatter3d(
                x=[None],
                y=[None],
                z=[None],
                mode="lines+markers",
                line={"color": "#555555", "dash": "dash"},
                marker={"symbol": "circle-open", "color": "#555555"},
                name="minority classes: dashed, open markers",
            )
        )
    extent = 1.1 * extent if extent > 0 else 1.0
    axis = {"range": [-extent, extent], "title": "", "showticklabels": False}
    heading = title or "Class means and classifiers"
    fig.update_layout(
        title={"text": f"{heading}<br><sup>{proj.note}</sup>"},
        scene={"aspectmode": "cube", "xaxis": axis, "yaxis": axis, "zaxis": axis},
        height=height,
        margin={"l": 0, "r": 0, "t": 60, "b": 0},
        legend={"itemsizing": "constant"},
    )
    return fig


def gram_heatmap(
    means: ArrayLike | None = None,
    weight: ArrayLike | None = None,
    *,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> go.Figure:
    """Cosine matrices as heatmaps (colour scale fixed to [-1, 1]).

    Panels, for what is given: centred means vs themselves, classifier rows vs themselves, and
    centred means (rows) vs classifier rows (columns), whose diagonal is NC3 (self-duality).
    """
    if means is None and weight is None:
        raise ValueError("gram_heatmap needs means, weight or both")
    panels = []
    mbar = wmat = None
    if means is not None:
        m = as_float64(means, "means", ndim=2)
        mbar = m - m.mean(dim=0)
        panels.append(("centred means", cosine_matrix(mbar)))
    if weight is not None:
        wmat = as_float64(weight, "weight", ndim=2)
        panels.append(("classifiers", cosine_matrix(wmat)))
    if mbar is not None and wmat is not None:
        if mbar.shape != wmat.shape:
            raise ValueError(
                f"means and weight must have the same shape, got {tuple(mbar.shape)} and "
                f"{tuple(wmat.shape)}"
            )
        panels.append(("means vs classifiers", cosine_matrix(mbar, wmat)))
    k = panels[0][1].shape[0]
    names = _class_names(class_names, k)
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p[0] for p in panels])
    for i, (_, cos) in enumerate(panels, start=1):
        fig.add_trace(
            go.Heatmap(
                z=cos.numpy(),
                x=names,
                y=names,
                zmin=-1.0,
                zmax=1.0,
                colorscale="RdBu",
                reversescale=True,
                showscale=i == len(panels),
                hovertemplate="%{y} · %{x}: %{z:.3f}",
            ),
            row=1,
            col=i,
        )
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{i if i > 1 else ''}", row=1, col=i)
    fig.update_layout(title=title or f"Pairwise cosines (ETF: -1/(K-1) = {-1 / (k - 1):.3f})")
    return fig


_CURVES = (
    ("NC1 (within / between variability)", (("nc1", "NC1"),), "log"),
    (
        "distance to a simplex ETF",
        (("etf_distance_means", "means"), ("etf_distance_weights", "classifiers")),
        "linear",
    ),
    ("self-duality (NC3)", (("self_duality", "||W/|W| - M/|M|||"),), "linear"),
    ("minority collapse", (("mc_weights", "MC_W"), ("mc_means", "MC_H")), "linear"),
)


def metric_curves(history: Sequence[dict], *, x: str | None = None, title: str | None = None):
    """NC1, ETF distances, self-duality, MC_W and MC_H over training.

    Args:
        history: list of dicts holding (some of) the ``metrics.NCMetrics`` fields, plus the
            x-axis key (``step`` or ``epoch``, found automatically, else the record index).
            Missing or None values are skipped. The MC panel marks the ETF value -1/(K-1) when
            ``num_classes`` is recorded.
    """
    if not history:
        raise ValueError("history is empty: nothing to plot")
    if x is None:
        x = next((key for key in ("step", "epoch") if key in history[0]), None)
    xs = [rec.get(x, i) if x else i for i, rec in enumerate(history)]
    fig = make_subplots(
        rows=len(_CURVES),
        cols=1,
        shared_xaxes=True,
        subplot_titles=[c[0] for c in _CURVES],
        vertical_spacing=0.06,
    )
    colours = iter(PALETTE)
    for row, (_, fields, yscale) in enumerate(_CURVES, start=1):
        for key, label in fields:
            pts = [
                (xv, rec[key])
                for xv, rec in zip(xs, history, strict=True)
                if rec.get(key) is not None
            ]
            if yscale == "log":
                pts = [(xv, max(v, 1e-300)) for xv, v in pts]
            fig.add_trace(
                go.Scatter(
                    x=[p[0] for p in pts],
                    y=[p[1] for p in pts],
                    mode="lines+markers",
                    name=label,
                    line={"color": next(colours)},
                    marker={"size": 4},
                ),
                row=row,
                col=1,
            )
        fig.update_yaxes(type=yscale, row=row, col=1)
    k = history[-1].get("num_classes")
    if k:
        fig.add_hline(
            y=-1 / (k - 1),
            line={"color": ETF_COLOUR, "dash": "dot"},
            row=4,
            col=1,
            annotation_text="ETF: -1/(K-1)",
        )
    fig.update_xaxes(title_text=x or "record", row=len(_CURVES), col=1)
    fig.update_layout(height=850, title=title or "Neural-collapse metrics over training")
    return fig


def minority_collapse_sweep_figure(
    ratios: Sequence[float],
    mc_w: Sequence[float],
    mc_h: Sequence[float] | None = None,
    minority_norm_ratio: Sequence[float] | None = None,
    *,
    num_classes: int | None = None,
    title: str | None = None,
) -> go.Figure:
    """MC_W (and MC_H) against the imbalance ratio on a log axis, and optionally the ratio of
    minority to majority classifier norms in a second panel. ``num_classes`` marks -1/(K-1)."""
    r = np.asarray(ratios, dtype=float)
    series = {"MC_W (classifiers)": mc_w, "MC_H (centred means)": mc_h}
    for name, values in {**series, "minority_norm_ratio": minority_norm_ratio}.items():
        if values is not None and len(values) != r.size:
            raise ValueError(f"{name} has {len(values)} values but there are {r.size} ratios")
    if r.size == 0 or (r <= 0).any():
        raise ValueError(f"ratios must be a non-empty sequence of positive numbers, got {ratios}")
    rows = 2 if minority_norm_ratio is not None else 1
    titles = ["minority collapse"] + (["minority / majority classifier norm"] * (rows - 1))
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, subplot_titles=titles)
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
        fig.add_hline(
            y=-1 / (num_classes - 1),
            line={"color": ETF_COLOUR, "dash": "dot"},
            annotation_text="ETF: -1/(K-1)",
            row=1,
            col=1,
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
    fig.update_xaxes(type="log")
    fig.update_xaxes(title_text="imbalance ratio", row=rows, col=1)
    fig.update_layout(title=title or "Minority collapse against imbalance")
    return fig


def sweep_records_figure(
    records: Sequence[Mapping[str, Any]], *, norms: bool = True, title: str | None = None
) -> go.Figure:
    """:func:`minority_collapse_sweep_figure` of ``ufm.imbalance_sweep`` records (dicts with
    ``ratio``, ``counts``, ``mc_weights``, ``mc_means`` and ``weight_norm_ratio``), with the
    classifier-norm panel when ``norms``."""
    if not records:
        raise ValueError("records is empty: run ufm.imbalance_sweep over at least one ratio")
    return minority_collapse_sweep_figure(
        [r["ratio"] for r in records],
        [r["mc_weights"] for r in records],
        [r["mc_means"] for r in records],
        [r["weight_norm_ratio"] for r in records] if norms else None,
        num_classes=len(records[0]["counts"]),
        title=title,
    )


def _etf_trace(ref: np.ndarray) -> go.Scatter3d:
    """Faint lines from the origin to each ideal-ETF vertex, one trace (None-separated)."""
    xs, ys, zs = [], [], []
    for row in ref:
        xs += [0.0, row[0], None]
        ys += [0.0, row[1], None]
        zs += [0.0, row[2], None]
    return go.Scatter3d(
        x=xs,
        y=ys,
        z=zs,
        mode="lines",
        name="ideal simplex ETF",
        line={"color": ETF_COLOUR, "width": 3},
        opacity=0.6,
    )


def _nearest_etf(a: torch.Tensor) -> np.ndarray:
    """The simplex ETF (rows of equal norm = the mean row norm of ``a``) closest to ``a`` (K, d)
    after an orthogonal map (Procrustes): the reference drawn behind the arrows."""
    k = a.shape[0]
    etf = simplex_etf(k, k - 1)
    u, _, vh = torch.linalg.svd(etf.T @ a, full_matrices=False)
    scale = float(a.norm(dim=1).mean())
    return (scale * etf @ (u @ vh)).numpy()


def _feature_cloud(
    features: ArrayLike, labels: ArrayLike | None, k: int, d: int, centre: torch.Tensor, cap: int
) -> dict[int, np.ndarray]:
    if labels is None:
        raise ValueError("features need their labels (N,) to be coloured by class")
    x = as_float64(features, "features", ndim=2)
    y = torch.as_tensor(np.asarray(labels)).reshape(-1).to(torch.long)
    if x.shape[1] != d or y.numel() != x.shape[0]:
        raise ValueError(
            f"features must be (N, {d}) with labels (N,), got {tuple(x.shape)} and {y.numel()}"
        )
    if y.numel() and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"labels must lie in [0, {k}), got [{int(y.min())}, {int(y.max())}]")
    out = {}
    for c in range(k):
        rows = (x[y == c] - centre).numpy()
        if len(rows) > cap:
            rows = rows[np.linspace(0, len(rows) - 1, cap).astype(int)]
        if len(rows):
            out[c] = rows
    return out


def _check_indices(indices: Sequence[int] | None, k: int) -> set[int]:
    if indices is None:
        return set()
    idx = {int(i) for i in indices}
    if idx and (min(idx) < 0 or max(idx) >= k):
        raise ValueError(f"minority classes must lie in [0, {k}), got {sorted(idx)}")
    return idx


def _class_names(names: Sequence[str] | None, k: int) -> list[str]:
    if names is None:
        return [f"class {c}" for c in range(k)]
    if len(names) != k:
        raise ValueError(f"class_names must have {k} entries, got {len(names)}")
    return [str(n) for n in names]
