"""The training recipes the package compares, behind one interface (``method_base.Method``).

- "ce": a linear head, cross-entropy.
- "la": a linear head, logit-adjusted CE (Menon et al. 2021); inference on the raw logits.
- "ldam-drw": a cosine head, LDAM loss (Cao et al. 2019, s = 30, max margin 0.5) with deferred
  re-weighting switched on for the last 20% of training (their epoch 160 of 200).
- "etf-dr": a fixed simplex-ETF head and the dot-regression loss (Yang et al. 2022).
- "allnc": ``allnc.AllNC`` (a documented reconstruction); options are ``AllNCConfig`` fields.

``make_method(name, backbone, num_classes, class_counts, **options)`` builds one.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import ArrayLike, as_counts, check_num_classes
from .allnc import AllNC, AllNCConfig
from .losses import dot_regression_loss, drw_weights, ldam_loss, ldam_margins, log_prior
from .method_base import Method, check_progress
from .models import CosineHead, ETFHead, LinearHead, ModelOutput, Network

METHODS = ("ce", "la", "ldam-drw", "etf-dr", "allnc")


class _SingleHead(Method):
    """A backbone and one head; subclasses define ``_loss(output, y, progress)``."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.net = Network(backbone, head)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        return self.net(x)

    def _loss(self, out: ModelOutput, y: torch.Tensor, progress: float) -> torch.Tensor:
        raise NotImplementedError

    def loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        progress: float,
        epoch: int,
        balanced_batch: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        check_progress(progress)
        value = self._loss(self.net(x), y, progress)
        return value, {"loss": value.detach()}

    def classifier(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        head = self.net.head
        bias = getattr(head, "bias", None)
        return head.weight.detach(), None if bias is None else bias.detach()


class CrossEntropy(_SingleHead):
    """Plain cross-entropy with a learnable linear head."""

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__(backbone, LinearHead(backbone.feature_dim, num_classes))

    def _loss(self, out: ModelOutput, y: torch.Tensor, progress: float) -> torch.Tensor:
        return F.cross_entropy(out.logits, y)


class LogitAdjusted(_SingleHead):
    """Logit-adjusted CE, CE(z + tau log pi, y), with a linear head; raw logits at inference."""

    log_prior: torch.Tensor

    def __init__(
        self, backbone: nn.Module, num_classes: int, class_counts: ArrayLike, tau: float = 1.0
    ) -> None:
        super().__init__(backbone, LinearHead(backbone.feature_dim, num_classes))
        if tau < 0:
            raise ValueError(f"tau must be >= 0, got {tau}")
        self.tau = float(tau)
        self.register_buffer("log_prior", log_prior(class_counts))

    def _loss(self, out: ModelOutput, y: torch.Tensor, progress: float) -> torch.Tensor:
        return F.cross_entropy(out.logits.float() + self.tau * self.log_prior, y)


class LDAMDRW(_SingleHead):
    """LDAM with deferred re-weighting (Cao et al. 2019) on a cosine head.

    Loss CE(s (cos - m_y e_y), y) with m_k proportional to n_k^-1/4 (largest ``max_margin``)
    and s = ``scale``; from ``progress >= drw_start`` on, each class is weighted by
    ``drw_weights`` (effective numbers, beta). Inference logits are the cosines.
    """

    margins: torch.Tensor
    drw: torch.Tensor

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        class_counts: ArrayLike,
        max_margin: float = 0.5,
        scale: float = 30.0,
        beta: float = 0.9999,
        drw_start: float = 0.8,
    ) -> None:
        super().__init__(backbone, CosineHead(backbone.feature_dim, num_classes))
        if scale <= 0 or not 0.0 <= drw_start <= 1.0:
            raise ValueError(f"need scale > 0 and drw_start in [0, 1], got {scale}, {drw_start}")
        self.scale, self.drw_start = float(scale), float(drw_start)
        self.register_buffer("margins", ldam_margins(class_counts, max_margin))
        self.register_buffer("drw", drw_weights(class_counts, beta))

    def _loss(self, out: ModelOutput, y: torch.Tensor, progress: float) -> torch.Tensor:
        weight = self.drw if progress >= self.drw_start else None
        return ldam_loss(out.logits, y, self.margins, self.scale, weight)

    def classifier(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The normalised classifier rows (the cosine head applies them to normalised h)."""
        return F.normalize(self.net.head.weight.detach(), dim=1), None


class ETFDotRegression(_SingleHead):
    """A fixed simplex-ETF classifier trained with the dot-regression loss (Yang et al. 2022)."""

    def __init__(self, backbone: nn.Module, num_classes: int, seed: int = 0) -> None:
        super().__init__(backbone, ETFHead(backbone.feature_dim, num_classes, seed))

    def _loss(self, out: ModelOutput, y: torch.Tensor, progress: float) -> torch.Tensor:
        return dot_regression_loss(out.features, y, self.net.head.weight)


def _options_of(cls) -> list[str]:
    skip = {"self", "backbone", "num_classes", "class_counts"}
    return [p for p in inspect.signature(cls).parameters if p not in skip]


def make_method(
    name: str, backbone: nn.Module, num_classes: int, class_counts: ArrayLike, **options
) -> Method:
    """Build a training recipe by name on ``backbone`` (which must have ``feature_dim``).

    Names and options: "ce" (none), "la" (tau), "ldam-drw" (max_margin, scale, beta,
    drw_start), "etf-dr" (seed), "allnc" (any ``AllNCConfig`` field, e.g. ``hycon=False``).
    """
    k = check_num_classes(num_classes)
    counts = as_counts(class_counts, "class_counts")
    if counts.numel() != k:
        raise ValueError(f"class_counts has {counts.numel()} entries, expected {k}")
    if not hasattr(backbone, "feature_dim"):
        raise ValueError("backbone must have a feature_dim attribute (see allnc_edu.models)")
    builders = {
        "ce": CrossEntropy,
        "la": LogitAdjusted,
        "ldam-drw": LDAMDRW,
        "etf-dr": ETFDotRegression,
        "allnc": AllNCConfig,
    }
    if name not in builders:
        raise ValueError(f"unknown method {name!r}; allowed: {', '.join(METHODS)}")
    allowed = _options_of(builders[name])
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"method {name!r} has no option(s) {unknown}; allowed: {allowed}")
    if name == "allnc":
        config = AllNCConfig(**options)
        method = AllNC(backbone, k, counts, config)
        method.options = config.as_dict()
    else:
        if name in ("la", "ldam-drw"):
            method = builders[name](backbone, k, counts, **options)
        else:
            method = builders[name](backbone, k, **options)
        defaults = {p: inspect.signature(builders[name]).parameters[p].default for p in allowed}
        method.options = {**defaults, **options}
    method.name = name
    return method


@dataclass(frozen=True)
class Variant:
    """A named training recipe for studies: a ``make_method`` name, its options and a budget.

    ``epochs_factor`` multiplies the study's epochs: "ce-2x" trains CE for twice the epochs, so
    that it sees as many samples as a GBBN run, which draws two batches per step.
    """

    method: str
    options: Mapping[str, Any] = field(default_factory=dict)
    epochs_factor: int = 1
    description: str = ""


#: Every named variant a study can run (``study --methods``), defined here only.
VARIANTS: dict[str, Variant] = {
    "ce": Variant("ce", description="cross-entropy"),
    "la": Variant("la", description="logit adjustment (Menon et al. 2021)"),
    "ce-2x": Variant("ce", epochs_factor=2, description="cross-entropy, twice the epochs"),
    "la-2x": Variant("la", epochs_factor=2, description="logit adjustment, twice the epochs"),
    "ldam-drw": Variant("ldam-drw", description="LDAM with deferred re-weighting"),
    "etf-dr": Variant("etf-dr", description="fixed ETF classifier with dot regression"),
    "allnc": Variant("allnc", description="AllNC with the package defaults"),
    "allnc-spec": Variant(
        "allnc",
        {"lambda_h": 1.0, "lambda_p": 1.0, "gamma": 2.0, "q": 1.0, "rebalance_loss": "ce"},
        description="AllNC with the method spec's defaults (CE on class-balanced batches)",
    ),
    "allnc-ce-rebalance": Variant(
        "allnc",
        {"rebalance_loss": "ce", "q": 1.0},
        description="AllNC, re-balancing branch: CE on class-balanced batches (the spec)",
    ),
    "allnc-la-rebalance": Variant(
        "allnc",
        {"rebalance_loss": "la", "q": 0.0},
        description="AllNC, re-balancing branch: logit adjustment on instance-balanced batches",
    ),
    "allnc-joint-bn": Variant(
        "allnc", {"bn_passes": "joint"}, description="AllNC, both GBBN batches in one pass"
    ),
    "allnc-batch-means": Variant(
        "allnc", {"p2p_means": "batch"}, description="AllNC, P2P on the batch's class means"
    ),
    "allnc-no-hycon": Variant("allnc", {"hycon": False}, description="AllNC without HyCon"),
    "allnc-no-p2p": Variant("allnc", {"p2p": False}, description="AllNC without P2P"),
    "allnc-no-gbbn": Variant("allnc", {"gbbn": False}, description="AllNC without GBBN"),
    "ce-hycon": Variant(
        "allnc", {"p2p": False, "gbbn": False}, description="cross-entropy + HyCon"
    ),
    "ce-p2p": Variant("allnc", {"hycon": False, "gbbn": False}, description="cross-entropy + P2P"),
    "gbbn": Variant("allnc", {"hycon": False, "p2p": False}, description="GBBN alone"),
}


def variant(name: str) -> Variant:
    """The named ``VARIANTS`` entry; a ``METHODS`` name not listed there is its plain method."""
    if name in VARIANTS:
        return VARIANTS[name]
    if name in METHODS:
        return Variant(name)
    raise ValueError(f"unknown method or variant {name!r}; allowed: {', '.join(VARIANTS)}")


def method_options(name: str) -> list[str]:
    """The option names ``make_method(name, ...)`` accepts."""
    builders = {"ce": CrossEntropy, "la": LogitAdjusted, "ldam-drw": LDAMDRW,
                "etf-dr": ETFDotRegression, "allnc": AllNCConfig}  # fmt: skip
    return _options_of(builders[name])
