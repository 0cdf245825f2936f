"""What notebooks 01 and 02 measure with the unconstrained-features model, as library calls.

- :func:`norm_ratios_by_penalty`: the balanced UFM's class-mean to classifier-row length ratio
  under three feature penalties, measured with ``ufm.simulate`` beside its closed form: the
  "sqrt(K) times longer" of notebook 01 belongs to one normalisation of the penalty, not to the
  model.
- :func:`centring_views`, :func:`centring_text` and :func:`centring_toggle`: MC_H, NC3 and the
  ETF distance of the means under both global means (``metrics``' ``global_mean`` option), as
  text or as a Dropdown that shows one convention at a time.
- :func:`metric_table`: NC metrics of several runs side by side, as text.
- :func:`raw_and_centred`: a UFM run's minority means raw and centred (``squeeze``), with each
  minority mean's cosine to its own classifier row and the lengths.
- :func:`penalty_comparison`: the same imbalance and weight decay under the per-class and the
  per-sample feature penalty.
- :func:`seli_convergence`: how fast a ``ufm.seli_sweep`` approaches SELI (drops and log-log
  slopes of its Gram distances).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ._checks import ArrayLike, as_counts, as_float64, check_num_classes, check_scalar
from .feedback import widgets_available
from .fmt import fixed
from .metrics import metrics_from_class_stats
from .squeeze import minority_squeeze
from .ufm import UFMResult, balanced_norms, minority_norm_ratios, simulate

#: The feature penalties of :func:`norm_ratios_by_penalty`: (key, name, formula of R(H) with its
#: weight lambda_H / 2, ``ufm.simulate`` feature_penalty, whether lambda_H is multiplied by N).
PENALTIES = (
    (
        "class",
        "per-class mean (layer-peeled model, Fang et al. 2021)",
        "(1/K) sum_k (1/n_k) sum_{i in k} ||h_i||^2",
        "class",
        False,
    ),
    ("sample", "per-sample mean", "(1/N) sum_i ||h_i||^2", "sample", False),
    (
        "sample_sum",
        "per-sample sum (Zhu et al. 2021, Thrampoulidis et al. 2022)",
        "sum_i ||h_i||^2 = ||H||_F^2",
        "sample",
        True,
    ),
)

#: The global means of ``metrics.metrics_from_class_stats``, with how a reader names them.
CENTRINGS = {
    "balanced": "class-balanced mean (1/K) sum_k mu_k",
    "weighted": "sample-weighted mean sum_k n_k mu_k / N (Papyan et al.)",
}

#: The rows of :func:`metric_table`: (key, label).
TABLE_ROWS = (
    ("nc1", "NC1"),
    ("etf_distance_means", "ETF distance, means"),
    ("etf_distance_weights", "ETF distance, classifier"),
    ("self_duality", "self-duality gap (NC3)"),
    ("ncc_agreement", "NC4 agreement"),
    ("mc_weights", "MC_W"),
    ("mc_means", "MC_H"),
)


def norm_ratios_by_penalty(
    num_classes: int,
    samples_per_class: int,
    weight_decay: float,
    *,
    seed: int = 0,
    steps: int = 10_000,
) -> list[dict[str, Any]]:
    """Length of a class mean over that of a classifier row at the balanced UFM's optimum,
    under each feature penalty of :data:`PENALTIES`, measured and in closed form.

    All three use lambda_W = lambda_H = ``weight_decay``. The two means of the squared feature
    norms (per class, per sample) are the same penalty at balance and give sqrt(K lambda_W /
    lambda_H); the sum over samples weighs the features N times more at the same lambda_H and
    gives sqrt(lambda_W / (n lambda_H)) (Zhu et al. 2021, Theorem 3.1). The sum is simulated as
    the per-sample mean with lambda_H N, at a smaller step (0.5), which its stiffer penalty
    needs.

    Returns one dict per penalty: ``key``, ``name``, ``formula``, ``ratio`` (mean norm / row
    norm, averaged over the classes), ``closed_form``, ``etf_distance_means`` and ``converged``.
    """
    k = check_num_classes(num_classes)
    n = check_scalar("samples_per_class", samples_per_class, kind=int, low=1)
    lam = check_scalar("weight_decay", weight_decay, low=0, include_low=False)
    rows = []
    for key, name, formula, penalty, summed in PENALTIES:
        lam_h = lam * n * k if summed else lam
        run = simulate(
            [n] * k,
            weight_decay_w=lam,
            weight_decay_h=lam_h,
            feature_penalty=penalty,
            seed=seed,
            steps=steps,
            step_size=0.5 if summed else None,
        )
        final = run.final
        ratio = sum(final["mean_norms"]) / sum(final["classifier_norms"])
        a, b = balanced_norms(k, lam, lam_h)
        rows.append(
            {
                "key": key,
                "name": name,
                "formula": formula,
                "ratio": ratio,
                "closed_form": b / a if a > 0 else math.nan,
                "etf_distance_means": final["etf_distance_means"],
                "converged": run.converged,
            }
        )
    return rows


def centring_views(
    counts: ArrayLike, means: ArrayLike, weight: ArrayLike, minority: Sequence[int]
) -> dict[str, dict[str, float]]:
    """MC_H, MC_W, the self-duality gap (NC3) and the means' ETF distance under each global
    mean of :data:`CENTRINGS`: ``{"balanced": {...}, "weighted": {...}}``."""
    out = {}
    for centring in CENTRINGS:
        m = metrics_from_class_stats(
            counts, means, weight=weight, minority=list(minority), global_mean=centring
        )
        out[centring] = {
            "mc_means": m.mc_means,
            "mc_weights": m.mc_weights,
            "self_duality": m.self_duality,
            "etf_distance_means": m.etf_distance_means,
        }
    return out


def _centring_lines(views: Mapping[str, Mapping[str, float]], centring: str) -> list[str]:
    v = views[centring]
    return [
        f"centred on the {CENTRINGS[centring]}:",
        f"  MC_H {fixed(v['mc_means'], signed=True)}, self-duality gap (NC3) "
        f"{fixed(v['self_duality'])}, ETF distance of the means {fixed(v['etf_distance_means'])}"
        f"; MC_W {fixed(v['mc_weights'], signed=True)} (no centring: the same under both)",
    ]


def centring_text(views: Mapping[str, Mapping[str, float]]) -> str:
    """Both conventions of :func:`centring_views` as lines of text."""
    return "\n".join(line for c in CENTRINGS for line in _centring_lines(views, c))


def centring_toggle(
    counts: ArrayLike, means: ArrayLike, weight: ArrayLike, minority: Sequence[int]
):
    """A Dropdown choosing the global mean and the metrics it gives (ipywidgets 7 and 8), or,
    without widgets (no ipywidgets, no Jupyter kernel), both conventions printed and None."""
    views = centring_views(counts, means, weight, minority)
    if not widgets_available():
        print(centring_text(views))
        return None
    import ipywidgets as widgets

    choices = [(text, key) for key, text in CENTRINGS.items()]
    control = widgets.Dropdown(options=choices, value="balanced", description="centre on")
    shown = widgets.HTML()

    def show(_change: Any = None) -> None:
        lines = _centring_lines(views, control.value)
        shown.value = "<pre>" + html.escape("\n".join(lines)) + "</pre>"

    control.observe(show, names="value")
    show()
    return widgets.VBox([control, shown])


def metric_table(columns: Mapping[str, Mapping[str, Any]], decimals: int = 3) -> str:
    """The metrics of :data:`TABLE_ROWS` for several runs as a text table, one column per run
    (a missing or None value shows as n/a; NC1 in scientific notation)."""
    names = list(columns)
    width = max(len(label) for _, label in TABLE_ROWS) + 2
    cell = max(12, *(len(n) + 2 for n in names))
    lines = [" " * width + "".join(n.rjust(cell) for n in names)]
    for key, label in TABLE_ROWS:
        values = []
        for name in names:
            v = columns[name].get(key)
            if v is None:
                values.append("n/a")
            elif key == "nc1":
                values.append(f"{v:.2e}")
            else:
                values.append(fixed(v, decimals, signed=key.startswith("mc_")))
        lines.append(label.ljust(width) + "".join(v.rjust(cell) for v in values))
    return "\n".join(lines)


def raw_and_centred(result: UFMResult) -> dict[str, Any]:
    """A UFM run's minority means seen raw and centred (``squeeze.minority_squeeze``: ``raw``,
    ``balanced``, ``weighted``, ``normalised``, ``etf``, ``norm_ratio``, ``own_classifier``),
    plus ``own_cosines``: the cosine between each minority class's raw mean and its own
    classifier row, ``minority``, and the raw mean lengths ``mean_norms`` of every class."""
    minority = list(result.final["minority"] or [])
    means = as_float64(result.means, "means", ndim=2)
    weight = as_float64(result.weight, "weight", ndim=2)
    out = minority_squeeze(means, result.counts, minority, weight)
    own = torch.nn.functional.cosine_similarity(means[minority], weight[minority], dim=1)
    out.update(
        own_cosines=[float(c) for c in own],
        minority=minority,
        mean_norms=[float(x) for x in means.norm(dim=1)],
    )
    return out


def penalty_comparison(
    counts: ArrayLike, weight_decay: float, *, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """The UFM at the same counts and weight decay under each feature penalty ("class",
    "sample"): ``mc_weights``, ``mc_means``, ``weight_norm_ratio`` and ``mean_norm_ratio``
    (minority over majority, centred means), ``raw`` (the raw minority means' mean cosine) and
    ``converged``."""
    n = as_counts(counts)
    out = {}
    for penalty in ("class", "sample"):
        run = simulate(
            n,
            weight_decay_w=weight_decay,
            weight_decay_h=weight_decay,
            feature_penalty=penalty,
            seed=seed,
        )
        final = run.final
        w_ratio, h_ratio = minority_norm_ratios(final)
        squeeze = raw_and_centred(run)
        out[penalty] = {
            "mc_weights": final["mc_weights"],
            "mc_means": final["mc_means"],
            "weight_norm_ratio": w_ratio,
            "mean_norm_ratio": h_ratio,
            "raw": squeeze["raw"],
            "converged": run.converged,
        }
    return out


def seli_convergence(sweep: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """How a ``ufm.seli_sweep`` (weight decays decreasing) approaches SELI: for the classifier
    (``weight``) and the means (``means``), the drop of the Gram distance from each weight decay
    to the next (``*_drops``) and the log-log slope d log(distance) / d log(lambda) between them
    (``*_slopes``; a constant slope would be a power law)."""
    if len(sweep) < 2:
        raise ValueError("the sweep needs at least two weight decays")
    decays = [float(r["weight_decay"]) for r in sweep]
    out: dict[str, list[float]] = {}
    for part in ("weight", "means"):
        d = [float(r[f"{part}_distance"]) for r in sweep]
        pairs = list(zip(range(len(d) - 1), range(1, len(d)), strict=True))
        out[f"{part}_drops"] = [d[i] - d[j] for i, j in pairs]
        out[f"{part}_slopes"] = [
            math.log(d[i] / d[j]) / math.log(decays[i] / decays[j]) for i, j in pairs
        ]
    return out
