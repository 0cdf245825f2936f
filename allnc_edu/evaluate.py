"""Evaluation: accuracy on the training and test sets and the NC metrics of the training set.

:func:`evaluate` runs one eval-mode forward over each set and returns a ``records.EpochRecord``
holding what it measured (the training fields, loss and time, are left empty): ``fit`` fills
those in, ``experiments.evaluate_run`` returns it as it is. The NC statistics stream in float64
(``metrics.NCAccumulator``), sharded over the ranks of a process group and merged exactly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import torch
from torch import nn

from . import distributed
from .data import LongTailDataset
from .devices import autocast_for, to_device_tensor
from .filelists import FileListDataset
from .groups import accuracy_from_counts, class_hits, mean_over, minority_classes
from .metrics import NCAccumulator
from .records import EpochRecord
from .stream import eval_loader

#: Rows per float64 NC-accumulator update in ``evaluate`` (bounds host memory, not the result).
_NC_CHUNK = 16_384


@torch.no_grad()
def evaluate(
    method: nn.Module,
    dataset: LongTailDataset | FileListDataset,
    *,
    train_x: torch.Tensor | None = None,
    test_x: torch.Tensor | None = None,
    batch_size: int = 1024,
    nc: bool = True,
    geometry: bool = False,
    amp: bool = True,
    workers: int | None = None,
) -> EpochRecord:
    """Accuracy on the unaugmented training and test sets, and NC metrics of the training set.

    One eval-mode forward over each set, with no host sync until both are queued. The test set
    runs under the training autocast (:func:`autocast_for` with ``amp``, as ``fit`` passes it):
    it only yields predictions. The training set's forward serves both its accuracy and the NC
    metrics; with ``nc`` it runs in float32, since its features (N, d) feed the float64
    accumulator (``metrics.NCAccumulator``) and bfloat16 would put a rounding floor under NC1
    (without ``nc`` it runs under autocast too). NC4 reuses the same features. The classifier
    is the inference head, ``method.classifier()``; minority classes are
    ``groups.minority_classes(counts)``. ``train_x`` and ``test_x`` may pass copies of the
    inputs already on the method's device (as ``fit`` does); by default the dataset's tensors
    are moved there (channels_last when they are images).

    Returns an ``EpochRecord`` of what it measured: ``train_acc``, the test accuracies
    (``accuracy``, ``minority_accuracy``, ``majority_accuracy``, ``many``/``medium``/``few``,
    ``per_class`` (K,)) and ``nc`` (``NCMetrics.as_dict()``; None when ``nc=False``); its
    training fields (epoch, loss, time) are left empty. With ``geometry=True`` (and ``nc``) its
    ``geometry`` holds ``{"class_means": (K, d), "classifier": (K, d)}`` as nested lists: the
    training set's class means and the inference classifier, for pictures of the simplex.

    Image-file data sets (``filelists.FileListDataset``) stream from disk (``stream``, with
    ``workers`` decoding processes).

    Under a ``torch.distributed`` process group every rank must call it with the same weights:
    each evaluates every N-th batch; accuracies come from all-reduced per-class counts (exact)
    and the NC statistics from the ranks' accumulators merged in rank order
    (``NCAccumulator.merge``), so every rank returns the single-process result up to float64
    rounding.
    """
    device = next(method.parameters()).device
    train_batches = _eval_batches(dataset, "train", train_x, device, batch_size, workers)
    test_batches = _eval_batches(dataset, "test", test_x, device, batch_size, workers)
    autocast = autocast_for(device, amp)
    was_training = method.training
    method.eval()
    try:
        weight, bias = method.classifier()
        with contextlib.nullcontext() if nc else autocast:
            train_out = [_predict(method, xb, yb, nc) for xb, yb in train_batches]
        with autocast:
            test_out = [_predict(method, xb, yb, False) for xb, yb in test_batches]
    finally:
        method.train(was_training)
    k = dataset.num_classes
    train_y = _cat([yb for _, _, yb in train_out], torch.long)
    train_hits = _hits([(pred, yb) for pred, _, yb in train_out], k)
    test_hits = _hits([(pred, yb) for pred, _, yb in test_out], k)
    train_acc = train_hits[0].sum().item() / train_hits[1].sum().item()
    test = accuracy_from_counts(*test_hits, dataset.counts)
    minority = minority_classes(dataset.counts)
    if not nc:
        return _scores(train_acc, test, None, None, minority)
    dim = int(weight.shape[1])
    features = _cat([h for _, h, _ in train_out], torch.float32, dim)
    acc = NCAccumulator(k, dim)
    chunks = list(zip(features.split(_NC_CHUNK), train_y.split(_NC_CHUNK), strict=True))
    for h, y in chunks:
        acc.update(h, y)
    if distributed.is_initialized():
        acc = _merge_ranks(acc)
    for h, y in chunks:
        acc.update_agreement(h, y, weight, bias)
    acc.reduce_agreement(distributed.all_reduce_sum)
    metrics = acc.compute(weight, bias, minority=minority).as_dict()
    shapes = None
    if geometry:
        shapes = {"class_means": acc.means.tolist(),
                  "classifier": weight.detach().double().cpu().tolist()}  # fmt: skip
    return _scores(train_acc, test, metrics, shapes, minority)


def _scores(
    train_acc: float, test: dict, nc: dict | None, geometry: dict | None, minority: list[int]
) -> EpochRecord:
    """An evaluation as an ``EpochRecord``: the accuracies by group and the NC metrics."""
    per_class = test["per_class"]
    majority = [c for c in range(len(per_class)) if c not in minority]
    return EpochRecord(
        train_acc=train_acc,
        accuracy=test["overall"],
        minority_accuracy=mean_over(per_class, minority),
        majority_accuracy=mean_over(per_class, majority),
        many=test["many"],
        medium=test["medium"],
        few=test["few"],
        per_class=per_class,
        nc=nc,
        geometry=geometry,
    )


def _predict(
    method: nn.Module, x: torch.Tensor, y: torch.Tensor, features: bool
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """One batch's (B,) predictions, (B, d) float32 features (if asked; else None) and labels,
    left on the device (no host sync)."""
    out = method(x)
    return out.logits.argmax(1), out.features.float() if features else None, y


def _eval_batches(
    dataset: LongTailDataset | FileListDataset,
    part: str,
    x: torch.Tensor | None,
    device: torch.device,
    batch_size: int,
    workers: int | None = None,
) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """This rank's unaugmented ``(x, y)`` batches of the ``part`` ("train" or "test") set.

    Tensor data sets are cut into batches of ``batch_size`` in data order and rank r of N takes
    batches r, r + N, ...: each batch is the same computation as in a single process. ``x``
    may pass the inputs already on ``device``. Image-file data sets stream
    (``stream.eval_loader``, this rank's stride of every batch, ``workers`` decoding).
    """
    r, n = distributed.rank(), distributed.world_size()
    if isinstance(dataset, FileListDataset):
        return eval_loader(dataset, part, batch_size=batch_size, device=device, rank=r,
                           world_size=n, workers=workers)  # fmt: skip
    if x is None:
        x = to_device_tensor(getattr(dataset, f"{part}_x"), device, channels_last=True)
    y = getattr(dataset, f"{part}_y")
    return list(zip(x.split(batch_size), y.split(batch_size), strict=True))[r::n]


def _cat(parts: list[torch.Tensor], dtype: torch.dtype, dim: int | None = None) -> torch.Tensor:
    """Concatenate, then copy to the CPU; an empty (0,) or (0, dim) tensor for a rank without
    batches."""
    if not parts:
        return torch.empty((0,) if dim is None else (0, dim), dtype=dtype)
    return torch.cat(parts).cpu().to(dtype)


def _hits(pairs: list[tuple[torch.Tensor, torch.Tensor]], k: int) -> tuple[torch.Tensor, ...]:
    """Per-class (K,) correct and total counts of (predictions, labels) pairs, summed over
    the ranks (exact integers)."""
    pred = _cat([p for p, _ in pairs], torch.long)
    y = _cat([t for _, t in pairs], torch.long)
    correct, total = class_hits(pred, y, k)
    return distributed.all_reduce_sum(correct), distributed.all_reduce_sum(total)


def _merge_ranks(acc: NCAccumulator) -> NCAccumulator:
    """Every rank's accumulator merged in rank order: the same, deterministic statistics on
    every rank, those of one accumulator fed the whole set up to float64 rounding."""
    merged = NCAccumulator(acc.num_classes, acc.dim, within=acc.within)
    gathered = [distributed.all_gather_tensors(t) for t in acc.state()]
    for part in zip(*gathered, strict=True):
        merged.merge(part)
    return merged
