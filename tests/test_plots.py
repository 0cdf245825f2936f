"""Figure builders: asserted on the figures' data, not on pictures."""

from __future__ import annotations

import re

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from allnc_edu import drawing, geometry, plots, sweep_figures
from allnc_edu.sweep_figures import minority_collapse_sweep_figure as sweep

HEX = re.compile(r"^#[0-9A-Fa-f]{6}$")
RGB_INT = re.compile(r"^rgba?\(\d{1,3}, ?\d{1,3}, ?\d{1,3}(, ?[01](\.\d+)?)?\)$")


def arrow_tips(fig: go.Figure, kind: str) -> np.ndarray:
    traces = sorted(
        (t for t in fig.data if t.meta and t.meta["kind"] == kind), key=lambda t: t.meta["class"]
    )
    return np.array([[t.x[-1], t.y[-1], t.z[-1]] for t in traces])


def colours_in(obj, under_colour_key: bool = False) -> list[str]:
    """Every string under a key named like a colour (colorscales included) in a figure dict."""
    if isinstance(obj, dict):
        items = [
            (value, under_colour_key or ("color" in key.lower() and key != "colorbar"))
            for key, value in obj.items()
        ]
        return [c for value, flag in items for c in colours_in(value, flag)]
    if isinstance(obj, list | tuple):
        return [c for value in obj for c in colours_in(value, under_colour_key)]
    return [obj] if under_colour_key and isinstance(obj, str) else []


def test_tetrahedron_arrows_recover_the_etf_cosines_and_lengths():
    etf = geometry.simplex_etf(4, 6, seed=1)
    fig = plots.simplex_figure(2.0 * etf + 5.0, etf)  # means carry an offset: centred first
    assert {type(t) for t in fig.data} == {go.Scatter3d}
    w, m = arrow_tips(fig, "classifier"), arrow_tips(fig, "mean")
    assert w.shape == m.shape == (4, 3)
    cos = geometry.cosine_matrix(w).numpy()
    np.testing.assert_allclose(cos[~np.eye(4, dtype=bool)], -1 / 3, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(m, 2.0 * w, atol=1e-9)
    assert "exact" in fig.layout.title.text


def test_reference_etf_is_the_nearest_one():
    etf = geometry.simplex_etf(4, 3)
    fig = plots.simplex_figure(weight=1.5 * etf)
    ref = next(t for t in fig.data if t.name == "ideal simplex ETF")
    ends = np.array([[x, y, z] for x, y, z in zip(ref.x, ref.y, ref.z, strict=True)][1::3])
    tips = arrow_tips(fig, "classifier")
    np.testing.assert_allclose(ends, tips, atol=1e-9)
    assert not any(
        t.name == "ideal simplex ETF" for t in plots.simplex_figure(etf, show_etf=False).data
    )


def test_scene_is_sized_to_the_arrows_with_equal_scales():
    rng = np.random.default_rng(0)
    means, weight = rng.normal(size=(4, 5)) * [1, 2, 3, 4, 5], rng.normal(size=(4, 5))
    fig = plots.simplex_figure(means, weight)
    scene = fig.layout.scene
    box = scene.aspectratio
    assert scene.aspectmode == "manual" and box.x == box.y == box.z
    ranges = np.array([scene.xaxis.range, scene.yaxis.range, scene.zaxis.range])
    widths = ranges[:, 1] - ranges[:, 0]
    np.testing.assert_allclose(widths, widths[0])  # equal scales: true proportions
    tips = np.vstack([arrow_tips(fig, "mean"), arrow_tips(fig, "classifier"), np.zeros((1, 3))])
    centre = ranges.mean(axis=1)
    radius = np.linalg.norm(tips - centre, axis=1).max()
    assert radius <= widths[0] / 2  # the ball around the arrows fits: no clipping, any angle
    assert radius >= 0.9 * widths[0] / 2  # ... and fills the scene
    assert scene.camera.projection.type == "orthographic"


def test_minority_classes_are_thick_open_and_named():
    etf = geometry.simplex_etf(4, 3)
    fig = plots.simplex_figure(etf, etf, minority=[2, 3])
    for t in fig.data:
        if t.meta:
            minority = t.meta["class"] in (2, 3)
            width = drawing.MINORITY_WIDTH if minority else drawing.MAJORITY_WIDTH
            assert t.line.width == width and t.line.dash is None
            assert t.marker.symbol.endswith("-open") == minority
            assert ("minority" in t.name) == minority
    assert drawing.MINORITY_WIDTH >= 2 * drawing.MAJORITY_WIDTH
    assert any("minority" in t.name and not t.meta for t in fig.data)  # the legend key


def test_legend_has_one_entry_per_class_and_a_key():
    etf = geometry.simplex_etf(10, 10)
    fig = plots.simplex_figure(etf, etf, minority=range(5, 10))
    shown = [t.name for t in fig.data if isinstance(t, go.Scatter3d) and t.showlegend is not False]
    assert shown == [
        "ideal simplex ETF",
        *(f"class {c}" for c in range(5)),
        *(f"class {c} (minority)" for c in range(5, 10)),
        "class mean: ● tip",
        "classifier: ◆ tip",
        "minority: thick, open tip",
    ]
    assert fig.layout.legend.orientation == "h"  # below the figure: never cut at the side


def test_etf_reference_is_drawn_dark_and_dashed():
    fig = plots.simplex_figure(weight=geometry.simplex_etf(3, 3))
    ref = next(t for t in fig.data if t.name == "ideal simplex ETF")
    assert ref.line.dash == "dash" and ref.line.width >= 4 and ref.line.color == drawing.ETF_COLOUR


def test_more_than_four_classes_show_what_the_view_keeps_and_the_exact_cosines():
    rng = np.random.default_rng(1)
    means, weight = rng.normal(size=(6, 8)), rng.normal(size=(6, 8))
    fig = plots.simplex_figure(means, weight, title="six classes")
    heading, note = fig.layout.title.text.split("<br>")
    assert heading == "six classes" and "3 widest directions" in note and "% of" in note
    assert fig.layout.meta["heading"] == "six classes"
    (cos,) = [t for t in fig.data if isinstance(t, go.Heatmap)]
    z = np.array(cos.z, dtype=float)
    centred = means - means.mean(axis=0)
    cm = geometry.cosine_matrix(torch.tensor(centred)).numpy()
    cw = geometry.cosine_matrix(torch.tensor(weight)).numpy()
    lower, upper = np.tril_indices(6, -1), np.triu_indices(6, 1)
    np.testing.assert_allclose(z[lower], cm[lower], atol=1e-12)
    np.testing.assert_allclose(z[upper], cw[upper], atol=1e-12)
    assert np.isnan(np.diag(z)).all() and (cos.zmin, cos.zmax) == (-1.0, 1.0)
    white = [pos for pos, colour in cos.colorscale if colour == "#F7F7F7"]
    assert white == [pytest.approx((1 - 1 / 5) / 2)]  # white is the ETF value -1/(K-1), not 0
    assert not any(isinstance(t, go.Heatmap) for t in plots.simplex_figure(means[:4, :3]).data)


def test_feature_cloud_one_trace_per_class_capped():
    etf = geometry.simplex_etf(3, 3)
    labels = torch.tensor([0] * 50 + [1] * 5 + [2] * 2)
    features = etf[labels] + 0.01 * torch.randn(57, 3, dtype=torch.float64)
    fig = plots.simplex_figure(etf, features=features, labels=labels, max_points_per_class=10)
    clouds = [t for t in fig.data if t.name.endswith("samples")]
    assert [len(t.x) for t in clouds] == [10, 5, 2]
    with pytest.raises(ValueError, match="labels"):
        plots.simplex_figure(etf, features=features)


def test_gram_heatmap_panels_hold_the_cosines():
    etf = geometry.simplex_etf(5, 4)
    fig = plots.gram_heatmap(etf + 3.0, etf)
    heatmaps = [t for t in fig.data if isinstance(t, go.Heatmap)]
    assert len(heatmaps) == 3
    gram = geometry.etf_gram(5).numpy()
    for h in heatmaps:
        np.testing.assert_allclose(np.array(h.z), gram, atol=1e-12)
        assert (h.zmin, h.zmax) == (-1.0, 1.0)
    assert len(plots.gram_heatmap(weight=etf).data) == 1


def test_metric_curves_plot_the_history_and_skip_missing_values():
    history = [
        {"step": s, "nc1": 10.0**-s, "etf_distance_means": 1 / (s + 1), "mc_weights": 0.1 * s,
         "mc_means": None, "num_classes": 4}
        for s in range(4)
    ]  # fmt: skip
    fig = plots.metric_curves(history)
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["NC1"].y) == [1.0, 0.1, 0.01, 0.001]
    assert list(by_name["MC_W"].x) == [0, 1, 2, 3]
    assert len(by_name["MC_H"].y) == 0 and len(by_name["classifiers"].y) == 0
    assert fig.layout.yaxis.type == "log"
    with pytest.raises(ValueError, match="empty"):
        plots.metric_curves([])


def test_sweep_figure_uses_a_log_axis_and_checks_lengths():
    fig = sweep([1, 10, 100], [-0.3, 0.1, 0.9], [-0.3, 0.0, 0.5], [1.0, 0.7, 0.4], num_classes=4)
    assert fig.layout.xaxis.type == fig.layout.xaxis2.type == "log", "every panel"
    assert [t.name for t in fig.data] == [
        "MC_W (classifiers)",
        "MC_H (centred means)",
        "norm ratio",
    ]
    with pytest.raises(ValueError, match="3 ratios"):
        sweep([1, 10, 100], [0.0, 1.0])


def test_sweep_records_figure_reads_ufm_sweep_records():
    records = [
        {"ratio": ratio, "counts": [100, 100, 100 // ratio], "mc_weights": mc, "mc_means": mc / 2,
         "weight_norm_ratio": 1 / ratio}
        for ratio, mc in ((1, -0.5), (10, 0.2), (100, 0.8))
    ]  # fmt: skip
    fig = sweep_figures.sweep_records_figure(records, title="CE")
    assert list(fig.data[0].x) == [1, 10, 100] and list(fig.data[1].y) == [-0.25, 0.1, 0.4]
    assert list(fig.data[2].y) == [1, 0.1, 0.01] and fig.layout.title.text == "CE"
    assert fig.layout.shapes[0].y0 == pytest.approx(-0.5), "the ETF value -1/(K-1) for K = 3"
    assert [t.name for t in sweep_figures.sweep_records_figure(records, norms=False).data] == [
        "MC_W (classifiers)",
        "MC_H (centred means)",
    ]
    with pytest.raises(ValueError, match="empty"):
        sweep_figures.sweep_records_figure([])


def test_every_colour_is_hex_or_integer_rgb():
    etf = geometry.simplex_etf(10, 10)
    labels = torch.arange(10).repeat(3)
    figures = [
        plots.simplex_figure(etf, etf, features=etf[labels], labels=labels, minority=[5, 6]),
        plots.gram_heatmap(etf, etf),
        plots.metric_curves([{"step": 0, "nc1": 1.0, "mc_weights": 0.0, "num_classes": 10}]),
        sweep([1, 10], [0, 1], [0, 1], [1, 0.5], num_classes=10),
    ]
    for fig in figures:
        spec = fig.to_dict()
        spec["layout"].pop("template", None)  # plotly's own theme, not set here
        colours = colours_in(spec)
        assert colours
        bad = [c for c in colours if not (HEX.match(c) or RGB_INT.match(c))]
        assert not bad
    assert len(set(drawing.class_colours(10))) == 10


def test_invalid_inputs_raise():
    etf = geometry.simplex_etf(4, 3)
    with pytest.raises(ValueError, match="needs means, weight or both"):
        plots.simplex_figure()
    with pytest.raises(ValueError, match=r"\(K, d\)"):
        plots.simplex_figure(etf, etf[:3])
    with pytest.raises(ValueError, match="minority classes must lie"):
        plots.simplex_figure(etf, minority=[4])
    with pytest.raises(ValueError, match="class_names"):
        plots.gram_heatmap(etf, class_names=["a"])


@pytest.mark.parametrize(
    ("values", "ticks", "labels"),
    [
        ([1, 1000], [1, 3, 10, 30, 100, 300, 1000], ["1", "3", "10", "30", "100", "300", "1000"]),
        ([0.02, 0.9], [0.02, 0.05, 0.1, 0.2, 0.5, 1], ["0.02", "0.05", "0.1", "0.2", "0.5", "1"]),
        ([1e-30, 1], None, None),
    ],
)
def test_log_axis_ticks_are_plain_numbers_or_powers_never_si(values, ticks, labels):
    axis = drawing.log_axis(values)
    assert axis["type"] == "log"
    if ticks is not None:
        np.testing.assert_allclose(axis["tickvals"], ticks)
        assert axis["ticktext"] == labels
    else:
        assert len(axis["tickvals"]) <= 8
        assert axis["ticktext"][-1] == "10⁰" and axis["ticktext"][0] == "10⁻²⁸"
        assert all(t.startswith("10") for t in axis["ticktext"])
    assert not any(re.search(r"\d[a-zA-Zµ]", t) for t in axis["ticktext"])  # no 100n, 10f, 1k


def test_metric_curves_typeset_the_legend_and_label_the_etf_value():
    history = [
        {"step": s, "nc1": 10.0**-s, "self_duality": 0.1, "mc_weights": 0.0, "num_classes": 4}
        for s in range(12)
    ]
    fig = plots.metric_curves(history)
    assert "‖W/‖W‖ − M/‖M‖‖" in [t.name for t in fig.data]
    assert all("|" not in t.name for t in fig.data)
    assert fig.layout.yaxis.ticktext[-1] == "10⁰" and fig.layout.yaxis2.ticktext is None
    (etf,) = [s for s in fig.layout.shapes if s.name and s.name.startswith("ETF value")]
    assert etf.name == "ETF value −1/(K−1) = −0.333" and etf.showlegend  # named in the legend


def test_sweep_figure_shades_the_complete_collapse_band():
    ratios = [1, 10, 100, 150, 190, 210, 1000]
    mc_w = [-1 / 3, -0.2, 0.26, 0.55, 0.9, 1.0, 1.0]
    fig = sweep(ratios, mc_w, num_classes=4, collapse=(190, 210))
    band = [s for s in fig.layout.shapes if s.type == "rect"]
    assert [(b.x0, b.x1) for b in band] == [(190, 210)]
    assert band[0].name == "complete collapse (MC_W = 1) between IR 190 and 210"
    assert band[0].showlegend  # named in the legend, not written over the curves
    assert list(fig.layout.xaxis.ticktext) == ["1", "3", "10", "30", "100", "300", "1000"]


def test_sweep_figures_shade_where_a_sweep_collapses_and_drop_constant_norms():
    mc_w = {1.0: -1 / 3, 100.0: 0.5, 300.0: 1.0, 1000.0: 1.0}
    learned = [
        {"ratio": r, "counts": [100, 100, 1, 1], "mc_weights": w, "mc_means": w,
         "weight_norm_ratio": 1 / (1 + i)}
        for i, (r, w) in enumerate(mc_w.items())
    ]  # fmt: skip
    fixed = [{**rec, "mc_weights": -1 / 3, "weight_norm_ratio": 1.0} for rec in learned]
    figs = sweep_figures.sweep_figures({"learned W": learned, "fixed W": fixed})
    assert [f.layout.title.text for f in figs.values()] == ["UFM: learned W", "UFM: fixed W"]
    band = [(s.x0, s.x1) for s in figs["learned W"].layout.shapes if s.type == "rect"]
    assert band == [(100.0, 300.0)]  # last ratio below MC_W = 1, first at it
    assert [s for s in figs["fixed W"].layout.shapes if s.type == "rect"] == []
    assert [t.name for t in figs["learned W"].data][-1] == "norm ratio"
    assert "norm ratio" not in [t.name for t in figs["fixed W"].data]  # all 1: no panel


def test_side_by_side_puts_cosine_maps_under_the_scenes_without_overlap():
    rng = np.random.default_rng(2)
    figures = {
        name: plots.simplex_figure(rng.normal(size=(6, 6)), rng.normal(size=(6, 6)), title=name)
        for name in ("CE", "AllNC")
    }
    fig = plots.side_by_side(figures, title="two runs")
    scenes = [fig.layout.scene.domain.x, fig.layout.scene2.domain.x]
    assert scenes[0][1] <= scenes[1][0], "the scenes sit side by side"
    assert fig.layout.scene.domain.y[0] > fig.layout.yaxis.domain[1], "maps below the scenes"
    maps = [t for t in fig.data if isinstance(t, go.Heatmap)]
    assert len(maps) == 2 and [m.showscale for m in maps] == [False, True]
    assert [a.text for a in fig.layout.annotations][:2] == ["CE", "AllNC"]
    assert fig.layout.title.text.startswith("two runs<br><sup>")
    assert "the exact cosines under each" in fig.layout.title.text


def test_slider_labels_are_short_and_kept_inside_the_figure():
    etf = geometry.simplex_etf(4, 3)
    figures = {e: plots.simplex_figure(etf * e, etf, title=f"epoch {e}") for e in (5, 10, 15)}
    fig = plots.slider_figure(figures, label="epoch ")
    (slider,) = fig.layout.sliders
    assert [s.label for s in slider.steps] == ["5", "10", "15"]
    assert slider.currentvalue.prefix == "epoch "
    assert slider.x > 0 and slider.x + slider.len < 1  # the first label is not cut


@pytest.mark.parametrize("k", [2, 3, 10])
def test_cosine_colour_scale_rises_from_minus_one_to_one(k):
    scale = drawing.cosine_colorscale(k)
    positions = [pos for pos, _ in scale]
    assert positions[0] == 0 and positions[-1] == pytest.approx(1)
    assert positions == sorted(set(positions))


# ----------------------------------------- layout facts a reader relies on at a laptop's width


def panel_px(fig: go.Figure, domain) -> float:
    """Pixels of a vertical layout ``domain`` of ``fig`` drawn at its layout height (plotly's
    default margins where none are set; the browser tests measure the drawn figure)."""
    top = 100 if fig.layout.margin.t is None else fig.layout.margin.t
    bottom = 80 if fig.layout.margin.b is None else fig.layout.margin.b
    return (fig.layout.height - top - bottom) * (domain[1] - domain[0])


def _views(n: int, k: int = 6, **options) -> dict[str, go.Figure]:
    """``n`` simplex figures of random K-class geometry (K > 4: with cosine maps), the last half
    of the classes minority."""
    rng = np.random.default_rng(3)
    return {
        f"run {i}": plots.simplex_figure(
            rng.normal(size=(k, 8)),
            rng.normal(size=(k, 8)),
            minority=range(k // 2, k),
            title=f"run {i}",
            **options,
        )
        for i in range(n)
    }


def _axes_of(fig: go.Figure, trace) -> tuple:
    return fig.layout["xaxis" + trace.xaxis[1:]], fig.layout["yaxis" + trace.yaxis[1:]]


def test_four_views_make_a_two_by_two_grid_of_tall_scenes_each_above_its_map():
    fig = plots.side_by_side(_views(4))
    scenes = [fig.layout[f"scene{i if i > 1 else ''}"] for i in range(1, 5)]
    assert len({tuple(s.domain.x) for s in scenes}) == 2, "two columns"
    assert len({tuple(s.domain.y) for s in scenes}) == 2, "two rows"
    for scene in scenes:
        assert scene.domain.x[1] - scene.domain.x[0] >= 0.4  # half the width, not a quarter
        assert panel_px(fig, scene.domain.y) >= 400
    maps = [t for t in fig.data if isinstance(t, go.Heatmap)]
    assert len(maps) == 4
    for scene, heat in zip(scenes, maps, strict=True):
        xaxis, yaxis = _axes_of(fig, heat)
        assert tuple(xaxis.domain) == tuple(scene.domain.x), "in its scene's column"
        assert yaxis.domain[1] < scene.domain.y[0], "under its scene"
        assert panel_px(fig, yaxis.domain) >= 300
    three = plots.side_by_side(_views(3)).layout  # up to three views: one row
    assert len({tuple(three[f"scene{i if i > 1 else ''}"].domain.y) for i in (1, 2, 3)}) == 1


@pytest.mark.parametrize("n", [1, 3, 4])
def test_every_cosine_map_labels_each_row_and_column_with_its_class(n):
    fig = plots.side_by_side(_views(n))
    maps = [t for t in fig.data if isinstance(t, go.Heatmap)]
    assert len(maps) == n
    for heat in maps:
        for axis in _axes_of(fig, heat):
            assert axis.showticklabels is not False and axis.title.text
            assert list(axis.tickvals) == list(heat.x)
            plain = [t.removeprefix("<b>").removesuffix("</b>") for t in axis.ticktext]
            assert plain == [str(c) for c in range(6)]
            assert [t.startswith("<b>") for t in axis.ticktext] == [c >= 3 for c in range(6)]
    alone = plots.simplex_figure(*(np.random.default_rng(0).normal(size=(2, 6, 8))))
    (heat,) = [t for t in alone.data if isinstance(t, go.Heatmap)]
    for axis in _axes_of(alone, heat):
        assert list(axis.tickvals) == list(heat.x) and len(axis.ticktext) == 6


def test_normalised_views_scale_each_set_alike_and_the_etf_reaches_past_the_arrows():
    rng = np.random.default_rng(4)
    means, weight = 30 * rng.normal(size=(4, 3)), 0.1 * rng.normal(size=(4, 3))
    fig = plots.simplex_figure(means, weight, normalise=True)  # K = 4 in 3D: an exact view
    m, w = arrow_tips(fig, "mean"), arrow_tips(fig, "classifier")
    assert np.linalg.norm(m, axis=1).mean() == pytest.approx(1.0)
    assert np.linalg.norm(w, axis=1).mean() == pytest.approx(1.0)
    centred = torch.tensor(means - means.mean(axis=0))
    np.testing.assert_allclose(
        geometry.cosine_matrix(torch.tensor(m)).numpy(),
        geometry.cosine_matrix(centred).numpy(),
        atol=1e-9,
    )  # angles kept
    ref = next(t for t in fig.data if t.name == "ideal simplex ETF")
    ends = np.array([[x, y, z] for x, y, z in zip(ref.x, ref.y, ref.z, strict=True)][1::3])
    longest = max(np.linalg.norm(m, axis=1).max(), np.linalg.norm(w, axis=1).max())
    np.testing.assert_allclose(np.linalg.norm(ends, axis=1), longest)
    assert ref.line.dash == "dash" and ref.line.width >= drawing.MAJORITY_WIDTH
    assert "average length 1" in fig.layout.title.text and fig.layout.meta["normalised"]
    plain = plots.simplex_figure(means, weight)  # the default keeps the true lengths
    assert np.linalg.norm(arrow_tips(plain, "mean"), axis=1).mean() > 10


def test_etf_value_and_collapse_band_are_named_in_the_legend_not_written_on_the_panels():
    history = [
        {"step": s, "mc_weights": -1 / 3, "mc_means": -0.3, "num_classes": 4} for s in (0, 1)
    ]
    ratios, mc = [1, 10, 100, 1000], [-1 / 3, 0.2, 1.0, 1.0]
    for fig in (
        plots.metric_curves(history),
        sweep(ratios, mc, mc, num_classes=4, collapse=(10, 100)),
    ):
        texts = [a.text for a in fig.layout.annotations]
        written = [t for t in texts if "ETF value" in t or "between IR" in t]
        assert not written, "a label on a panel covers the curves running through it"
        named = [s.name for s in fig.layout.shapes if s.showlegend]
        assert named[0] == "ETF value −1/(K−1) = −0.333"
        etf = [s for s in fig.layout.shapes if s.type == "line"]
        assert etf and all(s.line.dash == "dot" for s in etf)
    assert named[1] == "complete collapse (MC_W = 1) between IR 10 and 100"


def test_sweep_panels_are_as_tall_in_a_one_panel_figure_as_in_a_two_panel_one():
    ratios, mc = [1, 10, 100], [-0.3, 0.1, 0.9]
    one = sweep(ratios, mc, num_classes=4)
    two = sweep(ratios, mc, mc, [1.0, 0.7, 0.4], num_classes=4)
    heights = [panel_px(one, one.layout.yaxis.domain)]
    heights += [panel_px(two, axis.domain) for axis in (two.layout.yaxis, two.layout.yaxis2)]
    assert min(heights) >= 220, heights  # no squat panel
    assert max(heights) <= 1.25 * min(heights), heights
