"""Classifier re-training (cRT, Kang et al. 2020): are the features or the classifier to blame?

Kang et al. ("Decoupling Representation and Classifier for Long-Tailed Recognition", ICLR 2020)
train a network as usual, then freeze its backbone, re-initialise the linear classifier and
train that alone, with class-balanced sampling, for a few epochs. If the minority accuracy
recovers, the frozen features already told the minority classes apart and the learned
classifier was what failed them.

- :func:`trained_method`: the trained method of a run saved with ``out_dir`` (its checkpoint's
  weights, rebuilt as ``experiments.evaluate_run`` rebuilds it).
- :func:`retrain_classifier`: cRT on a copy of a trained method with a learned linear head
  ("ce", "la"); returns the copy, its ``evaluate.evaluate`` record and how often each class
  was drawn.

The features are computed once, from the unaugmented training inputs with the backbone in eval
mode (as at test time: BatchNorm's running statistics, nothing updated), so re-training the
head takes seconds on a CPU.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from . import pick_device
from ._checks import check_scalar, check_seed
from .checkpoint import CHECKPOINT_NAME, load_checkpoint
from .data import LongTailDataset
from .devices import to_device_tensor
from .evaluate import evaluate
from .experiments import dataset_for, method_for, run_config
from .loader import DeviceLoader
from .records import EpochRecord
from .train import cosine_schedule

#: Rows per forward when the frozen features are computed.
_FEATURE_BATCH = 1024


class Retrained(NamedTuple):
    """What :func:`retrain_classifier` returns.

    ``method``: the re-trained copy (its backbone frozen: ``requires_grad`` False, the original's
    weights); ``record``: ``evaluate.evaluate`` of it (``epoch``: the re-training epochs,
    ``loss``: the last epoch's mean, ``samples``: samples drawn in all); ``drawn``: (K,) how many
    samples of each class the re-training drew.
    """

    method: nn.Module
    record: EpochRecord
    drawn: list[int]


def trained_method(
    run_dir: str | os.PathLike,
    dataset: LongTailDataset | None = None,
    *,
    trust_checkpoint: bool = False,
) -> nn.Module:
    """The trained method of a run saved with ``out_dir`` (``train.fit``,
    ``experiments.run_method``), on the CPU in eval mode: rebuilt from the checkpoint's settings
    (``experiments.run_config``, ``method_for``) with the checkpoint's weights.

    ``dataset`` is the data it trained on (default: loaded again, ``experiments.dataset_for``);
    one that is not the run's (name, imbalance ratio, profile or class counts) is refused.
    ``trust_checkpoint`` as in ``experiments.run_config``.
    """
    config = run_config(run_dir, trust_checkpoint=trust_checkpoint)
    if dataset is None:
        dataset = dataset_for(config)
    saved = (config.dataset, float(config.imbalance_ratio), config.profile, config.n_max)
    given = (dataset.name, float(dataset.imbalance_ratio), dataset.profile, max(dataset.counts))
    if saved != given:
        raise ValueError(
            f"the run trained on {saved[0]} (IR {saved[1]:g}, {saved[2]}, n_max {saved[3]}), "
            f"not on the data set given ({given[0]}, IR {given[1]:g}, {given[2]}, n_max {given[3]})"
        )
    method = method_for(config, dataset)
    state = load_checkpoint(Path(run_dir) / CHECKPOINT_NAME)
    method.load_state_dict(state["model"])
    return method.eval()


def _linear_head(method: nn.Module) -> nn.Linear:
    """The method's learned linear classifier (``method.net.head``), or a one-line ValueError."""
    head = getattr(getattr(method, "net", None), "head", None)
    if not isinstance(head, nn.Linear):
        kind = type(head).__name__ if head is not None else "none"
        raise ValueError(
            f"cRT re-trains a learned linear classifier (method.net.head, as 'ce' and 'la' "
            f"have); this {type(method).__name__} has {kind}"
        )
    return head


def retrain_classifier(
    method: nn.Module,
    dataset: LongTailDataset,
    *,
    epochs: int = 10,
    lr: float = 0.1,
    batch_size: int = 128,
    weight_decay: float = 5e-4,
    momentum: float = 0.9,
    q: float = 1.0,
    seed: int = 0,
    device: str | torch.device = "auto",
    amp: bool = True,
) -> Retrained:
    """cRT: re-initialise and re-train only the linear classifier of a copy of ``method`` on
    its frozen features, with class-balanced sampling; ``method`` itself is left as it was.

    Args:
        method: a trained method with a learned linear head (``method.net.head``: "ce", "la").
        dataset: the tensor data set it trained on (``data.LongTailDataset``).
        epochs: passes of the sampler; each draws as many samples as the training set holds.
        lr, momentum, weight_decay: SGD on the head, on a per-step cosine schedule
            (``train.cosine_schedule``).
        batch_size: samples per step.
        q: the sampler's exponent (``loader.DeviceLoader``): class k is drawn with probability
            proportional to n_k^(1-q); 1 is class-balanced (Kang et al.'s cRT).
        seed: seeds the head's new initialisation and the sampler.
        device: where to train ("auto": ``pick_device``).
        amp: the test forward's autocast, as ``evaluate.evaluate`` takes it.

    Returns:
        :class:`Retrained` (method, record, drawn).
    """
    if not isinstance(dataset, LongTailDataset):
        raise ValueError(f"cRT needs a tensor data set (LongTailDataset), not {type(dataset)}")
    _linear_head(method)
    epochs = check_scalar("epochs", epochs, kind=int, low=1)
    batch_size = check_scalar("batch_size", batch_size, kind=int, low=1)
    lr = check_scalar("lr", lr, low=0, include_low=False)
    weight_decay = check_scalar("weight_decay", weight_decay, low=0)
    momentum = check_scalar("momentum", momentum, low=0, high=1, include_high=False)
    q = check_scalar("q", q, low=0)
    seed = check_seed(seed)
    dev = pick_device(device)
    new = copy.deepcopy(method).to(dev).eval()  # eval: BatchNorm's statistics stay frozen
    new.requires_grad_(False)
    head = _linear_head(new)
    images = len(dataset.input_shape) == 3
    x = to_device_tensor(dataset.train_x, dev, images)
    with torch.no_grad():
        features = torch.cat([new.net.backbone(xb).float() for xb in x.split(_FEATURE_BATCH)])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head.reset_parameters()
    head.requires_grad_(True)
    k = dataset.num_classes
    loader = DeviceLoader(features, dataset.train_y, batch_size, sampling="balanced", q=q,
                          seed=seed, device=dev)  # fmt: skip
    optimizer = torch.optim.SGD(head.parameters(), lr=lr, momentum=momentum,
                                weight_decay=weight_decay)  # fmt: skip
    scheduler = cosine_schedule(optimizer, epochs * len(loader))
    drawn = torch.zeros(k, dtype=torch.long, device=dev)
    for _ in range(epochs):
        losses = []
        for xb, yb in loader:
            loss = F.cross_entropy(head(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.detach())
            drawn += torch.bincount(yb, minlength=k)
    record = evaluate(new, dataset, amp=amp)
    counts = drawn.cpu().tolist()
    record = dataclasses.replace(
        record, epoch=epochs, loss=torch.stack(losses).mean().item(), samples=sum(counts)
    )
    return Retrained(new, record, counts)
