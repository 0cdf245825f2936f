"""Losses against closed forms: logit adjustment, LDAM/DRW, dot regression, HyCon, P2P, the bank."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from allnc_edu.geometry import etf_gram, simplex_etf
from allnc_edu.losses import (
    ClassMeanBank,
    dot_regression_loss,
    drw_weights,
    hycon_loss,
    ldam_loss,
    ldam_margins,
    logit_adjusted_ce,
    p2p_loss,
)

MODES = ["cross", "separate", "both"]


# ---------------------------------------------------------------- logit adjustment, LDAM, DRW


def test_logit_adjusted_ce_of_zero_logits_is_ln10_for_a_minority_sample():
    # Counts (90, 10): pi = (0.9, 0.1); adjusted logits log pi; a minority sample has
    # loss -log(0.1 / (0.9 + 0.1)) = ln 10, a majority one ln(10/9).
    zeros = torch.zeros(1, 2)
    minority = logit_adjusted_ce(zeros, torch.tensor([1]), [90, 10])
    majority = logit_adjusted_ce(zeros, torch.tensor([0]), [90, 10])
    assert minority.item() == pytest.approx(math.log(10), rel=1e-6)
    assert majority.item() == pytest.approx(math.log(10 / 9), rel=1e-6)
    assert logit_adjusted_ce(zeros, torch.tensor([1]), [90, 10], tau=0.0).item() == pytest.approx(
        math.log(2)
    )


def test_logit_adjusted_ce_equals_balanced_softmax_at_tau_one():
    torch.manual_seed(0)
    counts = torch.tensor([50, 20, 5, 1])
    logits, y = torch.randn(16, 4), torch.randint(0, 4, (16,))
    balanced_softmax = F.cross_entropy(logits + counts.log(), y)
    assert logit_adjusted_ce(logits, y, counts).item() == pytest.approx(balanced_softmax.item())


def test_logit_adjusted_ce_validates_inputs():
    with pytest.raises(ValueError, match=r"logits must be \(B, 3\)"):
        logit_adjusted_ce(torch.zeros(2, 2), torch.tensor([0, 1]), [3, 2, 1])
    with pytest.raises(ValueError, match="class count"):
        logit_adjusted_ce(torch.zeros(2, 2), torch.tensor([0, 1]), [3, 0])


def test_ldam_margins_scale_as_n_to_the_minus_quarter_with_max_half():
    counts = torch.tensor([5000, 1000, 160, 16, 1])
    m = ldam_margins(counts).double()
    assert m.max().item() == pytest.approx(0.5) and m.argmax().item() == 4
    product = m * counts.double() ** 0.25
    assert torch.allclose(product, torch.full_like(product, 0.5), rtol=1e-6)
    assert ldam_margins([16, 1], max_margin=1.0).tolist() == pytest.approx([0.5, 1.0])


def test_ldam_loss_closed_form():
    # Two classes, both cosines 0, target margin m: logits (-s m, 0) -> loss log(1 + e^{s m}).
    m = torch.tensor([0.2, 0.5])
    loss = ldam_loss(torch.zeros(1, 2), torch.tensor([1]), m, scale=30.0)
    assert loss.item() == pytest.approx(math.log1p(math.exp(30 * 0.5)), rel=1e-5)
    cos = torch.randn(6, 2).clamp(-1, 1)
    y = torch.tensor([0, 1, 0, 1, 1, 0])
    plain = F.cross_entropy(30 * cos, y)
    assert ldam_loss(cos, y, torch.zeros(2)).item() == pytest.approx(plain.item(), rel=1e-5)


def test_drw_weights_sum_to_k_and_follow_effective_numbers():
    counts = [5000, 500, 50, 5]
    w = drw_weights(counts)
    assert w.sum().item() == pytest.approx(4.0, rel=1e-6)
    assert torch.all(w[1:] > w[:-1])  # rarer classes weigh more
    # beta = 0.5, counts (1, 2): raw weights 0.5/0.5 = 1 and 0.5/0.75 = 2/3 -> (6/5, 4/5).
    assert drw_weights([1, 2], beta=0.5).tolist() == pytest.approx([1.2, 0.8])
    assert drw_weights(counts, beta=0.0).tolist() == pytest.approx([1.0] * 4)
    with pytest.raises(ValueError, match="beta"):
        drw_weights(counts, beta=1.0)


# ---------------------------------------------------------------- dot regression


def test_dot_regression_closed_forms():
    etf = simplex_etf(3, 5).float()
    y = torch.tensor([0, 1, 2])
    assert dot_regression_loss(7.0 * etf[y], y, etf).item() == pytest.approx(0.0, abs=1e-6)
    # Opposite to its class vector: 1/2 (-1 - 1)^2 = 2; along another: 1/2 (K/(K-1))^2.
    assert dot_regression_loss(-etf[[0]], y[:1], etf).item() == pytest.approx(2.0, rel=1e-6)
    assert dot_regression_loss(etf[[1]], y[:1], etf).item() == pytest.approx(0.5 * 1.5**2)


# ---------------------------------------------------------------- HyCon


def _hycon_by_hand(p, y, c, valid, tau, weighting):
    """A plain loop over the HyCon formula, independent of the vectorised code."""
    p, c = F.normalize(p.double(), dim=1), F.normalize(c.double(), dim=1)
    losses, classes = {}, {}
    for i in range(len(y)):
        if not valid[y[i]]:
            continue
        denom = sum(math.exp(p[i] @ c[k] / tau) for k in range(len(c)) if valid[k])
        denom += sum(math.exp(p[i] @ p[j] / tau) for j in range(len(y)) if y[j] != y[i])
        losses[i] = -math.log(math.exp(p[i] @ c[y[i]] / tau) / denom)
        classes.setdefault(int(y[i]), []).append(losses[i])
    if weighting == "mean":
        return sum(losses.values()) / len(losses)
    return sum(sum(v) / len(v) for v in classes.values()) / len(classes)


@pytest.mark.parametrize("weighting", ["balanced", "mean"])
def test_hycon_matches_its_formula_with_a_missing_class(weighting):
    torch.manual_seed(1)
    p, c = torch.randn(9, 4), torch.randn(4, 4)
    y = torch.tensor([0, 0, 0, 0, 1, 2, 2, 3, 3])
    valid = torch.tensor([True, True, True, False])
    got = hycon_loss(p, y, c, valid, tau=0.5, weighting=weighting)
    want = _hycon_by_hand(p, y, c, valid.tolist(), 0.5, weighting)
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_hycon_single_sample_at_its_prototype_closed_form():
    # Prototypes form a K-simplex ETF, one sample sits on its own: the positive has cosine 1,
    # the K-1 other prototypes cosine -1/(K-1), and there are no instance negatives.
    k, tau = 5, 0.5
    c = simplex_etf(k).float()
    loss = hycon_loss(3.0 * c[[2]], torch.tensor([2]), c, tau=tau)
    pos, neg = math.exp(1 / tau), (k - 1) * math.exp(-1 / ((k - 1) * tau))
    assert loss.item() == pytest.approx(-math.log(pos / (pos + neg)), rel=1e-5)


def test_hycon_decreases_as_a_feature_moves_towards_its_prototype():
    torch.manual_seed(0)
    c = simplex_etf(4, 6).float()
    y = torch.tensor([0, 1, 2, 3])
    start = torch.randn(6)
    values = []
    for t in torch.linspace(0, 1, 6):
        p = c.clone()  # the other samples sit on their prototypes
        p[0] = (1 - t) * F.normalize(start, dim=0) + t * c[0]
        values.append(hycon_loss(p, y, c).item())
    assert all(b < a for a, b in itertools.pairwise(values))


def test_hycon_without_any_valid_prototype_is_zero_with_finite_gradient():
    p = torch.randn(4, 3, requires_grad=True)
    loss = hycon_loss(p, torch.tensor([0, 0, 1, 1]), torch.zeros(2, 3), torch.zeros(2, dtype=bool))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(p.grad).all()


def test_hycon_rejects_bad_arguments():
    with pytest.raises(ValueError, match="weighting"):
        hycon_loss(torch.randn(2, 3), torch.tensor([0, 1]), torch.randn(2, 3), weighting="sum")
    with pytest.raises(ValueError, match="tau"):
        hycon_loss(torch.randn(2, 3), torch.tensor([0, 1]), torch.randn(2, 3), tau=0.0)


# ---------------------------------------------------------------- P2P


def _aligned_etf(k, d, seed=0):
    """Means: a scaled ETF plus an offset (centring removes it); classifier: the same ETF with
    a different positive scale on every row (normalisation removes them)."""
    etf = simplex_etf(k, d, seed=seed)
    offset = torch.randn(d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    scales = torch.linspace(0.5, 3.0, k, dtype=torch.float64)[:, None]
    return 2.5 * etf + 5.0 * offset, etf * scales


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", [2, 4, 10])
def test_p2p_is_zero_on_an_exact_etf_with_aligned_means_and_classifiers(mode, k):
    means, weight = _aligned_etf(k, k + 3)
    assert p2p_loss(means, weight, mode).item() == pytest.approx(0.0, abs=1e-10)


def test_p2p_separate_equals_k_over_k_minus_1_at_total_classifier_collapse():
    """Means at an exact ETF, every classifier row along one direction u (minority collapse taken
    to the end). The means' Gram equals G*, so that term is 0. W^ W^^T = J (all ones), so
    J - G* is 0 on the diagonal and 1 + 1/(K-1) = K/(K-1) on the K(K-1) off-diagonal entries:
    ||J - G*||^2 = K(K-1) K^2/(K-1)^2 = K^3/(K-1), and dividing by K^2 gives K/(K-1).

    Centred class means cannot all share one direction (they sum to zero), so "total collapse"
    can only happen on the classifier side; were both Grams J, the loss would be 2K/(K-1).
    """
    for k in (2, 3, 7):
        means, _ = _aligned_etf(k, k + 1)
        weight = torch.linspace(1.0, 4.0, k, dtype=torch.float64)[:, None] * torch.ones(k, k + 1)
        got = p2p_loss(means, weight, "separate").item()
        assert got == pytest.approx(k / (k - 1), rel=1e-6)


def test_p2p_cross_when_all_classifiers_point_at_one_class_mean():
    """Means at an ETF, every w_k along mu~_0. Row k of M~W^^T is constant G*_k0, so the gap is
    G*_k0 - G*_kj: K/(K-1) at (0, j != 0) and -K/(K-1) at (k, k), k != 0, zero elsewhere:
    2(K-1) K^2/(K-1)^2 / K^2 = 2/(K-1)."""
    k = 5
    means, _ = _aligned_etf(k, 6)
    centred = means - means.mean(0)
    weight = F.normalize(centred[0], dim=0).expand(k, -1) * 2.0
    assert p2p_loss(means, weight, "cross").item() == pytest.approx(2 / (k - 1), rel=1e-6)


def test_p2p_with_a_mask_uses_only_valid_classes():
    torch.manual_seed(0)
    means, weight = torch.randn(5, 6, dtype=torch.float64), torch.randn(5, 6, dtype=torch.float64)
    mask = torch.tensor([True, False, True, True, False])
    sub_m, sub_w = means[mask], weight[mask]
    m = F.normalize(sub_m - sub_m.mean(0), dim=1)
    w = F.normalize(sub_w, dim=1)
    target = etf_gram(5)[mask][:, mask]
    want = ((m @ w.T - target) ** 2).sum() / 9
    means[~mask] = float("nan")  # invalid rows must not leak in
    assert p2p_loss(means, weight, "cross", mask).item() == pytest.approx(want.item(), rel=1e-5)
    one = torch.tensor([True, False, False, False, False])
    assert p2p_loss(means, weight, "both", one).item() == 0.0


@pytest.mark.parametrize("mode", MODES)
def test_p2p_is_differentiable_and_gradient_descent_lowers_it(mode):
    torch.manual_seed(0)
    means = torch.randn(4, 5, requires_grad=True)
    weight = torch.randn(4, 5, requires_grad=True)
    opt = torch.optim.SGD([means, weight], lr=0.5)
    first = p2p_loss(means, weight, mode)
    for _ in range(30):
        opt.zero_grad()
        loss = p2p_loss(means, weight, mode)
        loss.backward()
        assert torch.isfinite(means.grad).all() and means.grad.abs().sum() > 0
        assert weight.grad.abs().sum() > 0
        opt.step()
    assert p2p_loss(means, weight, mode).item() < 0.5 * first.item()


def test_p2p_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        p2p_loss(torch.randn(3, 4), torch.randn(3, 4), "diagonal")
    with pytest.raises(ValueError, match=r"\(K, d\)"):
        p2p_loss(torch.randn(3, 4), torch.randn(3, 5))


# ---------------------------------------------------------------- class-mean bank


def test_bank_initialises_from_the_first_batch_then_averages():
    bank = ClassMeanBank(3, 2, momentum=0.75)
    bank.update(torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 4.0]]), torch.tensor([0, 0, 1]))
    assert bank.seen.tolist() == [True, True, False]
    assert bank.means[:2].tolist() == [[2.0, 0.0], [0.0, 4.0]]
    bank.update(torch.tensor([[6.0, 0.0], [1.0, 1.0]]), torch.tensor([0, 2]))
    assert bank.means[0].tolist() == pytest.approx([0.75 * 2 + 0.25 * 6, 0.0])
    assert bank.means[1].tolist() == [0.0, 4.0]  # absent: unchanged
    assert bank.means[2].tolist() == [1.0, 1.0]  # first seen: taken as is
    assert bank.seen.all()


def test_bank_never_uses_an_unseen_class():
    bank = ClassMeanBank(4, 3)
    bank.update(torch.randn(6, 3), torch.tensor([0, 0, 1, 1, 2, 2]))
    features, targets = torch.randn(4, 3), torch.tensor([0, 1, 1, 2])
    weight = torch.randn(4, 3)
    means, valid = bank.p2p_means(features, targets)
    assert valid.tolist() == [True, True, True, False]
    protos, seen = bank.prototypes()
    before = (p2p_loss(means, weight, "both", valid), hycon_loss(features, targets, protos, seen))
    bank.means[3] = 1e6  # whatever sits in the unseen row must not matter
    means, valid = bank.p2p_means(features, targets)
    protos, seen = bank.prototypes()
    after = (p2p_loss(means, weight, "both", valid), hycon_loss(features, targets, protos, seen))
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])
    assert torch.isnan(bank.snapshot()[3]).all() and not torch.isnan(bank.snapshot()[:3]).any()


def test_bank_p2p_means_mix_the_bank_with_the_batch_and_carry_the_full_gradient():
    m = 0.9
    bank = ClassMeanBank(3, 2, momentum=m)
    bank.update(torch.tensor([[1.0, 1.0], [2.0, 2.0]]), torch.tensor([0, 1]))
    features = torch.tensor([[3.0, 0.0], [5.0, 0.0], [0.0, 7.0]], requires_grad=True)
    targets = torch.tensor([0, 0, 2])
    means, valid = bank.p2p_means(features, targets)
    assert valid.tolist() == [True, True, True]
    assert means[0].tolist() == pytest.approx([m * 1 + (1 - m) * 4, m * 1])  # seen and present
    assert means[1].tolist() == [2.0, 2.0]  # seen, absent: the bank
    assert means[2].tolist() == [0.0, 7.0]  # present, first seen: the batch mean
    means[0].sum().backward()
    # The value is the EMA; the gradient is the batch mean's, undamped (1/n_k, not (1-m)/n_k).
    assert features.grad[:2].flatten().tolist() == pytest.approx([1 / 2] * 4)
    assert features.grad[2].tolist() == [0.0, 0.0]


def test_p2p_keeps_float64_inputs_in_float64() -> None:
    """The UFM simulator optimises in float64; P2P must not round its gradient to float32."""
    means = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 5, dtype=torch.float64)
    value = p2p_loss(means, weight)
    value.backward()
    assert value.dtype == torch.float64 and means.grad.dtype == torch.float64
    assert p2p_loss(means.float(), weight.float()).dtype == torch.float32
