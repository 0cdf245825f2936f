"""The training loop: one function, ``fit``, readable top to bottom.

In the style of cifar10-airbench and nanoGPT: the whole training set lives on the device as one
tensor, random crop and flip run there on whole batches, the model runs in channels_last with
bfloat16 autocast, and the optimiser is SGD with momentum on a per-step cosine schedule (with an
optional linear warm-up). After each epoch (every ``metrics_every`` epochs, and always the last)
it measures train and test accuracy (overall and many/medium/few shot groups) and the neural-
collapse metrics of the training set, streamed in float64 over eval-mode features without
augmentation. Checkpoints are written atomically every epoch; ``resume=True`` continues the same
run to the same result. The reported numbers are always those of the last epoch.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import pick_device
from .checkpoint import (
    CHECKPOINT_NAME,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_json,
)
from .data import LongTailDataset, minority_classes, shot_groups
from .loader import DeviceLoader
from .metrics import NCAccumulator, accuracy_by_group

#: Batch size and learning rate per dataset when ``fit`` is not given them, and the epochs the
#: command line uses by default (CIFAR: the LT recipe).
DEFAULTS: dict[str, dict[str, float]] = {
    "cifar10-lt": {"batch_size": 64, "lr": 0.01, "epochs": 200},
    "cifar100-lt": {"batch_size": 64, "lr": 0.01, "epochs": 200},
    "mnist1d": {"batch_size": 128, "lr": 0.1, "epochs": 20},
    "gaussian": {"batch_size": 128, "lr": 0.1, "epochs": 20},
}

# Settings that must match for ``resume=True`` to continue the same run.
_RUN_KEYS = ("method", "dataset", "epochs", "batch_size", "lr", "momentum", "weight_decay",
             "warmup_epochs", "augment", "amp", "seed")  # fmt: skip


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


@dataclass
class TrainResult:
    """What ``fit`` returns: one dict per epoch, and the report of the last epoch."""

    history: list[dict[str, Any]]
    report: dict[str, Any]
    out_dir: Path | None = None
    config: dict[str, Any] = field(default_factory=dict)


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
    """bfloat16 autocast on CUDA (when the card supports it) and CPU; a no-op otherwise."""
    supported = device.type == "cpu" or (device.type == "cuda" and torch.cuda.is_bf16_supported())
    if amp and supported:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


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
    progress: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """One epoch of ``train_step`` over ``loader`` (``epoch`` 1-based; schedule steps so far are
    read from ``scheduler``), with a class-balanced batch from ``balanced`` at every step when
    given. Returns the per-step losses (steps,), left on the device, and the epoch-mean loss
    parts (the method's ``loss`` entry, a copy of the total, left out)."""
    steps = len(loader)
    losses = torch.empty(steps, device=loader.device)
    sums: dict[str, Any] = {}
    extra = iter(balanced) if balanced is not None else None
    method.train()
    with tqdm(total=steps, leave=False, unit="step", disable=not progress) as bar:
        for i, (x, y) in enumerate(loader):
            loss, parts = train_step(
                method, optimizer, scheduler, x, y,
                progress=min(1.0, scheduler.last_epoch / max(1, total_steps - 1)),
                epoch=epoch - 1,
                balanced_batch=next(extra) if extra is not None else None,
                autocast=autocast,
            )  # fmt: skip
            losses[i] = loss
            for k, v in parts.items():
                if k != "loss":
                    sums[k] = sums.get(k, 0.0) + (v.detach() if torch.is_tensor(v) else v)
            bar.update()
    return losses, {k: float(v) / steps for k, v in sums.items()}


@torch.no_grad()
def evaluate(
    method: nn.Module,
    dataset: LongTailDataset,
    *,
    train_x: torch.Tensor | None = None,
    test_x: torch.Tensor | None = None,
    batch_size: int = 1024,
    nc: bool = True,
    geometry: bool = False,
) -> dict[str, Any]:
    """Accuracy on the unaugmented training and test sets, and NC metrics of the training set.

    Runs in eval mode and float32: the features (N, d) feed a float64 streaming accumulator
    (``metrics.NCAccumulator``), so bfloat16 rounding puts no floor under NC1; NC4 reuses the
    features kept from the same pass. The classifier is the inference head,
    ``method.classifier()``; minority classes are ``data.minority_classes(counts)``.
    ``train_x`` and ``test_x`` may pass copies of the inputs already on the method's device (as
    ``fit`` does); by default the dataset's tensors are moved there. Returns
    ``{"train_acc": float, "test": metrics.accuracy_by_group(...), "nc": NCMetrics.as_dict()``
    (None when ``nc=False``)``}``. With ``geometry=True`` (and ``nc``) it also holds
    ``"geometry": {"class_means": (K, d), "classifier": (K, d)}`` as nested lists: the training
    set's class means and the inference classifier, for pictures of the simplex over training.
    """
    device = next(method.parameters()).device
    train_x = train_x if train_x is not None else dataset.train_x.to(device)
    test_x = test_x if test_x is not None else dataset.test_x.to(device)
    train_y = dataset.train_y.to(device)
    was_training = method.training
    method.eval()
    try:
        weight, bias = method.classifier()
        features, train_pred = zip(*(method(xb) for xb in train_x.split(batch_size)), strict=True)
        test_pred = torch.cat([method(xb).logits.argmax(1) for xb in test_x.split(batch_size)])
    finally:
        method.train(was_training)
    train_acc = (torch.cat(train_pred).argmax(1) == train_y).double().mean().item()
    test = accuracy_by_group(test_pred, dataset.test_y, dataset.counts)
    metrics = None
    if nc:
        acc = NCAccumulator(dataset.num_classes, features[0].shape[1])
        for h, y in zip(features, train_y.split(batch_size), strict=True):
            acc.update(h, y)
        for h, y in zip(features, train_y.split(batch_size), strict=True):
            acc.update_agreement(h, y, weight, bias)
        minority = minority_classes(dataset.counts)
        metrics = acc.compute(weight, bias, minority=minority).as_dict()
    result = {"train_acc": train_acc, "test": test, "nc": metrics}
    if nc and geometry:
        result["geometry"] = {
            "class_means": acc.means.tolist(),
            "classifier": weight.detach().double().cpu().tolist(),
        }
    return result


def fit(
    method: nn.Module,
    dataset: LongTailDataset,
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
    metrics_every: int = 1,
    out_dir: str | Path | None = None,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    record_geometry: bool = False,
) -> TrainResult:
    """Train ``method`` (from ``methods.make_method``) on ``dataset`` and measure every epoch.

    Parameters
    ----------
    epochs: length of the run; the cosine schedule spans all of it.
    batch_size, lr: default per dataset (``DEFAULTS``; CIFAR: 64 and 0.01 as in the LT recipe).
    momentum, weight_decay: SGD settings (0.9, 5e-3).
    warmup_epochs: linear learning-rate warm-up (may be fractional), then cosine decay to 0.
    augment: random crop (padding 4) and horizontal flip on the device; default on for images.
    device: "auto" picks CUDA, then Apple MPS, then CPU.
    amp: bfloat16 autocast on CUDA and CPU. channels_last: for image models.
    compile: ``torch.compile`` the backbone (worth it on a GPU for long runs).
    seed: seeds the global RNGs (unless resuming) and each epoch's shuffling.
    metrics_every: evaluate every this many epochs (the last epoch always is).
    out_dir: if given, writes ``checkpoint.pt`` and ``history.json`` after every epoch
        (atomically) and ``report.json`` at the end.
    resume: continue from ``out_dir/checkpoint.pt`` (the same run, bit for bit on the CPU);
        starts afresh when there is no checkpoint yet.
    stop_after: stop after this epoch (time-boxed sessions); resume later to finish.
    progress: show a tqdm progress bar (terminal or notebook).
    record_geometry: also keep, on evaluated epochs, ``"geometry"``: the training set's class
        means and the inference classifier, (K, d) each, as nested lists (see ``evaluate``).

    Returns a :class:`TrainResult`: ``history`` holds one dict per epoch (``epoch`` 1-based,
    ``lr``, ``loss``, ``loss_parts``, ``train_s``, ``samples_per_s`` and, on evaluated epochs,
    ``train_acc``, ``test_acc``, ``test_many``/``test_medium``/``test_few``, ``test_per_class``
    and ``nc``); ``report`` describes the last epoch, never a checkpoint picked on the test set.
    Raises :class:`DivergenceError` on a NaN or Inf loss, keeping the last good checkpoint.
    """
    defaults = DEFAULTS.get(dataset.name, {"batch_size": 64, "lr": 0.01})
    batch_size = int(batch_size if batch_size is not None else defaults["batch_size"])
    lr = float(lr if lr is not None else defaults["lr"])
    _validate(epochs, batch_size, lr, momentum, weight_decay, warmup_epochs, metrics_every)
    if resume and out_dir is None:
        raise ValueError("resume=True needs out_dir, the folder holding the checkpoint")
    if stop_after is not None and stop_after < 1:
        raise ValueError(f"stop_after must be None or an epoch >= 1, got {stop_after!r}")
    images = dataset.train_x.ndim == 4
    augment = images if augment is None else bool(augment)
    dev = pick_device(device)
    channels_last = channels_last and images
    config = {
        "method": getattr(method, "name", "") or type(method).__name__,
        "dataset": dataset.name,
        "imbalance_ratio": dataset.imbalance_ratio,
        "profile": dataset.profile,
        "epochs": int(epochs),
        "batch_size": batch_size,
        "lr": lr,
        "momentum": momentum,
        "weight_decay": weight_decay,
        "warmup_epochs": warmup_epochs,
        "augment": augment,
        "amp": amp,
        "seed": seed,
        "channels_last": channels_last,
        "compile": compile,
        "device": str(dev),
    }

    # Data on the device, once; a fresh loader per epoch seeded by (seed, epoch) makes resume exact.
    method.to(dev, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    x, y = to_device_tensor(dataset.train_x, dev, channels_last), dataset.train_y.to(dev)
    test_x = to_device_tensor(dataset.test_x, dev, channels_last)
    drop_last = len(x) % batch_size == 1  # a last batch of one sample would break BatchNorm

    def loaders(epoch: int):
        kw = dict(drop_last=drop_last, augment="crop_flip" if augment else None, device=dev)
        main = DeviceLoader(x, y, batch_size, seed=seed * 100_003 + epoch, **kw)
        if not getattr(method, "needs_balanced_batch", False):
            return main, None
        q = getattr(method, "balanced_q", 1.0)
        seed_b = seed * 100_003 + 50_000 + epoch
        return main, DeviceLoader(x, y, batch_size, sampling="balanced", q=q, seed=seed_b, **kw)

    steps_per_epoch = len(loaders(0)[0])
    total_steps = epochs * steps_per_epoch
    params = [p for p in method.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = cosine_schedule(optimizer, total_steps, round(warmup_epochs * steps_per_epoch))

    out = Path(out_dir) if out_dir is not None else None
    ckpt = out / CHECKPOINT_NAME if out is not None else None
    history: list[dict[str, Any]] = []
    if resume and ckpt.exists():
        state = load_checkpoint(ckpt)
        _check_same_run(state["config"], config)
        method.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        history = state["history"]
    else:
        seed_everything(seed)
    if compile:
        _compile_backbone(method)

    autocast = autocast_for(dev, amp)
    last = epochs if stop_after is None else min(epochs, stop_after)
    desc = f"{config['method']} on {dataset.name}"
    with tqdm(
        total=epochs, initial=len(history), desc=desc, unit="epoch", disable=not progress
    ) as bar:
        for epoch in range(len(history) + 1, last + 1):
            t0 = time.perf_counter()
            main, balanced = loaders(epoch)
            losses, parts = train_epoch(
                method, optimizer, scheduler, main, balanced, epoch=epoch,
                total_steps=total_steps, autocast=autocast, progress=progress,
            )  # fmt: skip
            finite = torch.isfinite(losses)  # one host sync per epoch, not one per step
            if not finite.all():
                bad = int((~finite).nonzero()[0])
                raise DivergenceError(epoch, bad + 1, losses[bad].item(), ckpt)
            train_s = time.perf_counter() - t0
            record: dict[str, Any] = {
                "epoch": epoch,
                "lr": scheduler.get_last_lr()[0],
                "loss": losses.mean().item(),
                "loss_parts": parts,
                "train_s": train_s,
                "samples_per_s": (steps_per_epoch * batch_size if drop_last else len(x)) / train_s,
            }
            if epoch % metrics_every == 0 or epoch == last:
                ev = evaluate(method, dataset, train_x=x, test_x=test_x, geometry=record_geometry)
                record.update(_flatten(ev))
            history.append(record)
            if out is not None:
                save_checkpoint(ckpt, {
                    "config": config, "epoch": epoch, "history": history,
                    "model": method.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "rng": rng_state(),
                })  # fmt: skip
                write_json(out / "history.json", history)
            bar.set_postfix(_postfix(record))
            bar.update()

    report = make_report(config, dataset, history)
    if out is not None:
        write_json(out / "report.json", report)
    return TrainResult(history=history, report=report, out_dir=out, config=config)


def make_report(
    config: dict[str, Any], dataset: LongTailDataset, history: list[dict[str, Any]]
) -> dict[str, Any]:
    """The final report: the last epoch's accuracy by shot group and NC metrics, with context."""
    last = history[-1] if history else {}
    return {
        "method": config["method"],
        "dataset": dataset.name,
        "imbalance_ratio": dataset.imbalance_ratio,
        "profile": dataset.profile,
        "num_classes": dataset.num_classes,
        "counts": list(dataset.counts),
        "shot_groups": shot_groups(dataset.counts),
        "minority": minority_classes(dataset.counts),
        "epochs_done": last.get("epoch", 0),
        "complete": last.get("epoch", 0) == config["epochs"],
        "train_s": sum(h["train_s"] for h in history),
        "loss": last.get("loss"),
        "train_acc": last.get("train_acc"),
        "test": {
            "overall": last.get("test_acc"),
            **{g: last.get(f"test_{g}") for g in ("many", "medium", "few")},
            "per_class": last.get("test_per_class"),
        },
        "nc": last.get("nc"),
        "config": config,
    }


def _flatten(ev: dict[str, Any]) -> dict[str, Any]:
    test = ev["test"]
    return {
        "train_acc": ev["train_acc"],
        "test_acc": test["overall"],
        "test_many": test["many"],
        "test_medium": test["medium"],
        "test_few": test["few"],
        "test_per_class": test["per_class"],
        "nc": ev["nc"],
        **({"geometry": ev["geometry"]} if "geometry" in ev else {}),
    }


def _postfix(record: dict[str, Any]) -> dict[str, str]:
    shown = {"loss": f"{record['loss']:.3f}"}
    if "train_acc" in record:
        shown["train"] = f"{record['train_acc']:.3f}"
        shown["test"] = f"{record['test_acc']:.3f}"
    return shown


def _validate(epochs, batch_size, lr, momentum, weight_decay, warmup_epochs, metrics_every):
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2 (BatchNorm needs two samples), got {batch_size}")
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    if not 0 <= warmup_epochs <= epochs:
        raise ValueError(f"warmup_epochs must be in [0, epochs={epochs}], got {warmup_epochs!r}")
    if int(metrics_every) != metrics_every or metrics_every < 1:
        raise ValueError(f"metrics_every must be an integer >= 1, got {metrics_every!r}")


def _check_same_run(saved: dict[str, Any], now: dict[str, Any]) -> None:
    differ = [k for k in _RUN_KEYS if saved.get(k) != now.get(k)]
    if differ:
        changes = ", ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in differ)
        raise ValueError(
            f"resume=True must continue the same run, but the settings differ ({changes}); "
            "use another out_dir or resume=False to start a new run"
        )


def _compile_backbone(method: nn.Module) -> None:
    """``torch.compile`` the backbone (the module with ``feature_dim``) in place; state_dict keys
    stay the same, so checkpoints work with and without compilation."""
    backbone = next((m for m in method.modules() if hasattr(m, "feature_dim")), method)
    backbone.compile()
