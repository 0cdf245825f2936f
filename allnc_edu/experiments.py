"""Experiments for notebooks and reports: train methods by name, summarise, compare, tabulate.

``run_method("allnc", data, epochs=60)`` builds the backbone and the method, trains it with
``train.fit`` and returns a :func:`summarize` dict: test accuracy (overall, minority, shot
groups), the neural-collapse metrics of the last epoch, and the history of evaluated epochs.
``compare_methods`` does it for several named runs on the same data; ``results_table`` renders
the summaries as HTML; ``key_numbers`` keeps the JSON-friendly scalars. Minority classes are
``data.minority_classes(counts)``: the K - K//2 classes with the fewest training samples.

Two figure helpers compose ``plots`` figures: :func:`side_by_side` (3D views in one row) and
:func:`slider_figure` (a plotly slider over precomputed figures: imbalance ratios, epochs),
which works in any notebook front end, live kernel or not.
"""

from __future__ import annotations

import html
import inspect
import os
import tempfile
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from . import plots
from .data import LongTailDataset, load_dataset, minority_classes
from .methods import make_method
from .models import build_backbone
from .train import TrainResult, fit

#: The backbone ``run_method`` uses for each data set when none is named.
DEFAULT_BACKBONES = {
    "mnist1d": "cnn1d",
    "gaussian": "mlp",
    "cifar10-lt": "resnet32-ldam",
    "cifar100-lt": "resnet32-ldam",
}

#: The scalar NC metrics a summary copies from the last epoch (``metrics.NCMetrics`` fields).
NC_FIELDS = (
    "nc1",
    "self_duality",
    "mc_weights",
    "mc_means",
    "etf_distance_means",
    "etf_distance_weights",
    "equinorm_means",
    "equinorm_weights",
    "ncc_agreement",
)

#: The scalars of a summary that :func:`key_numbers` keeps (JSON-friendly, no history).
KEY_FIELDS = (
    "method",
    "accuracy",
    "minority_accuracy",
    "majority_accuracy",
    "many",
    "medium",
    "few",
    "train_acc",
    *NC_FIELDS,
    "train_s",
    "epochs",
    "imbalance_ratio",
)

#: Columns of :func:`results_table`: (summary key, header, format).
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
)

_FIT_OPTIONS = frozenset(inspect.signature(fit).parameters) - {"method", "dataset", "epochs"}


def run_method(
    method: str,
    dataset: LongTailDataset,
    *,
    epochs: int,
    backbone: str | None = None,
    seed: int = 0,
    progress: bool = True,
    record_geometry: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Train ``method`` (a ``methods.make_method`` name) on ``dataset`` and summarise the run.

    ``options`` that ``train.fit`` takes (lr, weight_decay, batch_size, metrics_every, ...) go
    to ``fit``; the others go to ``make_method`` (e.g. ``hycon=False`` for "allnc", ``tau`` for
    "la"). ``backbone`` defaults to ``DEFAULT_BACKBONES[dataset.name]``. The backbone and head
    are initialised from ``seed``, so the same call gives the same run. With
    ``record_geometry=True`` each evaluated epoch keeps the class means and classifier rows.
    Returns :func:`summarize`'s dict plus "options" (the method options).
    """
    name = backbone or DEFAULT_BACKBONES.get(dataset.name)
    if name is None:
        raise ValueError(
            f"no default backbone for dataset {dataset.name!r}; pass backbone= one of "
            "'cnn1d', 'mlp', 'resnet32-ldam', 'resnet32-glmc'"
        )
    fit_options = {k: v for k, v in options.items() if k in _FIT_OPTIONS}
    method_options = {k: v for k, v in options.items() if k not in _FIT_OPTIONS}
    torch.manual_seed(seed)
    model = make_method(
        method,
        build_backbone(name, dataset.input_shape),
        dataset.num_classes,
        dataset.counts,
        **method_options,
    )
    result = fit(
        model,
        dataset,
        epochs=epochs,
        seed=seed,
        progress=progress,
        record_geometry=record_geometry,
        **fit_options,
    )
    return {**summarize(result, dataset), "method": method, "options": method_options}


def summarize(train_result: TrainResult, dataset: LongTailDataset) -> dict[str, Any]:
    """The numbers of a finished run (its last epoch), in one flat dict.

    Keys: method, accuracy (test, overall), minority_accuracy and majority_accuracy (mean
    per-class test accuracy over ``minority_classes(counts)`` and the other classes), many /
    medium / few (None for an empty group), train_acc, the ``NC_FIELDS`` of the training set,
    train_s (training seconds, evaluation excluded), epochs, imbalance_ratio, counts, minority,
    num_classes, geometry (the last epoch's {"class_means", "classifier"}, (K, d) nested lists,
    or None when not recorded) and history (one flat dict per evaluated epoch: epoch, loss,
    train_acc, test_acc, minority_accuracy, num_classes, the ``NC_FIELDS`` and, when recorded,
    geometry; ready for ``plots.metric_curves``).
    """
    report = train_result.report
    if not train_result.history or report.get("nc") is None:
        raise ValueError("train_result has no evaluated epoch to summarise")
    counts = list(dataset.counts)
    if list(report["counts"]) != counts:
        raise ValueError(
            f"train_result was trained on counts {report['counts']}, not this dataset's {counts}"
        )
    minority = minority_classes(counts)
    test = report["test"]
    history = [_flat_record(r, minority) for r in train_result.history if r.get("nc")]
    return {
        "method": report["method"],
        "accuracy": test["overall"],
        "minority_accuracy": _mean_over(test["per_class"], minority),
        "majority_accuracy": _mean_over(
            test["per_class"], [c for c in range(len(counts)) if c not in minority]
        ),
        **{g: test[g] for g in ("many", "medium", "few")},
        "train_acc": report["train_acc"],
        **{f: report["nc"][f] for f in NC_FIELDS},
        "train_s": report["train_s"],
        "epochs": report["epochs_done"],
        "imbalance_ratio": report["imbalance_ratio"],
        "counts": counts,
        "minority": minority,
        "num_classes": dataset.num_classes,
        "geometry": history[-1].get("geometry"),
        "history": history,
    }


def compare_methods(
    runs: Mapping[str, Mapping[str, Any]],
    dataset: LongTailDataset,
    *,
    epochs: int,
    **common: Any,
) -> dict[str, dict[str, Any]]:
    """Run several named configurations on the same data: ``{name: run_method summary}``.

    ``runs`` maps a run name to ``{"method": name, **options}``; ``common`` holds options for
    every run (backbone, seed, progress, record_geometry, lr, ...), which a run's own options
    override. Example::

        compare_methods({"ce": {"method": "ce"}, "+ HyCon": {"method": "allnc", "p2p": False,
                         "gbbn": False}}, data, epochs=30)
    """
    if not runs:
        raise ValueError("runs is empty: give at least one {name: {'method': ...}}")
    missing = [name for name, spec in runs.items() if "method" not in spec]
    if missing:
        raise ValueError(f"runs {missing} have no 'method' entry (e.g. {{'method': 'ce'}})")
    summaries = {}
    for name, spec in runs.items():
        options = {**common, **{k: v for k, v in spec.items() if k != "method"}}
        summaries[name] = run_method(spec["method"], dataset, epochs=epochs, **options)
    return summaries


def key_numbers(summaries: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The ``KEY_FIELDS`` of each summary (no history, no geometry): ready for ``json.dumps``."""
    return {name: {k: s[k] for k in KEY_FIELDS if k in s} for name, s in summaries.items()}


def table_rows(
    summaries: Mapping[str, Mapping[str, Any]],
    columns: Sequence[tuple[str, str, str]] = TABLE_COLUMNS,
) -> list[list[str]]:
    """The table as text: a header row, then one row per run (missing values as "n/a")."""
    rows = [["run", *(header for _, header, _ in columns)]]
    for name, s in summaries.items():
        cells = [fmt.format(s[key]) if s.get(key) is not None else "n/a" for key, _, fmt in columns]
        rows.append([str(name), *cells])
    return rows


def results_table(
    summaries: Mapping[str, Mapping[str, Any]],
    columns: Sequence[tuple[str, str, str]] = TABLE_COLUMNS,
    *,
    caption: str | None = None,
) -> str:
    """An HTML table of :func:`table_rows` (display it with ``IPython.display.HTML``)."""
    rows = table_rows(summaries, columns)
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


def load_ratios(name: str, ratios: Sequence[float], **options: Any) -> dict[float, LongTailDataset]:
    """``data.load_dataset(name, imbalance_ratio=r, **options)`` for each ratio r.

    For MNIST-1D without a ``root`` cache folder, the signals are generated once (in a temporary
    cache) rather than once per ratio; the data sets are the same as separate loads.
    """
    if not ratios:
        raise ValueError("ratios is empty: give at least one imbalance ratio")
    if name != "mnist1d" or options.get("root") is not None:
        return {r: load_dataset(name, imbalance_ratio=r, **options) for r in ratios}
    with tempfile.TemporaryDirectory() as cache:
        return {
            r: load_dataset(name, imbalance_ratio=r, **{**options, "root": os.fspath(cache)})
            for r in ratios
        }


def simplex_views(summaries: Mapping[str, Mapping[str, Any]], *, height: int = 480) -> go.Figure:
    """The 3D simplex view (``plots.simplex_figure``) of each run's last recorded geometry, in
    one row, titled by run name; minority classes dashed. Needs ``record_geometry=True``."""
    figures = {name: _simplex(name, s, name) for name, s in summaries.items()}
    return side_by_side(figures, height=height)


def runs_slider(
    summaries: Mapping[str, Mapping[str, Any]], *, label: str = "", title: str | None = None
) -> go.Figure:
    """A slider over runs (e.g. imbalance ratios): the 3D view of each run's last recorded
    geometry, the step labelled by its key, the title giving its MC_W and MC_H."""
    figures = {
        name: _simplex(
            name,
            s,
            f"{title or s['method']}, {label}{name} "
            f"(MC_W {s['mc_weights']:+.2f}, MC_H {s['mc_means']:+.2f})",
        )
        for name, s in summaries.items()
    }
    return slider_figure(figures, label=label)


def epoch_slider(
    summary: Mapping[str, Any], *, max_frames: int = 12, title: str | None = None
) -> go.Figure:
    """A slider over (at most ``max_frames``, evenly spaced, always the last) recorded epochs of
    one run: the 3D view of its class means and classifier rows at each epoch."""
    records = [r for r in summary["history"] if r.get("geometry") is not None]
    if not records:
        raise ValueError("the run has no recorded geometry: train it with record_geometry=True")
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    step = -(-len(records) // max_frames)
    picked = records[::-1][::step][::-1]
    heading = title or f"{summary['method']}: class means and classifiers over training"
    figures = {
        f"epoch {r['epoch']}": plots.simplex_figure(
            r["geometry"]["class_means"],
            r["geometry"]["classifier"],
            minority=summary["minority"],
            title=(
                f"{heading}, epoch {r['epoch']} (MC_W {r['mc_weights']:+.2f}, "
                f"MC_H {r['mc_means']:+.2f})"
            ),
        )
        for r in picked
    }
    return slider_figure(figures, label="")


def side_by_side(figures: Mapping[str, go.Figure], *, height: int = 480) -> go.Figure:
    """Several 3D figures (from ``plots``) as one row of scenes, each titled by its figure's
    title (else its key); the legend of the first figure is kept, the others' entries hidden."""
    if not figures:
        raise ValueError("figures is empty: nothing to place side by side")
    n = len(figures)
    width = max(20, 120 // n)  # characters per line of a scene's subtitle, so titles never overlap
    titles = [_wrap_subtitle(fig.layout.title.text or key, width) for key, fig in figures.items()]
    out = make_subplots(rows=1, cols=n, specs=[[{"type": "scene"}] * n], subplot_titles=titles)
    for i, fig in enumerate(figures.values(), start=1):
        for trace in fig.data:
            if i > 1:
                trace = go.Scatter3d(trace, showlegend=False)
            out.add_trace(trace, row=1, col=i)
        out.update_layout({f"scene{i if i > 1 else ''}": fig.layout.scene})
    out.update_layout(height=height, margin={"l": 0, "r": 0, "t": 80, "b": 0})
    return out


def _wrap_subtitle(title: str, width: int) -> str:
    """Break the ``<sup>`` note of a ``plots`` title into lines of at most ``width`` characters."""
    heading, sep, note = title.partition("<br><sup>")
    if not sep:
        return title
    lines = textwrap.wrap(note.removesuffix("</sup>"), width)
    return heading + "".join(f"<br><sup>{line}</sup>" for line in lines)


def slider_figure(figures: Mapping[str, go.Figure], *, label: str = "") -> go.Figure:
    """One figure holding the traces of all ``figures`` and a slider that shows one at a time.

    The slider's steps are the keys (prefixed by ``label``); each step swaps the visible traces
    and the title (and the 3D axes, when there are any). Works without a live kernel.
    """
    if not figures:
        raise ValueError("figures is empty: nothing to slide over")
    out = go.Figure(layout=next(iter(figures.values())).layout)
    spans, start = [], 0
    for fig in figures.values():
        out.add_traces(list(fig.data))
        spans.append((start, start + len(fig.data)))
        start += len(fig.data)
    steps = []
    for (key, fig), (lo, hi) in zip(figures.items(), spans, strict=True):
        visible = [lo <= i < hi for i in range(start)]
        layout = {"title": fig.layout.title}
        if fig.layout.scene is not None:
            layout["scene"] = fig.layout.scene
        steps.append(
            {"label": str(key), "method": "update", "args": [{"visible": visible}, layout]}
        )
    for i, trace in enumerate(out.data):
        trace.visible = i < spans[0][1]
    out.update_layout(
        sliders=[{"active": 0, "steps": steps, "currentvalue": {"prefix": label}, "pad": {"t": 30}}]
    )
    return out


def _simplex(name: str, summary: Mapping[str, Any], title: str) -> go.Figure:
    """``plots.simplex_figure`` of a summary's last recorded geometry, minority dashed."""
    geometry = summary.get("geometry")
    if geometry is None:
        raise ValueError(f"run {name!r} has no geometry: train it with record_geometry=True")
    return plots.simplex_figure(
        geometry["class_means"], geometry["classifier"], minority=summary["minority"], title=title
    )


def _flat_record(record: Mapping[str, Any], minority: list[int]) -> dict[str, Any]:
    nc = record["nc"]
    flat = {
        "epoch": record["epoch"],
        "loss": record["loss"],
        "train_acc": record["train_acc"],
        "test_acc": record["test_acc"],
        "minority_accuracy": _mean_over(record["test_per_class"], minority),
        "num_classes": nc["num_classes"],
        **{f: nc[f] for f in NC_FIELDS},
    }
    if record.get("geometry") is not None:
        flat["geometry"] = record["geometry"]
    return flat


def _mean_over(per_class: Sequence[float | None], classes: Sequence[int]) -> float | None:
    values = [per_class[c] for c in classes if per_class[c] is not None]
    return sum(values) / len(values) if values else None
