"""The main figures as a student sees them: rendered by plotly.js in headless Chromium.

Each figure is written as HTML, opened in Chromium and screenshotted (to pytest's ``tmp_path`` and
``$ALLNC_EDU_ARTIFACTS`` when set, for a person to look at). The checks are geometric: the legend
lists every class and lies inside the figure, titles take at most two lines, slider labels are not
cut at the figure's edge; every cosine map has its classes written along both axes; no label
sits on another; the 3D views of a 2 x 2 grid are large; the panels of the sweep figures are as
tall with one panel as with two. Skipped without Debian's chromium or Playwright, except under
CI.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import plotly.graph_objects as go
import pytest
from _jupyterlab import CHROMIUM, CHROMIUM_ARGS, chromium_available, copy_artifact

from allnc_edu import geometry, plots, sweep_figures, ufm
from allnc_edu.data import long_tail_counts

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

WIDTH, HEIGHT = 1000, 900

# Where everything sits on the rendered page, in CSS pixels.
LAYOUT_JS = r"""() => {
    const box = e => { const r = e.getBoundingClientRect();
        return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
    const gd = document.querySelector('.js-plotly-plot');
    const title = gd.querySelector('.g-gtitle .gtitle');
    return {
        figure: box(gd),
        legend: gd.querySelector('.legend') ? box(gd.querySelector('.legend')) : null,
        legend_items: Array.from(gd.querySelectorAll('.legend .traces .legendtext'))
            .map(e => e.textContent),
        title_lines: title ? Math.max(1, title.querySelectorAll('tspan.line').length) : 0,
        texts: Array.from(gd.querySelectorAll('.slider-label, .step-label, .annotation-text'))
            .map(e => ({text: e.textContent, ...box(e)})),
        annotations: Array.from(gd.querySelectorAll('.annotation-text'))
            .map(e => ({text: e.textContent, ...box(e)})),
        // axis titles and tick labels: what an annotation must not cover
        axis_labels: Array.from(gd.querySelectorAll(
                '.infolayer g[class^="g-x"] text, .infolayer g[class^="g-y"] text, ' +
                '.xaxislayer-above text, .yaxislayer-above text'))
            .map(e => ({text: e.textContent, ...box(e)})).filter(b => b.right > b.left),
        // per heatmap: how many tick labels its two axes show (their class is the axis's id
        // and "tick": xtick, x2tick, ...)
        maps: gd._fullData.filter(t => t.type === 'heatmap').map(t => {
            const g = gd.querySelector('.cartesianlayer .subplot.' + t.xaxis + t.yaxis);
            return {classes: t.x.length,
                    x: g.querySelectorAll('.xaxislayer-above .' + t.xaxis + 'tick text').length,
                    y: g.querySelectorAll('.yaxislayer-above .' + t.yaxis + 'tick text').length};
        }),
        scenes: Object.keys(gd._fullLayout).filter(k => /^scene\d*$/.test(k)).map(k => {
            const d = gd._fullLayout[k].domain, size = gd._fullLayout._size;
            return {width: (d.x[1] - d.x[0]) * size.w, height: (d.y[1] - d.y[0]) * size.h};
        }),
        panels: Object.keys(gd._fullLayout).filter(k => /^yaxis\d*$/.test(k))
            .map(k => gd._fullLayout[k]._length),
        errors: window.__errors || [],
    };
}"""


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so the browser test must run")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not chromium_available():
        _skip_or_fail(f"chromium not found at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("the playwright package is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[*CHROMIUM_ARGS, "--enable-unsafe-swiftshader", "--use-angle=swiftshader"],
            headless=True,
        )
        try:
            yield browser
        finally:
            browser.close()


def _ufm(ratio: float, k: int = 4, **options: Any) -> ufm.UFMResult:
    return ufm.simulate(long_tail_counts(1000, k, ratio, profile="step"), **options)


def _simplex(run: ufm.UFMResult, title: str, **options: Any) -> go.Figure:
    return plots.simplex_figure(
        run.means, run.weight, minority=run.final["minority"], title=title, **options
    )


def _figures() -> dict[str, tuple[go.Figure, int]]:
    """name -> (figure, number of classes in its legend)."""
    ce4, ce10 = _ufm(1000), _ufm(100, k=10)
    etf10, p2p10 = _ufm(100, k=10, classifier="etf"), _ufm(100, k=10, allnc=1.0)
    balanced = ufm.simulate([50] * 4, steps=4000, seed=0)
    sweep = ufm.imbalance_sweep(
        [1, 10, 100, 150, 175, 190, 210, 250, 1000], n_max=100_000, steps=20_000
    )
    snapshots = {
        rec["step"]: plots.simplex_figure(
            np.asarray(balanced.means), np.asarray(balanced.weight), title=f"step {rec['step']}"
        )
        for rec in balanced.history[:: max(1, len(balanced.history) // 6)]
    }
    return {
        "simplex_k4": (_simplex(ce4, "Cross-entropy, IR 1000"), 4),
        "simplex_k10": (_simplex(ce10, "Cross-entropy, IR 100, 10 classes"), 10),
        "side_by_side_k10": (
            plots.side_by_side(
                {
                    "CE": _simplex(ce10, "CE"),
                    "fixed ETF": _simplex(etf10, "fixed ETF"),
                    "CE + P2P": _simplex(p2p10, "CE + P2P"),
                },
                title="The UFM at IR 100",
            ),
            10,
        ),
        "views_2x2_k10": (  # the report's four methods: two to a row, normalised, no title
            plots.side_by_side(
                {
                    name: _simplex(run, name, normalise=True)
                    for name, run in (
                        ("CE", ce10),
                        ("fixed ETF", etf10),
                        ("CE + P2P", p2p10),
                        ("CE, IR 10", _ufm(10, k=10)),
                    )
                }
            ),
            10,
        ),
        "slider": (plots.slider_figure(snapshots, label="step "), 4),
        "metric_curves": (plots.metric_curves(balanced.history), 0),
        "sweep": (
            sweep_figures.sweep_records_figure(sweep, collapse=geometry.complete_collapse(sweep)),
            0,
        ),
        "sweep_one_panel": (sweep_figures.sweep_records_figure(sweep, norms=False), 0),
    }


@pytest.fixture(scope="module")
def rendered(browser, tmp_path_factory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("figures")
    out = {}
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    page.set_default_timeout(120_000)  # a busy CI machine takes a while over plotly.js
    page.add_init_script(
        "window.__errors = []; addEventListener('error', e => __errors.push(e.message));"
    )
    for name, (fig, classes) in _figures().items():
        html = folder / f"{name}.html"
        fig.update_layout(width=WIDTH - 40)
        fig.write_html(html, include_plotlyjs="directory", full_html=True)
        page.goto(html.as_uri())
        page.wait_for_selector(".js-plotly-plot .main-svg")
        page.wait_for_timeout(1500)  # WebGL scenes draw after the SVG
        png = folder / f"{name}.png"
        page.locator(".js-plotly-plot").screenshot(path=str(png))
        copy_artifact(png)
        out[name] = {**page.evaluate(LAYOUT_JS), "classes": classes, "png": png}
    page.close()
    return out


NAMES = ["simplex_k4", "simplex_k10", "side_by_side_k10", "views_2x2_k10", "slider",
         "metric_curves", "sweep", "sweep_one_panel"]  # fmt: skip


def _overlap(a: dict, b: dict, tolerance: float = 1.0) -> bool:
    return (
        min(a["right"], b["right"]) - max(a["left"], b["left"]) > tolerance
        and min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > tolerance
    )


@pytest.mark.parametrize("name", NAMES)
def test_figure_renders_readably(rendered, name) -> None:
    r = rendered[name]
    assert not r["errors"], r["errors"]
    assert r["png"].stat().st_size > 10_000, "an empty picture"
    fig = r["figure"]
    assert r["title_lines"] <= 2, "a title wraps onto more than two lines"
    if r["legend"] is not None:
        legend = r["legend"]
        assert legend["left"] >= fig["left"] - 1 and legend["right"] <= fig["right"] + 1
        assert legend["top"] >= fig["top"] - 1 and legend["bottom"] <= fig["bottom"] + 1
    classes = [t for t in r["legend_items"] if re.match(r"class \d+", t)]
    assert len(classes) == r["classes"], r["legend_items"]
    for text in r["texts"]:  # slider labels and annotations inside the figure, not cut
        assert fig["left"] - 1 <= text["left"] and text["right"] <= fig["right"] + 1, text


@pytest.mark.parametrize("name", ["simplex_k10", "side_by_side_k10", "views_2x2_k10"])
def test_every_cosine_map_names_its_classes_along_both_axes(rendered, name) -> None:
    maps = rendered[name]["maps"]
    assert maps, "no cosine map drawn"
    for m in maps:
        assert m["x"] == m["y"] == m["classes"], m


@pytest.mark.parametrize("name", NAMES)
def test_no_heading_or_note_sits_on_an_axis_label(rendered, name) -> None:
    r = rendered[name]
    for note in r["annotations"]:
        for label in r["axis_labels"]:
            assert not _overlap(note, label), (note, label)


def test_four_3d_views_are_large_enough_to_read(rendered) -> None:
    scenes = rendered["views_2x2_k10"]["scenes"]
    assert len(scenes) == 4
    for scene in scenes:  # on a 1000 px page, two to a row: not four of about 200 px
        assert scene["width"] >= 360 and scene["height"] >= 400, scene


def test_etf_value_is_in_the_legend_and_sweep_panels_are_equally_tall(rendered) -> None:
    for name in ("metric_curves", "sweep", "sweep_one_panel"):
        r = rendered[name]
        assert not [a for a in r["annotations"] if "ETF value" in a["text"]], name
        assert any(t.startswith("ETF value") for t in r["legend_items"]), r["legend_items"]
    panels = rendered["sweep"]["panels"] + rendered["sweep_one_panel"]["panels"]
    assert len(panels) == 3 and min(panels) >= 220, panels
    assert max(panels) <= 1.25 * min(panels), panels
