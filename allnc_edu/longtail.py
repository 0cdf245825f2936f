"""Long-tailed class counts, deterministic subsets and the tensor data set every loader returns.

``long_tail_counts`` gives a profile's per-class sizes (head first), ``long_tail_subset`` a
seeded choice of that many samples per class, ``hold_out`` a class-balanced validation set.
A :class:`LongTailDataset` holds a long-tailed training set and a balanced test set.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ._checks import ArrayLike, as_counts, check_choice, check_num_classes, check_scalar

PROFILES = ("exp", "step")
SPLITS = ("test", "validation")


@dataclass
class LongTailDataset:
    """A long-tailed training set and a balanced test set, as float32 normalised tensors.

    ``train_x`` is ``(N, *input_shape)``, ``train_y`` (N,) int64 with ``counts[k]`` samples of
    class k; ``test_x`` / ``test_y`` likewise for the test set. ``mean`` / ``std`` are the
    per-channel statistics used for normalisation (None when the data came normalised);
    ``seed`` the seed that drew the data (None when not known). ``split`` says what
    ``test_x`` holds ("test", or "validation": held out of the training pool); ``root`` is the
    folder the data was read from or cached in (None when generated without one).
    """

    name: str
    train_x: torch.Tensor = dataclasses.field(repr=False)
    train_y: torch.Tensor = dataclasses.field(repr=False)
    test_x: torch.Tensor = dataclasses.field(repr=False)
    test_y: torch.Tensor = dataclasses.field(repr=False)
    counts: list[int]
    num_classes: int
    class_names: list[str]
    input_shape: tuple[int, ...]
    imbalance_ratio: float
    profile: str
    mean: list[float] | None = None
    std: list[float] | None = None
    seed: int | None = None
    split: str = "test"
    root: str | None = None


def long_tail_counts(
    n_max: int, num_classes: int, imbalance_ratio: float, profile: str = "exp"
) -> list[int]:
    """Per-class training counts of a long-tailed profile, head class first.

    ``"exp"``: n_k = int(n_max * IR^(-k/(K-1))), k = 0..K-1 (truncation, as in the long-tail
    literature: CIFAR-10-LT at IR 100 has 12406 images, CIFAR-100-LT 10847). ``"step"``: the
    first floor(K/2) classes get n_max, the rest int(n_max / IR).
    """
    k = check_num_classes(num_classes)
    n_max = check_scalar("n_max", n_max, kind=int, low=1)
    imbalance_ratio = check_scalar("imbalance_ratio", imbalance_ratio, low=1)
    if check_choice("profile", profile, PROFILES) == "exp":
        counts = [int(n_max * imbalance_ratio ** (-i / (k - 1))) for i in range(k)]
    else:
        counts = [n_max] * (k // 2) + [int(n_max / imbalance_ratio)] * (k - k // 2)
    if counts[-1] < 1:
        raise ValueError(
            f"n_max={n_max} with imbalance_ratio={imbalance_ratio} leaves the smallest class "
            "empty; raise n_max or lower imbalance_ratio"
        )
    return counts


def long_tail_subset(labels: ArrayLike, counts: Sequence[int], seed: int = 0) -> torch.Tensor:
    """Indices (sorted, int64) that keep ``counts[k]`` samples of each class k.

    Within each class the samples are a seeded random choice without replacement, so the same
    labels, counts and seed always give the same subset. Labels must lie in [0, len(counts)).
    """
    y = torch.as_tensor(np.asarray(labels)).long()
    want = as_counts(counts)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {tuple(y.shape)}")
    if y.numel() and (y.min() < 0 or y.max() >= len(want)):
        raise ValueError(f"labels must lie in [0, {len(want)}) for {len(want)} class counts")
    have = torch.bincount(y, minlength=len(want))
    short = [(k, int(have[k]), int(n)) for k, n in enumerate(want) if have[k] < n]
    if short:
        k, h, n = short[0]
        raise ValueError(f"class {k} has {h} samples but {n} were requested ({len(short)} short)")
    gen = torch.Generator().manual_seed(check_scalar("seed", seed, kind=int))
    picked = []
    for k, n in enumerate(want.tolist()):
        members = torch.nonzero(y == k).flatten()
        picked.append(members[torch.randperm(len(members), generator=gen)[:n]])
    return torch.cat(picked).sort().values


def hold_out(labels: ArrayLike, per_class: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Split indices into a class-balanced held-out set and the rest: (held, rest), sorted int64.

    ``held`` has ``per_class`` samples of every class (a seeded random choice), ``rest`` all the
    others; the two are disjoint and together cover every index. Used for validation sets.
    """
    y = torch.as_tensor(np.asarray(labels)).long()
    k = int(y.max()) + 1 if y.numel() else 0
    held = long_tail_subset(y, [per_class] * k, seed=seed + 7919)
    keep = torch.ones(len(y), dtype=torch.bool)
    keep[held] = False
    return held, torch.nonzero(keep).flatten()
