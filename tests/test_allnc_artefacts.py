"""The reconstruction artefacts of issue 9, each pinned by a test that failed before its fix.

- P2P's gradient reaches the features undamped (it was scaled by 1 - m = 0.1).
- GBBN's two batches can go through BatchNorm apart (they were always concatenated).
- Logit adjustment on the re-balancing batches uses their sampling distribution (it used the
  training prior, correcting class-balanced batches twice); on the conventional branch's
  instance-balanced batches, the training prior.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from allnc_edu.allnc import AllNC, AllNCConfig, sampling_log_prior
from allnc_edu.geometry import etf_gram
from allnc_edu.losses import ClassMeanBank, log_prior, p2p_loss

K, D = 4, 6
COUNTS = [40, 20, 5, 2]


def _p2p_cross_grad(means: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Closed-form d/d(means) of (1/K^2) ||M~ W^^T - G*||_F^2, M~ centred and row-normalised.

    With E = M~ W^^T - G*: dL/dM~ = (2/K^2) E W^; through the row normalisation of the
    centred rows c_k, (I - m~_k m~_k^T) / ||c_k||; through the centring (I - 11^T/K), which
    is symmetric.
    """
    k = len(means)
    c = means - means.mean(axis=0)
    norms = np.linalg.norm(c, axis=1, keepdims=True)
    m = c / norms
    w = weight / np.linalg.norm(weight, axis=1, keepdims=True)
    g_m = 2.0 / k**2 * (m @ w.T - etf_gram(k).numpy()) @ w
    g_c = (g_m - (g_m * m).sum(axis=1, keepdims=True) * m) / norms
    return g_c - g_c.mean(axis=0)


def _seeded_bank(gen: torch.Generator) -> ClassMeanBank:
    bank = ClassMeanBank(K, D, momentum=0.9)
    bank.update(torch.randn(K, D, generator=gen, dtype=torch.float64), torch.arange(K))
    return bank


@pytest.mark.parametrize("form", ["ema", "batch"])
def test_p2p_gradient_reaching_the_features_is_the_analytic_one(form):
    gen = torch.Generator().manual_seed(0)
    bank = _seeded_bank(gen)
    targets = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])
    features = torch.randn(len(targets), D, generator=gen, dtype=torch.float64)
    features.requires_grad_(True)
    weight = torch.randn(K, D, generator=gen, dtype=torch.float64)
    means, valid = bank.p2p_means(features, targets, form)
    assert valid.all()
    p2p_loss(means, weight, "cross").backward()
    # P2P's gradient at the means it is evaluated at, passed to each sample with weight 1/n_k.
    at = _p2p_cross_grad(means.detach().numpy(), weight.numpy())
    n = np.bincount(targets.numpy(), minlength=K)
    want = at[targets.numpy()] / n[targets.numpy(), None]
    np.testing.assert_allclose(features.grad.numpy(), want, rtol=1e-4, atol=1e-8)  # bank: float32


def test_p2p_means_values_ema_batch_and_absent_classes():
    gen = torch.Generator().manual_seed(1)
    bank = _seeded_bank(gen)
    targets = torch.tensor([0, 0, 1, 2])  # class 3 absent
    features = torch.randn(4, D, generator=gen)
    batch = torch.stack([features[:2].mean(0), features[2], features[3]])
    old = bank.means.clone()
    ema, _ = bank.p2p_means(features, targets, "ema")
    torch.testing.assert_close(ema[:3], 0.9 * old[:3] + 0.1 * batch)
    torch.testing.assert_close(ema[3], old[3])
    plain, _ = bank.p2p_means(features, targets, "batch")
    torch.testing.assert_close(plain[:3], batch)
    with pytest.raises(ValueError, match="form"):
        bank.p2p_means(features, targets, "damped")


class _BNBackbone(nn.Module):
    feature_dim = D

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, D), nn.BatchNorm1d(D))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _gbbn_batches():
    gen = torch.Generator().manual_seed(2)
    x, xb = torch.randn(8, 3, generator=gen), 3.0 + torch.randn(8, 3, generator=gen)
    return (x, torch.tensor([0, 0, 0, 0, 1, 1, 2, 0])), (xb, torch.tensor([0, 1, 2, 3] * 2))


@pytest.mark.parametrize("bn_passes", ["separate", "joint"])
def test_gbbn_batchnorm_sees_each_batch_apart_only_with_separate_passes(bn_passes):
    torch.manual_seed(0)
    cfg = AllNCConfig(hycon=False, p2p=False, bn_passes=bn_passes)
    model = AllNC(_BNBackbone(), K, COUNTS, cfg)
    (x, y), balanced = _gbbn_batches()
    _, parts = model.loss(x, y, progress=0.0, epoch=0, balanced_batch=balanced)
    alone = F.cross_entropy(model.conv_head(model.backbone(x)), y)  # BN statistics of x only
    assert torch.isclose(parts["conv"], alone).item() is (bn_passes == "separate")


def test_sampling_log_prior_is_the_class_distribution_of_the_rebalancing_batches():
    torch.testing.assert_close(
        sampling_log_prior(COUNTS, 1.0), torch.full((K,), -np.log(K)).float()
    )
    torch.testing.assert_close(sampling_log_prior(COUNTS, 0.0), log_prior(COUNTS))
    n = np.array(COUNTS, dtype=float) ** 0.5
    torch.testing.assert_close(
        sampling_log_prior(COUNTS, 0.5), torch.tensor(np.log(n / n.sum())).float()
    )


def test_logit_adjustment_on_class_balanced_batches_does_not_correct_twice():
    (x, y), balanced = _gbbn_batches()
    losses = {}
    for rebalance in ("ce", "la"):
        torch.manual_seed(0)
        model = AllNC(_BNBackbone(), K, COUNTS, AllNCConfig(rebalance_loss=rebalance, q=1.0))
        losses[rebalance] = model.loss(x, y, progress=0.5, epoch=0, balanced_batch=balanced)[1]
    # q = 1: the batches are class-balanced, the adjustment is uniform, LA equals CE.
    torch.testing.assert_close(losses["la"]["rebal"], losses["ce"]["rebal"])
    torch.manual_seed(0)
    model = AllNC(_BNBackbone(), K, COUNTS, AllNCConfig(rebalance_loss="la", q=0.0))
    _, parts = model.loss(x, y, progress=0.5, epoch=0, balanced_batch=balanced)
    xb, yb = balanced
    logits = model.head(model.backbone(xb)).float() + log_prior(COUNTS)  # q = 0: training prior
    torch.testing.assert_close(parts["rebal"], F.cross_entropy(logits, yb))


def test_conventional_logit_adjustment_uses_the_training_prior():
    (x, y), balanced = _gbbn_batches()
    parts = {}
    for loss in ("ce", "la"):
        torch.manual_seed(0)
        model = AllNC(_BNBackbone(), K, COUNTS, AllNCConfig(conventional_loss=loss))
        parts[loss] = model.loss(x, y, progress=0.5, epoch=0, balanced_batch=balanced)[1]
    logits = model.conv_head(model.backbone(x)).float()
    torch.testing.assert_close(parts["ce"]["conv"], F.cross_entropy(logits, y))
    torch.testing.assert_close(
        parts["la"]["conv"], F.cross_entropy(logits + log_prior(COUNTS), y)
    )  # the usual batches are drawn from the training prior: adjust by it, once
    torch.testing.assert_close(parts["la"]["rebal"], parts["ce"]["rebal"])


def test_defer_switches_hycon_and_p2p_on_after_the_warm_up():
    (x, y), balanced = _gbbn_batches()
    torch.manual_seed(0)
    model = AllNC(_BNBackbone(), K, COUNTS, AllNCConfig(defer=0.5, lambda_h=1.0, lambda_p=1.0))
    model.loss(x, y, progress=0.0, epoch=0, balanced_batch=balanced)  # fill the banks
    for progress, on in ((0.4, False), (0.6, True)):
        _, s = model.loss(x, y, progress=progress, epoch=0, balanced_batch=balanced)
        base = s["alpha"] * s["conv"] + (1 - s["alpha"]) * s["rebal"]
        extra = s["hycon"] + s["p2p"] if on else 0.0
        torch.testing.assert_close(s["loss"], base + extra)
    with pytest.raises(ValueError, match="defer"):
        AllNCConfig(defer=1.0)
