"""ipywidgets dashboards built on :mod:`allnc_edu.plots` and :mod:`allnc_edu.ufm`.

Two rendering back ends, because plotly's ``FigureWidget`` does not render on every front end
(it needs anywidget with plotly >= 6, and Colab lacks a widget manager for it):

- ``"static"`` (the default): a plain ``go.Figure`` re-rendered into an ``ipywidgets.Output`` on
  each change. A saved notebook keeps the last figure, which any viewer re-renders without a
  kernel, and stays small.
- ``"figurewidget"``: one ``go.FigureWidget`` whose traces are updated in place (smoother, keeps
  the camera), but a saved notebook stores plotly.js inside every such widget (about 5 MB each).

``backend=None`` reads the environment variable ``ALLNC_EDU_WIDGET_BACKEND`` ("figurewidget" or
"static") and otherwise uses "static". Only APIs present in both ipywidgets 7.7 and 8 are used
(FloatLogSlider, IntSlider, Dropdown, HTML, Output, VBox/HBox, ``observe(names="value")``,
``continuous_update``).

The figure goes into the ``Output`` by setting its ``outputs`` state from the kernel, never by
capturing ``display()`` in ``with output:``. A captured display is stored by the *front end*,
which sends the widget's new state back to the kernel; a headless client (nbclient, so papermill,
the tests and the docs build) does that on the shell channel while it waits there for the
cell's reply, and jupyter_client sends it through a blocking copy of the asyncio socket, which
can swallow the wake-up of a reply that has just arrived: the cell then "finishes" only when the
client's cell timeout fires (never, without one), the kernel idle all along (issue 21). Setting
``outputs`` sends one message, kernel to front end, and needs no answer.
"""

from __future__ import annotations

import html
import os
import time

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from . import plots, ufm
from ._checks import check_choice, check_scalar
from .fmt import fixed, plural

BACKENDS = ("figurewidget", "static")
ENV_BACKEND = "ALLNC_EDU_WIDGET_BACKEND"
#: The explorer's unconstrained-features runs, each a pair of what the menu shows and its key.
#: Not training methods (``methods``), but ``ufm.simulate``'s learned classifier, fixed ETF
#: classifier and CE with the P2P term.
UFM_RUNS = (("CE", "ce"), ("fixed ETF classifier", "etf"), ("CE + P2P", "p2p"))
WEIGHT_DECAY_RANGE = (1e-4, 1e-1)  # the weight-decay slider's range (lambda_W = lambda_H)


def resolve_backend(backend: str | None = None) -> str:
    """The back end to use: the argument, else $ALLNC_EDU_WIDGET_BACKEND, else "static"."""
    choice = backend or os.environ.get(ENV_BACKEND) or None
    if choice is not None:
        if choice not in BACKENDS:
            source = "backend" if backend else f"${ENV_BACKEND}"
            raise ValueError(f"{source} must be one of {BACKENDS}, got {choice!r}")
        return choice
    return "static"


class MinorityCollapseExplorer:
    """Sliders over the unconstrained-features model: watch minority collapse happen.

    The first ``K - m`` classes get ``n_max`` samples, the last ``m`` (the minority) get
    ``max(1, round(n_max / IR))``; the default ``n_max`` is large enough that the ratio the
    model sees, n_max / n_min, stays within 1% of the slider's value up to IR 200. Every change
    re-runs :func:`ufm.simulate` (well under a second for CE and the fixed ETF; P2P is slower)
    and redraws the simplex and the metrics table.

    Starting values outside a slider's range raise a ValueError naming the range (a slider
    would silently clamp them).

    Attributes:
        imbalance_ratio: FloatLogSlider, 1 to 1000. num_minority: IntSlider, 2 to K-1 (m).
        weight_decay: FloatLogSlider for lambda_W = lambda_H, 1e-4 to 0.1. method: Dropdown of
            "ce" (plain cross-entropy), "etf" (fixed ETF classifier), "p2p" (CE + P2P).
        figure: the FigureWidget (updated in place) or the latest plain go.Figure (static).
        output: the Output the static back end renders into (None for "figurewidget").
        table: HTML metrics table. result: the latest ``ufm.UFMResult``.
        widget: the VBox to display (the explorer itself also displays as it).
    """

    def __init__(
        self,
        num_classes: int = 4,
        n_max: int = 10_000,
        *,
        backend: str | None = None,
        imbalance_ratio: float = 100.0,
        num_minority: int | None = None,
        weight_decay: float = ufm.DEFAULT_WEIGHT_DECAY,
        method: str = "ce",
        steps: int = ufm.DEFAULT_STEPS,
        seed: int = 0,
    ) -> None:
        # Values outside the sliders' ranges are refused, never clamped by the slider.
        k = check_scalar("num_classes", num_classes, kind=int, low=3)
        n_max = check_scalar("n_max", n_max, kind=int, low=1)
        check_choice("method", method, [m for _, m in UFM_RUNS])
        m = k - k // 2 if num_minority is None else num_minority
        m = check_scalar("num_minority", m, kind=int, low=2, high=k - 1)
        imbalance_ratio = check_scalar("imbalance_ratio", imbalance_ratio, low=1, high=1000)
        low, high = WEIGHT_DECAY_RANGE
        weight_decay = check_scalar("weight_decay", weight_decay, low=low, high=high)
        steps = check_scalar("steps", steps, kind=int, low=1)
        seed = check_scalar("seed", seed, kind=int)
        self.num_classes, self.n_max, self.steps, self.seed = k, n_max, steps, seed
        self.backend = resolve_backend(backend)
        common = {"continuous_update": False, "style": {"description_width": "initial"}}
        self.imbalance_ratio = widgets.FloatLogSlider(
            value=imbalance_ratio,
            base=10,
            min=0,
            max=3,
            step=0.025,
            readout_format=".0f",
            description="imbalance ratio",
            **common,
        )
        self.num_minority = widgets.IntSlider(
            value=m, min=2, max=k - 1, description="minority classes", **common
        )
        self.weight_decay = widgets.FloatLogSlider(
            value=weight_decay,
            base=10,
            min=np.log10(low),
            max=np.log10(high),
            step=0.1,
            readout_format=".1e",
            description="weight decay",
            **common,
        )
        self.method = widgets.Dropdown(options=list(UFM_RUNS), value=method, description="method")
        self.table = widgets.HTML()
        self.output = widgets.Output() if self.backend == "static" else None
        self.figure: go.Figure | None = None
        self.result: ufm.UFMResult | None = None
        for control in self.controls:
            control.observe(self._on_change, names="value")
        self.update()
        view = self.figure if self.output is None else self.output
        self.widget = widgets.VBox(
            [widgets.HBox(self.controls[:2]), widgets.HBox(self.controls[2:]), view, self.table]
        )

    @property
    def controls(self) -> list[widgets.Widget]:
        """The four input widgets, in display order."""
        return [self.imbalance_ratio, self.num_minority, self.weight_decay, self.method]

    def counts(self) -> list[int]:
        """Class counts of the current slider settings."""
        m = self.num_minority.value
        minority_n = max(1, round(self.n_max / self.imbalance_ratio.value))
        return [self.n_max] * (self.num_classes - m) + [minority_n] * m

    def ratio(self) -> float:
        """The imbalance ratio the model sees: majority / minority count (integers)."""
        counts = self.counts()
        return counts[0] / counts[-1]

    def minority(self) -> list[int]:
        """Indices of the minority classes (the last m)."""
        return list(range(self.num_classes - self.num_minority.value, self.num_classes))

    def update(self) -> None:
        """Re-run the simulation for the current settings and redraw figure and table."""
        method = self.method.value
        start = time.perf_counter()
        self.result = ufm.simulate(
            self.counts(),
            weight_decay_w=self.weight_decay.value,
            weight_decay_h=self.weight_decay.value,
            steps=self.steps,
            seed=self.seed,
            classifier="etf" if method == "etf" else "learned",
            allnc=1.0 if method == "p2p" else None,
            minority=self.minority(),
        )
        seconds = time.perf_counter() - start
        fig = plots.simplex_figure(
            self.result.means,
            self.result.weight,
            minority=self.minority(),
            title=f"{dict(map(reversed, UFM_RUNS))[method]}, imbalance ratio {self.ratio():.0f}",
            height=500,
        )
        self._show(fig)
        self.table.value = _metrics_table(self.result, seconds)

    def _show(self, fig: go.Figure) -> None:
        if self.output is not None:
            # Replace the Output's content through its synced state (one kernel -> front end
            # message), not with `with self.output: display(fig)`, which a headless front end
            # answers on the shell channel (see the module docstring).
            self.figure = fig
            self.output.outputs = (_figure_output(fig),)
            return
        if self.figure is None:
            self.figure = go.FigureWidget(fig)
            return
        with self.figure.batch_update():
            if len(self.figure.data) == len(fig.data):
                for old, new in zip(self.figure.data, fig.data, strict=True):
                    props = new.to_plotly_json()
                    props.pop("type", None)
                    old.update(props, overwrite=True)
            else:
                self.figure.data = ()
                self.figure.add_traces(fig.data)
            self.figure.update_layout(title=fig.layout.title, scene=fig.layout.scene)

    def _on_change(self, _change: dict) -> None:
        self.update()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def minority_collapse_explorer(
    num_classes: int = 4, n_max: int = 10_000, backend: str | None = None, **options
) -> MinorityCollapseExplorer:
    """Build a :class:`MinorityCollapseExplorer` (display it, or its ``.widget``, in a notebook).

    Options: imbalance_ratio (100), num_minority (K - K//2), weight_decay (5e-3), method
    ("ce", "etf" or "p2p"), steps, seed.
    """
    return MinorityCollapseExplorer(num_classes, n_max, backend=backend, **options)


def _figure_output(fig: go.Figure) -> dict:
    """``fig`` as one stored output (``display_data``) for an ``ipywidgets.Output``'s state.

    The data are the mime bundle of plotly's default renderer(s), what ``display(fig)`` would
    send; with no mime-type renderer (plain Python), plotly's own JSON mime type, which
    JupyterLab, VS Code and the docs build render.
    """
    data = fig._repr_mimebundle_()  # IPython's display protocol: the default renderers' bundle
    if not data:
        data = pio.renderers["plotly_mimetype"].to_mimebundle(fig.to_dict())
    return {"output_type": "display_data", "data": data, "metadata": {}}


def _metrics_table(result: ufm.UFMResult, seconds: float) -> str:
    """A small HTML table of the minority-collapse numbers of a UFM result."""
    final = result.final
    minority = final["minority"]
    majority = [c for c in range(final["num_classes"]) if c not in minority]
    w_norms, h_norms = np.array(final["classifier_norms"]), np.array(final["mean_norms"])
    k = final["num_classes"]
    rows = [
        ("MC_W (minority classifier cosine)", final["mc_weights"]),
        ("MC_H (minority centred-mean cosine)", final["mc_means"]),
        ("ETF value −1/(K−1)", -1.0 / (k - 1)),
        (
            "minority / majority classifier norm",
            w_norms[minority].mean() / w_norms[majority].mean(),
        ),
        ("minority / majority mean norm", h_norms[minority].mean() / h_norms[majority].mean()),
        ("ETF distance: classifiers", final["etf_distance_weights"]),
        ("ETF distance: means", final["etf_distance_means"]),
        ("self-duality (NC3)", final["self_duality"]),
        ("NC1", final["nc1"]),
    ]
    body = "".join(
        f"<tr><td>{html.escape(name)}</td><td style='text-align:right'>{fixed(value)}</td></tr>"
        for name, value in rows
    )
    counts = result.counts.tolist()
    note = (
        f"counts {counts} (imbalance ratio {counts[0] / counts[-1]:.1f}), "
        f"{plural(result.steps_run, 'step')}, {1000 * seconds:.0f} ms"
    )
    return f"<table>{body}</table><small>{html.escape(note)}</small>"
