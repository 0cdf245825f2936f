"""Losses: the long-tail baselines and AllNC's HyCon and P2P, plus the class-mean bank.

Shapes: B samples, K classes, d feature dimensions. ``targets`` are (B,) class indices.

Baselines (published forms):
- ``logit_adjusted_ce``: Menon et al. 2021, CE(z + tau log pi, y); Balanced Softmax at tau = 1.
- ``ldam_margins``, ``ldam_loss``, ``drw_weights``: Cao et al. 2019 (LDAM-DRW).
- ``dot_regression_loss``: Yang et al. 2022 (fixed ETF classifier + dot regression).

AllNC (Zhang et al., arXiv 2408.07253), a documented reconstruction, not the authors' code: the
forms of ``hycon_loss`` and ``p2p_loss`` marked (R) follow ``allnc-method.md`` and each choice
is an argument, so it can be changed in one place.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from . import distributed
from ._checks import ArrayLike, as_counts, check_choice, check_scalar
from .geometry import etf_gram

P2P_MODES = ("cross", "separate", "both")
HYCON_WEIGHTINGS = ("balanced", "mean")
P2P_MEAN_FORMS = ("ema", "batch")


def _check_batch(logits: torch.Tensor, targets: torch.Tensor, num_classes: int) -> None:
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise ValueError(f"logits must be (B, {num_classes}), got {tuple(logits.shape)}")
    if targets.shape != logits.shape[:1]:
        raise ValueError(f"targets must be ({logits.shape[0]},), got {tuple(targets.shape)}")


def log_prior(class_counts: ArrayLike) -> torch.Tensor:
    """log pi_k = log(n_k / sum_j n_j), (K,) float32."""
    n = as_counts(class_counts, "class_counts").to(torch.float64)
    return (n / n.sum()).log().to(torch.float32)


def logit_adjusted_ce(
    logits: torch.Tensor, targets: torch.Tensor, class_counts: ArrayLike, tau: float = 1.0
) -> torch.Tensor:
    """Logit-adjusted cross-entropy (Menon et al. 2021): mean CE(z + tau log pi, y).

    The log-prior is ADDED during training, so a minority class must win by a larger raw
    margin; at inference the raw logits z are used. At tau = 1 this is Balanced Softmax,
    CE(z + log n, y) (the two differ by a constant per row, which softmax ignores).

    Args:
        logits: (B, K). targets: (B,). class_counts: (K,) training counts n_k. tau: >= 0.
    """
    prior = log_prior(class_counts).to(logits.device)
    _check_batch(logits, targets, prior.numel())
    tau = check_scalar("tau", tau, low=0)
    return F.cross_entropy(logits.float() + tau * prior, targets)


def ldam_margins(class_counts: ArrayLike, max_margin: float = 0.5) -> torch.Tensor:
    """LDAM margins (Cao et al. 2019): m_k proportional to n_k^(-1/4), the largest = max_margin.

    Returns (K,) float32; the rarest class gets ``max_margin``.
    """
    max_margin = check_scalar("max_margin", max_margin, low=0, include_low=False)
    m = as_counts(class_counts, "class_counts").to(torch.float64) ** -0.25
    return (m * (max_margin / m.max())).to(torch.float32)


def drw_weights(class_counts: ArrayLike, beta: float = 0.9999) -> torch.Tensor:
    """Deferred re-weighting weights (Cui et al. 2019 effective numbers, used by Cao et al.).

    w_k proportional to (1 - beta) / (1 - beta^n_k), normalised so that sum_k w_k = K.
    Returns (K,) float32.
    """
    beta = check_scalar("beta", beta, low=0, high=1, include_high=False)
    n = as_counts(class_counts, "class_counts").to(torch.float64)
    w = (1.0 - beta) / (1.0 - beta**n)
    return (w * (n.numel() / w.sum())).to(torch.float32)


def ldam_loss(
    cosine_logits: torch.Tensor,
    targets: torch.Tensor,
    margins: torch.Tensor,
    scale: float = 30.0,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """LDAM loss (Cao et al. 2019): CE(s * (cos - m_y e_y), y), optionally class-weighted.

    ``cosine_logits`` (B, K) are cosines between normalised features and normalised classifier
    rows (``models.CosineHead``); the scale s = 30 is the value of Cao et al.'s code, which
    normalises both features and weights. ``weight`` (K,) is the DRW weight, or None.
    """
    _check_batch(cosine_logits, targets, margins.numel())
    scale = check_scalar("scale", scale, low=0, include_low=False)
    shifted = cosine_logits.float() - F.one_hot(targets, margins.numel()) * margins[targets, None]
    return F.cross_entropy(scale * shifted, targets, weight=weight)


def dot_regression_loss(
    features: torch.Tensor, targets: torch.Tensor, etf: torch.Tensor
) -> torch.Tensor:
    """Dot-regression loss for a fixed ETF classifier (Yang et al. 2022).

    Paper form: L = 1/(2 E_W E_H) (w_y^T h - E_W E_H)^2, with E_W, E_H the classifier and
    feature norms. As in their code, h and w are L2-normalised (E_W = E_H = 1), so

        L = mean_i 1/2 (w^_{y_i} . h^_i - 1)^2,

    which is zero exactly when every feature points along its class's ETF vector. Unlike CE it
    has no gradient from the other classes' vectors: they are fixed and already separated.

    Args:
        features: (B, d). targets: (B,). etf: (K, d) fixed classifier (e.g. ``ETFHead.weight``).
    """
    if features.ndim != 2 or etf.ndim != 2 or etf.shape[1] != features.shape[1]:
        raise ValueError(
            f"need features (B, d) and etf (K, d), got {tuple(features.shape)} and "
            f"{tuple(etf.shape)}"
        )
    h = F.normalize(features.float(), dim=1)
    w = F.normalize(etf.float(), dim=1)[targets]
    return 0.5 * ((h * w).sum(dim=1) - 1.0).pow(2).mean()


def hycon_loss(
    projections: torch.Tensor,
    targets: torch.Tensor,
    prototypes: torch.Tensor,
    valid: torch.Tensor | None = None,
    tau: float = 0.1,
    weighting: str = "balanced",
) -> torch.Tensor:
    """Hybrid contrastive loss, HyCon (AllNC, for NC1). (R): a reconstruction.

    With p_i = g(z_i)/||g(z_i)|| and normalised prototypes c_k (class means from a bank):

        L(i) = -log exp(p_i.c_{y_i}/tau)
                    / ( sum_{k valid} exp(p_i.c_k/tau) + sum_{j: y_j != y_i} exp(p_i.p_j/tau) )

    The positive is the anchor's own class mean; the negatives are the other class means
    (prototype level) and the other-class samples of the batch (instance level). Classes not
    ``valid`` (never seen by the bank) are left out as negatives, and their samples, which have
    no positive, are left out of the average. ``weighting="balanced"`` (default) gives each class
    in the batch equal total weight; ``"mean"`` is the plain mean over samples. Returns 0 (with a
    graph) when no sample has a valid prototype. Computed in float32 outside autocast.

    Args:
        projections: (B, p), normalised inside. targets: (B,). prototypes: (K, p), normalised
            inside (treated as constants by AllNC: the bank is detached). valid: (K,) bool,
            default all True. tau: temperature > 0. weighting: "balanced" or "mean".
    """
    check_choice("weighting", weighting, HYCON_WEIGHTINGS)
    tau = check_scalar("tau", tau, low=0, include_low=False)
    if projections.ndim != 2 or prototypes.ndim != 2 or prototypes.shape[1] != projections.shape[1]:
        raise ValueError(
            f"need projections (B, p) and prototypes (K, p), got {tuple(projections.shape)} and "
            f"{tuple(prototypes.shape)}"
        )
    k = prototypes.shape[0]
    if targets.shape != projections.shape[:1]:
        raise ValueError(f"targets must be ({projections.shape[0]},), got {tuple(targets.shape)}")
    if valid is None:
        valid = torch.ones(k, dtype=torch.bool, device=prototypes.device)
    with torch.autocast(projections.device.type, enabled=False):
        p = F.normalize(projections.float(), dim=1)
        c = F.normalize(prototypes.float(), dim=1)
        masked = -1e9  # finite, so that fully masked rows keep finite gradients
        proto = (p @ c.T / tau).masked_fill(~valid[None, :], masked)
        inst = (p @ p.T / tau).masked_fill(targets[:, None] == targets[None, :], masked)
        positive = proto.gather(1, targets[:, None]).squeeze(1)
        per_sample = torch.logsumexp(torch.cat([proto, inst], dim=1), dim=1) - positive
        ok = valid[targets].float()
        if weighting == "balanced":
            per_class = torch.zeros(k, device=p.device).index_add_(0, targets, ok)
            present = (per_class > 0).sum().clamp_min(1)
            w = ok / per_class[targets].clamp_min(1) / present
        else:
            w = ok / ok.sum().clamp_min(1)
        return (torch.where(ok > 0, per_sample, 0.0) * w).sum()


@functools.lru_cache(maxsize=16)
def _etf_target(num_classes: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return etf_gram(num_classes).to(device=device, dtype=dtype)


def p2p_loss(
    class_means: torch.Tensor,
    weight: torch.Tensor,
    mode: str = "cross",
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Peer-to-peer loss, P2P (AllNC, for NC2 + NC3). (R): a reconstruction.

    The class means are centred by their class-balanced mean over the valid classes and
    L2-normalised (rows mu~_k); classifier rows are L2-normalised (w^_k). With G* the K-class
    ETF Gram (1 on the diagonal, -1/(K-1) off it) and K' valid classes:

    - "cross" (default): (1/K'^2) ||M~ W^^T - G*||_F^2: the diagonal pulls mu~_k onto w^_k
      (self-duality), the off-diagonal pushes each mean to cosine -1/(K-1) with every other
      class's classifier.
    - "separate": (1/K'^2) (||M~ M~^T - G*||_F^2 + ||W^ W^^T - G*||_F^2).
    - "both": the sum of the two.

    Zero exactly at an ETF with aligned means and classifiers, whatever the norm of each
    classifier row, the common scale of the means and any common offset of the means.
    Differentiable in both arguments. With a ``mask``, only valid classes enter (sums run over
    valid pairs; G* keeps the K-class value -1/(K-1)); fewer than two valid classes give 0.
    Computed outside autocast in float32, or in float64 when the means are float64.

    Args:
        class_means: (K, d) uncentred class means, as given. weight: (K, d) classifier rows.
        mode: "cross", "separate" or "both". mask: (K,) bool of valid classes, default all.
    """
    check_choice("mode", mode, P2P_MODES)
    if class_means.ndim != 2 or class_means.shape != weight.shape or class_means.shape[0] < 2:
        raise ValueError(
            "class_means and weight must both be (K, d) with K >= 2, got "
            f"{tuple(class_means.shape)} and {tuple(weight.shape)}"
        )
    k = class_means.shape[0]
    if mask is None:
        mask = torch.ones(k, dtype=torch.bool, device=class_means.device)
    dtype = torch.promote_types(class_means.dtype, torch.float32)
    with torch.autocast(class_means.device.type, enabled=False):
        v, rows = mask.to(dtype), mask[:, None]
        count = v.sum()
        means = torch.where(rows, class_means.to(dtype), 0.0)
        centred = torch.where(rows, means - means.sum(dim=0) / count.clamp_min(1), 0.0)
        m = F.normalize(centred, dim=1)
        w = torch.where(rows, F.normalize(weight.to(dtype), dim=1), 0.0)
        target = _etf_target(k, m.device, dtype) * (v[:, None] * v[None, :])

        def gap(gram: torch.Tensor) -> torch.Tensor:
            return (gram - target).pow(2).sum()

        total = torch.zeros((), device=m.device, dtype=dtype)
        if mode in ("cross", "both"):
            total = total + gap(m @ w.T)
        if mode in ("separate", "both"):
            total = total + gap(m @ m.T) + gap(w @ w.T)
        return torch.where(count >= 2, total / count.clamp_min(1).pow(2), 0.0)


def batch_class_sums(
    features: torch.Tensor, targets: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class sums and counts of a batch: ((K, d) sums, (K,) counts in the features' dtype)."""
    sums = torch.zeros(num_classes, features.shape[1], device=features.device, dtype=features.dtype)
    counts = torch.bincount(targets, minlength=num_classes).to(features.dtype)
    return sums.index_add(0, targets, features), counts


class ClassMeanBank(nn.Module):
    """An exponential moving average of per-class feature means (AllNC's class-mean bank).

    After each step, for every class k present in the batch:
    bank_k <- m * bank_k + (1 - m) * batch_mean_k, or bank_k <- batch_mean_k the first time k is
    seen. A class never seen is marked missing (``seen[k]`` False) and is never used: it is not
    silently set to zero. Buffers (float32): ``means`` (K, d) and ``seen`` (K,) bool; both are
    saved in ``state_dict``, so checkpoints keep the bank.

    Data parallel (a ``torch.distributed`` group is up): the batch is the global batch, the
    union of the ranks' shares. Each rank computes per-class sums S_k^r and counts n_k^r of its
    share; they are all-reduced (summed) before dividing, so batch_mean_k = sum_r S_k^r /
    sum_r n_k^r on every rank and every rank holds the same bank. :meth:`update` uses the plain
    all-reduce. :meth:`p2p_means` all-reduces the sums through autograd, and the gradient is
    then exactly that of the single-process P2P on the global batch: every rank computes the
    same loss L(S) with S = sum_r S^r; the backward of the sum-all-reduce sums the ranks'
    (equal) gradients dL/dS, so rank r's features z_i get N dL/dS_{y_i}; DDP averages the
    parameter gradients over the N ranks, (1/N) sum_r N sum_{i in r} dL/dS_{y_i} dz_i/dtheta =
    sum_{all i} dL/dS_{y_i} dz_i/dtheta, the gradient of L on the whole batch.
    """

    means: torch.Tensor
    seen: torch.Tensor

    def __init__(self, num_classes: int, dim: int, momentum: float = 0.9) -> None:
        super().__init__()
        self.num_classes = check_scalar("num_classes", num_classes, kind=int, low=1)
        self.dim = check_scalar("dim", dim, kind=int, low=1)
        self.momentum = check_scalar("momentum", momentum, low=0, high=1, include_high=False)
        self.register_buffer("means", torch.zeros(self.num_classes, self.dim))
        self.register_buffer("seen", torch.zeros(self.num_classes, dtype=torch.bool))

    def _batch(
        self, features: torch.Tensor, targets: torch.Tensor, differentiable: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The global batch's class means and presence, ((K, d), (K,) bool), from per-class sums
        and counts all-reduced over the ranks (this rank's alone without a process group)."""
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"features must be (B, {self.dim}), got {tuple(features.shape)}")
        sums, counts = batch_class_sums(features.float(), targets, self.num_classes)
        if distributed.is_initialized():  # one all-reduce of [sums | counts], (K, d + 1)
            both = torch.cat([sums, counts[:, None]], dim=1)
            both = distributed.all_reduce_sum(both, differentiable=differentiable)
            sums, counts = both[:, :-1], both[:, -1].detach()
        return sums / counts.clamp_min(1)[:, None], counts > 0

    @torch.no_grad()
    def update(self, features: torch.Tensor, targets: torch.Tensor) -> None:
        """Fold one (global) batch's class means into the bank (features are detached)."""
        batch, present = self._batch(features.detach(), targets)
        mixed = torch.where(
            self.seen[:, None], self.momentum * self.means + (1 - self.momentum) * batch, batch
        )
        # Assign new tensors rather than writing in place: earlier graphs may hold the old ones.
        self.means = torch.where(present[:, None], mixed, self.means)
        self.seen = self.seen | present

    def p2p_means(
        self, features: torch.Tensor, targets: torch.Tensor, form: str = "ema"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Class means for P2P, with the full gradient of P2P reaching the batch: ((K, d), (K,)).

        For a class present in the batch, the gradient that reaches its features is that of the
        batch mean, weight 1: d mu_k / d z_i = 1/n_k for the n_k batch samples of class k, as in
        the unconstrained-features model, where P2P acts on the means themselves. The value:

        - ``form="ema"`` (default): the bank's update, m * bank_k + (1 - m) * batch_mean_k
          (the batch mean for a class seen for the first time), as a straight-through
          estimate: P2P is evaluated at this smoothed mean and its gradient there is passed
          to the batch mean undamped.
        - ``form="batch"``: the batch mean itself (noisy for a class with few batch samples).

        An absent class that the bank has seen takes the bank value (detached, a constant); a
        class neither seen nor present is invalid.
        """
        check_choice("form", form, P2P_MEAN_FORMS)
        batch, present = self._batch(features, targets, differentiable=True)
        bank = self.means.detach()
        value = batch
        if form == "ema":
            fixed = batch.detach()
            ema = torch.where(
                self.seen[:, None], self.momentum * bank + (1 - self.momentum) * fixed, fixed
            )
            value = batch + (ema - fixed)  # the value of the EMA, the gradient of the batch mean
        return torch.where(present[:, None], value, bank), present | self.seen

    def prototypes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The bank (detached), for HyCon: ((K, d) means, (K,) bool seen)."""
        return self.means.detach(), self.seen

    def snapshot(self) -> torch.Tensor:
        """A copy of the bank with NaN rows for classes not seen yet, (K, d) float32."""
        return torch.where(self.seen[:, None], self.means, float("nan")).detach().clone()
