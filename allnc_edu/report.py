"""A self-contained HTML report (and its JSON of numbers) from finished runs.

``build_report(summaries, sweeps, config=...)`` turns ``experiments.run_method`` summaries
(trained with ``record_geometry=True``) and ``ufm.imbalance_sweep`` records into one HTML page:
findings written from the numbers, the results table, the 3D simplex views side by side, metric
curves over epochs and the UFM sweep figures. plotly.js is embedded once, so the page works
offline. ``report_numbers`` gives the same numbers as a JSON-friendly dict; ``write_report``
writes both files. This is what ``python -m allnc_edu demo`` produces.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
import torch
from plotly.subplots import make_subplots

from . import __version__, plots
from .experiments import key_numbers, results_table, simplex_views
from .geometry import project_to_3d

#: Display names of the ``methods.make_method`` names (other run names are shown as given).
METHOD_LABELS = {
    "ce": "CE",
    "la": "logit adjustment",
    "ldam-drw": "LDAM-DRW",
    "etf-dr": "ETF + DR",
    "allnc": "AllNC",
}

#: Published top-1 test accuracies (%, ResNet-32, imbalance ratio 100, exponential profile),
#: quoted from the papers for comparison.
REFERENCE_POINTS = (
    {"dataset": "cifar10-lt", "method": "CE", "accuracy": 70.36,
     "source": "Cao et al. 2019 (LDAM-DRW), ERM baseline: 29.64% top-1 error"},
    {"dataset": "cifar100-lt", "method": "CE", "accuracy": 38.32,
     "source": "Cao et al. 2019 (LDAM-DRW), ERM baseline: 61.68% top-1 error"},
    {"dataset": "cifar10-lt", "method": "GLMC", "accuracy": 87.75,
     "source": "Du et al. 2023 (GLMC)"},
    {"dataset": "cifar100-lt", "method": "GLMC", "accuracy": 55.88,
     "source": "Du et al. 2023 (GLMC)"},
)  # fmt: skip

#: Metrics ranked in the findings: (key, description, format, True when higher is better,
#: None when neither is: the runs are then listed from the lowest value up).
_RANKED = (
    ("accuracy", "Test accuracy", "{:.1%}", True),
    ("minority_accuracy", "Minority-class test accuracy", "{:.1%}", True),
    (
        "nc1",
        "NC1 (within-class spread relative to between-class; lower = tighter)",
        "{:.3f}",
        False,
    ),
    (
        "self_duality",
        "Self-duality distance (NC3; lower = classifier rows aligned with the class means)",
        "{:.3f}",
        False,
    ),
    ("mc_weights", "MC_W (mean cosine between minority classifier rows)", "{:+.3f}", None),
    ("mc_means", "MC_H (mean cosine between centred minority class means)", "{:+.3f}", None),
)

#: Panels of :func:`curves_figure`: (history key, title, y-axis type).
_CURVE_PANELS = (
    ("test_acc", "test accuracy", "linear"),
    ("minority_accuracy", "minority-class test accuracy", "linear"),
    ("nc1", "NC1", "log"),
    ("self_duality", "self-duality (NC3)", "linear"),
    ("mc_weights", "MC_W (minority classifiers)", "linear"),
    ("mc_means", "MC_H (minority class means)", "linear"),
)

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1400px; margin: 1.5em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f3f3f3; } caption { text-align: left; font-style: italic; padding: 0.3em 0; }
.note { color: #555; font-size: 0.92em; }
"""


def label(name: str) -> str:
    """The display name of a run: ``METHOD_LABELS`` for method names, else the name itself."""
    return METHOD_LABELS.get(name, name)


def findings(
    summaries: Mapping[str, Mapping[str, Any]],
    sweeps: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> list[str]:
    """Sentences that state what these runs measured, each with its numbers.

    One sentence per ``_RANKED`` metric ordering the runs, comparisons of the classifier-only fix
    ("etf-dr") with "allnc" and of "allnc" with "ce" when those runs are present, and for each
    UFM sweep how MC_W and MC_H moved from the smallest to the largest imbalance ratio. Nothing
    is asserted that the numbers do not show: the wording (higher/lower, rises/falls) follows
    them.
    """
    if not summaries:
        raise ValueError("summaries is empty: no run to report on")
    k = _num_classes(summaries)
    sentences = [_ranking(summaries, *spec) for spec in _RANKED]
    sentences = [s for s in sentences if s]
    etf_value = -1 / (k - 1)
    if "etf-dr" in summaries and "allnc" in summaries:
        mc_w = summaries["etf-dr"]["mc_weights"]
        at_etf = "stays at the ETF value" if abs(mc_w - etf_value) < 0.01 else "is not at the ETF"
        sentences.append(
            f"With the classifier fixed, MC_W under {label('etf-dr')} is {mc_w:+.3f}, {at_etf} "
            f"({etf_value:+.3f}). "
            + _versus(summaries, "mc_means", "MC_H", "{:+.3f}", "etf-dr", "allnc")
            + "; "
            + _versus(summaries, "self_duality", "self-duality", "{:.3f}", "etf-dr", "allnc")
            + "."
        )
    if "allnc" in summaries and "ce" in summaries:
        sentences.append(
            _versus(
                summaries, "minority_accuracy", "Minority-class accuracy", "{:.1%}", "allnc", "ce"
            )
            + "; "
            + _versus(summaries, "mc_means", "MC_H", "{:+.3f}", "allnc", "ce")
            + "."
        )
    for name, records in (sweeps or {}).items():
        sentences.append(_sweep_sentence(name, records))
    first = next(iter(summaries.values()))
    counts = first.get("counts")
    if counts:
        sentences.append(
            f"These are single runs (one seed) on {len(counts)} classes with "
            f"{max(counts)} to {min(counts)} training samples each: differences of a few "
            "points may be noise."
        )
    return sentences


def curves_figure(summaries: Mapping[str, Mapping[str, Any]]) -> go.Figure:
    """Test accuracy, minority accuracy, NC1, self-duality, MC_W and MC_H over epochs, one line
    per run (same colour in every panel), the MC panels marking the ETF value -1/(K-1)."""
    if not summaries:
        raise ValueError("summaries is empty: nothing to plot")
    fig = make_subplots(rows=2, cols=3, subplot_titles=[p[1] for p in _CURVE_PANELS])
    for i, (name, s) in enumerate(summaries.items()):
        colour = plots.PALETTE[i % len(plots.PALETTE)]
        for j, (key, _, _) in enumerate(_CURVE_PANELS):
            pts = [(r["epoch"], r[key]) for r in s["history"] if r.get(key) is not None]
            fig.add_trace(
                go.Scatter(
                    x=[p[0] for p in pts],
                    y=[p[1] for p in pts],
                    mode="lines+markers",
                    marker={"size": 3},
                    line={"color": colour},
                    name=label(name),
                    legendgroup=name,
                    showlegend=j == 0,
                ),
                row=j // 3 + 1,
                col=j % 3 + 1,
            )
    for j, (_, _, yscale) in enumerate(_CURVE_PANELS):
        fig.update_yaxes(type=yscale, row=j // 3 + 1, col=j % 3 + 1)
    etf_value = -1 / (_num_classes(summaries) - 1)
    for col in (2, 3):
        fig.add_hline(y=etf_value, line={"color": plots.ETF_COLOUR, "dash": "dot"}, row=2, col=col)
    fig.update_xaxes(title_text="epoch", row=2)
    fig.update_layout(height=620, title="Metrics over training (NC metrics on the training set)")
    return fig


def sweep_figures(sweeps: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, go.Figure]:
    """One ``plots.sweep_records_figure`` per ``ufm.imbalance_sweep`` result."""
    return {
        name: plots.sweep_records_figure(records, title=f"UFM: {name}")
        for name, records in sweeps.items()
    }


def reference_table(
    summaries: Mapping[str, Mapping[str, Any]], dataset: str, imbalance_ratio: float
) -> str:
    """An HTML table of our test accuracies ("measured in this run") above the
    ``REFERENCE_POINTS`` ("quoted from the papers"), with a caption saying whether the two are
    comparable (same CIFAR-LT data set at imbalance ratio 100) or not."""
    if not summaries:
        raise ValueError("summaries is empty: no run to compare")
    quoted = [p for p in REFERENCE_POINTS if p["dataset"] == dataset] or list(REFERENCE_POINTS)
    comparable = any(p["dataset"] == dataset for p in REFERENCE_POINTS) and imbalance_ratio == 100
    caption = (
        f"Ours ({dataset}, imbalance ratio {imbalance_ratio:g}) beside published numbers for the "
        "same setting; recipes (epochs, augmentation, backbone width) may differ."
        if comparable
        else f"Ours were measured on {dataset} at imbalance ratio {imbalance_ratio:g}; the quoted "
        "numbers are for CIFAR-LT at imbalance ratio 100, a different setting: NOT comparable, "
        "shown only to say where the real benchmark stands."
    )
    rows = [
        ("measured in this run", label(name), dataset, f"{100 * s['accuracy']:.2f}", "")
        for name, s in summaries.items()
    ]
    rows += [
        (
            "quoted from the papers",
            p["method"],
            p["dataset"],
            f"{p['accuracy']:g}",
            p["source"],
        )
        for p in quoted
    ]
    head = "".join(
        f"<th>{h}</th>" for h in ("whose number", "method", "data set", "test acc (%)", "source")
    )
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return (
        f"<table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def report_numbers(
    summaries: Mapping[str, Mapping[str, Any]],
    sweeps: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    *,
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The report's numbers, JSON-friendly: {"config", "methods": {name: key numbers, counts,
    minority, history without geometry}, "ufm_sweeps": {name: records}, "findings"}."""
    methods = key_numbers(summaries)
    for name, s in summaries.items():
        methods[name]["counts"] = list(s["counts"])
        methods[name]["minority"] = list(s["minority"])
        methods[name]["history"] = [
            {k: v for k, v in r.items() if k != "geometry"} for r in s["history"]
        ]
    return {
        "config": dict(config or {}),
        "methods": methods,
        "ufm_sweeps": {
            name: [dict(r) for r in records] for name, records in (sweeps or {}).items()
        },
        "findings": findings(summaries, sweeps),
    }


def build_report(
    summaries: Mapping[str, Mapping[str, Any]],
    sweeps: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    title: str = "Neural collapse under class imbalance: CE, ETF + DR and AllNC",
) -> str:
    """The whole report as one HTML document (plotly.js embedded once; no network needed).

    ``summaries``: ``{run name: experiments.run_method summary}``, trained with
    ``record_geometry=True``; ``sweeps``: ``{title: ufm.imbalance_sweep records}``;
    ``config``: settings shown at the top (dataset, epochs, wall time, ...).
    """
    if not summaries:
        raise ValueError("summaries is empty: no run to report on")
    labelled = {label(name): s for name, s in summaries.items()}
    figures: list[go.Figure] = []

    def embed(fig: go.Figure) -> str:
        figures.append(fig)
        return pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs=len(figures) == 1,
            config={"responsive": True, "displaylogo": False},
        )

    k = _num_classes(summaries)
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        _config_table(config or {}),
        "<h2>What this run shows</h2>",
        "<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in findings(summaries, sweeps)),
        "</ul>",
        "<h2>Results</h2>",
        results_table(
            labelled,
            caption="Test accuracy (overall, minority classes, shot groups) and neural-collapse "
            "metrics of the training set at the last epoch. ETF value of MC_W and MC_H: "
            f"{-1 / (k - 1):+.3f}; 1 means the minority vectors coincide.",
        ),
        "<h2>Class means and classifiers in 3D</h2>",
        "<p class='note'>Arrows ending in a circle are centred class means, arrows ending in a "
        "diamond classifier rows; minority classes are dashed with open markers; grey lines are "
        "the simplex ETF nearest to the classifier. Drag to rotate. "
        + html.escape(_projection_note(summaries))
        + "</p>",
        embed(simplex_views(labelled)),
        "<h2>Metrics over training</h2>",
        embed(curves_figure(summaries)),
    ]
    if sweeps:
        parts += [
            "<h2>The unconstrained-features model: minority collapse against imbalance</h2>",
            "<p class='note'>Features are free parameters (the UFM), trained to convergence at "
            "each imbalance ratio of a step profile; the lower panel is the mean minority "
            "classifier norm over the mean majority one.</p>",
        ]
        parts += [embed(fig) for fig in sweep_figures(sweeps).values()]
    parts.append(
        f"<p class='note'>Generated by allnc_edu {html.escape(__version__)}. Minority classes: "
        "the K - K//2 classes with the fewest training samples "
        "(<code>data.minority_classes</code>).</p>"
    )
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def write_report(
    out_dir: str | Path,
    summaries: Mapping[str, Mapping[str, Any]],
    sweeps: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    *,
    config: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``out_dir/report.html`` (:func:`build_report`) and ``out_dir/report.json``
    (:func:`report_numbers`); creates ``out_dir``. Returns the two paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out / "report.html", out / "report.json"
    html_path.write_text(build_report(summaries, sweeps, config=config), encoding="utf-8")
    numbers = report_numbers(summaries, sweeps, config=config)
    json_path.write_text(json.dumps(numbers, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return html_path, json_path


def _num_classes(summaries: Mapping[str, Mapping[str, Any]]) -> int:
    ks = {int(s["num_classes"]) for s in summaries.values()}
    if len(ks) != 1:
        raise ValueError(f"the runs must share one number of classes, got {sorted(ks)}")
    return ks.pop()


def _ranking(
    summaries: Mapping[str, Mapping[str, Any]],
    key: str,
    description: str,
    fmt: str,
    higher_better: bool | None,
) -> str | None:
    values = [
        (name, s[key])
        for name, s in summaries.items()
        if s.get(key) is not None and math.isfinite(s[key])
    ]
    if not values:
        return None
    values.sort(key=lambda nv: -nv[1] if higher_better else nv[1])
    listed = ", ".join(f"{label(n)} {fmt.format(v)}" for n, v in values)
    if len(values) == 1:
        return f"{description}: {listed}."
    if higher_better is None:
        return f"{description}, from lowest (least squeezed) to highest: {listed}."
    return f"{description}, from best to worst: {listed}."


def _versus(
    summaries: Mapping[str, Mapping[str, Any]], key: str, what: str, fmt: str, a: str, b: str
) -> str:
    """ "<what> under <a> is <value>, higher than / lower than / the same as <value> under <b>"."""
    va, vb = summaries[a][key], summaries[b][key]
    if fmt.format(va) == fmt.format(vb):
        relation = "the same as"
    elif va > vb:
        relation = "higher than"
    else:
        relation = "lower than"
    return (
        f"{what} under {label(a)} is {fmt.format(va)}, {relation} {fmt.format(vb)} under {label(b)}"
    )


def _sweep_sentence(name: str, records: Sequence[Mapping[str, Any]]) -> str:
    if not records:
        raise ValueError(f"sweep {name!r} has no records")
    lo, hi = records[0], records[-1]

    def move(key: str, name: str) -> str:
        a, b = lo[key], hi[key]
        if abs(b - a) < 5e-4:
            return f"{name} stays at {a:+.3f}"
        return f"{name} {'rises' if b > a else 'falls'} from {a:+.3f} to {b:+.3f}"

    return (
        f"UFM, {name} ({len(lo['counts'])} classes): from imbalance ratio {lo['ratio']:g} to "
        f"{hi['ratio']:g}, {move('mc_weights', 'MC_W')} and {move('mc_means', 'MC_H')}."
    )


def _projection_note(summaries: Mapping[str, Mapping[str, Any]]) -> str:
    notes = []
    for name, s in summaries.items():
        g = s.get("geometry")
        if g is None:
            raise ValueError(f"run {name!r} has no geometry: train it with record_geometry=True")
        means = torch.as_tensor(g["class_means"], dtype=torch.float64)
        proj = project_to_3d(means - means.mean(dim=0), g["classifier"])
        notes.append(f"{label(name)}: {proj.captured:.0%}")
    return (
        "With more than 4 classes the view is the best 3D projection, not exact; share of the "
        "squared length it keeps: " + ", ".join(notes) + "."
        if _num_classes(summaries) > 4
        else "With at most 4 classes the view is exact."
    )


def _config_table(config: Mapping[str, Any]) -> str:
    if not config:
        return ""
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
        f"<td>{html.escape(_show(v))}</td></tr>"
        for k, v in config.items()
    )
    return f"<table><caption>Settings of this run</caption>{rows}</table>"


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(_show(v) for v in value)
    return str(value)
