"""A self-contained HTML report (and its JSON of numbers) from finished runs.

``build_report(runs, sweeps, config=...)`` turns ``records.RunResult`` runs (trained with
``record_geometry=True``, e.g. by ``experiments.compare_methods``) and ``ufm.imbalance_sweep``
records into one HTML page: findings written from the numbers, the results table
(:func:`results_table`), the 3D simplex views side by side, metric curves over epochs and the UFM
sweep figures. plotly.js is embedded once, so the page works offline. ``report_numbers`` gives
the same numbers as a JSON-friendly dict; ``write_report`` writes both files (``report.html``
and ``demo.json``). This is what ``python -m allnc_edu demo`` produces.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from . import __version__
from .drawing import MINUS
from .fmt import fixed
from .geometry import complete_collapse
from .measures import METRICS
from .methods import ALLNC, CE, ETF_DR, LA, METHODS
from .records import RunResult
from .run_figures import runs_curves_figure, simplex_views
from .sweep_figures import sweep_figures

#: The files :func:`write_report` writes: the page and its numbers.
REPORT_FILES = ("report.html", "demo.json")

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

#: The accuracies of the report's table of metrics: (name, what it measures); the metrics
#: after them are ``REPORTED_METRICS`` of ``measures.METRICS``.
ACCURACY_NOTES = (
    ("test acc", "share of the test samples classified correctly (higher is better)"),
    ("minority acc", "the same, on the minority classes only"),
)
REPORTED_METRICS = ("nc1", "mc_weights", "mc_means", "self_duality")


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1400px; margin: 1.5em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f3f3f3; } caption { text-align: left; font-style: italic; padding: 0.3em 0; }
.note { color: #555; font-size: 0.92em; }
.see { background: #f4f8fb; border-left: 4px solid #0072B2; padding: 0.4em 0.8em; }
"""


#: Columns of :func:`results_table`: (``records.RunResult`` property, header, format).
TABLE_COLUMNS = (
    ("accuracy", "test acc", "{:.1%}"),
    ("minority_accuracy", "minority acc", "{:.1%}"),
    ("many", "many", "{:.1%}"),
    ("medium", "medium", "{:.1%}"),
    ("few", "few", "{:.1%}"),
    ("nc1", "NC1", "{:.3f}"),
    ("mc_weights", "MC_W", "{:+.3f}"),
    ("mc_means", "MC_H", "{:+.3f}"),
    ("self_duality", "self-duality", "{:.3f}"),
    ("train_s", "train s", "{:.0f}"),
    ("samples_seen", "samples seen", "{:,}"),
)


def table_rows(
    runs: Mapping[Any, RunResult], columns: Sequence[tuple[str, str, str]] = TABLE_COLUMNS
) -> list[list[str]]:
    """The results table as text: a header row, then one row per run (missing values "n/a")."""
    rows = [["run", *(header for _, header, _ in columns)]]
    for name, run in runs.items():
        values = [getattr(run, key) for key, _, _ in columns]
        cells = [_cell(fmt, v) for v, (_, _, fmt) in zip(values, columns, strict=True)]
        rows.append([str(name), *cells])
    return rows


def _cell(fmt: str, value: float | None) -> str:
    """A table cell: "n/a" for a missing value, a unicode minus, and no "-0.000" or "+0.000"."""
    if value is None:
        return "n/a"
    text = fmt.format(value)
    if re.fullmatch(r"[+-]?0\.0+", text):
        text = text.lstrip("+-")
    return text.replace("-", MINUS)


def results_table(
    runs: Mapping[Any, RunResult],
    columns: Sequence[tuple[str, str, str]] = TABLE_COLUMNS,
    *,
    caption: str | None = None,
) -> str:
    """An HTML table of :func:`table_rows` (display it with ``IPython.display.HTML``)."""
    rows = table_rows(runs, columns)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in rows[0])
    body = "".join(
        "<tr><td style='text-align:left'>"
        + html.escape(r[0])
        + "</td>"
        + "".join(f"<td style='text-align:right'>{html.escape(c)}</td>" for c in r[1:])
        + "</tr>"
        for r in rows[1:]
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def label(name: str) -> str:
    """The display name of a run: its method's label (``methods.METHODS``), else the name."""
    spec = METHODS.get(name)
    return spec.label if spec is not None else name


def findings(
    summaries: Mapping[str, RunResult],
    sweeps: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> list[str]:
    """Sentences a student can check against the results table and the figures, each with its
    numbers: accuracy and minority accuracy (best first), MC_W and MC_H (lowest first, with the
    ETF value), what the classifier-only fix ("etf-dr") does to the classifier and to the means,
    "allnc" against "ce" and "la" when present, and how MC_W and MC_H move along each UFM sweep.
    Nothing is asserted that the numbers do not show: every comparison word follows them.
    """
    if not summaries:
        raise ValueError("summaries is empty: no run to report on")
    k = _num_classes(summaries)
    etf = -1 / (k - 1)
    sentences = [
        _ranking(summaries, "accuracy", "Test accuracy (column 'test acc'), best first", _pct),
        _ranking(
            summaries,
            "minority_accuracy",
            "Accuracy on the minority classes (column 'minority acc'), best first",
            _pct,
        ),
        _ranking(
            summaries,
            "mc_weights",
            f"MC_W, how close the minority classifier rows point (ETF value {_cos(etf)}, "
            "1 = one direction), lowest first",
            lambda v: _cos(v) + (" (the ETF value)" if _cos(v) == _cos(etf) else ""),
            lowest_first=True,
        ),
        _ranking(
            summaries,
            "mc_means",
            f"MC_H, the same for the centred minority class means (ETF value {_cos(etf)}), "
            "lowest first",
            lambda v: _cos(v) + (" (the ETF value)" if _cos(v) == _cos(etf) else ""),
            lowest_first=True,
        ),
    ]
    if ETF_DR.name in summaries:
        sentences.append(_classifier_fix(summaries[ETF_DR.name], etf))
    for a, b in ((ALLNC.name, CE.name), (LA.name, ALLNC.name)):
        if a in summaries and b in summaries:
            sentences.append(
                _versus(summaries, "minority_accuracy", "Minority accuracy", _pct, a, b)
                + "; "
                + _versus(summaries, "mc_means", "MC_H", _cos, a, b)
                + "."
            )
    for name, records in (sweeps or {}).items():
        sentences.append(_sweep_sentence(name, records))
    counts = next(iter(summaries.values())).counts
    if counts:
        sentences.append(
            f"These are single runs (one seed) on {len(counts)} classes with "
            f"{max(counts)} to {min(counts)} training samples each: differences of a few "
            "points may be noise."
        )
    return [s for s in sentences if s]


def _collapse(records: Sequence[Mapping[str, Any]]) -> tuple[float, float] | None:
    """``geometry.complete_collapse`` of a sweep, None when it has no MC_W (one minority class)."""
    if any(r["mc_weights"] is None for r in records):
        return None
    return complete_collapse(records)


def reference_table(
    summaries: Mapping[str, RunResult], dataset: str, imbalance_ratio: float
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
        ("measured in this run", label(name), dataset, f"{100 * s.accuracy:.2f}", "")
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
    summaries: Mapping[str, RunResult],
    sweeps: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    *,
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The report's numbers, JSON-friendly: {"config", "methods": {name: key numbers, counts,
    minority, history without geometry}, "ufm_sweeps": {name: records}, "findings"}."""
    methods = {}
    for name, s in summaries.items():
        methods[name] = s.summary()
        methods[name]["counts"] = list(s.counts)
        methods[name]["minority"] = list(s.minority)
        methods[name]["history"] = [
            {k: v for k, v in r.as_dict().items() if k != "geometry"} for r in s.history
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
    summaries: Mapping[str, RunResult],
    sweeps: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    title: str = "Neural collapse under class imbalance: what this run shows",
) -> str:
    """The whole report as one HTML document (plotly.js embedded once; no network needed).

    A short introduction (neural collapse, minority collapse, class-mean squeezing, the methods,
    each metric and its ETF value), the settings, the findings, the results table, then each
    figure under a "What you should see" line, and where to go next (notebook 01).
    ``summaries``: ``{run name: records.RunResult}``, trained with ``record_geometry=True``;
    ``sweeps``: ``{title: ufm.imbalance_sweep records}``; ``config``: settings shown at the top
    (dataset, epochs, wall time, ...).
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
    etf = _cos(-1 / (k - 1))
    minority = next(iter(summaries.values())).minority
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        _introduction(summaries, k),
        "<h2>Settings</h2>",
        _config_table(config or {}),
        "<h2>What this run shows</h2>",
        "<p class='note'>Each sentence can be checked against the results table or a figure "
        "below.</p>",
        "<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in findings(summaries, sweeps)),
        "</ul>",
        "<h2>Results</h2>",
        results_table(
            labelled,
            caption="Test accuracy (overall, minority classes, shot groups) and neural-collapse "
            f"metrics of the training set at the last epoch. ETF value of MC_W and MC_H: {etf}; "
            "1 means the minority vectors point the same way.",
        ),
        "<h2>Class means and classifiers in 3D</h2>",
        _see(
            "one view per method, two to a row. Arrows ending in a circle are centred class "
            "means, arrows ending in a diamond classifier rows; minority classes are thick with "
            "open tips. Means and classifier rows have different units, so each set is drawn "
            "scaled to an average length of 1. The grey dashed lines ending in open squares are "
            "the ideal simplex ETF, turned to lie nearest the classifier rows and drawn as long "
            "as the longest arrow: at an ETF each class's circle and diamond lie on its grey "
            "line. The closer together the thick minority arrows point, the larger MC_W "
            "(diamonds) and MC_H (circles) in the table: both are cosines, which measure "
            "directions and ignore lengths. "
            + _projection_note(k)
            + " Drag a view to turn it; click a class in the legend to hide it."
        ),
        embed(simplex_views(labelled)),
        "<h2>Metrics over training</h2>",
        _see(
            "test accuracy rising and levelling off; NC1, lower when the features of each class "
            "gather more tightly at their mean (in runs this short it need not fall steadily, and "
            "under imbalance it can end well above 0: compare the methods' last values in the "
            "table); MC_W and MC_H moving away from the dotted ETF line when the minority "
            "classes squeeze, and staying near it when a method prevents that."
        ),
        embed(runs_curves_figure(labelled)),
    ]
    if sweeps:
        parts += [
            "<h2>The unconstrained-features model: minority collapse against imbalance</h2>",
            _see(
                "with a learned classifier, MC_W and MC_H start at the ETF value at imbalance "
                "ratio 1 and climb to 1, complete minority collapse, past a threshold ratio "
                "(shaded); the minority classifier norms fall below the majority's (lower panel). "
                "With a fixed ETF classifier, MC_W stays on the ETF line while MC_H, a cosine of "
                "centred means, climbs: the raw minority means keep their directions, on their "
                "own classifier rows, and only shorten, and centring on the global mean turns "
                "that shortening into the squeeze of the centred means (notebook 02)."
            ),
        ]
        parts += [embed(fig) for fig in sweep_figures(sweeps).values()]
    parts += [
        "<h2>Next</h2>",
        "<p>Open <b>notebook 01</b> (<code>notebooks/01_neural_collapse.ipynb</code>) to see "
        "neural collapse form step by step on balanced data, then 02 (minority collapse, with "
        "sliders), 03 (class-mean squeezing in a real network), 04 (AllNC and its "
        "ablations) and 05 (the long-tailed benchmark: CIFAR-10/100-LT on a GPU, results by "
        "shot group). Start JupyterLab with <code>jupyter lab notebooks/</code>.</p>",
        f"<p class='note'>Generated by allnc_edu {html.escape(__version__)}. Minority classes: "
        f"the {len(minority)} of {k} classes with the fewest training samples (classes "
        f"{html.escape(_class_list(minority))}).</p>",
    ]
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def _see(text: str) -> str:
    """A figure's "What you should see" line."""
    return f"<p class='see'><b>What you should see:</b> {html.escape(text)}</p>"


def _introduction(summaries: Mapping[str, RunResult], k: int) -> str:
    """What neural collapse, minority collapse and class-mean squeezing are, the methods of this
    run, and what each number measures with its value at an ETF."""
    etf = _cos(-1 / (k - 1))
    methods = "".join(
        f"<li><b>{html.escape(label(name))}</b>: {html.escape(METHODS[name].note)}</li>"
        for name in summaries
        if name in METHODS
    )
    rows = [(name, what, "none") for name, what in ACCURACY_NOTES] + [
        (m.label, m.description, "none" if m.etf is None else _cos(m.etf(k)))
        for m in (METRICS[name] for name in REPORTED_METRICS)
    ]
    metrics = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(what)}</td>"
        f"<td style='text-align:right'>{html.escape(ideal)}</td></tr>"
        for name, what, ideal in rows
    )
    return (
        "<h2>In one minute</h2>"
        "<p><b>Neural collapse.</b> Trained long enough on balanced data, a classifier network "
        "ends in a very regular shape: the last-layer features of each class gather at their "
        "class mean (NC1); the K class means, centred, become a <i>simplex ETF</i>, K arrows "
        f"of equal length whose pairwise cosines all equal −1/(K−1) ({etf} for K = {k}), as "
        "far apart as K arrows can be (NC2); each classifier row points along its class mean "
        "(NC3); and the network classifies by the nearest class mean (NC4).</p>"
        "<p><b>Under class imbalance</b> this shape breaks. With few samples, the minority "
        "classes' classifier rows shrink and squeeze together: <i>minority collapse</i> (Fang "
        "et al. 2021); past a threshold imbalance they point the same way and the network "
        "cannot tell those classes apart. Their centred class means squeeze too (MC_H rises: "
        "<i>class-mean squeezing</i>), and they still do when the classifier is fixed to an "
        "ETF: the observation behind AllNC (Zhang et al. 2024), which aims to restore both. "
        "The <i>unconstrained-features model</i> (UFM), which treats the features as free "
        "parameters, shows all of this in milliseconds (last section). What the squeeze of the "
        "centred means is made of has to be measured: in the UFM with a fixed ETF classifier, "
        "the raw minority means keep their directions and only shorten, and centring on the "
        "global mean turns the shortening into the squeeze (notebook 02); notebook 03 measures "
        "it in a trained network.</p>"
        f"<p>The methods of this run:</p><ul>{methods}</ul>"
        "<table><caption>What each number measures, and its value at a perfect ETF</caption>"
        "<thead><tr><th>number</th><th>what it measures</th><th>ETF value</th></tr></thead>"
        f"<tbody>{metrics}</tbody></table>"
    )


def _class_list(classes: Sequence[int]) -> str:
    """ "5 to 9" for a run of consecutive classes, else "2, 5 and 7"."""
    classes = sorted(classes)
    if len(classes) > 2 and classes == list(range(classes[0], classes[-1] + 1)):
        return f"{classes[0]} to {classes[-1]}"
    if len(classes) == 1:
        return str(classes[0])
    return ", ".join(map(str, classes[:-1])) + f" and {classes[-1]}"


def write_report(
    out_dir: str | Path,
    summaries: Mapping[str, RunResult],
    sweeps: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    *,
    config: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``out_dir/report.html`` (:func:`build_report`) and ``out_dir/demo.json``
    (:func:`report_numbers`); creates ``out_dir``. Returns the two paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html_path, json_path = (out / name for name in REPORT_FILES)
    html_path.write_text(build_report(summaries, sweeps, config=config), encoding="utf-8")
    numbers = report_numbers(summaries, sweeps, config=config)
    json_path.write_text(json.dumps(numbers, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return html_path, json_path


def _num_classes(summaries: Mapping[str, RunResult]) -> int:
    ks = {int(s.num_classes) for s in summaries.values()}
    if len(ks) != 1:
        raise ValueError(f"the runs must share one number of classes, got {sorted(ks)}")
    return ks.pop()


def _pct(value: float) -> str:
    return f"{value:.1%}"


def _cos(value: float | None) -> str:
    """A cosine with sign and three decimals, a unicode minus, and no "-0.000"."""
    return fixed(value, 3, signed=True).replace("-", MINUS)


def _ranking(
    summaries: Mapping[str, RunResult],
    key: str,
    description: str,
    show: Callable[[float], str],
    *,
    lowest_first: bool = False,
) -> str | None:
    values = [
        (name, getattr(s, key))
        for name, s in summaries.items()
        if getattr(s, key) is not None and math.isfinite(getattr(s, key))
    ]
    if not values:
        return None
    values.sort(key=lambda nv: nv[1] if lowest_first else -nv[1])
    listed = ", ".join(f"{label(n)} {show(v)}" for n, v in values)
    if len(values) == 1:
        description = description.rsplit(",", 1)[0]
    return f"{description}: {listed}."


def _versus(
    summaries: Mapping[str, RunResult],
    key: str,
    what: str,
    show: Callable[[float], str],
    a: str,
    b: str,
) -> str:
    """ "<what> under <a> is <value>, higher than / lower than / the same as <value> under <b>"."""
    va, vb = getattr(summaries[a], key), getattr(summaries[b], key)
    if va is None or vb is None:
        return f"{what} under {label(a)} is {show(va) if va is not None else 'n/a'}"
    if show(va) == show(vb):
        relation = "the same as"
    elif va > vb:
        relation = "higher than"
    else:
        relation = "lower than"
    return f"{what} under {label(a)} is {show(va)}, {relation} {show(vb)} under {label(b)}"


def _classifier_fix(run: RunResult, etf: float) -> str | None:
    """What the fixed ETF classifier did: its classifier at (or off) the ETF value, its minority
    means squeezed (or not)."""
    mc_w, mc_h = run.mc_weights, run.mc_means
    if mc_w is None or mc_h is None:
        return None
    name = ETF_DR.label
    if _cos(mc_w) == _cos(etf):
        first = f"{name} holds its minority classifier rows at the ETF value (MC_W {_cos(mc_w)})"
    else:
        first = f"{name}'s minority classifier rows are off the ETF value (MC_W {_cos(mc_w)})"
    gap = mc_h - etf
    if _cos(mc_h) == _cos(etf):
        second = "and its minority means sit there too (MC_H at the ETF value)"
    elif gap > 0:
        second = (
            f"but its centred minority class means are squeezed: MC_H {_cos(mc_h)}, "
            f"{fixed(gap, 3)} above the ETF value"
        )
    else:
        second = f"and its minority class means are spread wider than an ETF (MC_H {_cos(mc_h)})"
    return f"{first}, {second}."


def _sweep_sentence(name: str, records: Sequence[Mapping[str, Any]]) -> str:
    if not records:
        raise ValueError(f"sweep {name!r} has no records")
    lo, hi = records[0], records[-1]
    k = len(lo["counts"])
    etf = _cos(-1 / (k - 1))

    def value(v: float) -> str:
        return _cos(v) + (" (the ETF value)" if _cos(v) == etf else "")

    def move(key: str, what: str) -> str:
        a, b = lo[key], hi[key]
        if _cos(a) == _cos(b):
            return f"{what} stays at {value(a)}"
        return f"{what} {'rises' if b > a else 'falls'} from {value(a)} to {value(b)}"

    sentence = (
        f"UFM, {name} ({k} classes): from imbalance ratio {lo['ratio']:g} to {hi['ratio']:g}, "
        f"{move('mc_weights', 'MC_W')} and {move('mc_means', 'MC_H')}"
    )
    collapse = _collapse(records)
    if collapse is not None:
        sentence += (
            f"; MC_W reaches 1 (complete minority collapse) between ratio {collapse[0]:g} and "
            f"{collapse[1]:g}"
        )
    return sentence + "."


def _projection_note(k: int) -> str:
    if k <= 4:
        return "With at most 4 classes the 3D view is exact: lengths and angles are true."
    return (
        f"{k} classes need more than 3 dimensions, so each view shows the arrows from their 3 "
        "widest directions (the share of their squared length it keeps is in the title); the "
        "cosine map under each view gives the true angles, every row and column labelled with "
        "its class (minority classes in bold): white is the ETF value, red a squeeze."
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
