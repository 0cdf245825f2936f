"""Experiments for notebooks and reports: train methods by name and compare them.

``run_method("allnc", data, epochs=60)`` builds the backbone and the method, trains it with
``train.fit`` and returns its ``records.RunResult``: test accuracy (overall, minority, shot
groups) and the neural-collapse metrics of the last epoch as properties (``result.accuracy``,
``result.mc_means``, ...), and one ``EpochRecord`` per epoch. ``compare_methods`` does it for
several named runs on the same data; ``key_numbers`` keeps each run's JSON-friendly scalars.
``evaluate_run`` scores a saved run again on one process (``dataset_for`` and ``method_for``
rebuild its data and its method from its ``records.RunConfig``, ``run_config`` reads it).
Minority classes are ``groups.minority_classes(counts)``: the K - K//2 classes with the fewest
training samples. Tables are ``report.results_table``; figures of runs are in ``plots``
(``simplex_views``, ``runs_slider``, ``epoch_slider``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import pick_device
from ._checks import check_choice
from .checkpoint import CHECKPOINT_NAME, load_checkpoint
from .config import TrainConfig
from .data import DATASETS, SPLITS, LongTailDataset, load_dataset
from .devices import to_device_tensor
from .evaluate import evaluate
from .filelists import FILELIST_DATASETS, FileListDataset
from .methods import make_method
from .models import BACKBONES, build_backbone
from .records import RUN_FILE, EpochRecord, RunConfig, RunResult
from .rundir import run_from_checkpoint
from .train import RUN_OPTIONS, fit

#: What ``run_method`` hands to ``train.fit``; every other option goes to the method.
_FIT_OPTIONS = frozenset({f.name for f in dataclasses.fields(TrainConfig)} | set(RUN_OPTIONS))


def run_method(
    method: str,
    dataset: LongTailDataset,
    *,
    epochs: int | None = None,
    backbone: str | None = None,
    seed: int = 0,
    **options: Any,
) -> RunResult:
    """Train ``method`` (a ``methods.make_method`` name) on ``dataset``; returns its RunResult.

    ``options`` that ``train.fit`` takes (the ``config.TrainConfig`` settings: lr,
    weight_decay, batch_size, metrics_every, progress, ...; and out_dir, resume, ...) go to
    ``fit``; the others go to ``make_method`` (e.g. ``hycon=False`` for "allnc", ``tau`` for
    "la"). ``epochs`` and ``backbone`` default to the data set's (``data.DATASETS``). The
    backbone and head are initialised from ``seed`` (which also seeds ``fit``), so the same
    call gives the same run.
    """
    spec = DATASETS.get(dataset.name)
    name = backbone or (spec.backbone if spec is not None else None)
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
    if epochs is not None:
        fit_options["epochs"] = epochs
    return fit(model, dataset, seed=seed, **fit_options)


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


def dataset_for(
    config: RunConfig,
    *,
    split: str | None = None,
    root: str | os.PathLike | None = None,
    split_dir: str | os.PathLike | None = None,
) -> LongTailDataset | FileListDataset:
    """The data set a run trained on, loaded again from its config: the same name, imbalance
    ratio, profile, head-class size and data seed, with ``split`` (default ``config.split``).

    ``root`` and ``split_dir`` replace the folders the run recorded (``config.data_root``,
    ``config.split_dir``), for data that has moved; split lists that lay in the data folder are
    looked for in the new ``root``. A recorded folder that is gone is an error naming the flag to
    pass (MNIST-1D's optional cache folder is then skipped: the signals are generated again,
    identically).
    """
    split = config.split if split is None else check_choice("split", split, SPLITS)
    if split_dir is None and root is not None and config.split_dir == config.data_root:
        split_dir = root
    extra: dict[str, Any] = {}
    for name, given, recorded, flag in (
        ("root", root, config.data_root, "--data-root"),
        ("split_dir", split_dir, config.split_dir, "--split-dir"),
    ):
        folder = given if given is not None else recorded
        if folder is None:
            continue
        if given is None and not os.path.isdir(folder):
            if config.dataset == "mnist1d":
                continue
            raise ValueError(
                f"the run's data folder {folder} is gone: pass {flag} (or {name}=) where it is now"
            )
        extra[name] = os.fspath(folder)
    if config.dataset in FILELIST_DATASETS:  # the lists fix the counts: no n_max
        if config.image_size is not None:
            extra["image_size"] = config.image_size
    else:
        extra["n_max"] = config.n_max
    seed = config.train.seed if config.data_seed is None else config.data_seed
    return load_dataset(
        config.dataset,
        imbalance_ratio=config.imbalance_ratio,
        profile=config.profile,
        seed=seed,
        split=split,
        **extra,
    )


def method_for(config: RunConfig, dataset: LongTailDataset | FileListDataset) -> nn.Module:
    """The method a run's config describes, freshly initialised: the backbone
    ``config.backbone`` for ``dataset.input_shape`` under ``methods.make_method(config.method,
    ..., **config.method_options)``. Load a checkpoint's ``"model"`` into it for the trained one.
    """
    if config.backbone not in BACKBONES:
        raise ValueError(
            f"the run's backbone {config.backbone!r} is not a models.BACKBONES name, so it cannot "
            f"be rebuilt; known: {', '.join(BACKBONES)}"
        )
    backbone = build_backbone(config.backbone, dataset.input_shape)
    return make_method(
        config.method, backbone, dataset.num_classes, dataset.counts, **config.method_options
    )


def evaluate_run(
    run_dir: str | os.PathLike,
    *,
    split: str | None = None,
    root: str | os.PathLike | None = None,
    split_dir: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    trust_checkpoint: bool = False,
) -> EpochRecord:
    """Score a saved run on one process: its checkpoint's weights on its data, rebuilt from the
    settings the checkpoint records (:func:`dataset_for`, :func:`method_for`), through
    ``evaluate.evaluate`` with the run's autocast setting, so a run scores what its last epoch
    reported. Returns that ``EpochRecord`` (``epoch``: the checkpoint's; no training fields).

    The checkpoint is the run's record; ``run.json`` is its copy (:func:`run_config`: a copy
    that disagrees is refused unless ``trust_checkpoint``). ``split`` defaults to the run's.
    Another split is only for file-list data sets (their training list does not depend on it);
    for the others the validation set is held out of the training pool, so a run can only be
    scored on the split it trained with. Every failure is a ValueError in one line.
    """
    state, config = _checkpoint_and_config(run_dir, trust_checkpoint)
    split = config.split if split is None else check_choice("split", split, SPLITS)
    if split != config.split and config.dataset not in FILELIST_DATASETS:
        raise ValueError(
            f"this {config.dataset} run trained with split={config.split!r}, whose training pool "
            f"depends on the split; it can only be scored on {config.split!r}"
        )
    dataset = dataset_for(config, split=split, root=root, split_dir=split_dir)
    method = method_for(config, dataset)
    ckpt = os.path.join(os.fspath(run_dir), CHECKPOINT_NAME)
    try:
        method.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{ckpt} does not fit the run's {config.method} model: {first}") from None
    dev = pick_device(device)
    tensors = isinstance(dataset, LongTailDataset)  # else image files, streamed by evaluate
    layout = config.train.channels_last and (not tensors or dataset.train_x.ndim == 4)
    method.to(dev, memory_format=torch.channels_last if layout else torch.preserve_format)
    inputs = {}
    if tensors:  # as fit passes them
        inputs = {
            "train_x": to_device_tensor(dataset.train_x, dev, layout),
            "test_x": to_device_tensor(dataset.test_x, dev, layout),
        }
    scores = evaluate(method, dataset, amp=config.train.amp, **inputs)
    return dataclasses.replace(scores, epoch=int(state.get("epoch", 0)))


def run_config(run_dir: str | os.PathLike, *, trust_checkpoint: bool = False) -> RunConfig:
    """The settings a saved run trained with: its checkpoint's, with where the data was
    (``data_root``, ``split_dir``) from a readable ``run.json``, so an edited copy there may
    point at moved data. A ``run.json`` that is missing, unreadable or disagrees with the
    checkpoint in any other field is refused, naming each such field, unless
    ``trust_checkpoint``."""
    return _checkpoint_and_config(run_dir, trust_checkpoint)[1]


def _checkpoint_and_config(run_dir, trust_checkpoint: bool) -> tuple[dict[str, Any], RunConfig]:
    folder = os.fspath(run_dir)
    ckpt = os.path.join(folder, CHECKPOINT_NAME)
    if not os.path.isfile(ckpt):
        what = "a run without its weights" if os.path.exists(os.path.join(folder, RUN_FILE)) else (
            "no run")  # fmt: skip
        raise ValueError(f"no {CHECKPOINT_NAME} in {folder} ({what}): train with --out DIR first")
    state = load_checkpoint(ckpt)
    saved = run_from_checkpoint(state, ckpt).config
    path = os.path.join(folder, RUN_FILE)
    hint = (
        "the checkpoint holds the settings the run trained with: pass trust_checkpoint=True to "
        "use them, or train it with resume=True (which rewrites run.json from it)"
    )
    try:
        copy = RunConfig.from_dict(json.loads(Path(path).read_text(encoding="utf-8"))["config"])
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as err:
        if trust_checkpoint:
            return state, saved
        raise ValueError(f"{path} is missing or unreadable ({err}); {hint}") from None
    differ = copy.differences(saved)
    if differ and not trust_checkpoint:
        fields = "; ".join(f"{k}: run.json {a!r}, checkpoint {b!r}" for k, (a, b) in differ.items())
        raise ValueError(f"{path} disagrees with {CHECKPOINT_NAME} ({fields}); {hint}")
    moved = {k: getattr(copy, k) for k in ("data_root", "split_dir")}
    return state, dataclasses.replace(saved, **moved)
