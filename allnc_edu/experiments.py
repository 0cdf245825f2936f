"""Experiments for notebooks and reports: train methods by name and compare them.

``run_method("allnc", data, epochs=60)`` builds the backbone and the method, trains it with
``train.fit`` and returns its ``records.RunResult``: test accuracy (overall, minority, shot
groups) and the neural-collapse metrics of the last epoch as properties (``result.accuracy``,
``result.mc_means``, ...), and one ``EpochRecord`` per epoch. ``compare_methods`` does it for
several named runs on the same data; ``key_numbers`` keeps each run's JSON-friendly scalars.
Minority classes are ``groups.minority_classes(counts)``: the K - K//2 classes with the fewest
training samples. Tables are ``report.results_table``; figures of runs are in ``plots``
(``simplex_views``, ``runs_slider``, ``epoch_slider``).
"""

from __future__ import annotations

import inspect
import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from .data import LongTailDataset, load_dataset
from .methods import make_method
from .models import build_backbone
from .records import RunResult
from .train import fit

#: The backbone ``run_method`` uses for each data set when none is named.
DEFAULT_BACKBONES = {
    "mnist1d": "cnn1d",
    "gaussian": "mlp",
    "cifar10-lt": "resnet32-ldam",
    "cifar100-lt": "resnet32-ldam",
}

_FIT_OPTIONS = frozenset(inspect.signature(fit).parameters) - {"method", "dataset", "epochs"}


def run_method(
    method: str,
    dataset: LongTailDataset,
    *,
    epochs: int,
    backbone: str | None = None,
    seed: int = 0,
    **options: Any,
) -> RunResult:
    """Train ``method`` (a ``methods.make_method`` name) on ``dataset``; returns its RunResult.

    ``options`` that ``train.fit`` takes (lr, weight_decay, batch_size, metrics_every,
    record_geometry, progress, out_dir, ...) go to ``fit``; the others go to ``make_method``
    (e.g. ``hycon=False`` for "allnc", ``tau`` for "la"). ``backbone`` defaults to
    ``DEFAULT_BACKBONES[dataset.name]``. The backbone and head are initialised from ``seed``
    (which also seeds ``fit``), so the same call gives the same run.
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
    return fit(model, dataset, epochs=epochs, seed=seed, **fit_options)


def compare_methods(
    runs: Mapping[str, Mapping[str, Any]],
    dataset: LongTailDataset,
    *,
    epochs: int,
    **common: Any,
) -> dict[str, RunResult]:
    """Run several named configurations on the same data: ``{name: RunResult}``.

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
    results = {}
    for name, spec in runs.items():
        options = {**common, **{k: v for k, v in spec.items() if k != "method"}}
        results[name] = run_method(spec["method"], dataset, epochs=epochs, **options)
    return results


def key_numbers(results: Mapping[Any, RunResult]) -> dict[Any, dict[str, Any]]:
    """``{name: result.summary()}``: each run's scalars, ready for ``json.dumps``."""
    return {name: result.summary() for name, result in results.items()}


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
