"""Plotly figure builders: pure functions of arrays (or metric histories) returning go.Figure.

Colours are hex strings only (plotly 7 rejects fractional ``rgb()``): one colour-blind-safe
colour per class, Okabe-Ito first (ordered by contrast on white, its pale yellow left out), then
Paul Tol's "muted" scheme, cycled beyond 15 classes. In the 3D views minority classes are drawn
thick with open tips and named "(minority)"; the legend holds one entry per class and a key.
Log axes carry explicit ticks (1, 3, 10, ... or powers of ten), never SI prefixes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ._checks import ArrayLike, as_float64
from .fmt import fixed
from .geometry import cosine_matrix, project_to_3d, simplex_etf
from .ufm import complete_collapse

OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
TOL_MUTED = ("#332288", "#882255", "#44AA99", "#999933", "#AA4499", "#117733", "#CC6677", "#88CCEE")
PALETTE = (*OKABE_ITO, *TOL_MUTED)
ETF_COLOUR = "#666666"
#: Line width (px) of the grey dashed ETF reference in the 3D views: about a majority arrow's.
ETF_WIDTH = 5
#: The band of complete minority collapse in the sweep figures.
COLLAPSE_COLOUR = "#D55E00"
#: Height (px) of a sweep figure with one and with two panels: panels equally tall in both.
SWEEP_HEIGHT = {1: 480, 2: 760}
#: A legend in rows along the figure's bottom edge, under the x-axis title (which a legend
#: placed in plot coordinates would cover), for figures whose legend holds long labels.
BOTTOM_LEGEND = {"orientation": "h", "x": 0.0, "xanchor": "left", "yref": "container", "y": 0.0,
                 "yanchor": "bottom"}  # fmt: skip
KEY_COLOUR = "#555555"
MEAN_SYMBOL, WEIGHT_SYMBOL = "circle", "diamond"
#: Line widths (px) of majority and minority arrows: minority arrows are the ones to look at.
MAJORITY_WIDTH, MINORITY_WIDTH = 5, 11
MINUS = "\u2212"
#: Side of the 3D scene's box relative to plotly's default unit cube (see ``scene_layout``), and
#: the share of it kept in :func:`side_by_side`, whose scenes are narrower.
SCENE_BOX, SIDE_BY_SIDE_BOX = 1.9, 0.9


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
    height: int | None = None,
    cosines: bool | None = None,
    normalise: bool = False,
) -> go.Figure:
    """Class means and classifier vectors as 3D arrows from the origin.

    Args:
        means: (K, d) class means; drawn centred on their class-balanced mean (the NC convention),
            as arrows ending in a circle.
        weight: (K, d) classifier rows, drawn as arrows ending in a diamond.
        features: (N, d) sample features with ``labels`` (N,): a faint point cloud, shifted by the
            same centre as the means (at most ``max_points_per_class`` per class, evenly spaced).
        minority: class indices drawn thick with open tips and named "(minority)".
        show_etf: draw the simplex ETF nearest to the arrows (rotated onto the classifier rows, or
            the means without a classifier, and scaled to their mean length) as a grey reference.
        title: figure title; a second line says whether the 3D view is exact or a shadow.
        class_names: legend names (default "class k").
        height: in pixels (default 560, 600 with the cosine map).
        cosines: put the exact cosine map (:func:`cosine_map_trace`) beside the 3D view; default
            when the view is not exact (K > 4), where angles in 3D cannot be trusted.
        normalise: draw the centred means and the classifier rows each scaled to an average
            length of 1: for a trained network, whose features and classifier have unrelated
            scales, so that neither set shrinks to the centre of the view. Angles and the
            lengths within each set are kept; the ETF reference is drawn as long as the longest
            arrow, its dashed lines reaching past the tips instead of hiding under the arrows.

    Uses ``geometry.project_to_3d``: for K <= 4 the view preserves lengths and angles; for K > 4
    it is the shadow on the three directions along which the arrows spread most. The scene is
    sized to the arrows with equal scales on its three axes, and ``layout.meta`` holds the
    heading and the view note separately (``heading``, ``note``) for figures that combine views.
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
    # the features are drawn at the means' scale; each set at average length 1 when normalised
    scale = {kind: _average_length(a) if normalise else 1.0 for kind, a in arrays.items()}
    arrays = {kind: a / scale[kind] for kind, a in arrays.items()}
    normalised = normalise and len(arrays) == 2
    minority_set = _check_indices(minority, k)
    names = _class_names(class_names, k)

    proj = project_to_3d(*arrays.values())
    coords = dict(zip(arrays, (c.numpy() for c in proj.coords), strict=True))
    basis = proj.basis.numpy()[:d]  # project_to_3d pads d < 3 with zeros
    colours = class_colours(k)
    traces: list[go.Scatter3d] = []
    points = [np.zeros((1, 3)), *coords.values()]

    if features is not None:
        cloud = _feature_cloud(features, labels, k, d, centre, max_points_per_class)
        for c, pts in cloud.items():
            xyz = (pts / scale.get("mean", 1.0)) @ basis
            points.append(xyz)
            traces.append(
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
        # normalised: as long as the longest arrow, so that its dashed lines reach past the
        # arrows' tips instead of hiding under them (an ETF is a set of directions: any length)
        longest = max(float(a.norm(dim=1).max()) for a in arrays.values())
        target = arrays.get("classifier", arrays.get("mean"))
        ref = _nearest_etf(target, length=longest if normalise else None) @ basis
        points.append(ref)
        traces.append(_etf_trace(ref))
    for kind, xyz in coords.items():
        symbol = MEAN_SYMBOL if kind == "mean" else WEIGHT_SYMBOL
        for c in range(k):
            mino = c in minority_set
            traces.append(
                go.Scatter3d(
                    x=[0.0, xyz[c, 0]],
                    y=[0.0, xyz[c, 1]],
                    z=[0.0, xyz[c, 2]],
                    mode="lines+markers",
                    line={"color": colours[c], "width": _width(mino)},
                    marker={
                        "size": [0, 9 if mino else 6],
                        "color": colours[c],
                        "symbol": f"{symbol}-open" if mino else symbol,
                        "line": {"width": 3 if mino else 1, "color": colours[c]},
                    },
                    name=f"{names[c]} {kind}" + (" (minority)" if mino else ""),
                    legendgroup=names[c],
                    showlegend=False,
                    meta={"kind": kind, "class": c, "minority": mino},
                )
            )
    traces += _legend_entries(names, colours, minority_set, kinds=list(coords))

    heading = title or "Class means and classifiers"
    note = _view_note(proj, k, d, normalised=normalised)
    show_cosines = (not proj.exact) if cosines is None else bool(cosines)
    layout = {
        "title": {"text": f"{heading}<br><sup>{note}</sup>"},
        "height": height or (600 if show_cosines else 560),
        "margin": {"l": 10, "r": 10, "t": 70, "b": 10},
        "legend": {"itemsizing": "constant", "groupclick": "togglegroup", "tracegroupgap": 2},
        "meta": {
            "heading": heading,
            "note": note,
            "dims": min(k, d),
            "kept": proj.captured,
            "minority": sorted(minority_set),
            "normalised": normalised,
        },
    }
    if not show_cosines:
        fig = go.Figure(traces)
        fig.update_layout(scene=scene_layout(np.vstack(points)), **layout)
        return fig
    fig = make_subplots(
        rows=1,
        cols=2,
        specs=[[{"type": "scene"}, {"type": "xy"}]],
        column_widths=[0.58, 0.42],
        horizontal_spacing=0.06,
    )
    fig.add_traces(traces, rows=1, cols=1)
    fig.add_trace(
        cosine_map_trace(arrays.get("mean"), arrays.get("classifier"), names), row=1, col=2
    )
    ticks = class_ticks(names, minority_set)
    fig.update_yaxes(
        autorange="reversed",
        scaleanchor="x",
        constrain="domain",
        showgrid=False,
        title_text="class",
        **ticks,
        row=1,
        col=2,
    )
    fig.update_xaxes(
        title_text=_cosine_map_caption(arrays),
        constrain="domain",
        showgrid=False,
        **ticks,
        row=1,
        col=2,
    )
    layout["legend"].update(orientation="h", x=0.0, xanchor="left", y=-0.04, yanchor="top")
    layout["plot_bgcolor"] = "#FFFFFF"  # the blank diagonal of the cosine map
    fig.update_layout(scene=scene_layout(np.vstack(points)), **layout)
    return fig


def scene_layout(points: np.ndarray, pad: float = 0.04) -> dict[str, Any]:
    """A 3D scene that fits ``points`` (n, 3) from every viewing angle: a cube centred on their
    bounding box whose half-width is the largest distance from that centre (plus ``pad``), seen
    in orthographic projection (lengths do not shrink with depth), axes hidden (the arrows are
    read against each other and the grey ETF, not against coordinates)."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    mid = (lo + hi) / 2
    half = max(float(np.linalg.norm(points - mid, axis=1).max()), 1e-12) * (1 + pad)
    axes = {
        name: {"range": [float(mid[i] - half), float(mid[i] + half)], "visible": False}
        for i, name in enumerate(("xaxis", "yaxis", "zaxis"))
    }
    # project_to_3d orders the axes by spread: look down z, tilted, so x and y lie nearly flat
    camera = {
        "eye": {"x": 0.55, "y": -0.75, "z": 1.75},
        "up": {"x": 0.0, "y": 1.0, "z": 0.0},
        "projection": {"type": "orthographic"},
    }
    # plotly frames a unit cube in the view; a box of side SCENE_BOX makes the ball around the
    # points fill most of it without leaving the view, whichever way the scene is turned.
    box = {"x": SCENE_BOX, "y": SCENE_BOX, "z": SCENE_BOX}
    return {"aspectmode": "manual", "aspectratio": box, **axes, "camera": camera}


def cosine_map_trace(
    means: torch.Tensor | None, weight: torch.Tensor | None, names: Sequence[str]
) -> go.Heatmap:
    """Exact pairwise cosines as one heatmap: centred class means below the diagonal, classifier
    rows above it (either fills the whole map when it is the only one given), the diagonal
    blank. White is the ETF value -1/(K-1): at an ETF every off-diagonal cell is white, vectors
    squeezed closer than that are red (a collapsed minority is a dark-red block), wider blue."""
    k = len(names)
    z = np.full((k, k), np.nan)
    lower, upper = np.tril_indices(k, -1), np.triu_indices(k, 1)
    if means is not None:
        cm = cosine_matrix(means).numpy()
        z[lower] = cm[lower]
        if weight is None:
            z[upper] = cm[upper]
    if weight is not None:
        cw = cosine_matrix(weight).numpy()
        z[upper] = cw[upper]
        if means is None:
            z[lower] = cw[lower]
    etf = -1.0 / (k - 1)
    ticks = sorted({-1.0, etf, 1.0})
    labels = [f"ETF {fixed(etf, 2).replace('-', MINUS)}" if t == etf else _number(t) for t in ticks]
    return go.Heatmap(
        z=z,
        x=list(names),
        y=list(names),
        zmin=-1.0,
        zmax=1.0,
        colorscale=cosine_colorscale(k),
        colorbar={"title": {"text": "cosine"}, "tickvals": ticks, "ticktext": labels, "len": 0.8},
        hovertemplate="%{y} · %{x}: %{z:.3f}<extra></extra>",
        hoverongaps=False,
        name="cosines",
    )


_BLUES = ("#053061", "#2166AC", "#4393C3", "#92C5DE", "#D1E5F0")
_REDS = ("#FDDBC7", "#F4A582", "#D6604D", "#B2182B", "#67001F")


def cosine_colorscale(num_classes: int) -> list[list[Any]]:
    """A diverging colour scale for cosines on [-1, 1] (ColorBrewer RdBu) that is white at the
    ETF value -1/(K-1), not at 0: at an ETF every pair is white, red pairs are squeezed
    together, blue ones spread wider than the ETF."""
    white = (1 - 1 / (num_classes - 1)) / 2  # where -1/(K-1) falls when [-1, 1] maps to [0, 1]
    blues = [[white * i / len(_BLUES), c] for i, c in enumerate(_BLUES)] if white > 0 else []
    reds = [[white + (1 - white) * (i + 1) / len(_REDS), c] for i, c in enumerate(_REDS)]
    return [*blues, [white, "#F7F7F7"], *reds]


def _cosine_map_caption(arrays: Mapping[str, torch.Tensor]) -> str:
    if len(arrays) == 2:
        return "exact cosines: class means below the diagonal, classifiers above"
    return f"exact cosines of the {'class means' if 'mean' in arrays else 'classifiers'}"


#: The view note of an exact (K <= 4) view at true lengths.
EXACT_NOTE = "an exact 3D view: true lengths and angles"
#: The x-axis title of the cosine maps of :func:`side_by_side` (the figure's title says more).
MAP_CAPTION = "class: means below the diagonal, classifiers above"


def class_ticks(names: Sequence[str], minority: set[int] | Sequence[int] = ()) -> dict[str, Any]:
    """Axis settings that label every row or column of a cosine map with its class: the number
    alone for the default "class k" names (the axis title says "class"), minority classes in
    bold."""
    short = [n.removeprefix("class ") if re.fullmatch(r"class \d+", n) else n for n in names]
    text = [f"<b>{s}</b>" if c in set(minority) else s for c, s in enumerate(short)]
    return {
        "tickmode": "array",
        "tickvals": list(names),
        "ticktext": text,
        "showticklabels": True,
        "ticks": "",
    }


def _average_length(a: torch.Tensor) -> float:
    """The mean row norm of ``a`` (1 when the rows are all zero)."""
    length = float(a.norm(dim=1).mean())
    return length if length > 0 else 1.0


def _view_note(proj: Any, k: int, d: int, *, normalised: bool = False) -> str:
    """The second title line: what the 3D view keeps, in plain words."""
    scaled = "; means and classifiers each scaled to average length 1" if normalised else ""
    if proj.exact:
        return f"an exact 3D view: true angles{scaled}" if normalised else EXACT_NOTE
    dims = min(k, d)
    return (
        f"{dims}-D arrows seen from their 3 widest directions "
        f"({100 * proj.captured:.0f}% of their squared length){scaled}; true cosines on the right"
    )


def _width(minority: bool) -> int:
    return MINORITY_WIDTH if minority else MAJORITY_WIDTH


def _legend_entries(
    names: Sequence[str], colours: Sequence[str], minority: set[int], kinds: Sequence[str]
) -> list[go.Scatter3d]:
    """Legend-only traces: one per class (clicking it hides the class), then a key to the tips
    and line widths."""

    def entry(name: str, group: str | None = None, **style: Any) -> go.Scatter3d:
        return go.Scatter3d(
            x=[None], y=[None], z=[None], name=name, legendgroup=group, hoverinfo="skip", **style
        )

    out = [
        entry(
            f"{name} (minority)" if c in minority else name,
            group=name,
            mode="lines",
            line={
                "color": colours[c],
                "width": MINORITY_WIDTH if c in minority else MAJORITY_WIDTH,
            },
        )
        for c, name in enumerate(names)
    ]
    for kind in kinds:
        symbol, label = (
            (MEAN_SYMBOL, "class mean") if kind == "mean" else (WEIGHT_SYMBOL, "classifier")
        )
        out.append(
            entry(
                f"{label}: {'●' if kind == 'mean' else '◆'} tip",
                mode="markers",
                marker={"symbol": symbol, "color": KEY_COLOUR, "size": 6},
            )
        )
    if minority:
        out.append(
            entry(
                "minority: thick, open tip",
                mode="lines+markers",
                line={"color": KEY_COLOUR, "width": MINORITY_WIDTH},
                marker={"symbol": "circle-open", "color": KEY_COLOUR, "size": 8},
            )
        )
    return out


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
                colorscale=cosine_colorscale(k),
                showscale=i == len(panels),
                hovertemplate="%{y} · %{x}: %{z:.3f}",
            ),
            row=1,
            col=i,
        )
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{i if i > 1 else ''}", row=1, col=i)
    etf = fixed(-1 / (k - 1), 3).replace("-", MINUS)
    fig.update_layout(title=title or f"Pairwise cosines (white: the ETF value −1/(K−1) = {etf})")
    return fig


_CURVES = (
    ("NC1 (within / between variability)", (("nc1", "NC1"),), "log"),
    (
        "distance to a simplex ETF",
        (("etf_distance_means", "means"), ("etf_distance_weights", "classifiers")),
        "linear",
    ),
    ("self-duality (NC3)", (("self_duality", "‖W/‖W‖ − M/‖M‖‖"),), "linear"),
    ("minority collapse", (("mc_weights", "MC_W"), ("mc_means", "MC_H")), "linear"),
)


def metric_curves(history: Sequence[dict], *, x: str | None = None, title: str | None = None):
    """NC1, ETF distances, self-duality, MC_W and MC_H over training.

    Args:
        history: list of dicts holding (some of) the ``metrics.NCMetrics`` fields, or of
            ``records.EpochRecord`` (e.g. ``result.evaluated``), plus the x-axis key
            (``step`` or ``epoch``, found automatically, else the record index).
            Missing or None values are skipped. The MC panel marks the ETF value -1/(K-1) when
            ``num_classes`` is recorded.
    """
    if not history:
        raise ValueError("history is empty: nothing to plot")
    if x is None:
        x = next((key for key in ("step", "epoch") if _field(history[0], key) is not None), None)
    xs = [_field(rec, x) if x else i for i, rec in enumerate(history)]
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
                (xv, _field(rec, key))
                for xv, rec in zip(xs, history, strict=True)
                if _field(rec, key) is not None
            ]
            if yscale == "log":  # a log axis cannot show 0 (NC1 = 0 when features sit on means)
                pts = [(xv, v) for xv, v in pts if v > 0]
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
        if yscale == "log":
            shown = [v for t in fig.select_traces(row=row, col=1) for v in t.y]
            fig.update_yaxes(**log_axis(shown), row=row, col=1)
    k = _field(history[-1], "num_classes")
    if k:
        _etf_line(fig, k, row=4)
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
    collapse: tuple[float, float] | None = None,
) -> go.Figure:
    """MC_W (and MC_H) against the imbalance ratio on a log axis, and optionally the ratio of
    minority to majority classifier norms in a second panel. ``num_classes`` marks -1/(K-1);
    ``collapse`` = (last ratio below, first ratio at complete minority collapse), as from
    ``ufm.complete_collapse``, shades the band where MC_W reaches 1."""
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
        _etf_line(fig, num_classes, row=1)
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
    (``ufm.complete_collapse``) shaded where the sweep reaches it, the norm panel left out when
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
        _etf_line(fig, k, row=2, col=col, showlegend=col == 2)
    fig.update_xaxes(title_text="epoch", row=2)
    fig.update_layout(
        height=720,
        title="Metrics over training (NC metrics on the training set)",
        legend={"tracegroupgap": 2},
    )
    return fig


def etf_value_label(num_classes: int) -> str:
    """The legend entry of the dotted ETF line: "ETF value −1/(K−1) = −0.333"."""
    return f"ETF value −1/(K−1) = {fixed(-1 / (num_classes - 1), 3).replace('-', MINUS)}"


def _etf_line(
    fig: go.Figure, num_classes: int, row: int, col: int = 1, *, showlegend: bool = True
) -> None:
    """A dotted line across a cosine panel at the ETF value -1/(K-1), named in the legend (never
    written on the panel, where a curve at the ETF value would run through the words)."""
    fig.add_hline(
        y=-1 / (num_classes - 1),
        line={"color": ETF_COLOUR, "dash": "dot", "width": 2},
        name=etf_value_label(num_classes),
        legendgroup="etf value",
        showlegend=showlegend,
        row=row,
        col=col,
    )


def _etf_trace(ref: np.ndarray) -> go.Scatter3d:
    """Grey dashed lines from the origin to each ideal-ETF vertex, ending in an open square, one
    trace (None-separated). (An open square, not a cross: WebGL draws 3D markers from font
    glyphs, and the cross is missing from common fonts; the squares are where circles and
    diamonds come from.)"""
    xs, ys, zs = [], [], []
    for row in ref:
        xs += [0.0, row[0], None]
        ys += [0.0, row[1], None]
        zs += [0.0, row[2], None]
    return go.Scatter3d(
        x=xs,
        y=ys,
        z=zs,
        mode="lines+markers",
        name="ideal simplex ETF",
        line={"color": ETF_COLOUR, "width": ETF_WIDTH, "dash": "dash"},
        marker={
            "size": [0, 7, 0] * len(ref),
            "color": ETF_COLOUR,
            "symbol": "square-open",
            "line": {"width": 2, "color": ETF_COLOUR},
        },
        hoverinfo="name",
    )


def log_axis(values: Sequence[float], max_ticks: int = 8) -> dict[str, Any]:
    """Axis settings for a log axis over ``values`` (> 0) with readable ticks: 1-2-5 or 1-3
    steps when the data span few decades, else powers of ten (every n-th decade), labelled as
    plain numbers (0.01 ... 1000) or 10⁻⁸-style powers; never SI prefixes or bare minor
    digits."""
    positive = [float(v) for v in values if v is not None and v > 0 and math.isfinite(v)]
    if not positive:
        return {"type": "log"}
    lo, hi = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
    hi = max(hi, lo + 1)
    decades = hi - lo
    mantissas = (1, 2, 5) if decades <= 2 else (1, 3) if decades <= 4 else (1,)
    every = max(1, math.ceil((decades + 1) / max_ticks))
    ticks = [
        m * 10.0**e
        for e in range(lo, hi + 1)
        if (hi - e) % every == 0  # counted from the top: the largest decade is labelled
        for m in mantissas
        if min(positive) / 1.5 <= m * 10.0**e <= max(positive) * 1.5
    ]
    plain = all(1e-3 <= t < 1e5 for t in ticks)
    return {
        "type": "log",
        "tickvals": ticks,
        "ticktext": [_number(t) if plain else _power(t) for t in ticks],
        "minor": {"showgrid": False},
    }


def _number(value: float) -> str:
    """A tick label: 1000, 0.01, -0.5 (unicode minus), no exponent."""
    text = f"{value:.10f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value)}"
    return text.replace("-", MINUS)


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power(value: float) -> str:
    """10⁻⁸, 3×10⁻⁵: a tick label for very small or large values."""
    exponent = math.floor(math.log10(value) + 1e-9)
    mantissa = round(value / 10.0**exponent)
    power = f"10{str(exponent).translate(_SUPERSCRIPT)}"
    return power if mantissa == 1 else f"{mantissa}×{power}"


def _nearest_etf(a: torch.Tensor, length: float | None = None) -> np.ndarray:
    """The simplex ETF (rows of equal norm ``length``, default the mean row norm of ``a``)
    closest to ``a`` (K, d) after an orthogonal map (Procrustes): the reference drawn behind
    the arrows."""
    k = a.shape[0]
    etf = simplex_etf(k, k - 1)
    u, _, vh = torch.linalg.svd(etf.T @ a, full_matrices=False)
    scale = float(a.norm(dim=1).mean()) if length is None else float(length)
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


# ------------------------------------------------- figures of finished runs (records.RunResult)


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


def side_by_side(
    figures: Mapping[str, go.Figure],
    *,
    height: int | None = None,
    title: str | None = None,
    columns: int | None = None,
) -> go.Figure:
    """Several :func:`simplex_figure` views as a grid of 3D scenes, each headed by its figure's
    heading (``layout.meta``; else its key); their shared view note goes once under ``title``.

    ``columns``: views per row (default: all of them up to three, else half of them, rounded
    up, so that four views make a 2 x 2 grid whose scenes are wide enough to read). When the
    figures carry cosine maps (K > 4), each map sits under its scene, every row and column
    labelled with its class (minority classes in bold). The legend of the first figure is
    kept, the others' entries hidden.
    """
    if not figures:
        raise ValueError("figures is empty: nothing to place side by side")
    n = len(figures)
    cols = int(columns) if columns is not None else (n if n <= 3 else -(-n // 2))
    if cols < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    cols = min(cols, n)
    grid_rows = -(-n // cols)
    metas = [fig.layout.meta or {} for fig in figures.values()]
    maps = any(isinstance(t, go.Heatmap) for fig in figures.values() for t in fig.data)
    cells = [(i // cols, i % cols) for i in range(n)]  # (grid row, column) of each view
    scene_px, map_px, gap_px, spacer_px = side_by_side_sizes(cols)
    # subplot rows: per row of views its scenes, then their maps; between two rows of views an
    # empty row, room for the maps' axis titles and the next scenes' headings
    specs, rows_px, scene_rows = [], [], []
    for r in range(grid_rows):
        if r and maps:
            specs.append([None] * cols)
            rows_px.append(spacer_px)
        scene_rows.append(len(specs) + 1)
        specs.append([{"type": "scene"} if (r, c) in cells else None for c in range(cols)])
        rows_px.append(scene_px)
        if maps:
            specs.append([{"type": "xy"} if (r, c) in cells else None for c in range(cols)])
            rows_px.append(map_px)
    gaps = gap_px * (len(rows_px) - 1)
    out = make_subplots(
        rows=len(specs),
        cols=cols,
        specs=specs,
        row_heights=rows_px,
        vertical_spacing=gap_px / (sum(rows_px) + gaps),
        horizontal_spacing=0.06 if cols > 1 else 0.0,
        subplot_titles=_grid_titles(
            [m.get("heading", key) for m, key in zip(metas, figures, strict=True)], cols, maps
        ),
    )
    out.layout.annotations = [a for a in out.layout.annotations if a.text]  # the maps: untitled
    bar = None
    for i, ((r, c), fig, meta) in enumerate(zip(cells, figures.values(), metas, strict=True)):
        scene_row, col = scene_rows[r], c + 1
        for trace in fig.data:
            if isinstance(trace, go.Heatmap):
                bar = (scene_row + 1, col) if i == n - 1 else bar
                out.add_trace(go.Heatmap(trace, showscale=i == n - 1), row=scene_row + 1, col=col)
                _label_map(
                    out,
                    (scene_row + 1, col),
                    list(trace.x),
                    meta.get("minority", ()),
                    caption=MAP_CAPTION if cols <= 2 else "class",
                )
                continue
            if i > 0:
                trace = go.Scatter3d(trace, showlegend=False)
            out.add_trace(trace, row=scene_row, col=col)
        scene = fig.layout.scene.to_plotly_json()
        scene.pop("domain", None)  # make_subplots placed this scene; keep the rest of its look
        box = SCENE_BOX * (SIDE_BY_SIDE_BOX if cols >= 3 else 1.0)
        scene["aspectratio"] = {"x": box, "y": box, "z": box}
        out.update_layout({out.get_subplot(scene_row, col).plotly_name: scene})
    note = metas[0].get("note")
    if maps:
        lo, hi = out.get_subplot(*bar).yaxis.domain  # the colour bar beside the last map
        out.update_traces(
            colorbar={"y": (lo + hi) / 2, "len": hi - lo}, selector={"type": "heatmap"}
        )
        kept = sorted(round(100 * m.get("kept", 1.0)) for m in metas)
        share = f"{kept[0]}%" if kept[0] == kept[-1] else f"{kept[0]}–{kept[-1]}%"
        scaled = ", each set at average length 1" if metas[0].get("normalised") else ""
        below = "" if cols <= 2 else " (means below the diagonal, classifiers above)"
        note = (
            f"{metas[0].get('dims', '')}-D arrows from their 3 widest directions ({share} of "
            f"their squared length){scaled}; the exact cosines under each{below}"
        )
    heading = title or ""
    text = f"{heading}<br><sup>{note}</sup>" if note and heading else heading or note or ""
    out.update_layout(
        # a note without a heading is set small as well: one line on a 1000 px page
        title={"text": text, "font": {"size": 17 if heading else 13}},
        plot_bgcolor="#FFFFFF",
        height=height or sum(rows_px) + gaps + 230,
        margin={"l": 10, "r": 10, "t": 110 if text else 60, "b": 10},
        legend={
            "itemsizing": "constant",
            "groupclick": "togglegroup",
            "orientation": "h",
            "x": 0.0,
            "y": -(60 if maps else 10) / (sum(rows_px) + gaps),  # under the maps' axis titles
            "yanchor": "top",
        },
    )
    return out


def side_by_side_sizes(columns: int) -> tuple[int, int, int, int]:
    """Heights (px) in :func:`side_by_side` with ``columns`` views per row, for a page about
    1100 px wide: a row of 3D scenes, a row of cosine maps, the gap between two rows and the
    extra room between a row of maps and the next row of scenes. plotly fits a 3D view to its
    scene's smaller side, so a scene is made about as tall as it is wide (at most 500 px), a map
    (square) a little less."""
    width = 1100 // max(1, columns)
    scene = min(500, max(300, round(0.9 * width)))
    return scene, round(0.75 * scene), 60, 40


def _grid_titles(headings: Sequence[str], columns: int, maps: bool) -> list[str]:
    """``make_subplots``' titles, which go to the cells in reading order: each row of scenes
    gets its headings, a row of maps under it empty ones."""
    titles = []
    for start in range(0, len(headings), columns):
        row = list(headings[start : start + columns])
        titles += row + ([""] * len(row) if maps else [])
    return titles


def _label_map(
    fig: go.Figure,
    cell: tuple[int, int],
    names: Sequence[str],
    minority: Sequence[int],
    *,
    caption: str,
) -> None:
    """A cosine map's axes in :func:`side_by_side`: square, every row and column labelled."""
    row, col = cell
    sub = fig.get_subplot(row, col)
    x_id = sub.xaxis.plotly_name.replace("axis", "")
    ticks = class_ticks(names, set(minority))
    fig.update_yaxes(
        autorange="reversed",
        scaleanchor=x_id,
        constrain="domain",
        showgrid=False,
        title={"text": "class", "standoff": 4},
        **ticks,
        row=row,
        col=col,
    )
    fig.update_xaxes(
        constrain="domain",
        showgrid=False,
        title={"text": caption, "standoff": 6},
        **ticks,
        row=row,
        col=col,
    )


def slider_figure(figures: Mapping[Any, go.Figure], *, label: str = "") -> go.Figure:
    """One figure holding the traces of all ``figures`` and a slider that shows one at a time.

    The slider's steps are the keys, and the current one is shown after ``label`` above the
    slider (e.g. "epoch 30"); each step swaps the visible traces and the title (and the 3D
    axes, when there are any). Works without a live kernel.
    """
    if not figures:
        raise ValueError("figures is empty: nothing to slide over")
    out = go.Figure(layout=next(iter(figures.values())).layout)
    spans, start = [], 0
    for fig in figures.values():
        out.add_traces(list(fig.data))
        spans.append((start, start + len(fig.data)))
        start += len(fig.data)
    steps = []
    for (key, fig), (lo, hi) in zip(figures.items(), spans, strict=True):
        visible = [lo <= i < hi for i in range(start)]
        layout = {"title": fig.layout.title}
        if fig.layout.scene is not None:
            layout["scene"] = fig.layout.scene
        steps.append(
            {"label": str(key), "method": "update", "args": [{"visible": visible}, layout]}
        )
    for i, trace in enumerate(out.data):
        trace.visible = i < spans[0][1]
    out.update_layout(
        sliders=[
            {
                "active": 0,
                "steps": steps,
                "x": 0.04,
                "len": 0.92,
                "currentvalue": {"prefix": label, "font": {"size": 15}},
                "pad": {"t": 40, "b": 10},
            }
        ],
        margin={"b": 110},
    )
    return out


def _mc_text(run: Any) -> str:
    """'MC_W +0.23, MC_H +0.11' of a run or epoch record (the mc_weights / mc_means fields)."""
    w, h = _field(run, "mc_weights"), _field(run, "mc_means")
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


def _field(record: Any, key: str) -> Any:
    """``record[key]`` of a dict, else the attribute (``records.EpochRecord``); None if absent."""
    if isinstance(record, Mapping):
        return record.get(key)
    return getattr(record, key, None)
