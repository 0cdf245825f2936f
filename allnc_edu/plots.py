"""Plotly figures of arrays: the 3D simplex view of class means and classifiers, Gram heatmaps,
metric curves over training, several figures side by side or on a slider.

Pure functions returning ``go.Figure``; their primitives (colours, scenes, cosine maps, the ETF
reference) are in ``drawing``. Figures of UFM sweeps are in ``sweep_figures``, figures of
trained runs in ``run_figures``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ._checks import ArrayLike, as_float64
from .drawing import (
    MAP_CAPTION,
    MEAN_SYMBOL,
    MINUS,
    PALETTE,
    SCENE_BOX,
    SIDE_BY_SIDE_BOX,
    WEIGHT_SYMBOL,
    arrow_width,
    average_length,
    check_indices,
    class_colours,
    class_names_of,
    class_ticks,
    cosine_colorscale,
    cosine_map_caption,
    cosine_map_trace,
    etf_line,
    etf_trace,
    feature_cloud,
    legend_entries,
    log_axis,
    nearest_etf,
    scene_layout,
    view_note,
)
from .fmt import fixed
from .geometry import cosine_matrix, project_to_3d


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
    scale = {kind: average_length(a) if normalise else 1.0 for kind, a in arrays.items()}
    arrays = {kind: a / scale[kind] for kind, a in arrays.items()}
    normalised = normalise and len(arrays) == 2
    minority_set = check_indices(minority, k)
    names = class_names_of(class_names, k)

    proj = project_to_3d(*arrays.values())
    coords = dict(zip(arrays, (c.numpy() for c in proj.coords), strict=True))
    basis = proj.basis.numpy()[:d]  # project_to_3d pads d < 3 with zeros
    colours = class_colours(k)
    traces: list[go.Scatter3d] = []
    points = [np.zeros((1, 3)), *coords.values()]

    if features is not None:
        cloud = feature_cloud(features, labels, k, d, centre, max_points_per_class)
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
        ref = nearest_etf(target, length=longest if normalise else None) @ basis
        points.append(ref)
        traces.append(etf_trace(ref))
    traces += _arrow_traces(coords, minority_set, colours, names)
    traces += legend_entries(names, colours, minority_set, kinds=list(coords))

    heading = title or "Class means and classifiers"
    note = view_note(proj, k, d, normalised=normalised)
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
    return _with_cosine_map(traces, arrays, names, minority_set, layout, np.vstack(points))


def _arrow_traces(
    coords: Mapping[str, np.ndarray],
    minority: set[int],
    colours: Sequence[str],
    names: Sequence[str],
) -> list[go.Scatter3d]:
    """One arrow from the origin per class and kind ("mean": circle tip, "classifier": diamond),
    minority arrows thick with open tips."""
    traces = []
    for kind, xyz in coords.items():
        symbol = MEAN_SYMBOL if kind == "mean" else WEIGHT_SYMBOL
        for c in range(len(xyz)):
            mino = c in minority
            traces.append(
                go.Scatter3d(
                    x=[0.0, xyz[c, 0]],
                    y=[0.0, xyz[c, 1]],
                    z=[0.0, xyz[c, 2]],
                    mode="lines+markers",
                    line={"color": colours[c], "width": arrow_width(mino)},
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
    return traces


def _with_cosine_map(
    traces: list,
    arrays: Mapping[str, torch.Tensor],
    names: Sequence[str],
    minority: set[int],
    layout: dict[str, Any],
    points: np.ndarray,
) -> go.Figure:
    """The 3D view (``traces``) beside the exact cosine map of its arrays, class labels on both
    axes of the map, minority bold, the legend below."""
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
    ticks = class_ticks(names, minority)
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain", showgrid=False,
                     title_text="class", **ticks, row=1, col=2)  # fmt: skip
    fig.update_xaxes(title_text=cosine_map_caption(arrays), constrain="domain", showgrid=False,
                     **ticks, row=1, col=2)  # fmt: skip
    layout["legend"].update(orientation="h", x=0.0, xanchor="left", y=-0.04, yanchor="top")
    layout["plot_bgcolor"] = "#FFFFFF"  # the blank diagonal of the cosine map
    fig.update_layout(scene=scene_layout(points), **layout)
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
    names = class_names_of(class_names, k)
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


def metric_curves(
    history: Sequence[Mapping[str, Any]], *, x: str | None = None, title: str | None = None
) -> go.Figure:
    """NC1, ETF distances, self-duality, MC_W and MC_H over training.

    Args:
        history: dicts holding (some of) the ``metrics.NCMetrics`` fields (a UFM run's
            ``history``; ``run_figures.run_metric_curves`` draws a trained run's), plus the
            x-axis key (``step`` or ``epoch``, found automatically, else the record index).
            Missing or None values are skipped. The MC panel marks the ETF value -1/(K-1) when
            ``num_classes`` is recorded.
    """
    if not history:
        raise ValueError("history is empty: nothing to plot")
    if x is None:
        x = next((key for key in ("step", "epoch") if history[0].get(key) is not None), None)
    xs = [rec.get(x) if x else i for i, rec in enumerate(history)]
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
                (xv, rec.get(key))
                for xv, rec in zip(xs, history, strict=True)
                if rec.get(key) is not None
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
    k = history[-1].get("num_classes")
    if k:
        etf_line(fig, k, row=4)
    fig.update_xaxes(title_text=x or "record", row=len(_CURVES), col=1)
    fig.update_layout(height=850, title=title or "Neural-collapse metrics over training")
    return fig


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
