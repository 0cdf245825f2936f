"""AllNC: all-around neural collapse for imbalanced classification, as one trainable model.

A documented reconstruction of Zhang et al., arXiv 2408.07253, following ``allnc-method.md``;
not the authors' code. Parts marked (R) are reconstructions: choices the paper does not spell
out, each an ``AllNCConfig`` field (its ``reconstructed`` flag).

Total loss of one step, with t/T = ``progress``:

    L = alpha(t) L_conv + (1 - alpha(t)) L_rebal + lambda_h L_HyCon + lambda_p L_P2P

- GBBN (R): a shared backbone and two linear heads. Conventional head W_c: CE (or logit
  adjustment by the training prior, ``conventional_loss``) on the usual (instance-balanced)
  batch, driving feature learning. Re-balancing head W_r: CE (or
  logit-adjusted CE, adjusted by the batch's own class distribution pi_k proportional to
  n_k^(1-q), ``sampling_log_prior``) on a batch drawn with weights proportional to n_k^-q,
  driving classifier learning. alpha(t) = 1 - (t/T)^gamma moves the weight from the first to
  the second (gamma = 2 is BBN's parabola). Inference uses W_r (or the average of both heads).
  GBBN off: a single head trained with CE on the usual batches.
- HyCon (R), for NC1: ``losses.hycon_loss`` on projections g(z) of all samples of the step,
  with prototypes from a class-mean bank (of g(z); the feature bank when g is the identity).
- P2P (R), for NC2 + NC3: ``losses.p2p_loss`` between the class means and the inference head
  W_r (the single head when GBBN is off). The means carry P2P's full gradient to the features
  (``ClassMeanBank.p2p_means``: the EMA's value, the batch mean's gradient), so the network's
  P2P is the objective the unconstrained-features model (``ufm``) optimises.
- Class-mean bank: an EMA of per-class feature means, updated after the loss of every step.

The two batches of a GBBN step go through the backbone in two passes (``bn_passes=
"separate"``, BatchNorm normalises each batch with its own statistics, as BBN's branches) or
one concatenated pass (``"joint"``). HyCon contrasts the samples of both batches (or of one,
``hycon_samples``); P2P and the bank use both. ``defer`` keeps HyCon and P2P off for a first
fraction of training.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import ArrayLike, as_counts
from .config import check_settings, setting
from .losses import (
    HYCON_WEIGHTINGS,
    P2P_MEAN_FORMS,
    P2P_MODES,
    ClassMeanBank,
    hycon_loss,
    log_prior,
    p2p_loss,
)
from .method_base import Method, check_progress
from .models import LinearHead, ModelOutput

REBALANCE_LOSSES = ("ce", "la")
CONVENTIONAL_LOSSES = ("ce", "la")
INFERENCE_HEADS = ("rebalancing", "average")
PROJECTIONS = ("mlp", "identity")
BN_PASSES = ("separate", "joint")
HYCON_SAMPLES = ("all", "conventional", "balanced")


def gbbn_alpha(progress: float, gamma: float = 2.0) -> float:
    """GBBN's cumulative weight alpha = 1 - progress^gamma (R).

    Runs from 1 (start: all weight on the conventional branch) to 0 (end: all on the
    re-balancing branch). gamma = 2 is BBN's parabolic schedule 1 - (t/T)^2; gamma > 2 keeps
    feature learning longer, gamma < 2 switches to classifier learning sooner.

    Args:
        progress: t/T in [0, 1], the fraction of training done (per step or per epoch).
        gamma: exponent > 0.
    """
    progress, gamma = float(progress), float(gamma)
    if not (math.isfinite(progress) and 0.0 <= progress <= 1.0):
        raise ValueError(f"progress must be in [0, 1], got {progress}")
    if not (math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be a finite number > 0, got {gamma}")
    return 1.0 - progress**gamma


def sampling_log_prior(class_counts: ArrayLike, q: float) -> torch.Tensor:
    """log pi_k of the re-balancing branch's batches, (K,) float32: pi_k proportional to n_k^(1-q).

    Sampling each training sample with weight n_{y_i}^-q draws class k with probability
    proportional to n_k * n_k^-q. Logit adjustment on these batches must use this
    distribution, not the training prior: at q = 1 (class-balanced batches) it is uniform and
    the adjustment vanishes (adding log pi of the training set would correct the prior twice);
    at q = 0 it is the training prior.
    """
    n = as_counts(class_counts, "class_counts").to(torch.float64)
    logits = (1.0 - float(q)) * n.log()
    return (logits - torch.logsumexp(logits, dim=0)).to(torch.float32)


@dataclass(frozen=True)
class AllNCConfig:
    """AllNC's switches and hyper-parameters, each with its help text (``config.setting``).

    Defaults were chosen on the validation split (issue 9, ``docs/method.md``); the spec's
    defaults (``allnc-method.md``) are ``methods.VARIANTS["allnc-spec"]``. Fields marked
    ``reconstructed`` are our reading of choices the paper does not spell out.
    """

    hycon: bool = setting(
        True,
        "HyCon, the hybrid contrastive loss pulling each sample to its "
        "class mean (NC1, variability collapse); off: the ablation without it",
    )
    p2p: bool = setting(
        True,
        "P2P, the peer-to-peer loss aligning centred class means with the classifier rows at the "
        "simplex-ETF angle (NC2, the ETF; NC3, self-duality); off: without it",
    )
    gbbn: bool = setting(
        True,
        "GBBN, the two branches moving from feature to classifier "
        "learning; off: one head trained with CE on the usual batches",
    )
    lambda_h: float = setting(
        0.1, "weight of the HyCon loss (the spec's 1 lost on the validation split)", low=0
    )
    lambda_p: float = setting(
        0.1, "weight of the P2P loss (the spec's 1 lost on the validation split)", low=0
    )
    tau: float = setting(
        0.1, "temperature of HyCon's softmax over cosines", low=0, include_low=False
    )
    gamma: float = setting(
        0.5,
        "GBBN's schedule exponent: the conventional branch's weight is "
        "alpha = 1 - (t/T)^gamma (2: the parabola of BBN, the bilateral-branch network)",
        low=0,
        include_low=False,
        reconstructed=True,
    )
    q: float = setting(
        0.5,
        "the re-balancing branch draws class k with weight proportional to "
        "n_k^-q (1: class-balanced, 0: as the data)",
        low=0,
        reconstructed=True,
    )
    p2p_mode: str = setting(
        "cross",
        "what P2P compares with the ETF Gram: cross (means "
        "against classifier rows), separate (each with itself) or both",
        choices=P2P_MODES,
        reconstructed=True,
    )
    bank_momentum: float = setting(
        0.9,
        "momentum m of the class-mean bank's moving average "
        "and of P2P's mix of bank and batch means",
        low=0,
        high=1,
        include_high=False,
    )
    rebalance_loss: str = setting(
        "la",
        "loss of the re-balancing branch: la (logit "
        "adjustment by the batch's class distribution, proportional "
        "to n_k^(1-q)) or ce",
        choices=REBALANCE_LOSSES,
        reconstructed=True,
    )
    conventional_loss: str = setting(
        "ce",
        "loss of the conventional branch: ce (BBN's) or la "
        "(logit adjustment by the training prior)",
        choices=CONVENTIONAL_LOSSES,
        reconstructed=True,
    )
    la_tau: float = setting(1.0, "tau of either branch's logit adjustment", low=0)
    inference: str = setting(
        "rebalancing",
        "the head that predicts: rebalancing (W_r) or average (the mean of both heads' logits)",
        choices=INFERENCE_HEADS,
        reconstructed=True,
    )
    hycon_weighting: str = setting(
        "balanced",
        "how HyCon averages over samples: balanced (each class counts equally) or mean",
        choices=HYCON_WEIGHTINGS,
        reconstructed=True,
    )
    projection: str = setting(
        "mlp",
        "HyCon's projection head g: mlp (Linear-ReLU-Linear) or identity",
        choices=PROJECTIONS,
        reconstructed=True,
    )
    projection_dim: int = setting(128, "output width of the mlp projection", low=1)
    p2p_means: str = setting(
        "ema",
        "the class means inside P2P: ema (the bank's updated "
        "value, with the batch mean's gradient) or batch (the batch means)",
        choices=P2P_MEAN_FORMS,
        reconstructed=True,
    )
    bn_passes: str = setting(
        "separate",
        "GBBN's two batches through the backbone: separate "
        "(two passes, BatchNorm statistics of each batch apart, as BBN) or "
        "joint (one concatenated pass)",
        choices=BN_PASSES,
    )
    hycon_samples: str = setting(
        "all",
        "the samples HyCon contrasts: all (both GBBN batches), "
        "conventional or balanced (one of them)",
        choices=HYCON_SAMPLES,
        reconstructed=True,
    )
    defer: float = setting(
        0.0,
        "HyCon and P2P stay off for this first fraction of training",
        low=0,
        high=1,
        include_high=False,
    )

    def __post_init__(self) -> None:
        check_settings(self)

    def as_dict(self) -> dict:
        return asdict(self)


class AllNC(Method):
    """The AllNC model and objective on a given backbone (see the module docstring).

    Attributes:
        backbone: features (B, d), with ``feature_dim`` = d.
        head: W_r, the re-balancing head used at inference and by P2P (the single head when
            GBBN is off).
        conv_head: W_c, the conventional head (None when GBBN is off).
        projection: HyCon's g (``nn.Identity`` or a small MLP).
        bank: class-mean bank of features; ``proj_bank``: of projections (None unless g is an
            MLP and HyCon is on).
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        class_counts: ArrayLike,
        config: AllNCConfig | None = None,
    ) -> None:
        super().__init__()
        counts = as_counts(class_counts, "class_counts")
        if counts.numel() != num_classes:
            raise ValueError(f"class_counts has {counts.numel()} entries, expected {num_classes}")
        cfg = config or AllNCConfig()
        d = int(backbone.feature_dim)
        self.config, self.num_classes = cfg, int(num_classes)
        self.backbone = backbone
        self.head = LinearHead(d, num_classes)
        self.conv_head = LinearHead(d, num_classes) if cfg.gbbn else None
        self.projection: nn.Module = nn.Identity()
        if cfg.projection == "mlp":
            self.projection = nn.Sequential(
                nn.Linear(d, d), nn.ReLU(inplace=True), nn.Linear(d, cfg.projection_dim)
            )
        self.bank = ClassMeanBank(num_classes, d, cfg.bank_momentum)
        self.proj_bank = None
        if cfg.hycon and cfg.projection == "mlp":
            self.proj_bank = ClassMeanBank(num_classes, cfg.projection_dim, cfg.bank_momentum)
        self.register_buffer("log_prior", log_prior(counts))
        self.register_buffer("sampling_log_prior", sampling_log_prior(counts, cfg.q))
        self.needs_balanced_batch = cfg.gbbn
        self.balanced_q = cfg.q
        # An MLP projection gets no gradient while HyCon is off or deferred.
        self.unused_parameters = cfg.projection == "mlp" and (not cfg.hycon or cfg.defer > 0)

    def _logits(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.head(features)
        if self.conv_head is not None and self.config.inference == "average":
            logits = 0.5 * (logits + self.conv_head(features))
        return logits

    def forward(self, x: torch.Tensor) -> ModelOutput:
        features = self.backbone(x)
        return ModelOutput(features, self._logits(features))

    def loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        progress: float,
        epoch: int,
        balanced_batch: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One step's total loss and its detached parts (loss, conv, rebal, hycon, p2p, alpha)."""
        cfg = self.config
        parts: dict[str, torch.Tensor] = {}
        if self.conv_head is not None:
            if balanced_batch is None:
                raise ValueError("AllNC with GBBN needs balanced_batch=(x, y), class-balanced")
            alpha = gbbn_alpha(progress, cfg.gamma)
            xb, yb = balanced_batch
            n = x.shape[0]
            if cfg.bn_passes == "separate":
                features = torch.cat([self.backbone(x), self.backbone(xb)])
            else:
                features = self.backbone(torch.cat([x, xb]))
            targets = torch.cat([y, yb])
            rebal_logits = self.head(features[n:])
            if cfg.rebalance_loss == "la":
                rebal_logits = rebal_logits.float() + cfg.la_tau * self.sampling_log_prior
            conv_logits = self.conv_head(features[:n])
            if cfg.conventional_loss == "la":
                conv_logits = conv_logits.float() + cfg.la_tau * self.log_prior
            parts["conv"] = F.cross_entropy(conv_logits, y)
            parts["rebal"] = F.cross_entropy(rebal_logits, yb)
            total = alpha * parts["conv"] + (1.0 - alpha) * parts["rebal"]
            parts["alpha"] = torch.tensor(alpha, device=total.device)
            hycon_rows = {"all": slice(None), "conventional": slice(None, n)}.get(
                cfg.hycon_samples, slice(n, None)
            )
        else:
            check_progress(progress)
            features, targets = self.backbone(x), y
            parts["conv"] = F.cross_entropy(self.head(features), y)
            total = parts["conv"]
            hycon_rows = slice(None)
        active = progress >= cfg.defer
        projections = None
        if cfg.hycon:
            projections = self.projection(features)
            prototypes, seen = (self.proj_bank or self.bank).prototypes()
            parts["hycon"] = hycon_loss(
                projections[hycon_rows],
                targets[hycon_rows],
                prototypes,
                seen,
                cfg.tau,
                cfg.hycon_weighting,
            )
            if active:
                total = total + cfg.lambda_h * parts["hycon"]
        if cfg.p2p:
            means, valid = self.bank.p2p_means(features, targets, cfg.p2p_means)
            parts["p2p"] = p2p_loss(means, self.head.weight, cfg.p2p_mode, valid)
            if active:
                total = total + cfg.lambda_p * parts["p2p"]
        self.bank.update(features, targets)
        if self.proj_bank is not None and projections is not None:
            self.proj_bank.update(projections, targets)
        return total, {"loss": total.detach(), **{k: v.detach() for k, v in parts.items()}}

    def classifier(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The inference head (W (K, d), b (K,)); with ``inference="average"`` the mean head."""
        weight, bias = self.head.weight.detach(), self.head.bias.detach()
        if self.conv_head is not None and self.config.inference == "average":
            weight = 0.5 * (weight + self.conv_head.weight.detach())
            bias = 0.5 * (bias + self.conv_head.bias.detach())
        return weight, bias

    def class_means(self) -> torch.Tensor:
        """The class-mean bank, (K, d); rows of classes not seen yet are NaN."""
        return self.bank.snapshot()
