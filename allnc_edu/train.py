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
import json
import math
import platform
import random
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import __version__, pick_device
from ._checks import check_scalar
from .checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    check_writable_dir,
    clean_stale_tmp,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .data import LongTailDataset
from .groups import accuracy_by_group, mean_over, minority_classes, shot_groups
from .loader import DeviceLoader
from .metrics import NCAccumulator
from .progress import RunBar, run_bar
from .records import HISTORY_FILE, RUN_FILE, EpochRecord, RunConfig, RunResult

__all__ = [
    "DEFAULTS",
    "RUN_FILES",
    "DifferentRunError",
    "DivergenceError",
    "RunExistsError",
    "autocast_for",
    "check_out_dir",
    "cosine_schedule",
    "evaluate",
    "fit",
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
}

#: Files of a run in ``out_dir``.
RUN_FILES = (CHECKPOINT_NAME, RUN_FILE, HISTORY_FILE)
#: Version of the checkpoint layout.
CHECKPOINT_FORMAT = 1


class RunExistsError(ValueError):
    """``out_dir`` already holds a run and neither ``resume`` nor ``overwrite`` was asked for."""


class DifferentRunError(ValueError):
    """``resume=True`` found a checkpoint of a run whose settings differ from this one."""


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
    dataset: LongTailDataset,
    *,
    train_x: torch.Tensor | None = None,
    test_x: torch.Tensor | None = None,
    batch_size: int = 1024,
    nc: bool = True,
    geometry: bool = False,
    amp: bool = True,
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
    """
    device = next(method.parameters()).device
    if train_x is None:
        train_x = to_device_tensor(dataset.train_x, device, channels_last=True)
    if test_x is None:
        test_x = to_device_tensor(dataset.test_x, device, channels_last=True)
    autocast = autocast_for(device, amp)
    was_training = method.training
    method.eval()
    try:
        weight, bias = method.classifier()
        with contextlib.nullcontext() if nc else autocast:
            train_out = [method(xb) for xb in train_x.split(batch_size)]
        with autocast:
            test_pred = [method(xb).logits.argmax(1) for xb in test_x.split(batch_size)]
    finally:
        method.train(was_training)
    train_pred = torch.cat([out.logits.argmax(1) for out in train_out]).cpu()
    test_pred = torch.cat(test_pred).cpu()
    train_acc = (train_pred == dataset.train_y).double().mean().item()
    test = accuracy_by_group(test_pred, dataset.test_y, dataset.counts)
    result: dict[str, Any] = {"train_acc": train_acc, "test": test, "nc": None}
    if nc:
        features = torch.cat([out.features for out in train_out]).float().cpu()
        acc = NCAccumulator(dataset.num_classes, features.shape[1])
        chunks = list(zip(features.split(_NC_CHUNK), dataset.train_y.split(_NC_CHUNK), strict=True))
        for h, y in chunks:
            acc.update(h, y)
        for h, y in chunks:
            acc.update_agreement(h, y, weight, bias)
        minority = minority_classes(dataset.counts)
        result["nc"] = acc.compute(weight, bias, minority=minority).as_dict()
        if geometry:
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
    metrics_every: int | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    record_geometry: bool = False,
) -> RunResult:
    """Train ``method`` (from ``methods.make_method``) on ``dataset`` and measure every epoch.

    Args:
        method: the training recipe (a ``method_base.Method``).
        dataset: the long-tailed data (``data.LongTailDataset``).
        epochs: length of the run; the cosine schedule spans all of it.
        batch_size: default per dataset (``DEFAULTS``; CIFAR: 64 as in the LT recipe).
        lr: peak learning rate, default per dataset (``DEFAULTS``; CIFAR: 0.01).
        momentum: SGD momentum, in [0, 1).
        weight_decay: SGD weight decay, >= 0.
        warmup_epochs: linear learning-rate warm-up (may be fractional), then cosine decay to 0.
        augment: random crop (padding 4) and horizontal flip on the device; default on for
            images.
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
        record_geometry: also keep, on evaluated epochs, the training set's class means and the
            inference classifier, (K, d) each (``EpochRecord.geometry``).

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
    images = dataset.train_x.ndim == 4
    augment = images if augment is None else check_scalar("augment", augment, kind=bool)
    dev = pick_device(device)
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
        seed=check_scalar("seed", seed, kind=int),
        device=str(dev),
        progress=bool(progress),
    )
    out = _prepare_out_dir(out_dir, resume=resume, overwrite=overwrite)

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
    if ckpt is not None and resume and ckpt.exists():
        state = load_checkpoint(ckpt)
        saved = _unpack(state, ckpt)
        _check_same_run(saved.config, config, ckpt)
        _check_same_model(state["model"], method, ckpt)
        method.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        result.history, result.samples_seen = saved.history, saved.samples_seen
        for key in ("started", "finished"):
            result.provenance[key] = saved.provenance.get(key)
    else:
        seed_everything(seed)
    if compile:
        _compile_backbone(method)

    autocast = autocast_for(dev, amp)
    last = epochs if stop_after is None else min(epochs, stop_after)
    desc = f"{config.method} on {dataset.name}"
    with run_bar(epochs, done=len(result.history), desc=desc, enabled=progress) as bar:
        for epoch in range(len(result.history) + 1, last + 1):
            t0 = time.perf_counter()
            main, balanced = loaders(epoch)
            losses, parts, samples = train_epoch(
                method, optimizer, scheduler, main, balanced, epoch=epoch,
                total_steps=total_steps, autocast=autocast, progress=bar,
            )  # fmt: skip
            finite = torch.isfinite(losses)  # one host sync per epoch, not one per step
            if not finite.all():
                bad = int((~finite).nonzero()[0])
                raise DivergenceError(epoch, bad + 1, losses[bad].item(), ckpt)
            train_s = time.perf_counter() - t0
            measured: dict[str, Any] = {}
            if epoch % metrics_every == 0 or epoch == last:
                ev = evaluate(
                    method, dataset, train_x=x, test_x=test_x, geometry=record_geometry, amp=amp
                )
                measured = _measured(ev, result.minority)
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
            if ckpt is not None:
                save_checkpoint(ckpt, {
                    "format": CHECKPOINT_FORMAT, "epoch": epoch,
                    "run": json.dumps(result.run_dict()),
                    "history": json.dumps([r.as_dict() for r in result.history]),
                    "model": method.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "rng": rng_state(),
                })  # fmt: skip
                result.save(out)
            bar.update(_postfix(record))
    return result


def _measured(ev: dict[str, Any], minority: list[int]) -> dict[str, Any]:
    """``EpochRecord`` fields from an :func:`evaluate` result."""
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
    """Check, before any work, that ``out_dir`` is a writable folder (created if needed) and
    that ``fit`` may use it: a run already there (``RUN_FILES``) is refused unless resumed (it
    has a checkpoint) or ``overwrite``. Cleans stale temporary files of an interrupted write.
    Returns the folder and the run files present. Raises ``checkpoint.OutDirError`` or
    :class:`RunExistsError` (ValueErrors, one line each)."""
    out = check_writable_dir(out_dir)
    clean_stale_tmp(out, RUN_FILES)
    present = [name for name in RUN_FILES if (out / name).exists()]
    if not present or overwrite or (resume and CHECKPOINT_NAME in present):
        return out, present
    if resume:
        raise RunExistsError(
            f"{out} holds {', '.join(present)} but no {CHECKPOINT_NAME} to resume from; "
            "pass overwrite=True (--overwrite) to start a new run there"
        )
    raise RunExistsError(
        f"{out} already holds a run ({', '.join(present)}); pass resume=True (--resume) to "
        "continue it or overwrite=True (--overwrite) to replace it"
    )


def _prepare_out_dir(out_dir: str | Path | None, *, resume: bool, overwrite: bool) -> Path | None:
    """:func:`check_out_dir`, then delete the old run when it is to be replaced."""
    if out_dir is None:
        return None
    out, present = check_out_dir(out_dir, resume=resume, overwrite=overwrite)
    if overwrite and not (resume and CHECKPOINT_NAME in present):
        for name in present:
            (out / name).unlink()
    return out


def _unpack(state: dict[str, Any], path: Path) -> RunResult:
    """The run saved in a checkpoint (config, history, samples, provenance)."""
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
            "pass overwrite=True (--overwrite) to start a new run there"
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
        "use another out_dir, or overwrite=True (--overwrite) to start a new run there"
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
            f"differ, e.g. {differ[0]!r}); use another out_dir or overwrite=True (--overwrite)"
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
