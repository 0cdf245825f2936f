"""Figure builders: asserted on the figures' data, not on pictures."""

from __future__ import annotations

import re

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from allnc_edu import geometry, plots

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
        items = [(value, under_colour_key or "color" in key.lower()) for key, value in obj.items()]
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


def test_scene_has_equal_aspect_and_contains_every_arrow():
    rng = np.random.default_rng(0)
    means, weight = rng.normal(size=(4, 5)) * [1, 2, 3, 4, 5], rng.normal(size=(4, 5))
    fig = plots.simplex_figure(means, weight)
    scene = fig.layout.scene
    assert scene.aspectmode == "cube"
    ranges = [tuple(scene.xaxis.range), tuple(scene.yaxis.range), tuple(scene.zaxis.range)]
    assert ranges[0] == ranges[1] == ranges[2]
    tips = np.vstack([arrow_tips(fig, "mean"), arrow_tips(fig, "classifier")])
    assert np.abs(tips).max() <= ranges[0][1]


def test_minority_classes_are_dashed_open_and_named():
    etf = geometry.simplex_etf(4, 3)
    fig = plots.simplex_figure(etf, etf, minority=[2, 3])
    for t in fig.data:
        if t.meta:
            minority = t.meta["class"] in (2, 3)
            assert (t.line.dash == "dash") == minority
            assert t.marker.symbol.endswith("-open") == minority
            assert ("minority" in t.name) == minority
    assert any("minority" in t.name and not t.meta for t in fig.data)  # the legend key


def test_more_than_four_classes_are_a_projection_said_in_the_title():
    etf = geometry.simplex_etf(6, 5)
    fig = plots.simplex_figure(etf, etf, title="six classes")
    assert "six classes" in fig.layout.title.text
    assert "projection" in fig.layout.title.text


def test_feature_cloud_one_trace_per_class_capped():
    etf = geometry.simplex_etf(3, 3)
    labels = torch.tensor([0] * 50 + [1] * 5 + [2] * 2)
    features = etf[labels] + 0.01 * torch.randn(57, 3, dtype=torch.float64)
    fig = plots.simplex_figure(etf, features=features, labels=labels, max_points_per_class=10)
    clouds = [t for t in fig.data if t.mode == "markers"]
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
    fig = plots.minority_collapse_sweep_figure(
        [1, 10, 100], [-0.3, 0.1, 0.9], [-0.3, 0.0, 0.5], [1.0, 0.7, 0.4], num_classes=4
    )
    assert fig.layout.xaxis.type == fig.layout.xaxis2.type == "log", "every panel"
    assert [t.name for t in fig.data] == [
        "MC_W (classifiers)",
        "MC_H (centred means)",
        "norm ratio",
    ]
    with pytest.raises(ValueError, match="3 ratios"):
        plots.minority_collapse_sweep_figure([1, 10, 100], [0.0, 1.0])


def test_sweep_records_figure_reads_ufm_sweep_records():
    records = [
        {"ratio": ratio, "counts": [100, 100, 100 // ratio], "mc_weights": mc, "mc_means": mc / 2,
         "weight_norm_ratio": 1 / ratio}
        for ratio, mc in ((1, -0.5), (10, 0.2), (100, 0.8))
    ]  # fmt: skip
    fig = plots.sweep_records_figure(records, title="CE")
    assert list(fig.data[0].x) == [1, 10, 100] and list(fig.data[1].y) == [-0.25, 0.1, 0.4]
    assert list(fig.data[2].y) == [1, 0.1, 0.01] and fig.layout.title.text == "CE"
    assert fig.layout.shapes[0].y0 == pytest.approx(-0.5), "the ETF value -1/(K-1) for K = 3"
    assert [t.name for t in plots.sweep_records_figure(records, norms=False).data] == [
        "MC_W (classifiers)",
        "MC_H (centred means)",
    ]
    with pytest.raises(ValueError, match="empty"):
        plots.sweep_records_figure([])


def test_every_colour_is_hex_or_integer_rgb():
    etf = geometry.simplex_etf(10, 10)
    labels = torch.arange(10).repeat(3)
    figures = [
        plots.simplex_figure(etf, etf, features=etf[labels], labels=labels, minority=[5, 6]),
        plots.gram_heatmap(etf, etf),
        plots.metric_curves([{"step": 0, "nc1": 1.0, "mc_weights": 0.0, "num_classes": 10}]),
        plots.minority_collapse_sweep_figure([1, 10], [0, 1], [0, 1], [1, 0.5], num_classes=10),
    ]
    for fig in figures:
        spec = fig.to_dict()
        spec["layout"].pop("template", None)  # plotly's own theme, not set here
        colours = colours_in(spec)
        assert colours
        bad = [c for c in colours if not (HEX.match(c) or RGB_INT.match(c))]
        assert not bad
    assert len(set(plots.class_colours(10))) == 10


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
