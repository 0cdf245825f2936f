"""The training loop: one function, ``fit``, readable top to bottom.

In the style of cifar10-airbench and nanoGPT: the whole training set lives on the device as one
tensor, random crop and flip run there on whole batches, the model runs in channels_last with
bfloat16 autocast, and the optimiser is SGD with momentum on a per-step cosine schedule (with an
optional linear warm-up). After each epoch (every ``metrics_every`` epochs, and always the last)
it measures train and test accuracy (overall and many/medium/few shot groups) and the neural-
collapse metrics of the training set, streamed in float64 over eval-mode features without
augmentation. With ``out_dir`` a checkpoint (tensors and plain values only) and the run's JSON
(``records.RunResult.save``: run.json, history.json) are written atomically every epoch;
``resume=True`` continues the same run to the same result, and refuses a run whose settings
differ. ``fit`` returns a typed ``records.RunResult``; its numbers are those of the last epoch.

The public API is ``__all__``: ``bench`` and the notebooks use nothing else.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
import platform
import random
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from . import __version__, distributed, pick_device
from ._checks import check_scalar, check_seed
from .checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    OutDirError,
    check_writable_dir,
    clean_stale_tmp,
    hold_lock,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_json,
)
from .data import LongTailDataset
from .filelists import FileListDataset
from .groups import accuracy_from_counts, class_hits, mean_over, minority_classes, shot_groups
from .loader import DeviceLoader, epoch_seed, num_batches, shard_drop_last
from .metrics import NCAccumulator
from .progress import RunBar, run_bar
from .records import HISTORY_FILE, RUN_FILE, EpochRecord, RunConfig, RunResult
from .stream import StreamLoader, eval_loader

__all__ = [
    "DEFAULTS",
    "RUN_FILES",
    "DifferentRunError",
    "DivergenceError",
    "RunExistsError",
    "TrainingInterrupted",
    "autocast_for",
    "check_out_dir",
    "cosine_schedule",
    "epoch_scores",
    "evaluate",
    "fit",
    "run_from_checkpoint",
    "seed_everything",
    "to_device_tensor",
    "train_epoch",
    "train_step",
]

#: Batch size, learning rate and evaluation cadence (``metrics_every``) per dataset when ``fit``
#: is not given them, and the epochs the command line uses by default (CIFAR: the LT recipe).
#: The cadence keeps evaluation under 15% of a default run's wall time on a CPU: one evaluation
#: measured 0.2-0.9 training epochs on CIFAR-10-LT (20 of 200 epochs: at most 9%) and about 0.2
#: on MNIST-1D (10 of 20 epochs: about 10%), on a shared 2-core CPU in float32.
DEFAULTS: dict[str, dict[str, float]] = {
    "cifar10-lt": {"batch_size": 64, "lr": 0.01, "epochs": 200, "metrics_every": 10},
    "cifar100-lt": {"batch_size": 64, "lr": 0.01, "epochs": 200, "metrics_every": 10},
    "mnist1d": {"batch_size": 128, "lr": 0.1, "epochs": 20, "metrics_every": 2},
    "gaussian": {"batch_size": 128, "lr": 0.1, "epochs": 20, "metrics_every": 1},
    # The image-file data sets' recipes (global batch; sources in docs/recipes.md).
    "imagenet-lt": {"batch_size": 256, "lr": 0.1, "epochs": 90, "metrics_every": 10,
                    "weight_decay": 5e-4},
    "inat2018": {"batch_size": 256, "lr": 0.1, "epochs": 90, "metrics_every": 10,
                 "weight_decay": 1e-4},
    "places-lt": {"batch_size": 256, "lr": 0.1, "epochs": 90, "metrics_every": 10,
                  "weight_decay": 5e-4},
}  # fmt: skip

#: Files of a run in ``out_dir``.
RUN_FILES = (CHECKPOINT_NAME, RUN_FILE, HISTORY_FILE)
#: Version of the checkpoint layout.
CHECKPOINT_FORMAT = 1


class RunExistsError(ValueError):
    """``out_dir`` already holds a run and neither ``resume`` nor ``overwrite`` was asked for."""


class DifferentRunError(ValueError):
    """``resume=True`` found a checkpoint of a run whose settings differ from this one."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or the SIGTERM with which ``torchrun`` stops the other processes when one fails)
    during training: ``epoch`` is the epoch that was running, ``kept`` the epoch the checkpoint
    holds (None without one), ``checkpoint`` its path (None without ``out_dir``);
    ``exit_status`` is the shell's for the signal (130 for Ctrl-C)."""

    def __init__(self, epoch: int, kept: int | None, checkpoint: Path | None, cause: str = ""):
        self.epoch, self.kept, self.checkpoint = epoch, kept, checkpoint
        if checkpoint is None:
            after = "no checkpoint was kept (pass out_dir to keep one)"
        elif kept is None:
            after = "no epoch had finished, so there is no checkpoint yet"
        else:
            after = f"the last checkpoint holds epoch {kept}; continue with resume=True"
        by = f" by {cause}" if cause else ""
        super().__init__(f"interrupted in epoch {epoch}{by}; {after}")


class DivergenceError(RuntimeError):
    """Training produced a NaN or Inf loss; ``epoch`` and ``step`` (both 1-based) say where."""

    def __init__(self, epoch: int, step: int, loss: float, checkpoint: Path | None):
        self.epoch, self.step, self.loss, self.checkpoint = epoch, step, loss, checkpoint
        where = f"epoch {epoch}, step {step}"
        kept = (
            f"; the last good checkpoint is kept at {checkpoint}"
            if checkpoint is not None and checkpoint.exists()
            else ""
        )
        super().__init__(
            f"training diverged: loss = {loss} at {where}{kept}. "
            "Try a smaller learning rate or a warm-up (warmup_epochs)."
        )


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) in one call."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (seeds the legacy global RNG on purpose)
    torch.manual_seed(seed)


def cosine_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step learning-rate factor: linear warm-up from ~0 to 1, then cosine decay to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def autocast_for(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast where the hardware supports it: CUDA cards with bfloat16, and CPUs
    whose oneDNN kernels run it (AVX-512 and newer); a no-op otherwise (float32). On older CPUs
    bfloat16 is slower than float32 (measured: a ResNet-32 forward 4x slower, AVX2-only EPYC)."""
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
    else:
        supported = device.type == "cpu" and _cpu_has_native_bf16()
    if amp and supported:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@functools.cache
def _cpu_has_native_bf16() -> bool:
    """Whether oneDNN has bfloat16 kernels for this CPU (AVX-512 and newer; not AVX2)."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check()) if check is not None else True


def to_device_tensor(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """Move inputs to the device once, as channels_last when they are images (4-D)."""
    x = x.to(device, non_blocking=True)
    if channels_last and x.ndim == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def train_step(
    method: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    progress: float,
    epoch: int,
    balanced_batch: tuple[torch.Tensor, torch.Tensor] | None,
    autocast: contextlib.AbstractContextManager,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """One SGD step on ``method.loss``; returns the detached loss (no host sync) and its parts."""
    with autocast:
        loss, parts = method.loss(
            x, y, progress=progress, epoch=epoch, balanced_batch=balanced_batch
        )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()
    return loss.detach(), parts


def train_epoch(
    method: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loader: DeviceLoader,
    balanced: DeviceLoader | None,
    *,
    epoch: int,
    total_steps: int,
    autocast: contextlib.AbstractContextManager,
    progress: RunBar | None = None,
) -> tuple[torch.Tensor, dict[str, float], int]:
    """One epoch of ``train_step`` over ``loader`` (``epoch`` 1-based; schedule steps so far are
    read from ``scheduler``), with a class-balanced batch from ``balanced`` at every step when
    given; ``progress`` is the run's bar, which shows this epoch's steps. Returns the per-step
    losses (steps,), left on the device, the epoch-mean loss parts (the method's ``loss``
    entry, a copy of the total, left out) and the number of samples drawn (balanced ones
    included)."""
    steps = len(loader)
    losses = torch.empty(steps, device=loader.device)
    sums: dict[str, Any] = {}
    extra = iter(balanced) if balanced is not None else None
    seen = 0
    method.train()
    run = progress if progress is not None else RunBar(steps, mode="off")
    with run.step_bar(steps) as bar:
        for i, (x, y) in enumerate(loader):
            batch = next(extra) if extra is not None else None
            loss, parts = train_step(
                method, optimizer, scheduler, x, y,
                progress=min(1.0, scheduler.last_epoch / max(1, total_steps - 1)),
                epoch=epoch - 1,
                balanced_batch=batch,
                autocast=autocast,
            )  # fmt: skip
            seen += len(y) + (len(batch[1]) if batch is not None else 0)
            losses[i] = loss
            for k, v in parts.items():
                if k != "loss":
                    sums[k] = sums.get(k, 0.0) + (v.detach() if torch.is_tensor(v) else v)
            bar.update()
    return losses, {k: float(v) / steps for k, v in sums.items()}, seen


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
) -> dict[str, Any]:
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
    are moved there (channels_last when they are images). Returns
    ``{"train_acc": float, "test": groups.accuracy_by_group(...), "nc": NCMetrics.as_dict()``
    (None when ``nc=False``)``}``. With ``geometry=True`` (and ``nc``) it also holds
    ``"geometry": {"class_means": (K, d), "classifier": (K, d)}`` as nested lists: the training
    set's class means and the inference classifier, for pictures of the simplex over training.

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
    result: dict[str, Any] = {"train_acc": train_acc, "test": test, "nc": None}
    if nc:
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
        minority = minority_classes(dataset.counts)
        result["nc"] = acc.compute(weight, bias, minority=minority).as_dict()
        if geometry:
            result["geometry"] = {
                "class_means": acc.means.tolist(),
                "classifier": weight.detach().double().cpu().tolist(),
            }
    return result


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


def fit(
    method: nn.Module,
    dataset: LongTailDataset | FileListDataset,
    *,
    epochs: int,
    batch_size: int | None = None,
    lr: float | None = None,
    momentum: float = 0.9,
    weight_decay: float = 5e-3,
    warmup_epochs: float = 0.0,
    augment: bool | None = None,
    device: str | torch.device = "auto",
    amp: bool = True,
    channels_last: bool = True,
    compile: bool = False,
    seed: int = 0,
    metrics_every: int | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    label: str | None = None,
    record_geometry: bool = False,
    sync_bn: bool = False,
    workers: int | None = None,
) -> RunResult:
    """Train ``method`` (from ``methods.make_method``) on ``dataset`` and measure every epoch.

    Args:
        method: the training recipe (a ``method_base.Method``).
        dataset: the long-tailed data: tensors (``data.LongTailDataset``, held on the device)
            or image files (``filelists.FileListDataset``, streamed by ``stream``).
        epochs: length of the run; the cosine schedule spans all of it.
        batch_size: default per dataset (``DEFAULTS``; CIFAR: 64 as in the LT recipe).
        lr: peak learning rate, default per dataset (``DEFAULTS``; CIFAR: 0.01).
        momentum: SGD momentum, in [0, 1).
        weight_decay: SGD weight decay, >= 0.
        warmup_epochs: linear learning-rate warm-up (may be fractional), then cosine decay to 0.
        augment: on the device, images: random crop (padding 4) and horizontal flip; signals
            (MNIST-1D): random shift by up to 4 positions, zero-filled. Default on for images,
            off for signals.
        device: "auto" picks CUDA, then Apple MPS, then CPU.
        amp: bfloat16 autocast where the hardware supports it (``autocast_for``).
        channels_last: channels_last memory format for image models.
        compile: ``torch.compile`` the backbone (worth it on a GPU for long runs).
        seed: seeds the global RNGs (unless resuming) and each epoch's shuffling.
        metrics_every: evaluate every this many epochs (the last epoch always is); default
            per dataset, ``DEFAULTS[name]["metrics_every"]`` (CIFAR 10, MNIST-1D 2).
        out_dir: if given, checked writable first, then ``checkpoint.pt``, ``run.json`` and
            ``history.json`` are written there (atomically) after every epoch.
        resume: continue the run in ``out_dir`` (the same run, bit for bit on the CPU); starts
            afresh when there is no checkpoint yet. Refused, naming each differing setting,
            when the checkpoint's ``RunConfig`` differs from this call's (cosmetic fields
            aside).
        overwrite: replace a run already in ``out_dir`` (without it, and without ``resume``,
            an existing run is refused: :class:`RunExistsError`).
        stop_after: stop after this epoch (time-boxed sessions); resume later to finish.
        progress: show a progress bar (terminal or notebook).
        label: the progress bar's name (default: "<method> on <data set>").
        record_geometry: also keep, on evaluated epochs, the training set's class means and the
            inference classifier, (K, d) each (``EpochRecord.geometry``).
        sync_bn: convert BatchNorm to ``nn.SyncBatchNorm`` (statistics over the global batch;
            CUDA only). Without it each rank normalises by its share's statistics, and rank 0's
            running statistics are broadcast before every evaluation and checkpoint.
        workers: decoding processes per rank for image-file data sets (``stream``; default
            ``stream.default_workers()``); ignored for tensor data sets.

    Data parallel: under a ``torch.distributed`` process group (``torchrun``; see
    ``distributed.init_from_env``) every rank calls ``fit`` with the same arguments.
    ``batch_size`` is the global batch: rank r of N trains on ``batch[r::N]`` of every global
    batch (``loader.rank_share``), so the steps per epoch, the learning-rate schedule and the
    samples of each step are those of one process, and ``lr`` is per global batch (the same
    recipe whatever N; to train with a larger global batch, scale ``lr`` linearly with it,
    Goyal et al. 2017). Gradients are averaged by ``DistributedDataParallel``; AllNC's class-
    mean bank and P2P's batch means are all-reduced (``losses.ClassMeanBank``), while HyCon's
    instance-level negatives are the rank's own share of the batch. Only rank 0 writes files
    and shows the progress bar; every rank reads the checkpoint on resume (several nodes need
    a shared ``out_dir``); ``world_size`` is recorded, and a resume needs the same one. Each
    rank's loss is weighted by its share of the step's samples, so the recorded loss is the
    global batch's (its parts are plain means over the ranks).

    Returns:
        A :class:`records.RunResult`: one ``EpochRecord`` per epoch; its summary numbers are
        the last epoch's, never a checkpoint picked on the test set.

    Raises:
        ValueError: bad settings, each in one line (:class:`RunExistsError`,
            :class:`DifferentRunError`, ``checkpoint.CheckpointError`` and
            ``checkpoint.OutDirError`` among them).
        DivergenceError: a NaN or Inf loss; the last good checkpoint is kept.
    """
    defaults = DEFAULTS.get(dataset.name, {"batch_size": 64, "lr": 0.01})
    batch_size = batch_size if batch_size is not None else int(defaults["batch_size"])
    lr = lr if lr is not None else defaults["lr"]
    metrics_every = metrics_every if metrics_every is not None else defaults.get("metrics_every", 1)
    epochs, batch_size, lr, metrics_every = _validate(
        epochs, batch_size, lr, momentum, weight_decay, warmup_epochs, metrics_every
    )
    if resume and out_dir is None:
        raise ValueError("resume=True needs out_dir, the folder holding the checkpoint")
    if stop_after is not None:
        stop_after = check_scalar("stop_after", stop_after, kind=int, low=1)
    world = distributed.world_size()
    if batch_size < 2 * world:
        raise ValueError(f"batch_size {batch_size} (global) gives some of the {world} ranks "
                         "fewer than 2 samples per step; use at least 2 per rank")  # fmt: skip
    sync_bn = check_scalar("sync_bn", sync_bn, kind=bool)
    images = len(dataset.input_shape) == 3
    augment = images if augment is None else check_scalar("augment", augment, kind=bool)
    augmentation = {3: "crop_flip", 2: "shift"}.get(len(dataset.input_shape))
    if augment and augmentation is None:
        raise ValueError(f"augment needs images (C, H, W) or signals (C, L), not inputs of "
                         f"shape {tuple(dataset.input_shape)}")  # fmt: skip
    dev = pick_device(device)
    if world > 1 and dev.type == "cuda" and dev.index is None:  # this rank's GPU
        dev = torch.device("cuda", torch.cuda.current_device())
    if sync_bn and dev.type != "cuda":
        raise ValueError(f"sync_bn needs CUDA (PyTorch's SyncBatchNorm), not {dev.type}")
    channels_last = channels_last and images
    config = RunConfig(
        dataset=dataset.name,
        method=getattr(method, "name", "") or type(method).__name__,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        imbalance_ratio=float(dataset.imbalance_ratio),
        profile=dataset.profile,
        n_max=max(dataset.counts),
        data_seed=getattr(dataset, "seed", None),
        backbone=_backbone_name(method),
        method_options=dict(getattr(method, "options", {})),
        momentum=float(momentum),
        weight_decay=float(weight_decay),
        warmup_epochs=float(warmup_epochs),
        amp=check_scalar("amp", amp, kind=bool),
        compile=check_scalar("compile", compile, kind=bool),
        channels_last=bool(channels_last),
        augment=augment,
        metrics_every=metrics_every,
        record_geometry=check_scalar("record_geometry", record_geometry, kind=bool),
        seed=check_seed(seed),
        device=str(dev),
        progress=bool(progress),
        world_size=world,
        sync_bn=sync_bn,
        split=getattr(dataset, "split", "test"),
        image_size=getattr(dataset, "image_size", None),
        data_root=_str_or_none(getattr(dataset, "root", None)),
        split_dir=_str_or_none(getattr(dataset, "split_dir", None)),
    )
    with contextlib.ExitStack() as held:  # the run folder's lock, for the whole run
        out = distributed.main_first(
            lambda: _prepare_out_dir(out_dir, resume=resume, overwrite=overwrite, held=held)
        )
        if out is None and out_dir is not None:  # the other ranks read the checkpoint
            out = Path(out_dir)
        return _train(method, dataset, config, out=out, dev=dev, resume=resume,
                      stop_after=stop_after, label=label, workers=workers)  # fmt: skip


def _train(
    method: nn.Module,
    dataset: LongTailDataset | FileListDataset,
    config: RunConfig,
    *,
    out: Path | None,
    dev: torch.device,
    resume: bool,
    stop_after: int | None,
    label: str | None,
    workers: int | None,
) -> RunResult:
    """``fit``'s loop, its settings checked and in ``config``, its run folder prepared."""
    epochs, batch_size, seed = config.epochs, config.batch_size, config.seed
    world, rank = config.world_size, distributed.rank()
    channels_last, augment = config.channels_last, config.augment
    streamed = isinstance(dataset, FileListDataset)  # else tensors held on the device
    augmentation = {3: "crop_flip", 2: "shift"}.get(len(dataset.input_shape))
    writes = distributed.is_main()

    # Data on the device, once; a fresh loader per epoch seeded by (seed, epoch) makes resume exact.
    method.to(dev, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    if config.sync_bn:
        nn.SyncBatchNorm.convert_sync_batchnorm(method)
    x = y = test_x = None
    if not streamed:
        x, y = to_device_tensor(dataset.train_x, dev, channels_last), dataset.train_y.to(dev)
        test_x = to_device_tensor(dataset.test_x, dev, channels_last)
    # A last global batch that leaves a rank a single sample (or none) would break BatchNorm.
    drop_last = shard_drop_last(len(dataset.train_y), batch_size, world)

    def loader(sampling: str, q: float, seed: int) -> DeviceLoader | StreamLoader:
        """One epoch's loader: this rank's share of every global batch."""
        kw = dict(sampling=sampling, q=q, seed=seed, drop_last=drop_last, rank=rank,
                  world_size=world, device=dev)  # fmt: skip
        if streamed:
            return StreamLoader(
                dataset.train_files, dataset.train_y, batch_size, train=augment,
                image_size=dataset.image_size, root=dataset.root, mean=dataset.mean,
                std=dataset.std, workers=workers, channels_last=channels_last, **kw,
            )  # fmt: skip
        return DeviceLoader(x, y, batch_size, augment=augmentation if augment else None, **kw)

    def loaders(epoch: int):
        main = loader("instance", 1.0, epoch_seed(seed, epoch))
        if not getattr(method, "needs_balanced_batch", False):
            return main, None
        q = getattr(method, "balanced_q", 1.0)
        return main, loader("balanced", q, epoch_seed(seed, epoch, balanced=True))

    steps_per_epoch = num_batches(len(dataset.train_y), batch_size, drop_last)
    total_steps = epochs * steps_per_epoch
    params = [p for p in method.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    warmup_steps = round(config.warmup_epochs * steps_per_epoch)
    scheduler = cosine_schedule(optimizer, total_steps, warmup_steps)

    ckpt = out / CHECKPOINT_NAME if out is not None else None
    result = RunResult(
        config=config,
        history=[],
        counts=list(dataset.counts),
        num_classes=dataset.num_classes,
        minority=minority_classes(dataset.counts),
        shot_groups=shot_groups(dataset.counts),
        provenance=_provenance(dev),
        out_dir=out,
    )
    written: list[Path] = []
    if ckpt is not None and resume and ckpt.exists():
        state = load_checkpoint(ckpt)
        saved = run_from_checkpoint(state, ckpt)
        _check_same_run(saved.config, config, ckpt)
        _check_same_model(state["model"], method, ckpt)
        method.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        result.history, result.samples_seen = saved.history, saved.samples_seen
        for key in ("started", "finished"):
            result.provenance[key] = saved.provenance.get(key)
        if writes:
            written += _repair_run_files(out, state)
    else:
        seed_everything(seed)
    if config.compile:
        _compile_backbone(method)
    stepper = _DataParallel.wrap(method, dev) if distributed.is_initialized() else method

    autocast = autocast_for(dev, config.amp)
    last = epochs if stop_after is None else min(epochs, stop_after)
    desc = label or f"{config.method} on {dataset.name}"
    shown = config.progress and writes
    kept = len(result.history) if written or (ckpt is not None and ckpt.exists()) else None
    epoch = len(result.history) + 1  # the epoch running when an interruption comes
    try:
        with run_bar(epochs, done=len(result.history), desc=desc, enabled=shown) as bar:
            for epoch in range(len(result.history) + 1, last + 1):
                t0 = time.perf_counter()
                main, balanced = loaders(epoch)
                losses, parts, samples = train_epoch(
                    stepper, optimizer, scheduler, main, balanced, epoch=epoch,
                    total_steps=total_steps, autocast=autocast, progress=bar,
                )  # fmt: skip
                if distributed.is_initialized():
                    losses, parts, samples = _over_ranks(losses, parts, samples)
                    distributed.broadcast_buffers(method)  # evaluate and save rank 0's
                finite = torch.isfinite(losses)  # one host sync per epoch, not one per step
                if not finite.all():
                    bad = int((~finite).nonzero()[0])
                    raise DivergenceError(epoch, bad + 1, losses[bad].item(), ckpt)
                train_s = time.perf_counter() - t0
                measured: dict[str, Any] = {}
                if epoch % config.metrics_every == 0 or epoch == last:
                    ev = evaluate(method, dataset, train_x=x, test_x=test_x,
                                  geometry=config.record_geometry, amp=config.amp,
                                  workers=workers)  # fmt: skip
                    measured = epoch_scores(ev, result.minority)
                record = EpochRecord(
                    epoch=epoch,
                    lr=scheduler.get_last_lr()[0],
                    loss=losses.mean().item(),
                    loss_parts=parts,
                    train_s=train_s,
                    samples=samples,
                    samples_per_s=samples / train_s,
                    **measured,
                )
                result.history.append(record)
                result.samples_seen += samples
                result.provenance["finished"] = _now()
                if ckpt is not None and writes:
                    save_checkpoint(ckpt, {
                        "format": CHECKPOINT_FORMAT, "epoch": epoch,
                        "run": json.dumps(result.run_dict()),
                        "history": json.dumps([r.as_dict() for r in result.history]),
                        "model": method.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "rng": rng_state(),
                    })  # fmt: skip
                    kept = epoch
                    written += [ckpt, *result.save(out)]
                bar.update(_postfix(record))
    except KeyboardInterrupt as err:
        stop = TrainingInterrupted(epoch, kept, ckpt, cause=str(err))
        stop.exit_status = getattr(err, "exit_status", 130)
        raise stop from None
    except RuntimeError as err:
        if not distributed.lost_peer(err):
            raise
        distributed.stopping()
        why = f"the loss of another process of the run: {distributed.first_sentence(err)}"
        stop = TrainingInterrupted(epoch, kept, ckpt, cause=why)
        stop.exit_status = 1
        raise stop from None
    result.written = tuple(dict.fromkeys(written))
    return result


def _repair_run_files(out: Path, state: dict[str, Any]) -> list[Path]:
    """Rewrite run.json and history.json from the checkpoint's own copies where they are
    missing, unreadable or disagree with it (a run stopped between its writes), printing one
    line per file; returns the files rewritten."""
    repaired = []
    for name, text in ((RUN_FILE, state["run"]), (HISTORY_FILE, state["history"])):
        path, truth = out / name, json.loads(text)
        try:
            agrees = json.loads(path.read_text(encoding="utf-8")) == truth
            why = None if agrees else "disagreed with it"
        except FileNotFoundError:
            why = "was missing"
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            why = "was unreadable"
        if why is not None:
            write_json(path, truth)
            repaired.append(path)
            print(f"repaired {path} from {CHECKPOINT_NAME} (epoch {state['epoch']}): it {why}",
                  file=sys.stderr)  # fmt: skip
    return repaired


def epoch_scores(ev: dict[str, Any], minority: list[int]) -> dict[str, Any]:
    """The ``records.EpochRecord`` fields of an :func:`evaluate` result (``train_acc``,
    ``accuracy``, ``minority_accuracy``, ..., ``nc``, ``geometry``), under their names."""
    test = ev["test"]
    per_class = test["per_class"]
    majority = [c for c in range(len(per_class)) if c not in minority]
    return {
        "train_acc": ev["train_acc"],
        "accuracy": test["overall"],
        "minority_accuracy": mean_over(per_class, minority),
        "majority_accuracy": mean_over(per_class, majority),
        "many": test["many"],
        "medium": test["medium"],
        "few": test["few"],
        "per_class": per_class,
        "nc": ev["nc"],
        "geometry": ev.get("geometry"),
    }


#: DDP's switch for not broadcasting buffers at every forward (renamed in recent PyTorch).
_NO_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    else {"broadcast_buffers": False}
)


class _DataParallel(DistributedDataParallel):
    """``DistributedDataParallel`` around a method's ``loss``: DDP synchronises the gradients of
    what runs through its forward, so the forward is ``method.loss`` and ``loss`` calls it.

    ``find_unused_parameters`` is the method's ``unused_parameters`` (AllNC: True when a
    component may leave parameters without a gradient in a step, e.g. ``defer`` > 0 keeps its
    projection head idle); the other recipes use every parameter in every step. Buffers are
    not broadcast at every step (BatchNorm statistics stay per rank; ``fit`` broadcasts rank
    0's before evaluating).
    """

    @classmethod
    def wrap(cls, method: nn.Module, device: torch.device) -> _DataParallel:
        return cls(
            _Loss(method),
            device_ids=[device] if device.type == "cuda" else None,
            find_unused_parameters=bool(getattr(method, "unused_parameters", False)),
            **_NO_BUFFER_SYNC,
        )

    def loss(self, x: torch.Tensor, y: torch.Tensor, **kwargs: Any):
        """The method's loss on this rank's share, scaled by N b_r / B (b_r samples here, B in
        the step's global batch): DDP's average of the ranks' gradients is then the gradient
        of the global batch's mean loss even when a batch splits unevenly, and the gradient
        of the all-reduced P2P stays exact (sum_r N b_r / B = N)."""
        loss, parts = self(x, y, **kwargs)
        mine = torch.tensor(float(len(y)), device=loss.device)
        return loss * (distributed.world_size() * mine / distributed.all_reduce_sum(mine)), parts


class _Loss(nn.Module):
    """A method's ``loss`` as a module's forward (what DDP wraps)."""

    def __init__(self, method: nn.Module) -> None:
        super().__init__()
        self.method = method

    def forward(self, x: torch.Tensor, y: torch.Tensor, **kwargs: Any):
        return self.method.loss(x, y, **kwargs)


def _over_ranks(
    losses: torch.Tensor, parts: dict[str, float], samples: int
) -> tuple[torch.Tensor, dict[str, float], int]:
    """An epoch's per-step losses and loss parts averaged over the ranks, samples summed."""
    n = distributed.world_size()
    losses = distributed.all_reduce_sum(losses) / n
    values = torch.tensor(list(parts.values()), dtype=torch.float64)
    values = distributed.all_reduce_sum(values.to(losses.device)).cpu() / n
    total = distributed.all_reduce_sum(torch.tensor([samples], device=losses.device))
    return losses, dict(zip(parts, values.tolist(), strict=True)), int(total.item())


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _postfix(record: EpochRecord) -> dict[str, str]:
    shown = {"loss": f"{record.loss:.3f}"}
    if record.evaluated:
        shown["train"] = f"{record.train_acc:.3f}"
        shown["test"] = f"{record.accuracy:.3f}"
    return shown


def _validate(
    epochs, batch_size, lr, momentum, weight_decay, warmup_epochs, metrics_every
) -> tuple[int, int, float, int]:
    """Check the optimisation settings; returns (epochs, batch_size, lr, metrics_every)."""
    epochs = check_scalar("epochs", epochs, kind=int, low=1)
    batch_size = check_scalar("batch_size", batch_size, kind=int, low=2)  # BatchNorm needs 2
    lr = check_scalar("lr", lr, low=0, include_low=False)
    check_scalar("momentum", momentum, low=0, high=1, include_high=False)
    check_scalar("weight_decay", weight_decay, low=0)
    check_scalar("warmup_epochs", warmup_epochs, low=0, high=epochs)
    metrics_every = check_scalar("metrics_every", metrics_every, kind=int, low=1)
    return epochs, batch_size, lr, metrics_every


def check_out_dir(
    out_dir: str | Path, *, resume: bool = False, overwrite: bool = False
) -> tuple[Path, list[str]]:
    """Check, before any work, that ``out_dir`` is a writable folder (created if needed) that
    no other process is training in, and that ``fit`` may use it: a run already there
    (``RUN_FILES``) is refused unless resumed (it has a checkpoint) or ``overwrite``; a run
    file that is not a file (a folder in its place) is refused. Cleans stale temporary files
    of an interrupted write. Returns the folder and the run files present. Raises
    ``checkpoint.OutDirError``, ``checkpoint.InUseError`` or :class:`RunExistsError`
    (ValueErrors, one line each)."""
    out = check_writable_dir(out_dir)
    with hold_lock(out, f"the run folder {out}"):
        return _check_run_files(out, resume=resume, overwrite=overwrite)


def _check_run_files(out: Path, *, resume: bool, overwrite: bool) -> tuple[Path, list[str]]:
    """:func:`check_out_dir`'s checks of the files in ``out``, under its lock."""
    clean_stale_tmp(out, RUN_FILES)
    present = [name for name in RUN_FILES if (out / name).exists()]
    odd = [name for name in present if not (out / name).is_file()]
    if odd:
        raise OutDirError(
            f"{out / odd[0]} is not a file (a folder or device in the place of the run's "
            f"{odd[0]}); move it away, then run again"
        )
    if not present or overwrite or (resume and CHECKPOINT_NAME in present):
        return out, present
    if resume:
        raise RunExistsError(
            f"{out} holds {', '.join(present)} but no {CHECKPOINT_NAME} to resume from; "
            "pass overwrite=True to start a new run there"
        )
    raise RunExistsError(
        f"{out} already holds a run ({', '.join(present)}); pass resume=True to continue it "
        "or overwrite=True to replace it"
    )


def _prepare_out_dir(
    out_dir: str | Path | None, *, resume: bool, overwrite: bool, held: contextlib.ExitStack
) -> Path | None:
    """Take the folder's lock into ``held`` (kept until the run ends), check it as
    :func:`check_out_dir` does, then delete the old run when it is to be replaced."""
    if out_dir is None:
        return None
    out = check_writable_dir(out_dir)
    held.enter_context(hold_lock(out, f"the run folder {out}"))
    out, present = _check_run_files(out, resume=resume, overwrite=overwrite)
    if overwrite and not (resume and CHECKPOINT_NAME in present):
        for name in present:
            (out / name).unlink()
    return out


def run_from_checkpoint(state: dict[str, Any], path: str | Path) -> RunResult:
    """The run a checkpoint holds (config, history, samples, provenance): the run's record,
    which run.json and history.json copy. ``state`` is ``checkpoint.load_checkpoint(path)``."""
    try:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"format {state.get('format')!r}, expected {CHECKPOINT_FORMAT}")
        missing = {"model", "optimizer", "scheduler", "rng"} - set(state)
        if missing:
            raise ValueError(f"missing {sorted(missing)}")
        return RunResult.from_dicts(json.loads(state["run"]), json.loads(state["history"]))
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(
            f"{path} is not a checkpoint of this version of allnc_edu ({err}); "
            "pass overwrite=True to start a new run there"
        ) from None


def _check_same_run(saved: RunConfig, now: RunConfig, path: Path) -> None:
    differ = saved.differences(now)
    if not differ:
        return
    why = {"epochs": " (the cosine learning-rate schedule spans the whole run, so its length "
           "cannot change)"}  # fmt: skip
    changes = "; ".join(
        f"{k}: saved {a!r}, now {b!r}{why.get(k, '')}" for k, (a, b) in differ.items()
    )
    raise DifferentRunError(
        f"cannot resume {path}: the settings differ ({changes}); "
        "use another out_dir, or overwrite=True to start a new run there"
    )


def _check_same_model(saved: dict[str, torch.Tensor], method: nn.Module, path: Path) -> None:
    """Refuse a checkpoint whose tensors do not fit ``method`` (a safety net behind the config
    comparison: e.g. a backbone built with other options)."""
    now = method.state_dict()
    differ = sorted(
        set(saved) ^ set(now) | {k for k in set(saved) & set(now) if saved[k].shape != now[k].shape}
    )
    if differ:
        raise DifferentRunError(
            f"cannot resume {path}: its model does not match this one ({len(differ)} tensor(s) "
            f"differ, e.g. {differ[0]!r}); use another out_dir or overwrite=True"
        )


def _backbone_name(method: nn.Module) -> str:
    """The backbone's ``models.BACKBONES`` name (``arch``), else its class name."""
    backbone = next((m for m in method.modules() if hasattr(m, "feature_dim")), None)
    if backbone is None:
        return ""
    return getattr(backbone, "arch", type(backbone).__name__)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _provenance(device: torch.device) -> dict[str, Any]:
    """Package, Python, torch and CUDA versions, the device, the git commit and the start time."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {
        "package": f"allnc_edu {__version__}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": str(device),
        "device_name": name or platform.machine(),
        "git_commit": _git_commit(),
        "started": _now(),
        "finished": None,
    }


def _git_commit() -> str | None:
    """The commit of the checkout this package runs from (with "+dirty" when it has changes),
    or None outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, timeout=5,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _compile_backbone(method: nn.Module) -> None:
    """``torch.compile`` the backbone (the module with ``feature_dim``) in place; state_dict keys
    stay the same, so checkpoints work with and without compilation."""
    backbone = next((m for m in method.modules() if hasattr(m, "feature_dim")), method)
    backbone.compile()
