"""Every training recipe behind ``make_method``: the Method interface, and that training helps."""

import math

import pytest
import torch
import torch.nn.functional as F

from allnc_edu.losses import drw_weights, ldam_loss, ldam_margins
from allnc_edu.method_base import Method
from allnc_edu.methods import METHODS, make_method
from allnc_edu.models import MLP, ModelOutput

K, D = 3, 8
COUNTS = [24, 12, 4]


def _problem():
    """Three well-separated Gaussian blobs in 4-D with long-tailed counts, and a balanced batch."""
    gen = torch.Generator().manual_seed(0)
    centres = 4.0 * torch.eye(K, 4)
    y = torch.repeat_interleave(torch.arange(K), torch.tensor(COUNTS))
    x = centres[y] + 0.5 * torch.randn(len(y), 4, generator=gen)
    idx = torch.cat([torch.nonzero(y == k).flatten()[:4] for k in range(K)])
    return x, y, (x[idx], y[idx])


def _method(name, **options) -> Method:
    torch.manual_seed(0)
    return make_method(name, MLP(4, hidden=(16, D)), K, COUNTS, **options)


def _loss(method, x, y, balanced, progress=0.5):
    bb = balanced if method.needs_balanced_batch else None
    return method.loss(x, y, progress=progress, epoch=0, balanced_batch=bb)


@pytest.mark.parametrize("name", METHODS)
def test_method_interface(name):
    method = _method(name)
    x, y, balanced = _problem()
    out = method(x)
    assert isinstance(out, ModelOutput)
    assert out.features.shape == (len(y), D) and out.logits.shape == (len(y), K)
    weight, bias = method.classifier()
    assert weight.shape == (K, D) and (bias is None or bias.shape == (K,))
    assert method.needs_balanced_batch is (name == "allnc")
    assert (method.class_means() is None) is (name != "allnc")
    loss, stats = _loss(method, x, y, balanced)
    assert math.isfinite(loss.item()) and stats["loss"].item() == pytest.approx(loss.item())
    assert method.name == name
    for value in stats.values():  # detached 0-d tensors: no host sync inside the training step
        assert torch.is_tensor(value) and value.ndim == 0 and not value.requires_grad
    loss.backward()
    grads = [p.grad for p in method.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", METHODS)
def test_a_few_steps_on_a_separable_problem_lower_the_loss(name):
    method = _method(name)
    x, y, balanced = _problem()
    _loss(method, x, y, balanced)  # AllNC: fill the class-mean bank before measuring
    before = _loss(method, x, y, balanced)[0].item()
    opt = torch.optim.Adam(method.parameters(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        _loss(method, x, y, balanced)[0].backward()
        opt.step()
    after = _loss(method, x, y, balanced)[0].item()
    assert after < 0.8 * before


def test_logit_adjustment_trains_on_adjusted_logits_and_predicts_with_raw_ones():
    method = _method("la", tau=1.0)
    x, y, _ = _problem()
    out = method(x)
    weight, bias = method.classifier()
    assert torch.allclose(out.logits, F.linear(out.features, weight, bias), atol=1e-6)
    prior = torch.tensor(COUNTS, dtype=torch.float32) / sum(COUNTS)
    want = F.cross_entropy(out.logits + prior.log(), y)
    assert _loss(method, x, y, None)[0].item() == pytest.approx(want.item(), rel=1e-5)


def test_ldam_drw_reweights_only_in_the_last_fifth_of_training():
    method = _method("ldam-drw")
    x, y, _ = _problem()
    cosines = method(x).logits
    assert cosines.abs().max() <= 1.0 + 1e-6
    margins = ldam_margins(COUNTS)
    plain = ldam_loss(cosines, y, margins, 30.0).item()
    weighted = ldam_loss(cosines, y, margins, 30.0, drw_weights(COUNTS)).item()
    assert _loss(method, x, y, None, progress=0.79)[0].item() == pytest.approx(plain, rel=1e-5)
    assert _loss(method, x, y, None, progress=0.8)[0].item() == pytest.approx(weighted, rel=1e-5)
    assert plain != pytest.approx(weighted)


def test_etf_dr_classifier_is_fixed():
    method = _method("etf-dr")
    weight, bias = method.classifier()
    assert bias is None
    assert list(method.net.head.parameters()) == [] and not weight.requires_grad
    assert torch.allclose(weight @ weight.T, torch.full((K, K), -0.5) + 1.5 * torch.eye(K))


def test_allnc_options_reach_its_config():
    method = _method("allnc", hycon=False, gbbn=False, p2p_mode="both", q=0.5)
    assert method.config.hycon is False and method.config.p2p_mode == "both"
    assert method.needs_balanced_batch is False and method.balanced_q == 0.5


def test_make_method_rejects_unknown_names_options_and_counts():
    backbone = MLP(4, hidden=(D,))
    with pytest.raises(ValueError, match="allowed: ce, la, ldam-drw, etf-dr, allnc"):
        make_method("focal", backbone, K, COUNTS)
    with pytest.raises(ValueError, match="no option"):
        make_method("ce", backbone, K, COUNTS, tau=2.0)
    with pytest.raises(ValueError, match="no option"):
        make_method("allnc", backbone, K, COUNTS, lambda_x=1.0)
    with pytest.raises(ValueError, match="expected 3"):
        make_method("ce", backbone, K, [5, 4])
    with pytest.raises(ValueError, match="progress"):
        _method("ce").loss(torch.zeros(2, 4), torch.tensor([0, 1]), progress=2.0, epoch=0)
