"""What a minority squeeze is made of: direction, or length seen through centring.

MC_H, the mean cosine between the minority classes' centred means, rises when those means turn
towards each other, but also when they only shrink: subtracting one global mean from means of
unequal length tilts the short ones towards each other even when their directions do not move.
:func:`minority_squeeze` measures the same minority means four ways, so the two can be told
apart: the raw (uncentred) means, centred by the class-balanced and by the sample-weighted
global mean (``metrics``' two conventions), and per-class normalised means centred after the
normalisation (length removed before centring). A squeeze that survives the raw and the
normalised views is one of direction; one that appears only after centring is one of length.
"""

from __future__ import annotations

from typing import Any

import torch

from ._checks import ArrayLike, as_counts, as_float64
from .metrics import metrics_from_class_stats

#: The views of :func:`minority_squeeze`, in the order a table shows them.
VIEWS = ("raw", "balanced", "weighted", "normalised")


def _mean_pairwise_cosine(rows: torch.Tensor) -> float:
    unit = rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-300)
    cos = unit @ unit.T
    m = len(rows)
    return float((cos.sum() - cos.diagonal().sum()) / (m * (m - 1)))


def minority_squeeze(
    means: ArrayLike,
    counts: ArrayLike,
    minority: list[int],
    weight: ArrayLike | None = None,
) -> dict[str, Any]:
    """The minority means' squeeze measured four ways, and their lengths.

    Args:
        means: (K, d) uncentred class means.
        counts: (K,) training samples per class (for the sample-weighted global mean).
        minority: at least two class indices.
        weight: (K, d) classifier rows, optional.

    Returns:
        ``raw``, ``balanced``, ``weighted``, ``normalised``: the mean pairwise cosine among the
        minority means, uncentred, centred by the class-balanced or the sample-weighted global
        mean (MC_H under each convention), and centred after each mean is scaled to length 1;
        ``etf``: -1/(K-1), their value at a simplex ETF; ``norm_ratio``: the mean length of the
        minority means over that of the others (raw means); ``own_classifier`` (with
        ``weight``): the mean cosine between each raw minority mean and its own classifier row.
    """
    mu = as_float64(means, "means", ndim=2)
    n = as_counts(counts)
    k = mu.shape[0]
    if n.numel() != k:
        raise ValueError(f"counts has {n.numel()} entries, means {k} rows")
    picked = sorted(set(minority))
    if len(picked) < 2 or not all(0 <= c < k for c in picked):
        raise ValueError(f"minority must name at least two classes in [0, {k}), got {minority}")
    rest = [c for c in range(k) if c not in picked]
    unit = mu / mu.norm(dim=1, keepdim=True).clamp_min(1e-300)
    out = {
        "raw": _mean_pairwise_cosine(mu[picked]),
        "balanced": metrics_from_class_stats(n, mu, minority=picked).mc_means,
        "weighted": metrics_from_class_stats(
            n, mu, minority=picked, global_mean="weighted"
        ).mc_means,
        "normalised": metrics_from_class_stats(n, unit, minority=picked).mc_means,
        "etf": -1.0 / (k - 1),
        "norm_ratio": float(mu[picked].norm(dim=1).mean() / mu[rest].norm(dim=1).mean())
        if rest
        else 1.0,
    }
    if weight is not None:
        w = as_float64(weight, "weight", ndim=2)
        if w.shape != mu.shape:
            raise ValueError(
                f"weight must be {tuple(mu.shape)} like the means, got {tuple(w.shape)}"
            )
        cos = torch.nn.functional.cosine_similarity(mu[picked], w[picked], dim=1)
        out["own_classifier"] = float(cos.mean())
    return out
