"""Drawing primitives for the figures: colours, 3D scenes, cosine maps, axes, the ETF reference.

Colours are hex strings only (plotly 7 rejects fractional ``rgb()``): one colour-blind-safe
colour per class, Okabe-Ito first (ordered by contrast on white, its pale yellow left out), then
Paul Tol's "muted" scheme, cycled beyond 15 classes. In the 3D views minority classes are drawn
thick with open tips and named "(minority)"; the legend holds one entry per class and a key.
Log axes carry explicit ticks (1, 3, 10, ... or powers of ten), never SI prefixes. The figures
themselves are built in ``plots`` (arrays), ``sweep_figures`` (UFM sweeps) and ``run_figures``
(trained runs).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch

from ._checks import ArrayLike, as_float64
from .fmt import fixed
from .geometry import cosine_matrix, simplex_etf

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
    labels = [
        f"ETF {fixed(etf, 2).replace('-', MINUS)}" if t == etf else tick_text(t) for t in ticks
    ]
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


def cosine_map_caption(arrays: Mapping[str, torch.Tensor]) -> str:
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


def average_length(a: torch.Tensor) -> float:
    """The mean row norm of ``a`` (1 when the rows are all zero)."""
    length = float(a.norm(dim=1).mean())
    return length if length > 0 else 1.0


def view_note(proj: Any, k: int, d: int, *, normalised: bool = False) -> str:
    """The second title line: what the 3D view keeps, in plain words."""
    scaled = "; means and classifiers each scaled to average length 1" if normalised else ""
    if proj.exact:
        return f"an exact 3D view: true angles{scaled}" if normalised else EXACT_NOTE
    dims = min(k, d)
    return (
        f"{dims}-D arrows seen from their 3 widest directions "
        f"({100 * proj.captured:.0f}% of their squared length){scaled}; true cosines on the right"
    )


def arrow_width(minority: bool) -> int:
    return MINORITY_WIDTH if minority else MAJORITY_WIDTH


def legend_entries(
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


def etf_value_label(num_classes: int) -> str:
    """The legend entry of the dotted ETF line: "ETF value −1/(K−1) = −0.333"."""
    return f"ETF value −1/(K−1) = {fixed(-1 / (num_classes - 1), 3).replace('-', MINUS)}"


def etf_line(
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


def etf_trace(ref: np.ndarray) -> go.Scatter3d:
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
        "ticktext": [tick_text(t) if plain else _power(t) for t in ticks],
        "minor": {"showgrid": False},
    }


def tick_text(value: float) -> str:
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


def nearest_etf(a: torch.Tensor, length: float | None = None) -> np.ndarray:
    """The simplex ETF (rows of equal norm ``length``, default the mean row norm of ``a``)
    closest to ``a`` (K, d) after an orthogonal map (Procrustes): the reference drawn behind
    the arrows."""
    k = a.shape[0]
    etf = simplex_etf(k, k - 1)
    u, _, vh = torch.linalg.svd(etf.T @ a, full_matrices=False)
    scale = float(a.norm(dim=1).mean()) if length is None else float(length)
    return (scale * etf @ (u @ vh)).numpy()


def feature_cloud(
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


def check_indices(indices: Sequence[int] | None, k: int) -> set[int]:
    if indices is None:
        return set()
    idx = {int(i) for i in indices}
    if idx and (min(idx) < 0 or max(idx) >= k):
        raise ValueError(f"minority classes must lie in [0, {k}), got {sorted(idx)}")
    return idx


def class_names_of(names: Sequence[str] | None, k: int) -> list[str]:
    if names is None:
        return [f"class {c}" for c in range(k)]
    if len(names) != k:
        raise ValueError(f"class_names must have {k} entries, got {len(names)}")
    return [str(n) for n in names]
