"""Groups of classes by training count: shot groups, minority classes, accuracy by group.

- Shot groups (the long-tail literature's convention): "many" (> 100 training samples),
  "medium" (20..100) and "few" (< 20).
- Minority classes: the K - K//2 classes with the fewest training samples (for K = 2, the
  smaller class); MC_W and MC_H are measured over them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ._checks import ArrayLike, as_counts


def shot_groups(counts: ArrayLike) -> dict[str, list[int]]:
    """Class indices by training count: "many" (> 100), "medium" (20..100), "few" (< 20)."""
    c = as_counts(counts).tolist()
    return {
        "many": [k for k, n in enumerate(c) if n > 100],
        "medium": [k for k, n in enumerate(c) if 20 <= n <= 100],
        "few": [k for k, n in enumerate(c) if n < 20],
    }


def minority_classes(counts: ArrayLike) -> list[int]:
    """The K - K//2 classes with the fewest samples, sorted; on ties a larger index is smaller.

    For exp/step profiles and for balanced counts this is the last K - K//2 classes.
    """
    c = as_counts(counts).tolist()
    k = len(c)
    order = sorted(range(k), key=lambda i: (c[i], -i))
    return sorted(order[: k - k // 2])


def mean_over(per_class: Sequence[float | None], classes: Sequence[int]) -> float | None:
    """The mean of ``per_class`` over ``classes``, skipping None (None when nothing is left)."""
    values = [per_class[c] for c in classes if per_class[c] is not None]
    return sum(values) / len(values) if values else None


def accuracy_by_group(predictions: ArrayLike, labels: ArrayLike, counts: ArrayLike) -> dict:
    """Accuracy overall, per shot group, of the minority and majority classes, and per class.

    Args:
        predictions: (N,) predicted classes, or (N, K) logits (their argmax is taken).
        labels: (N,) true classes in [0, K).
        counts: (K,) training samples per class, which define the groups (:func:`shot_groups`,
            :func:`minority_classes`).

    Returns:
        {"overall": float, "many"/"medium"/"few": float or None when no evaluated sample belongs
        to the group, "minority"/"majority": the mean per-class accuracy over the minority
        classes and over the others, "per_class": list of K floats (None for a class with no
        sample)}; all fractions in [0, 1].
    """
    n = as_counts(counts)
    k = n.numel()
    pred = _as_tensor(predictions)
    if pred.ndim == 2:
        if pred.shape[1] != k:
            raise ValueError(f"logits must have {k} columns (one per class), got {pred.shape[1]}")
        pred = pred.argmax(dim=1)
    if pred.ndim != 1 or pred.numel() == 0:
        raise ValueError(
            f"predictions must be (N,) classes or (N, K) logits with N >= 1, got "
            f"shape {tuple(pred.shape)}"
        )
    pred = _labels(pred, pred.numel(), k, "predictions")
    y = _labels(_as_tensor(labels), pred.numel(), k, "labels")
    correct, total = class_hits(pred, y, k)
    return accuracy_from_counts(correct, total, n)


def class_hits(predictions: torch.Tensor, labels: torch.Tensor, k: int) -> tuple[torch.Tensor, ...]:
    """Per-class (K,) int64 counts of correct predictions and of samples, for (N,) predicted
    and true classes: the exact statistics behind every accuracy, summable over parts of a set
    (e.g. the ranks of a data parallel run)."""
    hit = labels[predictions == labels]
    return torch.bincount(hit, minlength=k), torch.bincount(labels, minlength=k)


def accuracy_from_counts(correct: ArrayLike, total: ArrayLike, counts: ArrayLike) -> dict:
    """:func:`accuracy_by_group` from per-class (K,) correct and total counts (:func:`class_hits`)
    of the evaluated samples; ``counts`` (K,) training samples per class define the groups."""
    n = as_counts(counts)
    k = n.numel()
    correct = _as_tensor(correct).to(torch.float64)
    total = _as_tensor(total).to(torch.float64)
    if correct.shape != (k,) or total.shape != (k,) or not total.sum() > 0:
        raise ValueError(f"correct and total must be ({k},) counts of at least one sample")

    def accuracy(classes: list[int]) -> float | None:
        idx = torch.as_tensor(classes, dtype=torch.long)
        seen = total[idx].sum()
        return float(correct[idx].sum() / seen) if seen > 0 else None

    out: dict = {"overall": float(correct.sum() / total.sum())}
    for name, classes in shot_groups(n.tolist()).items():
        out[name] = accuracy(classes)
    per_class = [accuracy([c]) for c in range(k)]
    minority = minority_classes(n.tolist())
    out["minority"] = mean_over(per_class, minority)
    out["majority"] = mean_over(per_class, [c for c in range(k) if c not in minority])
    out["per_class"] = per_class
    return out


def _as_tensor(x: ArrayLike) -> torch.Tensor:
    t = x if torch.is_tensor(x) else torch.as_tensor(np.asarray(x))
    return t.detach().cpu()


def _labels(t: torch.Tensor, n: int, k: int, name: str) -> torch.Tensor:
    """Validate (n,) integer labels in [0, k)."""
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{name} must be integers, got dtype {t.dtype}")
    if t.ndim != 1 or t.numel() != n:
        raise ValueError(f"{name} must have shape ({n},) to match, got {tuple(t.shape)}")
    t = t.to(torch.long)
    if t.min() < 0 or t.max() >= k:
        raise ValueError(f"{name} must lie in [0, {k}), got values in [{t.min()}, {t.max()}]")
    return t
