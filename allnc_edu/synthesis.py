"""Does geometry predict accuracy? The neural-collapse metrics of many runs against their
accuracy, over study records (``study.run_study``'s JSON) and a notebook's own runs.

Every function here is pure: it takes *points*, one dict per run (:func:`points_from_record`,
:func:`points_from_runs`), and returns numbers, rows or sentences. A point holds the run's
``setting`` (a label naming the data set, profile, imbalance ratio, schedule and weight decay:
runs of one setting saw the same data on the same budget), ``source``, ``method``, ``seed``,
the ``OUTCOMES`` and the ``GEOMETRY`` metrics, and ``etf`` (-1/(K-1), None when K is unknown).

Two correlations, each Pearson's r of a metric against an outcome (NC1 on a log10 scale,
``LOG_METRICS``):

- **across methods** (:func:`correlation`'s ``r``): every value minus the mean of its setting
  and seed, so that what a setting does to every method (an easier data set, a longer
  schedule) does not count; what is left compares methods trained on the same data. It is
  computed once per seed (``per_seed``): the seeds are independent replicates of every
  setting, so the spread of the per-seed values is the spread over seeds.
- **across seeds** (``seed_r``): every value minus the mean of its setting and method, so only
  the seed-to-seed wobble of one method is left: does a seed that ends with a better geometry
  also end more accurate? Its interval is a bootstrap over the (setting, method) groups.

A correlation says nothing about cause; :func:`side_by_side` and :func:`findings` put the
method contrasts that test the causal reading beside it.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .config import FALLBACK_RECIPE
from .data import recipe_for
from .fmt import fixed, html_table, plural
from .measures import METRICS
from .methods import ALLNC, CE, ETF_DR, LA, LDAM_DRW
from .study import read_record

#: The metrics set against accuracy, in the order of tables and figures.
GEOMETRY = ("mc_weights", "mc_means", "nc1", "self_duality")
#: The outcomes.
OUTCOMES = ("accuracy", "minority_accuracy")
#: Metrics correlated on a log10 scale (NC1 spans several decades).
LOG_METRICS = ("nc1",)
#: Classes of the data sets whose records carry no class count.
NUM_CLASSES = {"mnist1d": 10, "gaussian": 10, "cifar10-lt": 10, "cifar100-lt": 100}
#: Data set names as a reader sees them.
DATASET_NAMES = {"mnist1d": "MNIST-1D", "cifar10-lt": "CIFAR-10-LT", "cifar100-lt": "CIFAR-100-LT"}
#: Outcome labels.
OUTCOME_LABELS = {"accuracy": "accuracy", "minority_accuracy": "minority accuracy"}
#: A run that differs from another only by these settings is in the same setting.
_RECIPE_KEYS = ("batch_size", "lr")


def setting_label(settings: Mapping[str, Any]) -> str:
    """The setting of a study record's ``settings`` as a label that tells settings apart:
    data set, profile, imbalance ratio, epochs, weight decay, shifted signals, and any other
    split, head-class size, batch size, learning rate or ``sets`` than the defaults."""
    dataset = str(settings["dataset"])
    recipe = {**FALLBACK_RECIPE, **recipe_for(dataset)}
    parts = [
        DATASET_NAMES.get(dataset, dataset),
        str(settings.get("profile", "exp")),
        f"IR {float(settings.get('imbalance_ratio', 100)):g}",
        f"{settings['epochs']} epochs",
        f"wd {float(settings.get('weight_decay') or recipe['weight_decay']):g}",
    ]
    if settings.get("augment") and dataset == "mnist1d":
        parts.append("shifted")
    if settings.get("split", "test") != "test":
        parts.append(f"{settings['split']} split")
    if settings.get("n_max") is not None:
        parts.append(f"n_max {settings['n_max']}")
    for key in _RECIPE_KEYS:
        value = settings.get(key)
        if value is not None and value != recipe.get(key):
            parts.append(f"{key.replace('_', ' ')} {value:g}")
    if settings.get("sets"):
        parts.append(json.dumps(settings["sets"], sort_keys=True))
    return ", ".join(parts)


def _etf(dataset: str) -> float | None:
    k = NUM_CLASSES.get(dataset)
    return None if k is None else -1.0 / (k - 1)


def _point(run: Mapping[str, Any], label: str, source: str, method: str, seed: int, etf) -> dict:
    point = {"setting": label, "source": source, "method": method, "seed": int(seed), "etf": etf}
    for key in (*OUTCOMES, *GEOMETRY):
        value = run.get(key)
        point[key] = None if value is None else float(value)
    return point


def points_from_record(
    record: Mapping[str, Any], *, source: str = "study record", separate: bool = False
) -> list[dict]:
    """One point per run of a study record (``{"settings": ..., "runs": [...]}``). With
    ``separate`` the runs form settings of their own, their labels ending in "(source)": a
    notebook's re-run of a study's setting is then compared within itself, not pooled with the
    study's runs of the same configuration."""
    settings = record["settings"]
    label, etf = setting_label(settings), _etf(str(settings["dataset"]))
    label = f"{label} ({source})" if separate else label
    return [_point(r, label, source, r["method"], r["seed"], etf) for r in record["runs"]]


def points_from_runs(
    summaries: Mapping[str, Mapping[str, Any]],
    settings: Mapping[str, Any],
    *,
    seed: int,
    source: str = "this notebook",
) -> list[dict]:
    """One point per run of ``{method: RunResult.summary()}`` (``experiments.key_numbers``),
    all trained at ``settings`` (study-record style: dataset, profile, imbalance_ratio, epochs,
    weight_decay, ...) with ``seed``; they form a setting of their own, its label ending in
    "(source)"."""
    label = f"{setting_label(settings)} ({source})"
    etf = _etf(str(settings["dataset"]))
    return [_point(run, label, source, name, seed, etf) for name, run in summaries.items()]


def read_points(paths: Iterable[str | Path], *, source: str = "study record") -> list[dict]:
    """The points of the study records among ``paths`` that exist (others are skipped), in
    the order given; raises ValueError naming a file that is not a study record."""
    points = []
    for path in paths:
        if Path(path).is_file():
            points += points_from_record(read_record(path), source=source)
    return points


def read_notebook_points(path: str | Path, *, source: str) -> list[dict]:
    """The points of a notebook's results JSON that holds its study's runs (``"runs"``) and
    settings (``"study_settings"``, as notebook 04 writes them), in settings of their own
    (:func:`points_from_record` with ``separate``); [] when the file does not exist or holds no
    such record (e.g. written by an older version)."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return []
    if not isinstance(results, dict) or not {"runs", "study_settings"} <= set(results):
        return []
    record = {"settings": results["study_settings"], "runs": results["runs"]}
    return points_from_record(record, source=source, separate=True)


def pool(*groups: Iterable[Mapping[str, Any]]) -> list[dict]:
    """The points of ``groups`` in order, a (setting, method, seed) seen before left out (the
    first one stays; e.g. the same record read twice)."""
    seen, out = set(), []
    for group in groups:
        for point in group:
            key = (point["setting"], point["method"], point["seed"])
            if key not in seen:
                seen.add(key)
                out.append(dict(point))
    return out


def value(point: Mapping[str, Any], key: str) -> float | None:
    """A point's ``key``, on a log10 scale for ``LOG_METRICS`` (None when missing or not > 0)."""
    raw = point.get(key)
    if raw is None or not math.isfinite(raw):
        return None
    if key in LOG_METRICS:
        return math.log10(raw) if raw > 0 else None
    return float(raw)


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's r of two equally long sequences; None for fewer than 3 pairs or no spread."""
    if len(xs) != len(ys):
        raise ValueError(f"pearson needs equally long sequences, got {len(xs)} and {len(ys)}")
    if len(xs) < 3:
        return None
    x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    x, y = x - x.mean(), y - y.mean()
    norm = math.sqrt(float(x @ x) * float(y @ y))
    return None if norm == 0 else float(x @ y) / norm


def centred(
    points: Sequence[Mapping[str, Any]], x: str, y: str, by: Sequence[str]
) -> tuple[list[float], list[float], list[Mapping[str, Any]]]:
    """The pairs (``x``, ``y``) of the points that have both, each minus the mean of its group
    (the points sharing the fields ``by``); groups of one point are left out (nothing to
    compare). Returns (xs, ys, the point of each pair)."""
    groups: dict[tuple, list[tuple[float, float, Mapping[str, Any]]]] = {}
    for p in points:
        a, b = value(p, x), value(p, y)
        if a is not None and b is not None:
            groups.setdefault(tuple(p[f] for f in by), []).append((a, b, p))
    xs, ys, members = [], [], []
    for pairs in groups.values():
        if len(pairs) < 2:
            continue
        mx, my = statistics.fmean(a for a, _, _ in pairs), statistics.fmean(b for _, b, _ in pairs)
        xs += [a - mx for a, _, _ in pairs]
        ys += [b - my for _, b, _ in pairs]
        members += [p for _, _, p in pairs]
    return xs, ys, members


ACROSS_METHODS = ("setting", "seed")
ACROSS_SEEDS = ("setting", "method")


def bootstrap(
    points: Sequence[Mapping[str, Any]],
    x: str,
    y: str,
    by: Sequence[str],
    *,
    draws: int = 1000,
    level: float = 0.9,
    seed: int = 0,
) -> tuple[float, float] | None:
    """A ``level`` bootstrap interval of the centred correlation (:func:`centred` by ``by``),
    resampling whole groups with replacement (``draws`` times, a fixed ``seed``); None with
    fewer than 3 groups."""
    xs, ys, kept = centred(points, x, y, by)
    members: dict[tuple, list[int]] = {}
    for i, p in enumerate(kept):
        members.setdefault(tuple(p[f] for f in by), []).append(i)
    groups = list(members.values())
    if len(groups) < 3:
        return None
    rng = np.random.default_rng(seed)
    x_all, y_all, rs = np.asarray(xs), np.asarray(ys), []
    for _ in range(draws):
        pick = np.concatenate([groups[g] for g in rng.integers(0, len(groups), len(groups))])
        r = pearson(x_all[pick], y_all[pick])
        if r is not None:
            rs.append(r)
    if not rs:
        return None
    tail = 100 * (1 - level) / 2
    return float(np.percentile(rs, tail)), float(np.percentile(rs, 100 - tail))


def correlation(points: Sequence[Mapping[str, Any]], metric: str, outcome: str) -> dict[str, Any]:
    """How ``metric`` goes with ``outcome`` over ``points`` (see the module's docstring).

    Returns a JSON-ready dict: ``metric``, ``outcome``; ``r`` (across methods, all seeds
    pooled) and ``n`` (its pairs); ``per_seed``, a list of ``{"seed", "r", "n"}``, and their
    ``seed_mean``, ``seed_min``, ``seed_max``; ``seed_r`` (across seeds), ``seed_n`` and
    ``seed_interval`` (a 90% bootstrap interval over the (setting, method) groups, or None);
    ``raw_r``, the correlation of the raw values, settings mixed; ``settings``, how many
    settings took part. A correlation that cannot be computed is None.
    """
    if metric not in GEOMETRY or outcome not in OUTCOMES:
        raise ValueError(f"metric must be one of {GEOMETRY}, outcome one of {OUTCOMES}")
    xs, ys, kept = centred(points, metric, outcome, ACROSS_METHODS)
    per_seed = []
    for seed in sorted({p["seed"] for p in points}):
        mine = [p for p in points if p["seed"] == seed]
        sx, sy, _ = centred(mine, metric, outcome, ACROSS_METHODS)
        r = pearson(sx, sy)
        if r is not None:
            per_seed.append({"seed": seed, "r": r, "n": len(sx)})
    rs = [row["r"] for row in per_seed]
    qx, qy, _ = centred(points, metric, outcome, ACROSS_SEEDS)
    raw = [(value(p, metric), value(p, outcome)) for p in points]
    raw = [(a, b) for a, b in raw if a is not None and b is not None]
    return {
        "metric": metric,
        "outcome": outcome,
        "r": pearson(xs, ys),
        "n": len(xs),
        "settings": len({p["setting"] for p in kept}),
        "per_seed": per_seed,
        "seed_mean": statistics.fmean(rs) if rs else None,
        "seed_min": min(rs) if rs else None,
        "seed_max": max(rs) if rs else None,
        "seed_r": pearson(qx, qy),
        "seed_n": len(qx),
        "seed_interval": bootstrap(points, metric, outcome, ACROSS_SEEDS),
        "raw_r": pearson([a for a, _ in raw], [b for _, b in raw]),
    }


def correlations(
    points: Sequence[Mapping[str, Any]],
    metrics: Sequence[str] = GEOMETRY,
    outcomes: Sequence[str] = OUTCOMES,
) -> list[dict[str, Any]]:
    """:func:`correlation` of every metric with every outcome, outcome by outcome."""
    return [correlation(points, m, o) for o in outcomes for m in metrics]


def _label(metric: str) -> str:
    """How a metric is named here: "log10 NC1", "self-duality gap" (0 at NC3), else its label."""
    label = "self-duality gap" if metric == "self_duality" else METRICS[metric].label
    return f"log10 {label}" if metric in LOG_METRICS else label


def _r(value: float | None) -> str:
    return "n/a" if value is None else fixed(value, 2, signed=True)


def correlation_rows(table: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """:func:`correlations` as text cells: a header, then one row per (outcome, metric)."""
    rows = [["outcome", "metric", "r across methods", "per seed (min to max)", "pairs",
             "r across seeds (90% interval)", "r of raw values"]]  # fmt: skip
    for c in table:
        spread = f"{_r(c['seed_min'])} to {_r(c['seed_max'])} ({len(c['per_seed'])} seeds)"
        interval = c["seed_interval"]
        within = _r(c["seed_r"]) + (
            "" if interval is None else f" ({_r(interval[0])} to {_r(interval[1])})"
        )
        rows.append([OUTCOME_LABELS[c["outcome"]], _label(c["metric"]), _r(c["r"]), spread,
                     str(c["n"]), within, _r(c["raw_r"])])  # fmt: skip
    return rows


def correlation_html(table: Sequence[Mapping[str, Any]], *, caption: str | None = None) -> str:
    """An HTML table of :func:`correlation_rows`."""
    return html_table(correlation_rows(table), caption)


def changes(
    before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]], what: str
) -> list[str]:
    """One sentence per (metric, outcome) of two :func:`correlations` tables: the across-methods
    r before and after ``what`` was added, with the per-seed range after."""
    old = {(c["metric"], c["outcome"]): c for c in before}
    out = []
    for c in after:
        b = old.get((c["metric"], c["outcome"]))
        if b is None:
            continue
        out.append(
            f"{_label(c['metric'])} against {OUTCOME_LABELS[c['outcome']]}: r = {_r(b['r'])} "
            f"over the study records, {_r(c['r'])} with {what} (per seed {_r(c['seed_min'])} "
            f"to {_r(c['seed_max'])})."
        )
    return out


def strength(r: float | None) -> str:
    """A word for the size of ``r``: "no" (< 0.1), "weak" (< 0.3), "moderate" (< 0.6), "strong"."""
    if r is None:
        return "no measurable"
    size = abs(r)
    return "no" if size < 0.1 else "weak" if size < 0.3 else "moderate" if size < 0.6 else "strong"


def side_by_side(
    points: Sequence[Mapping[str, Any]], methods: Sequence[str]
) -> list[dict[str, Any]]:
    """For every setting that has all of ``methods`` at one seed or more: the seeds they share
    and each method's mean over those seeds of every outcome and metric (raw values, NC1 not
    logged). Rows ``{"setting", "seeds", "etf", "methods": {method: {key: mean}}}``, settings in
    the order they first appear."""
    rows = []
    for setting in dict.fromkeys(p["setting"] for p in points):
        mine = [p for p in points if p["setting"] == setting]
        seeds = set.intersection(*({p["seed"] for p in mine if p["method"] == m} for m in methods))
        if not seeds:
            continue
        means = {}
        for m in methods:
            runs = [p for p in mine if p["method"] == m and p["seed"] in seeds]
            means[m] = {key: _mean([p[key] for p in runs]) for key in (*OUTCOMES, *GEOMETRY)}
        rows.append({"setting": setting, "seeds": sorted(seeds), "etf": mine[0]["etf"],
                     "methods": means})  # fmt: skip
    return rows


def most_squeezed(
    points: Sequence[Mapping[str, Any]], metric: str = "mc_weights"
) -> dict[str, str]:
    """``{setting: the method with the highest mean metric there}`` (the most squeezed
    minority classifiers for MC_W), over each setting's methods and seeds."""
    out = {}
    for setting in dict.fromkeys(p["setting"] for p in points):
        means = {}
        for p in points:
            if p["setting"] == setting and p[metric] is not None:
                means.setdefault(p["method"], []).append(p[metric])
        if means:
            out[setting] = max(means, key=lambda m: statistics.fmean(means[m]))
    return out


def _mean(values: Sequence[float | None]) -> float | None:
    """The mean of the values that are not None; None when there are none."""
    kept = [v for v in values if v is not None]
    return statistics.fmean(kept) if kept else None


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _span(low: float, high: float, unit: str = "%") -> str:
    """ "12.0%" when both ends agree to the shown decimal, else "12.0% to 15.5%"."""
    a, b = f"{100 * low:.1f}", f"{100 * high:.1f}"
    return f"{a}{unit}" if a == b else f"{a}{unit} to {b}{unit}"


def contrasts(points: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The method contrasts that test a causal reading of the correlations, JSON-ready:

    - ``la_vs_ce``: the settings with both (``side_by_side`` rows, ``rows``), in how many LA's
      minority accuracy is higher (``la_more_accurate``), its smallest and largest gain in
      minority accuracy (``gain_min``, ``gain_max``), in how many LA's MC_W is at or above
      CE's (``la_as_squeezed``), and in how many logit adjustment (LA or LA-2X) has the
      highest MC_W of all the setting's methods (``la_most_squeezed``); None without such a
      setting.
    - ``ce_near_etf``: the settings where CE's mean MC_W and MC_H are both within 0.1 of the
      ETF value (``settings``), with the range of CE's and of LA's minority accuracy there;
      None without such a setting.
    - ``gbbn_vs_allnc``: the ``side_by_side`` rows of GBBN alone ("gbbn") and full AllNC.
    """
    rows = side_by_side(points, (CE.name, LA.name))
    out: dict[str, Any] = {"la_vs_ce": None, "ce_near_etf": None}
    if rows:
        ce = [r["methods"][CE.name] for r in rows]
        la = [r["methods"][LA.name] for r in rows]
        gains = [
            b["minority_accuracy"] - a["minority_accuracy"] for a, b in zip(ce, la, strict=True)
        ]
        top = most_squeezed(points)
        out["la_vs_ce"] = {
            "rows": rows,
            "la_more_accurate": sum(g > 0 for g in gains),
            "gain_min": min(gains),
            "gain_max": max(gains),
            "la_as_squeezed": sum(
                b["mc_weights"] >= a["mc_weights"] for a, b in zip(ce, la, strict=True)
            ),
            "la_most_squeezed": sum(top[r["setting"]] in (LA.name, f"{LA.name}-2x") for r in rows),
        }
    near = [
        r for r in rows
        if r["etf"] is not None
        and all(abs(r["methods"][CE.name][k] - r["etf"]) < 0.1 for k in ("mc_weights", "mc_means"))
    ]  # fmt: skip
    if near:
        ce_acc = [r["methods"][CE.name]["minority_accuracy"] for r in near]
        la_acc = [r["methods"][LA.name]["minority_accuracy"] for r in near]
        out["ce_near_etf"] = {
            "settings": [r["setting"] for r in near],
            "ce_minority_min": min(ce_acc),
            "ce_minority_max": max(ce_acc),
            "la_minority_min": min(la_acc),
            "la_minority_max": max(la_acc),
        }
    out["gbbn_vs_allnc"] = side_by_side(points, ("gbbn", ALLNC.name))
    return out


def findings(
    table: Sequence[Mapping[str, Any]], contrast: Mapping[str, Any] | None = None
) -> list[str]:
    """What :func:`correlations` and :func:`contrasts` say, one sentence each, written from
    their numbers (so they hold for whatever records were read)."""
    sentences = []
    for c in table:
        if c["r"] is None:
            continue
        label, outcome = _label(c["metric"]), OUTCOME_LABELS[c["outcome"]]
        signs = {math.copysign(1, row["r"]) for row in c["per_seed"]}
        stable = "the same sign in every seed" if len(signs) == 1 else "the sign varies by seed"
        if strength(c["r"]) == "no":
            tendency = "no tendency either way"
        else:
            direction = "lower" if c["r"] < 0 else "higher"
            tendency = f"runs with a {direction} {label} than the other methods of their setting"
            tendency += f" tended to have a higher {outcome}"
        sentences.append(
            f"{label} against {outcome}, across methods: r = {_r(c['r'])}, a {strength(c['r'])} "
            f"link (per seed {_r(c['seed_min'])} to {_r(c['seed_max'])}, {stable}): "
            f"{tendency}; across seeds of one method r = {_r(c['seed_r'])}."
        )
    return sentences + ([] if contrast is None else _contrast_sentences(contrast))


def _contrast_sentences(contrast: Mapping[str, Any]) -> list[str]:
    out = []
    lc = contrast.get("la_vs_ce")
    if lc:
        n = len(lc["rows"])
        out.append(
            f"Logit adjustment against CE in {plural(n, 'setting')}: LA's minority accuracy is "
            f"higher in {lc['la_more_accurate']} of them (by "
            f"{_span(lc['gain_min'], lc['gain_max'], ' points')}), while its minority classifiers "
            f"are as squeezed as CE's or more (MC_W at or above CE's) in {lc['la_as_squeezed']}, "
            f"and logit adjustment (LA or LA-2X) has the most squeezed ones of all methods in "
            f"{lc['la_most_squeezed']}."
        )
    near = contrast.get("ce_near_etf")
    if near:
        out.append(
            f"CE's MC_W and MC_H are both within 0.1 of the ETF value in "
            f"{plural(len(near['settings']), 'setting')} ({'; '.join(near['settings'])}), yet "
            f"its minority accuracy there is "
            f"{_span(near['ce_minority_min'], near['ce_minority_max'])} (LA's: "
            f"{_span(near['la_minority_min'], near['la_minority_max'])})."
        )
    for row in contrast.get("gbbn_vs_allnc") or ():
        g, a = row["methods"]["gbbn"], row["methods"][ALLNC.name]
        seeds = ", ".join(map(str, row["seeds"]))
        out.append(
            f"GBBN alone against full AllNC ({row['setting']}, seeds {seeds}): accuracy "
            f"{_pct(g['accuracy'])} vs {_pct(a['accuracy'])}, minority accuracy "
            f"{_pct(g['minority_accuracy'])} vs {_pct(a['minority_accuracy'])}, MC_W "
            f"{fixed(g['mc_weights'], 3, signed=True)} vs {fixed(a['mc_weights'], 3, signed=True)}"
            f", MC_H {fixed(g['mc_means'], 3, signed=True)} vs "
            f"{fixed(a['mc_means'], 3, signed=True)}."
        )
    return out


#: Colours of the methods in :func:`figure` (others cycle through the rest).
_COLOURS = {
    CE.name: "#7f7f7f", f"{CE.name}-2x": "#c7c7c7", LA.name: "#1f77b4", f"{LA.name}-2x": "#9ecae9",
    ALLNC.name: "#d62728", "gbbn": "#ff9896", LDAM_DRW.name: "#2ca02c", ETF_DR.name: "#9467bd",
}  # fmt: skip
_MORE = ("#8c564b", "#e377c2", "#bcbd22", "#17becf", "#ff7f0e", "#aec7e8")


def figure(
    points: Sequence[Mapping[str, Any]], table: Sequence[Mapping[str, Any]] | None = None
) -> go.Figure:
    """Accuracy and minority accuracy (rows) against each ``GEOMETRY`` metric (columns), every
    value minus its setting-and-seed mean (what the across-methods r correlates), one colour
    per method; each panel's title gives r and its range over seeds."""
    table = correlations(points) if table is None else table
    by_pair = {(c["metric"], c["outcome"]): c for c in table}
    titles = []
    for o in OUTCOMES:
        for m in GEOMETRY:
            c = by_pair.get((m, o))
            span = "" if c is None else f"seeds {_r(c['seed_min'])} to {_r(c['seed_max'])}"
            titles.append("" if c is None else f"r = {_r(c['r'])} ({span})")
    fig = make_subplots(rows=len(OUTCOMES), cols=len(GEOMETRY), subplot_titles=titles,
                        horizontal_spacing=0.06, vertical_spacing=0.2)  # fmt: skip
    present = dict.fromkeys(p["method"] for p in points)
    methods = [m for m in _COLOURS if m in present] + [m for m in present if m not in _COLOURS]
    extra = iter(_MORE * (1 + len(methods) // len(_MORE)))
    colours = {m: _COLOURS.get(m) or next(extra) for m in methods}
    for row, o in enumerate(OUTCOMES, start=1):
        for col, m in enumerate(GEOMETRY, start=1):
            xs, ys, kept = centred(points, m, o, ACROSS_METHODS)
            for method in methods:
                idx = [i for i, p in enumerate(kept) if p["method"] == method]
                fig.add_trace(
                    go.Scatter(
                        x=[xs[i] for i in idx], y=[100 * ys[i] for i in idx], mode="markers",
                        name=method, legendgroup=method, showlegend=row == 1 and col == 1,
                        marker={"color": colours[method], "size": 7, "opacity": 0.8,
                                "line": {"width": 0.5, "color": "white"}},
                        text=[f"{method}, seed {kept[i]['seed']}<br>{kept[i]['setting']}"
                              for i in idx],
                        hovertemplate="%{text}<br>x %{x:+.3f}, y %{y:+.1f} points<extra></extra>",
                    ),
                    row=row, col=col,
                )  # fmt: skip
            fig.update_xaxes(title_text=f"{_label(m)} − setting mean", row=row, col=col)
        fig.update_yaxes(title_text=f"{OUTCOME_LABELS[o]} − setting mean (points)", row=row, col=1)
    fig.update_layout(
        height=680, margin={"t": 80, "l": 60, "r": 20, "b": 50},
        title="Does geometry predict accuracy? Each run against the other methods of its "
        "setting and seed",
        legend={"orientation": "h", "y": -0.12},
    )  # fmt: skip
    return fig
