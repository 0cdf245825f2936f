"""The metrics' registry: each scalar metric of an evaluation named, described and placed once.

``METRICS`` maps a metric's field (in ``metrics.NCMetrics.as_dict()`` and in history.json's
``nc``) to its :class:`MetricSpec`: the short label of tables and figures, a one-line
description, its value at a simplex ETF, the axis of its curves. Tables (``study``,
``report``), figures (``plots``) and the command line read them from here. Adding a metric is
one entry with a ``compute`` function of the shared :class:`ClassGeometry`; the built-in ones are
computed by ``metrics.metrics_from_class_stats`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ClassGeometry:
    """What a metric is computed from, in float64: ``counts`` (K,), ``means`` (K, d) uncentred
    class means, ``centred`` (K, d) means minus the global mean, ``sigma_w`` (d, d) the
    within-class covariance, ``weight`` (K, d) the classifier (None without one) and
    ``minority`` (the minority class indices, or None)."""

    counts: torch.Tensor
    means: torch.Tensor
    centred: torch.Tensor
    sigma_w: torch.Tensor
    weight: torch.Tensor | None
    minority: list[int] | None


@dataclass(frozen=True)
class MetricSpec:
    """A scalar metric of an evaluation: how to show it and, for an added one, how to compute
    it. Everything that names, formats or plots a metric reads it from here.

    Attributes:
        name: its field in ``NCMetrics.as_dict()`` and in history.json's ``nc``.
        label: its short name in tables and figures ("MC_W").
        description: what it measures, one line.
        etf: its value at a simplex ETF of K classes, ``etf(K)``, or None when it has none.
        compute: ``compute(ClassGeometry) -> float | None`` for an added metric; None for the
            built-in ones, which :func:`metrics_from_class_stats` computes itself.
        scale: "linear" or "log", the axis of its curves.
        signed: whether its values are shown with a sign (cosines).
    """

    name: str
    label: str
    description: str
    etf: Callable[[int], float] | None = None
    compute: Callable[[ClassGeometry], float | None] | None = None
    scale: str = "linear"
    signed: bool = False


def _etf_cosine(k: int) -> float:
    return -1.0 / (k - 1)


def _zero(k: int) -> float:
    return 0.0


def _one(k: int) -> float:
    return 1.0


#: Every scalar metric, by name: the one place a metric is added (with its ``compute``).
METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("nc1", "NC1", "within-class over between-class variability, "
                   "Tr(Sigma_W Sigma_B^+)/K", _zero, scale="log"),
        MetricSpec("self_duality", "self-duality", "distance between the normalised classifier "
                   "and the normalised centred means (NC3)", _zero),
        MetricSpec("mc_weights", "MC_W", "mean cosine between the minority classifier rows; 1 "
                   "when they point the same way", _etf_cosine, signed=True),
        MetricSpec("mc_means", "MC_H", "mean cosine between the minority centred class means; 1 "
                   "when they point the same way", _etf_cosine, signed=True),
        MetricSpec("etf_distance_means", "ETF distance (means)", "distance of the centred "
                   "means' Gram from a simplex ETF's (NC2)", _zero),
        MetricSpec("etf_distance_weights", "ETF distance (classifier)", "distance of the "
                   "classifier's Gram from a simplex ETF's (NC2)", _zero),
        MetricSpec("equinorm_means", "equinorm (means)", "spread of the centred means' norms "
                   "over their mean", _zero),
        MetricSpec("equinorm_weights", "equinorm (classifier)", "spread of the classifier "
                   "rows' norms over their mean", _zero),
        MetricSpec("equiangular_means", "equiangularity (means)", "standard deviation of the "
                   "centred means' pairwise cosines", _zero),
        MetricSpec("equiangular_weights", "equiangularity (classifier)", "standard deviation "
                   "of the classifier rows' pairwise cosines", _zero),
        MetricSpec("ncc_agreement", "NC4 agreement", "fraction of samples on which the "
                   "classifier agrees with the nearest class mean", _one),
    )
}  # fmt: skip
