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

import dataclasses
import inspect
from collections.abc import Callable, Mapping
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


def _build_allnc(
    backbone: nn.Module, num_classes: int, class_counts: ArrayLike, **options: Any
) -> AllNC:
    return AllNC(backbone, num_classes, class_counts, AllNCConfig(**options))


@dataclass(frozen=True)
class MethodSpec:
    """A training recipe the package ships: everything the rest of the package needs of it.

    Attributes:
        name: its name (``make_method(name)``, ``--method``, ``study --methods``).
        build: ``build(backbone, num_classes[, class_counts], **options) -> Method``.
        options_of: the class whose signature (or, for a dataclass of settings, whose fields)
            names the method's options.
        label: its name in tables and figures ("logit adjustment").
        help: one line for ``--help``.
        note: one sentence for a report's list of methods.
        needs_counts: whether ``build`` takes the training class counts.
    """

    name: str
    build: Callable[..., Method]
    options_of: type
    label: str
    help: str
    note: str
    needs_counts: bool = False

    @property
    def options(self) -> list[str]:
        """The option names the method accepts."""
        if dataclasses.is_dataclass(self.options_of):
            return [f.name for f in dataclasses.fields(self.options_of)]
        return _options_of(self.options_of)

    def defaults(self) -> dict[str, Any]:
        """Every option with its default value."""
        if dataclasses.is_dataclass(self.options_of):
            return self.options_of().as_dict()
        params = inspect.signature(self.options_of).parameters
        return {name: params[name].default for name in self.options}


CE = MethodSpec(
    "ce",
    CrossEntropy,
    CrossEntropy,
    "CE",
    "cross-entropy (CE) with a learned linear classifier",
    "plain cross-entropy with a learned linear classifier: the baseline that collapses",
)
LA = MethodSpec(
    "la",
    LogitAdjusted,
    LogitAdjusted,
    "logit adjustment",
    "logit-adjusted cross-entropy (Menon et al. 2021)",
    "logit adjustment (Menon et al. 2021): cross-entropy on logits shifted by the log "
    "class frequencies, a standard long-tail baseline",
    needs_counts=True,
)
LDAM_DRW = MethodSpec(
    "ldam-drw",
    LDAMDRW,
    LDAMDRW,
    "LDAM-DRW",
    "label-distribution-aware margin (LDAM) loss with deferred re-weighting (DRW; Cao et al. 2019)",
    "label-distribution-aware margins with deferred re-weighting (Cao et al. 2019)",
    needs_counts=True,
)
ETF_DR = MethodSpec(
    "etf-dr",
    ETFDotRegression,
    ETFDotRegression,
    "ETF + DR",
    "a classifier fixed to a simplex equiangular tight frame (ETF), trained with dot "
    "regression (Yang et al. 2022)",
    "the classifier fixed to a simplex ETF, trained with dot regression (Yang et al. "
    "2022): the classifier-only fix",
)
ALLNC = MethodSpec(
            "allnc", _build_allnc, AllNCConfig, "AllNC",
            "AllNC: HyCon + P2P + GBBN (a documented reconstruction of Zhang et al. 2024)",
            "HyCon (pulls each feature towards its class mean), P2P (aligns each centred class "
            "mean with its classifier row, every other pair at the ETF angle) and GBBN (a "
            "second, class-balanced head); a documented reconstruction, see docs/method.md",
            needs_counts=True,
        )  # fmt: skip
#: Every training recipe, by name: the one place a method is added.
METHODS: dict[str, MethodSpec] = {spec.name: spec for spec in (CE, LA, LDAM_DRW, ETF_DR, ALLNC)}


def method_spec(name: str) -> MethodSpec:
    """The ``METHODS`` entry of ``name``; a ValueError listing the names otherwise."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; allowed: {', '.join(METHODS)}")
    return METHODS[name]


def make_method(
    name: str, backbone: nn.Module, num_classes: int, class_counts: ArrayLike, **options
) -> Method:
    """Build a training recipe by name (a ``METHODS`` key) on ``backbone`` (which must have
    ``feature_dim``). Options: "ce" none, "la" tau, "ldam-drw" max_margin, scale, beta,
    drw_start, "etf-dr" seed, "allnc" any ``AllNCConfig`` field (e.g. ``hycon=False``).
    """
    spec = method_spec(name)
    k = check_num_classes(num_classes)
    counts = as_counts(class_counts, "class_counts")
    if counts.numel() != k:
        raise ValueError(f"class_counts has {counts.numel()} entries, expected {k}")
    if not hasattr(backbone, "feature_dim"):
        raise ValueError("backbone must have a feature_dim attribute (see allnc_edu.models)")
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise ValueError(f"method {name!r} has no option(s) {unknown}; allowed: {spec.options}")
    args = (backbone, k, counts) if spec.needs_counts else (backbone, k)
    method = spec.build(*args, **options)
    method.options = {**spec.defaults(), **options}
    if dataclasses.is_dataclass(spec.options_of):  # normalised by its checks (1 -> 1.0)
        method.options = method.config.as_dict()
    method.name = name
    return method


@dataclass(frozen=True)
class Variant:
    """A named training recipe for studies: a method, its options and a budget.

    ``epochs_factor`` multiplies the study's epochs: "ce-2x" trains CE for twice the epochs, so
    that it sees as many samples as a GBBN run, which draws two batches per step. Without a
    ``description`` it is the method's label (and the budget).
    """

    spec: MethodSpec
    options: Mapping[str, Any] = field(default_factory=dict)
    epochs_factor: int = 1
    description: str = ""

    def __post_init__(self) -> None:
        if not self.description:
            budget = "" if self.epochs_factor == 1 else f", {self.epochs_factor}x the epochs"
            object.__setattr__(self, "description", f"{self.spec.help}{budget}")

    @property
    def method(self) -> str:
        """The method's name (a ``METHODS`` key)."""
        return self.spec.name


#: Every named variant a study can run (``study --methods``), defined here only.
VARIANTS: dict[str, Variant] = {
    **{name: Variant(spec) for name, spec in METHODS.items()},
    f"{CE.name}-2x": Variant(CE, epochs_factor=2),
    f"{LA.name}-2x": Variant(LA, epochs_factor=2),
    "allnc-spec": Variant(
        ALLNC,
        {"lambda_h": 1.0, "lambda_p": 1.0, "gamma": 2.0, "q": 1.0, "rebalance_loss": "ce"},
        description="AllNC with the method spec's defaults (CE on class-balanced batches)",
    ),
    "allnc-ce-rebalance": Variant(
        ALLNC,
        {"rebalance_loss": "ce", "q": 1.0},
        description="AllNC, re-balancing branch: CE on class-balanced batches (the spec)",
    ),
    "allnc-la-rebalance": Variant(
        ALLNC,
        {"rebalance_loss": "la", "q": 0.0},
        description="AllNC, re-balancing branch: logit adjustment on instance-balanced batches",
    ),
    "allnc-joint-bn": Variant(
        ALLNC, {"bn_passes": "joint"}, description="AllNC, both GBBN batches in one pass"
    ),
    "allnc-batch-means": Variant(
        ALLNC, {"p2p_means": "batch"}, description="AllNC, P2P on the batch's class means"
    ),
    "allnc-no-hycon": Variant(ALLNC, {"hycon": False}, description="AllNC without HyCon"),
    "allnc-no-p2p": Variant(ALLNC, {"p2p": False}, description="AllNC without P2P"),
    "allnc-no-gbbn": Variant(ALLNC, {"gbbn": False}, description="AllNC without GBBN"),
    "ce-hycon": Variant(ALLNC, {"p2p": False, "gbbn": False}, description="cross-entropy + HyCon"),
    "ce-p2p": Variant(ALLNC, {"hycon": False, "gbbn": False}, description="cross-entropy + P2P"),
    "gbbn": Variant(ALLNC, {"hycon": False, "p2p": False}, description="GBBN alone"),
}


def variant(name: str) -> Variant:
    """The named ``VARIANTS`` entry, or the plain method of a ``METHODS`` name."""
    if name in VARIANTS:
        return VARIANTS[name]
    if name in METHODS:  # a method registered after this module loaded
        return Variant(METHODS[name])
    raise ValueError(f"unknown method or variant {name!r}; allowed: {', '.join(VARIANTS)}")


def method_options(name: str) -> list[str]:
    """The option names ``make_method(name, ...)`` accepts."""
    return method_spec(name).options
