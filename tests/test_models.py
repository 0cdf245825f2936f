"""Backbones and heads: shapes, the ResNet-32 layout, the fixed ETF head, channels_last + bf16."""

import pytest
import torch
from torch import nn

from allnc_edu.geometry import etf_gram
from allnc_edu.models import (
    CNN1D,
    MLP,
    CosineHead,
    ETFHead,
    LinearHead,
    ModelOutput,
    Network,
    build_backbone,
    resnet32_glmc,
    resnet32_ldam,
)

SHAPES = {  # small images keep the test fast; the ResNets pool globally, so any size works
    "resnet32-ldam": (3, 8, 8),
    "resnet32-glmc": (3, 8, 8),
    "cnn1d": (1, 40),
    "mlp": (1, 40),
}
FEATURE_DIMS = {"resnet32-ldam": 64, "resnet32-glmc": 256, "cnn1d": 64, "mlp": 256}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_backbone_returns_features_and_logits(name):
    torch.manual_seed(0)
    backbone = build_backbone(name, SHAPES[name])
    d, k = FEATURE_DIMS[name], 5
    assert backbone.feature_dim == d
    out = Network(backbone, LinearHead(d, k))(torch.randn(2, *SHAPES[name]))
    assert isinstance(out, ModelOutput)
    assert out.features.shape == (2, d) and out.logits.shape == (2, k)
    assert torch.isfinite(out.logits).all()


@pytest.mark.parametrize("head", [LinearHead, ETFHead, CosineHead])
def test_every_head_gives_logits_of_shape_batch_by_classes(head):
    out = Network(MLP(40, hidden=(16,)), head(16, 7))(torch.randn(3, 1, 40))
    assert out.features.shape == (3, 16) and out.logits.shape == (3, 7)


@pytest.mark.parametrize(
    ("build", "widths"), [(resnet32_ldam, (16, 32, 64)), (resnet32_glmc, (64, 128, 256))]
)
def test_resnet32_layout(build, widths):
    net = build()
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    # ResNet-32 = 1 stem conv + 3 stages x 5 blocks x 2 convs + the classifier = 32 layers.
    assert len(convs) == 1 + 3 * 5 * 2
    assert len(net.layers) == 15
    assert [net.layers[5 * s].conv1.out_channels for s in range(3)] == list(widths)
    assert net.feature_dim == widths[2]


def test_resnet_shortcut_b_and_bad_options():
    net = resnet32_ldam(shortcut="B")
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 64)
    with pytest.raises(ValueError, match="shortcut"):
        resnet32_ldam(shortcut="C")


def test_resnet_channels_last_bfloat16_autocast_matches_float32():
    torch.manual_seed(0)
    net = resnet32_ldam().eval().to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        ref = net(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = net(x.to(memory_format=torch.channels_last))
    assert low.shape == (2, 64) and torch.isfinite(low).all()
    assert torch.allclose(low.float(), ref, rtol=0.1, atol=0.1 * ref.abs().max().item())


@pytest.mark.parametrize("head", [LinearHead, ETFHead])
def test_cnn1d_under_bfloat16_autocast_backpropagates(head):
    net = Network(CNN1D(), head(64, 10))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(torch.randn(8, 1, 40))
        loss = out.logits.float().logsumexp(1).mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_mlp_flattens_its_input():
    torch.manual_seed(0)
    mlp = MLP(40, hidden=(32, 16))
    x = torch.randn(3, 1, 40)
    assert mlp.feature_dim == 16
    assert torch.equal(mlp(x), mlp(x.reshape(3, 40)))


def test_etf_head_is_a_fixed_buffer_that_gets_no_gradient():
    head = ETFHead(8, 4, seed=3)
    assert list(head.parameters()) == []
    assert "weight" in head.state_dict()
    gram = head.weight.double() @ head.weight.double().T
    assert torch.allclose(gram, etf_gram(4), atol=1e-6)
    net = Network(MLP(6, hidden=(8,)), head)
    before = head.weight.clone()
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    net(torch.randn(5, 6)).logits.sum().backward()
    opt.step()
    assert head.weight.grad is None and not head.weight.requires_grad
    assert torch.equal(head.weight, before)


def test_etf_head_needs_enough_dimensions():
    with pytest.raises(ValueError, match="dim must be >= 9"):
        ETFHead(5, 10)


def test_build_backbone_rejects_bad_names_and_shapes():
    with pytest.raises(ValueError, match="allowed: resnet32-ldam"):
        build_backbone("vgg", (3, 32, 32))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        build_backbone("resnet32-ldam", (1, 40))
    with pytest.raises(ValueError, match=r"\(C, L\)"):
        build_backbone("cnn1d", (3, 32, 32))
    assert build_backbone("cnn1d", (1, 40), feature_dim=16).feature_dim == 16


@pytest.mark.parametrize(("name", "grouped"), [("resnet50", False), ("resnext50_32x4d", True)])
def test_torchvision_backbones_give_2048_features(name: str, grouped: bool) -> None:
    model = build_backbone(name, (3, 32, 32))
    assert model.arch == name and model.feature_dim == 2048
    assert (model.net.layer1[0].conv2.groups == 32) is grouped  # ResNeXt's 32 groups
    x = torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    assert model(x).shape == (2, 2048)
    grey = build_backbone(name, (1, 40, 40))
    assert grey(torch.randn(2, 1, 40, 40)).shape == (2, 2048)
    with pytest.raises(ValueError, match=r"needs input_shape \(C, H, W\)"):
        build_backbone(name, (1, 40))
