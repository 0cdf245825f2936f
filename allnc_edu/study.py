"""Studies: several methods x seeds on one long-tailed data set, one mean ± std table, one JSON.

Example::

    study = run_study(methods=["ce", "la", "allnc"], seeds=[0, 1, 2], epochs=60,
                      split="validation", json_path="study.json", runs_dir="runs/study")
    print(study_table(study["summary"]))

With ``json_path`` the record is saved after every finished run and the same call continues an
interrupted study where it stopped; with ``runs_dir`` an interrupted run resumes from its last
epoch.

A method is a name from ``methods.VARIANTS`` (e.g. "allnc", "allnc-joint-bn", "ce-2x") or a
plain ``methods.METHODS`` name. ``sets`` ({"lambda_p": 3.0}, the command line's ``--set``)
passes an option to every method of the study that accepts it. Each seed draws its own data
subset and initialisation (as ``train --seed`` does). ``split="validation"`` evaluates on a
class-balanced validation set held out of the training pool (``data.load_dataset``): choose
settings there, report on ``split="test"``. Every run records ``samples_seen``: a GBBN step
draws two batches, so AllNC sees twice the samples of CE in the same epochs ("ce-2x" matches).
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._checks import check_seed
from .checkpoint import OutDirError, check_writable_dir, hold_lock, write_json
from .config import FALLBACK_RECIPE, RECIPE_SETTINGS
from .data import load_dataset, recipe_for
from .experiments import run_method
from .fmt import html_table
from .measures import METRICS
from .methods import ALLNC, CE, LA, Variant, method_options, variant
from .records import RunResult

#: The accuracies a summary averages over seeds (``{key}_mean``, ``{key}_std``), beside every
#: metric of ``measures.METRICS``.
AVERAGED = ("accuracy", "minority_accuracy", "majority_accuracy", "many", "medium", "few")
#: The metrics of a study's table, after the accuracies.
TABLE_METRICS = ("mc_weights", "mc_means", "nc1", "self_duality")


def parse_sets(items: Iterable[str]) -> dict[str, Any]:
    """``["lambda_p=3", "rebalance_loss=la"]`` -> ``{"lambda_p": 3, "rebalance_loss": "la"}``.

    A value is read as a Python literal (number, True/False, quoted string) when it is one,
    else kept as text.
    """
    sets: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip() or not text.strip():
            raise ValueError(f"--set needs KEY=VALUE, got {item!r}")
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            value = text.strip()
        sets[key.strip()] = value
    return sets


#: Settings a continued study may change: they do not change what a run computes.
COSMETIC_SETTINGS = ("device", "progress")


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C during a study; the message says what was saved and how to continue."""


def check_plan(methods: Sequence[str], seeds: Sequence[int]) -> tuple[list[str], list[int]]:
    """The study's methods and seeds, checked before any training: each a known method or
    variant (``methods.variant``), each seed an integer in [0, 2**32 - 1], none twice (a
    replicate must be another seed). Raises ValueError naming the first bad entry."""
    if not methods or not seeds:
        raise ValueError("a study needs at least one method and one seed")
    for name in methods:
        variant(name)
    seeds = [check_seed(s) for s in seeds]
    for what, items in (("method", list(methods)), ("seed", seeds)):
        twice = sorted({x for x in items if items.count(x) > 1}, key=items.index)
        if twice:
            raise ValueError(
                f"{what} {twice[0]!r} is listed twice; each {what} runs once in a study "
                "(a replicate needs another seed)"
            )
    return list(methods), seeds


def check_record_path(path: str | os.PathLike) -> Path:
    """Check, before any training, that a study record can be written at ``path``: not a
    folder, in a folder that exists or can be made and is writable. Returns it as a Path."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name for the study's JSON")
    try:
        check_writable_dir(path.parent)
    except OutDirError as err:
        raise ValueError(f"cannot write the study's JSON {path}: {err}") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"cannot write the study's JSON {path}: the file is read-only")
    return path


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """A study record written by :func:`run_study`; ValueError (one line) when unreadable."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not a readable study record: {err}") from None
    if not isinstance(record, dict) or not {"settings", "runs"} <= set(record):
        raise ValueError(f"{path} is not a study record (no 'settings' and 'runs')")
    return record


def _finished_runs(
    path: Path, settings: Mapping[str, Any], plan: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], dict[str, Any]]:
    """The runs of the record at ``path`` that this study may keep: refused, naming each
    difference, when the record's settings differ from ``settings`` (cosmetic ones aside;
    methods and seeds may grow) or it holds a run outside ``plan``."""
    record = read_record(path)
    saved = record["settings"]
    skip = {*COSMETIC_SETTINGS, "methods", "seeds"}
    differ = [
        f"{k}: saved {saved.get(k)!r}, now {settings.get(k)!r}"
        for k in dict.fromkeys([*saved, *settings])
        if k not in skip and saved.get(k) != settings.get(k)
    ]
    runs = {(r["method"], r["seed"]): r for r in record["runs"]}
    extra = [f"{m} seed {s}" for m, s in runs if (m, s) not in plan]
    if extra:
        differ.append(f"it holds {', '.join(extra)}, which this study does not run")
    if differ:
        raise ValueError(
            f"{path} holds a study with other settings ({'; '.join(differ)}); give another "
            "JSON path, or overwrite=True to start this study afresh there"
        )
    return runs


def run_study(
    *,
    dataset: str = "mnist1d",
    profile: str = "step",
    imbalance_ratio: float = 100.0,
    methods: Sequence[str] = (CE.name, LA.name, ALLNC.name),
    seeds: Sequence[int] = (0, 1, 2),
    split: str = "test",
    n_max: int | None = None,
    root: str | None = None,
    sets: Mapping[str, Any] | None = None,
    command: str | None = None,
    json_path: str | os.PathLike | None = None,
    runs_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    results: dict[tuple[str, int], RunResult] | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Train every method x seed; returns ``{"command", "settings", "runs", "summary",
    "complete"}`` (JSON-ready).

    ``runs`` holds one dict per run: method (the variant's name), base_method, seed, split,
    samples_seen, options (every option of the method) and ``RunResult.summary()``'s fields.
    ``summary`` is :func:`summarize` of the runs. ``settings`` are ``config.TrainConfig``
    settings for every run (epochs, weight_decay, batch_size, lr, device, amp, ...); epochs
    default to the data set's recipe, and only the last epoch is evaluated unless
    ``metrics_every`` says otherwise. A ``results`` dict receives every ``RunResult`` trained
    here under ``(method, seed)``.

    Nothing finished is lost: with ``json_path`` the record is written there (atomically)
    after every finished run, and the same call later continues where it stopped, keeping the
    runs already there (its settings must match; it may add methods or seeds). With
    ``runs_dir`` every run keeps its checkpoint in ``runs_dir/<method>-seed<seed>`` and an
    interrupted run resumes from its last epoch. ``overwrite`` starts afresh instead. Methods,
    seeds and both paths are checked before any training, and one study at a time writes to
    a record (a lock).
    """
    methods, seeds = check_plan(methods, seeds)
    variants = {name: variant(name) for name in methods}
    sets = _checked_sets(sets, variants)
    recipe = {**FALLBACK_RECIPE, **recipe_for(dataset)}
    settings = {**{k: recipe[k] for k in RECIPE_SETTINGS if k != "metrics_every"}, **settings}
    settings.setdefault("metrics_every", settings["epochs"])  # only the last epoch, by default
    if "device" in settings:  # a torch.device is recorded by its name
        settings["device"] = str(settings["device"])
    record = json.loads(json.dumps({
        "command": command,
        "settings": {"dataset": dataset, "profile": profile, "imbalance_ratio": imbalance_ratio,
                     "methods": methods, "seeds": seeds, "epochs": settings["epochs"],
                     "split": split, "n_max": n_max, "sets": sets,
                     **{k: v for k, v in settings.items() if k not in _UNRECORDED}},
        "runs": [], "summary": {}, "complete": False,
    }))  # fmt: skip
    plan = [(name, seed) for seed in seeds for name in methods]
    json_path = None if json_path is None else check_record_path(json_path)
    runs_dir = None if runs_dir is None else check_writable_dir(runs_dir)
    done: dict[tuple[str, int], dict[str, Any]] = {}

    def save() -> None:
        runs = [done[key] for key in plan if key in done]
        record.update(runs=runs, summary=summarize(runs), complete=len(runs) == len(plan))
        if json_path is not None:
            write_json(json_path, record)

    with contextlib.ExitStack() as held:
        if json_path is not None:  # one study writes a record at a time
            lock = json_path.with_name(f".{json_path.name}.lock")
            held.enter_context(hold_lock(lock, f"the study record {json_path}"))
            if json_path.exists() and not overwrite:
                done = _finished_runs(json_path, record["settings"], plan)
        if done and settings.get("progress", True):
            print(f"study: {len(done)} of {len(plan)} runs already in {json_path}; "
                  f"training the other {len(plan) - len(done)}")  # fmt: skip
        save()
        try:
            for seed in seeds:
                todo = [name for name in methods if (name, seed) not in done]
                if not todo:
                    continue
                data = load_dataset(dataset, imbalance_ratio=imbalance_ratio, profile=profile,
                                    seed=seed, n_max=n_max, root=root, split=split)  # fmt: skip
                for name in todo:
                    out = None if runs_dir is None else runs_dir / f"{name}-seed{seed}"
                    result = _run(variants[name], name, data, seed, sets, settings, out,
                                  overwrite)  # fmt: skip
                    if results is not None:
                        results[name, seed] = result
                    done[name, seed] = {**result.summary(), "method": name,
                                        "base_method": variants[name].method, "seed": seed,
                                        "split": split, "samples_seen": result.samples_seen,
                                        "options": result.options}  # fmt: skip
                    save()
        except KeyboardInterrupt as err:
            raise StudyInterrupted(_interrupted(str(err), len(done), len(plan), json_path,
                                                runs_dir)) from None  # fmt: skip
    return record


#: Settings a study passes to every run but does not record (they do not change the runs).
_UNRECORDED = ("progress", "record_geometry", "workers")


def _checked_sets(sets: Mapping[str, Any] | None, variants: Mapping[str, Variant]) -> dict:
    """``--set`` options, each taken by at least one method of the study."""
    sets = dict(sets or {})
    accepted = set().union(*(method_options(v.method) for v in variants.values()))
    unused = sorted(k for k in sets if k not in accepted)
    if unused:
        raise ValueError(f"--set {', '.join(unused)}: no method of this study takes it")
    return sets


def _run(
    v: Variant,
    name: str,
    data,
    seed: int,
    sets: Mapping[str, Any],
    settings: Mapping[str, Any],
    out: Path | None,
    overwrite: bool,
) -> RunResult:
    """One run of a study: the variant's options and the ``--set`` ones it takes, its budget."""
    accepted = set(method_options(v.method))
    options = {**v.options, **{k: x for k, x in sets.items() if k in accepted}}
    length = settings["epochs"] * v.epochs_factor
    fit = {**settings, "epochs": length, "metrics_every": min(settings["metrics_every"], length)}
    fit.setdefault("label", f"{name} on {data.name}, seed {seed}")
    if out is not None:
        fit.update(out_dir=out, resume=not overwrite, overwrite=overwrite)
    return run_method(v.method, data, seed=seed, **fit, **options)


def _interrupted(
    why: str, saved: int, planned: int, json_path: Path | None, runs_dir: Path | None
) -> str:
    """What an interrupted study says: what was saved and how to continue."""
    head = f"study interrupted ({why})" if why else "study interrupted"
    if json_path is None:
        return (
            f"{head}; {saved} of {planned} runs had finished, unsaved (pass json_path to keep them)"
        )
    again = f"{saved} of {planned} runs are saved in {json_path}; the same call continues"
    if runs_dir is not None:
        again += f", the interrupted run from its checkpoint in {runs_dir}"
    return f"{head}; {again}"


def summarize(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{method: {KEY_mean, KEY_std for every ``AVERAGED`` key and every metric of
    ``measures.METRICS``, samples_seen, train_s, seeds}}``.

    Means and standard deviations (sample std, 0 for one seed) over the runs of each method,
    in the order the methods first appear; a value missing from a run (None) is left out;
    ``train_s`` is the mean training time of a run in seconds; ``seeds`` lists the distinct
    seeds.
    """
    out: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(r["method"] for r in runs):
        mine = [r for r in runs if r["method"] == name]
        row: dict[str, Any] = {}
        for key in (*AVERAGED, *METRICS):
            values = [r[key] for r in mine if r.get(key) is not None]
            row[f"{key}_mean"] = statistics.fmean(values) if values else None
            row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        row["samples_seen"] = round(statistics.fmean(r["samples_seen"] for r in mine))
        times = [r["train_s"] for r in mine if r.get("train_s") is not None]
        row["train_s"] = statistics.fmean(times) if times else None
        row["seeds"] = sorted({r["seed"] for r in mine})
        out[name] = row
    return out


def read_studies(
    paths: Iterable[str | Path],
) -> tuple[dict[str, dict[str, Any]], list[str]] | None:
    """The study JSON files among ``paths`` that exist, pooled: (:func:`summarize` of all their
    runs, their command lines); None when none exists (e.g. an installed package has no docs/).
    """
    records = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths if Path(p).exists()]
    if not records:
        return None
    summary = summarize([run for record in records for run in record["runs"]])
    return summary, [record["command"] for record in records]


def _spread(row: Mapping[str, Any]) -> bool:
    """Whether ``row`` has a spread to show: one seed has none (not a spread of zero)."""
    return len(row.get("seeds", ())) > 1


def _pm(row: Mapping[str, Any], key: str) -> str:
    mean = row.get(f"{key}_mean")
    if mean is None:
        return "-"
    return (
        f"{100 * mean:.1f} ± {100 * row[f'{key}_std']:.1f}%"
        if _spread(row)
        else f"{100 * mean:.1f}%"
    )


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _metric(row: Mapping[str, Any], name: str, *, spread: bool = False) -> str:
    """Metric ``name``'s mean in ``row`` (with a sign where its spec asks), and ± its std when
    ``spread``; "-" when no run measured it."""
    mean = row.get(f"{name}_mean")
    if mean is None:
        return "-"
    text = format(mean, "+.3f" if METRICS[name].signed else ".3f")
    return f"{text} ± {row[f'{name}_std']:.3f}" if spread else text


def study_rows(summary: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """The table as text cells: a header row, then one row per method (accuracies as mean ±
    std over seeds, the ``TABLE_METRICS`` as means)."""
    labels = [METRICS[m].label for m in TABLE_METRICS]
    rows = [["method", "accuracy", "minority acc", *labels, "samples seen", "seeds"]]
    for name, row in summary.items():
        metrics = [_metric(row, m) for m in TABLE_METRICS]
        rows.append([name, _pm(row, "accuracy"), _pm(row, "minority_accuracy"), *metrics,
                     f"{row['samples_seen']:,}", str(len(row["seeds"]))])  # fmt: skip
    return rows


def detail_rows(summary: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """Every number of a study with its spread: a header row, then one row per method with the
    accuracy overall, by shot group and on the minority classes, then each ``TABLE_METRICS``,
    all as mean ± std over seeds (the mean alone for one seed), then samples seen, hours of
    training per run and the seeds."""
    shots = ("accuracy", "many", "medium", "few", "minority_accuracy")
    head = ["accuracy", "many-shot", "medium-shot", "few-shot", "minority acc"]
    rows = [["method", *head, *(METRICS[m].label for m in TABLE_METRICS),
             "samples seen", "hours per run", "seeds"]]  # fmt: skip
    for name, row in summary.items():
        metrics = [_metric(row, m, spread=_spread(row)) for m in TABLE_METRICS]
        hours = row.get("train_s")
        rows.append([name, *(_pm(row, k) for k in shots), *metrics, f"{row['samples_seen']:,}",
                     _num(None if hours is None else hours / 3600, ".1f"),
                     ", ".join(map(str, row["seeds"]))])  # fmt: skip
    return rows


def detail_html(summary: Mapping[str, Mapping[str, Any]], *, caption: str | None = None) -> str:
    """An HTML table of :func:`detail_rows` (display it with ``IPython.display.HTML``)."""
    return html_table(detail_rows(summary), caption)


def study_table(summary: Mapping[str, Mapping[str, Any]]) -> str:
    """A plain-text table of :func:`summarize`'s output (mean ± std over seeds)."""
    rows = study_rows(summary)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(r, widths, strict=True))) for r in rows]  # fmt: skip
    return "\n".join(lines)


def study_html(summary: Mapping[str, Mapping[str, Any]], *, caption: str | None = None) -> str:
    """An HTML table of :func:`study_rows` (display it with ``IPython.display.HTML``)."""
    return html_table(study_rows(summary), caption)


def gap_rows(
    summaries: Mapping[str, Mapping[str, Mapping[str, Any]]],
    method: str = ALLNC.name,
    rivals: Sequence[str] = (LA.name, f"{LA.name}-2x"),
) -> list[list[str]]:
    """``method``'s mean accuracy and minority accuracy minus each rival's, in percentage
    points, one row per study of ``summaries`` (``{study name: summarize(...)}``): a header
    row, then the rows; "-" where a study lacks one of the two runs."""
    keys = (("accuracy", "accuracy"), ("minority_accuracy", "minority acc"))
    rows = [["study"] + [f"{method} − {r}, {label}" for r in rivals for _, label in keys]]
    for name, summary in summaries.items():
        row = [name]
        for rival in rivals:
            for key, _ in keys:
                a, b = (summary.get(m, {}).get(f"{key}_mean") for m in (method, rival))
                row.append("-" if a is None or b is None else f"{100 * (a - b):+.1f}")
        rows.append(row)
    return rows


def gap_html(
    summaries: Mapping[str, Mapping[str, Mapping[str, Any]]],
    method: str = ALLNC.name,
    rivals: Sequence[str] = (LA.name, f"{LA.name}-2x"),
    *,
    caption: str | None = None,
) -> str:
    """An HTML table of :func:`gap_rows`."""
    return html_table(gap_rows(summaries, method, rivals), caption)
