"""Sphinx extension: plotly figures drawn by the site's own plotly.js.

The build copies plotly's bundled ``plotly.min.js`` into ``_static`` and loads it in the head
of every page that holds a figure, so figure HTML made by :func:`plotly_html` (no plotly.js
inside, no require.js) draws offline. ``.. plotly-figure:: module:function`` puts the figure
that ``function()`` returns into a page.

Each figure's sliders apply their step at once (:data:`SLIDER_SYNC_JS`): plotly.js moves a
slider at once but runs its step (the traces shown, the title) only on the next animation frame,
which on a busy machine drawing WebGL in software comes late, so the page would show one step on
the slider and another in the figure.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

#: Run after each figure is drawn (``{plot_id}`` is its div). plotly.js sets a slider's new
#: ``active`` step synchronously (and emits ``plotly_sliderchange``) but calls the step's method
#: (``update``: which traces are visible, the title, the 3D axes) in a ``requestAnimationFrame``
#: callback. Here the step runs in the same event as the move, so the figure always shows the
#: step its slider shows; ``execute = false`` on that (already superseded) step object stops
#: plotly's deferred call from drawing it a second time.
SLIDER_SYNC_JS = """(function (gd) {
    if (!gd || !gd.on) { return; }
    gd.on('plotly_sliderchange', function (event) {
        var step = event.step;
        if (!event.interaction || !step || !step.execute) { return; }
        if (['restyle', 'relayout', 'update'].indexOf(step.method) < 0) { return; }
        step.execute = false;
        Plotly[step.method].apply(Plotly, [gd].concat(step.args || []));
    });
})(document.getElementById('{plot_id}'));"""


def plotly_html(figure: Any) -> str:
    """HTML that draws ``figure`` (a go.Figure or its dict) with the page's ``Plotly`` global,
    its sliders applying each step as they move (:data:`SLIDER_SYNC_JS`)."""
    import plotly.io as pio

    return pio.to_html(
        figure,
        include_plotlyjs=False,
        include_mathjax=False,
        full_html=False,
        default_width="100%",
        config={"responsive": True},
        validate=False,
        post_script=SLIDER_SYNC_JS,
    )


class PlotlyFigure(SphinxDirective):
    """``.. plotly-figure:: module:function``: the figure ``function()`` returns, built now."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        module_name, _, function_name = self.arguments[0].partition(":")
        try:
            figure = getattr(importlib.import_module(module_name), function_name)()
        except Exception as error:  # a warning (a failed build under -W), not a crash
            raise self.error(f"plotly-figure {self.arguments[0]} failed: {error!r}") from error
        return [nodes.raw("", plotly_html(figure), format="html")]


def copy_plotly_js(app: Sphinx, exception: Exception | None) -> None:
    """Serve plotly's bundled ``plotly.min.js`` from the site's ``_static``."""
    if exception is not None or app.builder.format != "html":
        return
    import plotly

    bundled = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    shutil.copy2(bundled, Path(app.outdir) / "_static" / "plotly.min.js")


def load_plotly_js(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Load ``plotly.min.js`` (synchronously, in the head) on pages that draw plotly figures."""
    if "Plotly.newPlot" in context.get("body", ""):
        app.add_js_file("plotly.min.js")  # during html-page-context: for this page only


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("plotly-figure", PlotlyFigure)
    app.connect("html-page-context", load_plotly_js)
    app.connect("build-finished", copy_plotly_js)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
