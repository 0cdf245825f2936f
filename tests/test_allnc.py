"""AllNC: the GBBN schedule, the configuration, the total loss and every ablation switch."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from allnc_edu.allnc import AllNC, AllNCConfig, gbbn_alpha
from allnc_edu.models import MLP

K, D = 3, 8
COUNTS = [12, 6, 2]


def _model(**options) -> AllNC:
    torch.manual_seed(0)
    return AllNC(MLP(4, hidden=(16, D)), K, COUNTS, AllNCConfig(**options))


def _batches(seed=0):
    gen = torch.Generator().manual_seed(seed)
    y = torch.tensor([0, 0, 0, 0, 1, 1, 2, 0])
    yb = torch.tensor([0, 0, 1, 1, 2, 2, 1, 2])
    return (torch.randn(8, 4, generator=gen), y), (torch.randn(8, 4, generator=gen), yb)


def test_gbbn_alpha_runs_from_one_to_zero_along_bbn_parabola():
    assert gbbn_alpha(0.0) == 1.0 and gbbn_alpha(1.0) == 0.0
    for t in (0.1, 0.25, 0.5, 0.9):
        assert gbbn_alpha(t) == pytest.approx(1 - t**2)  # BBN: 1 - (T_cur / T_max)^2
        assert gbbn_alpha(t, gamma=1.0) == pytest.approx(1 - t)
    values = [gbbn_alpha(t / 20, gamma=3.0) for t in range(21)]
    assert all(b < a for a, b in itertools.pairwise(values))


@pytest.mark.parametrize("bad", [-0.01, 1.01, math.nan])
def test_gbbn_alpha_rejects_progress_outside_unit_interval(bad):
    with pytest.raises(ValueError, match=r"progress must be in \[0, 1\]"):
        gbbn_alpha(bad)
    with pytest.raises(ValueError, match="gamma"):
        gbbn_alpha(0.5, gamma=0.0)


def test_config_defaults_are_the_ones_chosen_on_the_validation_split():
    cfg = AllNCConfig()
    assert (cfg.hycon, cfg.p2p, cfg.gbbn) == (True, True, True)
    assert (cfg.lambda_h, cfg.lambda_p, cfg.tau, cfg.gamma, cfg.q) == (0.1, 0.1, 0.1, 0.5, 0.5)
    assert (cfg.p2p_mode, cfg.bank_momentum, cfg.rebalance_loss) == ("cross", 0.9, "la")
    assert (cfg.inference, cfg.hycon_weighting) == ("rebalancing", "balanced")
    assert (cfg.bn_passes, cfg.p2p_means, cfg.hycon_samples, cfg.defer) == (
        "separate", "ema", "all", 0.0
    )  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value"),
    [("p2p_mode", "diag"), ("tau", 0.0), ("bank_momentum", 1.0), ("inference", "conv")],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        AllNCConfig(**{field: value})


@pytest.mark.parametrize(("hycon", "p2p", "gbbn"), list(itertools.product([True, False], repeat=3)))
def test_every_ablation_combination_runs_and_backpropagates(hycon, p2p, gbbn):
    model = _model(hycon=hycon, p2p=p2p, gbbn=gbbn)
    (x, y), balanced = _batches()
    assert model.needs_balanced_batch is gbbn
    for step in range(2):  # the second step has a filled bank, so HyCon is active
        loss, stats = model.loss(
            x, y, progress=0.5, epoch=step, balanced_batch=balanced if gbbn else None
        )
        assert math.isfinite(loss.item()) and stats["loss"].item() == pytest.approx(loss.item())
        assert ("hycon" in stats) is hycon and ("p2p" in stats) is p2p
        assert ("rebal" in stats) is gbbn
        model.zero_grad()
        loss.backward()
        grads = [p.grad for p in model.backbone.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
    out = model(x)
    assert out.features.shape == (8, D) and out.logits.shape == (8, K)


@pytest.mark.parametrize(
    "options",
    [
        {"p2p_mode": "separate"},
        {"p2p_mode": "both"},
        {"rebalance_loss": "ce", "q": 1.0},
        {"bn_passes": "joint"},
        {"p2p_means": "batch"},
        {"hycon_samples": "conventional"},
        {"hycon_samples": "balanced"},
        {"inference": "average"},
        {"hycon_weighting": "mean"},
        {"projection": "identity"},
    ],
)
def test_every_reconstruction_option_runs(options):
    model = _model(**options)
    (x, y), balanced = _batches()
    for step in range(2):
        loss, _ = model.loss(x, y, progress=0.3, epoch=step, balanced_batch=balanced)
        loss.backward()
        assert math.isfinite(loss.item())


def test_total_loss_is_the_weighted_sum_of_its_parts():
    model = _model(lambda_h=0.5, lambda_p=2.0, gamma=2.0)
    (x, y), balanced = _batches()
    model.loss(x, y, progress=0.0, epoch=0, balanced_batch=balanced)  # fill the bank
    _, stats = model.loss(x, y, progress=0.6, epoch=0, balanced_batch=balanced)
    s = {k: v.item() for k, v in stats.items()}
    alpha = 1 - 0.6**2
    assert s["alpha"] == pytest.approx(alpha)
    want = alpha * s["conv"] + (1 - alpha) * s["rebal"] + 0.5 * s["hycon"] + 2.0 * s["p2p"]
    assert s["loss"] == pytest.approx(want, rel=1e-5)


def test_gbbn_moves_the_weight_from_the_conventional_to_the_rebalancing_branch():
    model = _model(hycon=False, p2p=False)
    (x, y), balanced = _batches()
    _, start = model.loss(x, y, progress=0.0, epoch=0, balanced_batch=balanced)
    _, end = model.loss(x, y, progress=1.0, epoch=9, balanced_batch=balanced)
    assert start["loss"] == pytest.approx(start["conv"])
    assert end["loss"] == pytest.approx(end["rebal"])
    with pytest.raises(ValueError, match="balanced_batch"):
        model.loss(x, y, progress=0.5, epoch=0)


@pytest.mark.parametrize("p2p", [False, True])
def test_p2p_aligns_the_means_with_the_rebalancing_head(p2p):
    # At progress 0 the re-balancing CE has weight 0: W_r gets a gradient only through P2P.
    model = _model(hycon=False, p2p=p2p)
    (x, y), balanced = _batches()
    loss, _ = model.loss(x, y, progress=0.0, epoch=0, balanced_batch=balanced)
    loss.backward()
    grad = model.head.weight.grad
    has_grad = grad is not None and bool(grad.abs().sum() > 0)
    assert has_grad is p2p
    assert model.conv_head.weight.grad.abs().sum() > 0


def test_bank_is_updated_after_the_loss_from_both_batches():
    model = _model()
    (x, y), (xb, yb) = _batches()
    assert not model.bank.seen.any() and torch.isnan(model.class_means()).all()
    _, stats = model.loss(x[:4], y[:4], progress=0.0, epoch=0, balanced_batch=(xb[:2], yb[:2]))
    assert stats["hycon"] == 0.0  # the bank was still empty when the loss was computed
    assert model.bank.seen.tolist() == [True, False, False]
    model.loss(x, y, progress=0.1, epoch=0, balanced_batch=(xb, yb))
    assert model.bank.seen.all() and model.proj_bank.seen.all()
    assert model.class_means().shape == (K, D) and torch.isfinite(model.class_means()).all()


def test_inference_heads():
    (x, _), _ = _batches()
    model = _model(inference="average")
    out = model(x)
    weight, bias = model.classifier()
    assert torch.allclose(out.logits, F.linear(out.features, weight, bias), atol=1e-6)
    expected = 0.5 * (model.head(out.features) + model.conv_head(out.features))
    assert torch.allclose(out.logits, expected, atol=1e-6)
    plain = _model()
    assert torch.equal(plain.classifier()[0], plain.head.weight.detach())
    assert _model(gbbn=False).conv_head is None
