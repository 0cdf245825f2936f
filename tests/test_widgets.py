"""The minority-collapse explorer, driven without a browser: set a slider, check the figure."""

from __future__ import annotations

import math
import re

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
    assert ir.readout_format == ".0f"  # "178", not "1.78e+2"
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
    assert f"<td style='text-align:right'>{explorer.result.final['mc_weights']:.3f}</td>" in (
        explorer.table.value
    )
    assert "imbalance ratio 200.0" in explorer.table.value  # the ratio the model sees
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
    assert nc_widgets.resolve_backend() == "static"  # re-renders from a saved notebook
    with pytest.raises(ValueError, match="backend must be one of"):
        nc_widgets.resolve_backend("bokeh")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 2}, "num_classes must be an integer >= 3, got 2"),
        ({"n_max": 0}, "n_max must be an integer >= 1"),
        ({"num_minority": 4}, r"num_minority must be an integer in \[2, 3\], got 4"),
        ({"imbalance_ratio": 5000.0}, r"imbalance_ratio must be a finite float in \[1, 1000\]"),
        ({"imbalance_ratio": math.inf}, r"imbalance_ratio .* got inf"),
        # the slider would have clamped these silently (weight_decay=0 ran with 1e-4)
        ({"weight_decay": 0}, r"weight_decay must be a finite float in \[0.0001, 0.1\], got 0"),
        ({"weight_decay": 0.5}, r"weight_decay must be a finite float in \[0.0001, 0.1\]"),
        ({"steps": 0}, "steps must be an integer >= 1"),
        ({"method": "ldam"}, "method must be one of 'ce', 'etf', 'p2p', got 'ldam'"),
    ],
)
def test_invalid_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nc_widgets.minority_collapse_explorer(**{"backend": "static", **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"num_classes": 4.5}, ValueError),
        ({"num_minority": True}, TypeError),
        ({"weight_decay": "1e-3"}, TypeError),
    ],
)
def test_settings_of_the_wrong_kind_are_refused(kwargs, error):
    with pytest.raises(error, match=f"{next(iter(kwargs))} must be"):
        nc_widgets.minority_collapse_explorer(**{"backend": "static", **kwargs})


def test_settings_at_the_slider_limits_are_kept_exactly():
    explorer = nc_widgets.minority_collapse_explorer(
        backend="static", weight_decay=1e-4, imbalance_ratio=1000, steps=50
    )
    assert explorer.weight_decay.value == pytest.approx(1e-4)
    assert explorer.result.settings["weight_decay_w"] == pytest.approx(1e-4)


def test_table_shows_three_decimals_and_tiny_values_as_zero():
    explorer = nc_widgets.minority_collapse_explorer(backend="static", imbalance_ratio=1.0)
    cells = re.findall(r"<td style='text-align:right'>([^<]*)</td>", explorer.table.value)
    assert len(cells) == 9 and all(re.fullmatch(r"-?\d+\.\d{3}", c) for c in cells), cells
    assert explorer.result.final["nc1"] < 5e-4 and cells[-1] == "0.000"  # NC1 at balance


def test_the_model_sees_the_ratio_on_the_slider():
    """Minority counts are rounded from a large n_max: IR 178 is not run as IR 200 or 250."""
    explorer = nc_widgets.minority_collapse_explorer(backend="static", imbalance_ratio=100.0)
    for _ in range(10):  # ten ArrowRight presses
        explorer.imbalance_ratio.value = 10 ** (
            np.log10(explorer.imbalance_ratio.value) + explorer.imbalance_ratio.step
        )
        assert explorer.ratio() == pytest.approx(explorer.imbalance_ratio.value, rel=0.01)
    assert explorer.imbalance_ratio.value == pytest.approx(10**2.25)


@pytest.mark.parametrize("renderer", ["", "plotly_mimetype"])
def test_the_static_figure_is_set_as_output_state_never_captured(monkeypatch, renderer):
    """Issue 21: ``with output: display(fig)`` makes a headless front end (nbclient) answer with
    the Output's new state on the shell channel, which could leave a cell's reply unread until
    papermill's timeout. The explorer sets the Output's ``outputs`` instead: no capture at all."""
    import plotly.io as pio

    def no_capture(self):
        raise AssertionError("the explorer captured display() into its Output")

    monkeypatch.setattr(widgets.Output, "__enter__", no_capture)
    monkeypatch.setattr(pio.renderers, "default", renderer)  # plain Python, then a kernel's
    explorer = nc_widgets.minority_collapse_explorer(
        num_classes=4, n_max=200, backend="static", imbalance_ratio=1.0, steps=200
    )
    explorer.imbalance_ratio.value = 1000.0
    (output,) = explorer.output.outputs  # replaced, not appended to
    assert output["output_type"] == "display_data" and output["metadata"] == {}
    shown = output["data"]["application/vnd.plotly.v1+json"]
    assert shown["layout"]["title"]["text"] == explorer.figure.layout.title.text
    assert "imbalance ratio 200" in shown["layout"]["title"]["text"]
    assert len(shown["data"]) == len(explorer.figure.data)
