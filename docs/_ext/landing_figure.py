"""The landing page's picture: minority collapse in the unconstrained-features model.

A slider over imbalance ratios (precomputed, so it moves without a kernel) of the 3D simplex
view of the classifier rows and class means, K = 4 classes of which the last two are minority.
"""

from __future__ import annotations

import plotly.graph_objects as go

from allnc_edu import plots, ufm
from allnc_edu.data import long_tail_counts
from allnc_edu.drawing import MINUS
from allnc_edu.fmt import fixed

RATIOS = (1, 10, 100, 1000)


def minority_collapse_slider(num_classes: int = 4, n_max: int = 1000) -> go.Figure:
    """The simplex at each ratio in ``RATIOS`` (cross-entropy, default weight decay)."""
    figures = {}
    for ratio in RATIOS:
        counts = long_tail_counts(n_max, num_classes, ratio, profile="step")
        run = ufm.simulate(counts)
        final = run.final
        mc_w, mc_h = (fixed(final[key], 2, signed=True) for key in ("mc_weights", "mc_means"))
        title = f"Imbalance ratio {ratio}: MC_W {mc_w}, MC_H {mc_h}".replace("-", MINUS)
        figures[f"{ratio}"] = plots.simplex_figure(
            run.means, run.weight, minority=final["minority"], title=title
        )
    return plots.slider_figure(figures, label="imbalance ratio ")
