"""The minority-collapse explorer, driven without a browser: set a slider, check the figure."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import pytest

from allnc_edu import widgets as nc_widgets


def classifier_tips(fig: go.Figure) -> np.ndarray:
    return np.array(
        [[t.x[-1], t.y[-1], t.z[-1]] for t in fig.data if t.meta and t.meta["kind"] == "classifier"]
    )


@pytest.fixture(params=nc_widgets.BACKENDS)
def explorer(request) -> nc_widgets.MinorityCollapseExplorer:
    return nc_widgets.minority_collapse_explorer(
        num_classes=4, n_max=200, backend=request.param, imbalance_ratio=1.0
    )


def test_sliders_are_configured_for_teaching(explorer):
    ir = explorer.imbalance_ratio
    assert isinstance(ir, widgets.FloatLogSlider)
    assert (ir.base, ir.min, ir.max) == (10, 0, 3)  # 1 to 1000
    assert isinstance(explorer.weight_decay, widgets.FloatLogSlider)
    assert (explorer.num_minority.min, explorer.num_minority.max) == (2, 3)
    assert [v for _, v in explorer.method.options] == ["ce", "etf", "p2p"]
    assert all(not c.continuous_update for c in explorer.controls[:3])
    assert isinstance(explorer.widget, widgets.VBox)


def test_raising_the_imbalance_updates_figure_and_table(explorer):
    before = classifier_tips(explorer.figure)
    cosines = before @ before.T / np.outer(*2 * [np.linalg.norm(before, axis=1)])
    assert cosines[2, 3] == pytest.approx(-1 / 3, abs=1e-4)  # balanced: an ETF
    figure = explorer.figure
    explorer.imbalance_ratio.value = 1000.0
    after = classifier_tips(explorer.figure)
    assert not np.allclose(before, after)
    assert explorer.counts() == [200, 200, 1, 1]
    assert explorer.result.final["mc_weights"] > 0.5
    assert f"{explorer.result.final['mc_weights']:.3g}" in explorer.table.value
    if explorer.backend == "figurewidget":
        assert explorer.figure is figure  # updated in place
        assert isinstance(figure, go.FigureWidget)
    else:
        assert explorer.output is not None and type(explorer.figure) is go.Figure


def test_method_and_minority_count_rerun_the_model(explorer):
    explorer.imbalance_ratio.value = 100.0
    explorer.method.value = "etf"
    assert explorer.result.final["mc_weights"] == pytest.approx(-1 / 3, abs=1e-9)
    assert "fixed ETF classifier" in explorer.figure.layout.title.text
    explorer.num_minority.value = 3
    assert explorer.minority() == [1, 2, 3]
    names = [t.name for t in explorer.figure.data if t.meta and t.meta["kind"] == "mean"]
    assert names[1].endswith("(minority)") and not names[0].endswith("(minority)")


def test_backend_resolution(monkeypatch):
    monkeypatch.setenv(nc_widgets.ENV_BACKEND, "static")
    assert nc_widgets.resolve_backend() == "static"
    assert nc_widgets.resolve_backend("figurewidget") == "figurewidget"
    monkeypatch.setenv(nc_widgets.ENV_BACKEND, "matplotlib")
    with pytest.raises(ValueError, match="ALLNC_EDU_WIDGET_BACKEND"):
        nc_widgets.resolve_backend()
    monkeypatch.delenv(nc_widgets.ENV_BACKEND)
    assert nc_widgets.resolve_backend() in nc_widgets.BACKENDS
    with pytest.raises(ValueError, match="backend must be one of"):
        nc_widgets.resolve_backend("bokeh")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 2}, "num_classes must be an integer >= 3"),
        ({"n_max": 0}, "n_max must be an integer >= 1"),
        ({"num_minority": 4}, r"num_minority must lie in \[2, 3\]"),
        ({"imbalance_ratio": 5000.0}, r"imbalance_ratio must lie in \[1, 1000\]"),
        ({"method": "ldam"}, "method must be one of"),
    ],
)
def test_invalid_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nc_widgets.minority_collapse_explorer(**{"backend": "static", **kwargs})
