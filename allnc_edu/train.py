"""The training loop: ``fit``, readable top to bottom.

In the style of cifar10-airbench and nanoGPT: one config (``config.TrainConfig``), the whole
training set on the device as one tensor, random crop and flip (or shift) on whole batches
there, channels_last with bfloat16 autocast where it pays, SGD with momentum on a per-step
cosine schedule (with an optional linear warm-up). After each epoch (every ``metrics_every``,
and always the last) ``evaluate.evaluate`` measures accuracy and the neural-collapse metrics.
With ``out_dir`` the checkpoint and its copies run.json and history.json are written atomically
every epoch (``rundir``); ``resume=True`` continues the same run to the same result and refuses
a run whose settings differ. ``fit`` returns a typed ``records.RunResult``.

The public API is ``__all__``: ``bench``, ``experiments`` and the notebooks use nothing else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from . import distributed, pick_device
from ._checks import check_scalar
from .checkpoint import (
    CHECKPOINT_NAME,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .config import FALLBACK_RECIPE, TrainConfig
from .data import LongTailDataset, recipe_for
from .devices import autocast_for, to_device_tensor
from .evaluate import evaluate
from .filelists import FileListDataset
from .groups import minority_classes, shot_groups
from .loader import DeviceLoader, epoch_seed, num_batches, shard_drop_last
from .progress import RunBar, run_bar
from .records import EpochRecord, RunConfig, RunResult
from .rundir import (
    CHECKPOINT_FORMAT,
    check_same_model,
    check_same_run,
    now,
    prepare_out_dir,
    provenance,
    repair_run_files,
    run_from_checkpoint,
)
from .stream import StreamLoader

__all__ = [
    "RUN_OPTIONS",
    "DivergenceError",
    "TrainingInterrupted",
    "cosine_schedule",
    "fit",
    "seed_everything",
    "train_epoch",
    "train_step",
]

#: ``fit``'s keyword arguments beside the ``TrainConfig`` settings: where and how the run is kept.
RUN_OPTIONS = ("out_dir", "resume", "overwrite", "stop_after", "label")


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


def fit(
    method: nn.Module,
    dataset: LongTailDataset | FileListDataset,
    config: TrainConfig | None = None,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    stop_after: int | None = None,
    label: str | None = None,
    **settings: Any,
) -> RunResult:
    """Train ``method`` (from ``methods.make_method``) on ``dataset`` and measure every epoch.

    Args:
        method: the training recipe (a ``method_base.Method``).
        dataset: the long-tailed data: tensors (``data.LongTailDataset``, held on the device)
            or image files (``filelists.FileListDataset``, streamed by ``stream``).
        config: the training settings (``config.TrainConfig``; each setting's meaning, default
            and bounds are there). Settings left None take the data set's recipe
            (``data.DATASETS[name].recipe``; ``config.FALLBACK_RECIPE`` for others).
        out_dir: if given, checked first (writable, not in use, no run to lose), then locked
            for the run; ``checkpoint.pt``, ``run.json`` and ``history.json`` are written there
            (atomically) after every epoch.
        resume: continue the run in ``out_dir`` (the same run, bit for bit on the CPU), first
            rewriting run.json and history.json from the checkpoint where they disagree with
            it; starts afresh when there is no checkpoint yet. Refused, naming each differing
            setting, when the checkpoint's ``RunConfig`` differs from this call's (cosmetic
            fields aside).
        overwrite: replace a run already in ``out_dir`` (without it, and without ``resume``,
            an existing run is refused: ``rundir.RunExistsError``).
        stop_after: stop after this epoch (time-boxed sessions); resume later to finish.
        label: the progress bar's name (default: "<method> on <data set>").
        **settings: ``TrainConfig`` settings given by name (``fit(m, d, epochs=5, lr=0.1)``),
            replacing those of ``config``.

    Data parallel: under a ``torch.distributed`` process group (``torchrun``; see
    ``distributed.init_from_env``) every rank calls ``fit`` with the same arguments.
    ``batch_size`` is the global batch: rank r of N trains on ``batch[r::N]`` of every global
    batch (``loader.rank_share``), so the steps per epoch, the learning-rate schedule and the
    samples of each step are those of one process, and ``lr`` is per global batch (to train
    with a larger global batch, scale ``lr`` linearly with it, Goyal et al. 2017). Gradients
    are averaged by ``DistributedDataParallel``; AllNC's class-mean bank and P2P's batch means
    are all-reduced (``losses.ClassMeanBank``), while HyCon's instance-level negatives are the
    rank's own share. Only rank 0 writes files and shows the progress bar; every rank reads
    the checkpoint on resume; ``world_size`` is recorded, and a resume needs the same one. Each
    rank's loss is weighted by its share of the step's samples, so the recorded loss is the
    global batch's.

    Returns:
        A :class:`records.RunResult`: one ``EpochRecord`` per epoch; its summary numbers are
        the last epoch's, never a checkpoint picked on the test set; ``written`` names the
        files this call wrote.

    Raises:
        ValueError: bad settings, each in one line (``rundir.RunExistsError``,
            ``rundir.DifferentRunError``, ``checkpoint.CheckpointError``,
            ``checkpoint.OutDirError`` and ``checkpoint.InUseError`` among them).
        DivergenceError: a NaN or Inf loss; the last good checkpoint is kept.
        TrainingInterrupted: Ctrl-C (or torchrun stopping the process); the checkpoint is
            intact and the message says which epoch it holds.
    """
    train = _settings(config, settings).resolved(
        recipe_for(dataset.name) or FALLBACK_RECIPE, images=len(dataset.input_shape) == 3
    )
    if resume and out_dir is None:
        raise ValueError("resume=True needs out_dir, the folder holding the checkpoint")
    if stop_after is not None:
        stop_after = check_scalar("stop_after", stop_after, kind=int, low=1)
    world = distributed.world_size()
    if train.batch_size < 2 * world:
        raise ValueError(f"batch_size {train.batch_size} (global) gives some of the {world} "
                         "ranks fewer than 2 samples a step; use at least 2 per rank")  # fmt: skip
    if train.augment and len(dataset.input_shape) not in (2, 3):
        raise ValueError(f"augment needs images (C, H, W) or signals (C, L), not inputs of "
                         f"shape {tuple(dataset.input_shape)}")  # fmt: skip
    dev = pick_device(train.device)
    if world > 1 and dev.type == "cuda" and dev.index is None:  # this rank's GPU
        dev = torch.device("cuda", torch.cuda.current_device())
    if train.sync_bn and dev.type != "cuda":
        raise ValueError(f"sync_bn needs CUDA (PyTorch's SyncBatchNorm), not {dev.type}")
    images = len(dataset.input_shape) == 3
    layout = train.channels_last and images
    train = dataclasses.replace(train, device=str(dev), channels_last=layout)
    config = RunConfig(
        dataset=dataset.name,
        method=getattr(method, "name", "") or type(method).__name__,
        train=train,
        imbalance_ratio=float(dataset.imbalance_ratio),
        profile=dataset.profile,
        n_max=max(dataset.counts),
        data_seed=getattr(dataset, "seed", None),
        backbone=_backbone_name(method),
        method_options=dict(getattr(method, "options", {})),
        world_size=world,
        split=getattr(dataset, "split", "test"),
        image_size=getattr(dataset, "image_size", None),
        data_root=_str_or_none(getattr(dataset, "root", None)),
        split_dir=_str_or_none(getattr(dataset, "split_dir", None)),
    )
    with contextlib.ExitStack() as held:  # the run folder's lock, for the whole run
        out = distributed.main_first(
            lambda: prepare_out_dir(out_dir, resume=resume, overwrite=overwrite, held=held)
        )
        if out is None and out_dir is not None:  # the other ranks read the checkpoint
            out = Path(out_dir)
        run = _Run(method, dataset, config, out, dev, workers=train.workers)
        run.start(resume=resume)
        return run.epochs(stop_after, label)


def _settings(config: TrainConfig | None, settings: dict[str, Any]) -> TrainConfig:
    """``config`` (default ``TrainConfig()``) with ``settings`` replacing its fields."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TypeError(f"fit has no setting(s) {unknown}; the settings: {sorted(known)}; "
                        f"and {', '.join(RUN_OPTIONS)}")  # fmt: skip
    return dataclasses.replace(config or TrainConfig(), **settings)


class _Run:
    """One run of ``fit``: the data on the device, the optimiser, the record, the loop."""

    def __init__(self, method, dataset, config: RunConfig, out: Path | None, dev, workers):
        train = config.train
        self.method, self.dataset, self.config, self.out, self.dev = (
            method, dataset, config, out, dev)  # fmt: skip
        self.workers, self.writes = workers, distributed.is_main()
        self.ckpt = out / CHECKPOINT_NAME if out is not None else None
        # Data on the device, once; a fresh loader per epoch seeded by (seed, epoch): exact resume.
        layout = torch.channels_last if train.channels_last else torch.preserve_format
        method.to(dev, memory_format=layout)
        if train.sync_bn:
            nn.SyncBatchNorm.convert_sync_batchnorm(method)
        self.x = self.y = self.test_x = None
        if not isinstance(dataset, FileListDataset):
            self.x = to_device_tensor(dataset.train_x, dev, train.channels_last)
            self.y = dataset.train_y.to(dev)
            self.test_x = to_device_tensor(dataset.test_x, dev, train.channels_last)
        # A last global batch that leaves a rank a single sample (or none) would break BatchNorm.
        self.drop_last = shard_drop_last(len(dataset.train_y), train.batch_size, config.world_size)
        steps = num_batches(len(dataset.train_y), train.batch_size, self.drop_last)
        self.total_steps = train.epochs * steps
        params = [p for p in method.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(params, lr=train.lr, momentum=train.momentum,
                                         weight_decay=train.weight_decay)  # fmt: skip
        warmup = round(train.warmup_epochs * steps)
        self.scheduler = cosine_schedule(self.optimizer, self.total_steps, warmup)
        self.result = RunResult(
            config=config, history=[], counts=list(dataset.counts),
            num_classes=dataset.num_classes, minority=minority_classes(dataset.counts),
            shot_groups=shot_groups(dataset.counts), provenance=provenance(dev), out_dir=out,
        )  # fmt: skip
        self.written: list[Path] = []
        self.kept: int | None = None  # the epoch the checkpoint holds

    def loader(self, sampling: str, q: float, seed: int) -> DeviceLoader | StreamLoader:
        """One epoch's loader: this rank's share of every global batch."""
        train, data = self.config.train, self.dataset
        kw = dict(sampling=sampling, q=q, seed=seed, drop_last=self.drop_last,
                  rank=distributed.rank(), world_size=self.config.world_size,
                  device=self.dev)  # fmt: skip
        if isinstance(data, FileListDataset):
            return StreamLoader(
                data.train_files, data.train_y, train.batch_size, train=train.augment,
                image_size=data.image_size, root=data.root, mean=data.mean, std=data.std,
                workers=self.workers, channels_last=train.channels_last, **kw,
            )  # fmt: skip
        kind = {3: "crop_flip", 2: "shift"}.get(len(data.input_shape)) if train.augment else None
        return DeviceLoader(self.x, self.y, train.batch_size, augment=kind, **kw)

    def loaders(self, epoch: int):
        """The epoch's instance-balanced loader, and a class-balanced one for GBBN."""
        seed = self.config.train.seed
        main = self.loader("instance", 1.0, epoch_seed(seed, epoch))
        if not getattr(self.method, "needs_balanced_batch", False):
            return main, None
        q = getattr(self.method, "balanced_q", 1.0)
        return main, self.loader("balanced", q, epoch_seed(seed, epoch, balanced=True))

    def start(self, *, resume: bool) -> None:
        """Continue from the checkpoint (repairing its copies) or seed a fresh run."""
        if self.ckpt is not None and resume and self.ckpt.exists():
            state = load_checkpoint(self.ckpt)
            saved = run_from_checkpoint(state, self.ckpt)
            check_same_run(saved.config, self.config, self.ckpt)
            check_same_model(state["model"], self.method, self.ckpt)
            self.method.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            set_rng_state(state["rng"])
            self.result.history, self.result.samples_seen = saved.history, saved.samples_seen
            for key in ("started", "finished"):
                self.result.provenance[key] = saved.provenance.get(key)
            self.kept = len(saved.history)
            if self.writes:
                self.written += repair_run_files(self.out, state)
        else:
            seed_everything(self.config.train.seed)
        if self.config.train.compile:
            _compile_backbone(self.method)

    def epochs(self, stop_after: int | None, label: str | None) -> RunResult:
        """Train the remaining epochs (up to ``stop_after``); Ctrl-C, torchrun's SIGTERM or a
        lost peer become :class:`TrainingInterrupted`, naming what the checkpoint holds."""
        train, result = self.config.train, self.result
        stepper = (_DataParallel.wrap(self.method, self.dev) if distributed.is_initialized()
                   else self.method)  # fmt: skip
        last = train.epochs if stop_after is None else min(train.epochs, stop_after)
        desc = label or f"{self.config.method} on {self.dataset.name}"
        epoch = len(result.history) + 1  # the epoch running when an interruption comes
        try:
            with run_bar(train.epochs, done=len(result.history), desc=desc,
                         enabled=train.progress and self.writes) as bar:  # fmt: skip
                for epoch in range(len(result.history) + 1, last + 1):
                    record = self.epoch(stepper, epoch, last, bar)
                    bar.update(_postfix(record))
        except KeyboardInterrupt as err:
            stop = TrainingInterrupted(epoch, self.kept, self.ckpt, cause=str(err))
            stop.exit_status = getattr(err, "exit_status", 130)
            raise stop from None
        except RuntimeError as err:
            if not distributed.lost_peer(err):
                raise
            distributed.stopping()
            why = f"the loss of another process of the run: {distributed.first_sentence(err)}"
            stop = TrainingInterrupted(epoch, self.kept, self.ckpt, cause=why)
            stop.exit_status = 1
            raise stop from None
        result.written = tuple(dict.fromkeys(self.written))
        return result

    def epoch(self, stepper: nn.Module, epoch: int, last: int, bar: RunBar) -> EpochRecord:
        """Train one epoch, evaluate when due, record it and save the checkpoint."""
        train, result = self.config.train, self.result
        t0 = time.perf_counter()
        main, balanced = self.loaders(epoch)
        losses, parts, samples = train_epoch(
            stepper, self.optimizer, self.scheduler, main, balanced, epoch=epoch,
            total_steps=self.total_steps, autocast=autocast_for(self.dev, train.amp),
            progress=bar,
        )  # fmt: skip
        if distributed.is_initialized():
            losses, parts, samples = _over_ranks(losses, parts, samples)
            distributed.broadcast_buffers(self.method)  # evaluate and save rank 0's statistics
        finite = torch.isfinite(losses)  # one host sync per epoch, not one per step
        if not finite.all():
            bad = int((~finite).nonzero()[0])
            raise DivergenceError(epoch, bad + 1, losses[bad].item(), self.ckpt)
        train_s = time.perf_counter() - t0
        scores = EpochRecord()
        if epoch % train.metrics_every == 0 or epoch == last:
            scores = evaluate(self.method, self.dataset, train_x=self.x, test_x=self.test_x,
                              geometry=train.record_geometry, amp=train.amp,
                              workers=self.workers)  # fmt: skip
        record = dataclasses.replace(
            scores, epoch=epoch, lr=self.scheduler.get_last_lr()[0], loss=losses.mean().item(),
            loss_parts=parts, train_s=train_s, samples=samples, samples_per_s=samples / train_s,
        )  # fmt: skip
        result.history.append(record)
        result.samples_seen += samples
        result.provenance["finished"] = now()
        if self.ckpt is not None and self.writes:
            save_checkpoint(self.ckpt, {
                "format": CHECKPOINT_FORMAT, "epoch": epoch,
                "run": json.dumps(result.run_dict()),
                "history": json.dumps([r.as_dict() for r in result.history]),
                "model": self.method.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "rng": rng_state(),
            })  # fmt: skip
            self.kept = epoch
            self.written += [self.ckpt, *result.save(self.out)]
        return record


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


def _backbone_name(method: nn.Module) -> str:
    """The backbone's ``models.BACKBONES`` name (``arch``), else its class name."""
    backbone = next((m for m in method.modules() if hasattr(m, "feature_dim")), None)
    if backbone is None:
        return ""
    return getattr(backbone, "arch", type(backbone).__name__)


def _compile_backbone(method: nn.Module) -> None:
    """``torch.compile`` the backbone (the module with ``feature_dim``) in place; state_dict keys
    stay the same, so checkpoints work with and without compilation."""
    backbone = next((m for m in method.modules() if hasattr(m, "feature_dim")), method)
    backbone.compile()
