"""The demo: CE, logit adjustment, a fixed ETF classifier with dot regression, and AllNC on
long-tailed MNIST-1D, plus the UFM imbalance sweeps, written as one HTML report
(``report.html``) and its numbers (``demo.json``). ``python -m allnc_edu demo`` runs
:func:`demo`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .checkpoint import check_writable_dir
from .data import load_dataset
from .experiments import compare_methods
from .methods import ALLNC, CE, ETF_DR, LA
from .report import REPORT_FILES, label, table_rows, write_report
from .ufm import imbalance_sweep

#: Methods the demo compares, and its settings (full, and ``smoke``: seconds, for tests).
DEMO_METHODS = (CE.name, LA.name, ETF_DR.name, ALLNC.name)
#: ``augment``: every method's training signals shifted by up to 4 positions (notebook 04's
#: recipe; without it AllNC's re-sampled minority signals are memorised, ``docs/method.md``).
DEMO = {"epochs": 60, "n_max": 500, "imbalance_ratio": 100.0, "metrics_every": 2,
        "augment": True, "ufm_ratios": [1, 3, 10, 30, 100, 300, 1000],
        "ufm_steps": 4000}  # fmt: skip
DEMO_SMOKE = {"epochs": 2, "n_max": 200, "imbalance_ratio": 100.0, "metrics_every": 1,
              "augment": True, "ufm_ratios": [1, 1000], "ufm_steps": 300}  # fmt: skip


class DemoExistsError(ValueError):
    """``out_dir`` already holds a demo and ``overwrite`` was not asked for."""


def check_demo_out(out_dir: str | Path, *, overwrite: bool = False) -> tuple[Path, list[str]]:
    """Check, before any work, that ``out_dir`` is a writable folder (created if needed)
    without a demo in it (``report.REPORT_FILES``), unless ``overwrite``. Returns the folder
    and the demo files present. Raises ``checkpoint.OutDirError`` or :class:`DemoExistsError`
    (ValueErrors, one line each)."""
    out = check_writable_dir(out_dir)
    present = [name for name in REPORT_FILES if (out / name).exists()]
    if present and not overwrite:
        raise DemoExistsError(
            f"{out} already holds a demo ({', '.join(present)}); use another folder or "
            "overwrite=True to replace it"
        )
    return out, present


def demo(
    out_dir: str | Path = "runs/demo",
    *,
    epochs: int | None = None,
    smoke: bool = False,
    seed: int = 0,
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """The main job: CE, logit adjustment, a fixed ETF classifier with dot regression and AllNC
    on long-tailed MNIST-1D (step profile, imbalance ratio 100, training signals randomly
    shifted), plus the UFM imbalance sweeps
    with a learned and a fixed ETF classifier; writes ``out_dir/report.html`` and
    ``out_dir/demo.json``.

    ``out_dir`` is checked before any work (:func:`check_demo_out`): writable, and without a
    demo already there unless ``overwrite`` (then the old files are deleted first). Settings
    are ``DEMO`` (``DEMO_SMOKE`` with ``smoke=True``: seconds, for tests); ``epochs``
    overrides theirs. Runs on the CPU. Prints the results table and the findings; returns the
    numbers written to demo.json (``report.report_numbers``).
    """
    out, present = check_demo_out(out_dir, overwrite=overwrite)
    for name in present:
        (out / name).unlink()
    settings = {**(DEMO_SMOKE if smoke else DEMO)}
    if epochs is not None:
        settings["epochs"] = epochs
    start = time.perf_counter()
    data = load_dataset(
        "mnist1d",
        imbalance_ratio=settings["imbalance_ratio"],
        profile="step",
        n_max=settings["n_max"],
        seed=seed,
    )
    print(
        f"demo: {', '.join(label(m) for m in DEMO_METHODS)} on long-tailed mnist1d (step profile,"
        f" imbalance ratio {settings['imbalance_ratio']:g}, counts {data.counts}), "
        f"{settings['epochs']} epochs on the CPU; then the UFM sweeps"
    )
    runs = compare_methods(
        {name: {"method": name} for name in DEMO_METHODS},
        data,
        epochs=settings["epochs"],
        seed=seed,
        device="cpu",
        metrics_every=settings["metrics_every"],
        augment=settings["augment"],
        record_geometry=True,
        progress=progress,
    )
    ratios, steps = settings["ufm_ratios"], settings["ufm_steps"]
    sweeps = {
        "cross-entropy, learned classifier": imbalance_sweep(ratios, steps=steps, seed=seed),
        "fixed ETF classifier": imbalance_sweep(ratios, steps=steps, seed=seed, classifier="etf"),
    }
    config = {
        "data set": f"MNIST-1D, step profile, imbalance ratio {settings['imbalance_ratio']:g}",
        "training counts per class": data.counts,
        "test samples": len(data.test_y),
        "backbone": "cnn1d",
        "epochs": settings["epochs"],
        "augmentation": "random shift by up to 4 positions, every method"
        if settings["augment"]
        else "none",
        "seed": seed,
        "device": "cpu",
        "UFM sweep imbalance ratios (4 classes, step profile)": ratios,
        "smoke run": smoke,
        "wall time (s)": round(time.perf_counter() - start, 1),
    }
    html_path, json_path = write_report(out, runs, sweeps, config=config)
    rows = table_rows({label(name): run for name, run in runs.items()})
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    numbers = json.loads(json_path.read_text(encoding="utf-8"))
    for sentence in numbers["findings"]:
        print("-", sentence)
    print(f"wrote {html_path} (open it in a browser) and {json_path}")
    return numbers
