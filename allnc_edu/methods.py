"""The training recipes the package compares, behind one interface (``models.Method``).

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

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import ArrayLike, as_counts, check_num_classes
from .allnc import AllNC, AllNCConfig, gbbn_alpha
from .losses import dot_regression_loss, drw_weights, ldam_loss, ldam_margins, log_prior
from .models import CosineHead, ETFHead, LinearHead, Method, ModelOutput, Network

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
        gbbn_alpha(progress)  # validates progress in [0, 1]
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
        method = AllNC(backbone, k, counts, AllNCConfig(**options))
    elif name in ("la", "ldam-drw"):
        method = builders[name](backbone, k, counts, **options)
    else:
        method = builders[name](backbone, k, **options)
    method.name = name
    return method
