"""Backbones and classifier heads (the ``Method`` interface is in ``method_base``).

A backbone maps inputs to penultimate-layer features (B, d) and exposes ``feature_dim`` = d.
A head maps features to logits (B, K). ``Network(backbone, head)`` returns both, as a
``ModelOutput``, so that neural-collapse metrics can read the features.

Backbones:

- ``resnet32_ldam()``: CIFAR ResNet-32, stage widths 16/32/64, 64-d features (the width of
  LDAM-DRW and ETF+DR).
- ``resnet32_glmc()``: CIFAR ResNet-32, stage widths 64/128/256, 256-d features (GLMC's width).
- ``CNN1D``: a small 1-D CNN for MNIST-1D, inputs (B, 1, 40).
- ``MLP``: flattens its input.
- ``ImageNetResNet("resnet50")`` / ``ImageNetResNet("resnext50_32x4d")``: torchvision's
  ResNet-50 and ResNeXt-50 (32x4d), randomly initialised (``weights=None``), 2048-d features:
  the backbones of the ImageNet-LT and iNaturalist 2018 literature.

All work with ``channels_last`` inputs and under bfloat16 autocast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_num_classes
from .geometry import simplex_etf

TORCHVISION_BACKBONES = ("resnet50", "resnext50_32x4d")
BACKBONES = ("resnet32-ldam", "resnet32-glmc", "cnn1d", "mlp", *TORCHVISION_BACKBONES)
SHORTCUTS = ("A", "B")


class ModelOutput(NamedTuple):
    """Penultimate features (B, d) and logits (B, K)."""

    features: torch.Tensor
    logits: torch.Tensor


class _BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a residual connection (He et al. 2016, CIFAR variant).

    Shortcut "A" (parameter-free: subsample and zero-pad channels, as in He et al.'s CIFAR
    ResNets and LDAM-DRW's code) or "B" (1x1 convolution + BN) when the shape changes.
    """

    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        self.stride, self.pad = stride, 0
        if stride != 1 or in_planes != planes:
            if shortcut == "B":
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes),
                )
            else:
                self.pad = planes - in_planes
                if self.pad < 0:
                    raise ValueError("shortcut 'A' cannot reduce the number of channels")

    def _skip(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(self.shortcut, nn.Identity) or (self.stride == 1 and self.pad == 0):
            return self.shortcut(x)
        x = x[:, :, :: self.stride, :: self.stride]
        half = self.pad // 2
        return F.pad(x, (0, 0, 0, 0, half, self.pad - half))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self._skip(x))


class CifarResNet(nn.Module):
    """CIFAR ResNet: a 3x3 stem, 3 stages of ``blocks`` basic blocks, global average pooling.

    Input (B, C, H, W); features (B, widths[2]) after the last ReLU and the pooling.
    ResNet-32 is ``blocks=5`` (6 * 5 + 2 = 32 layers).
    """

    def __init__(
        self,
        widths: Sequence[int] = (16, 32, 64),
        blocks: int = 5,
        in_channels: int = 3,
        shortcut: str = "A",
    ) -> None:
        super().__init__()
        if len(widths) != 3 or min(widths) < 1:
            raise ValueError(f"widths must be 3 positive stage widths, got {widths!r}")
        if blocks < 1:
            raise ValueError(f"blocks per stage must be >= 1, got {blocks}")
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {shortcut!r}")
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        layers, in_planes = [], widths[0]
        for stage, planes in enumerate(widths):
            for i in range(blocks):
                stride = 2 if stage > 0 and i == 0 else 1
                layers.append(_BasicBlock(in_planes, planes, stride, shortcut))
                in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.feature_dim = int(widths[2])
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x)).mean(dim=(2, 3))


def resnet32_ldam(in_channels: int = 3, shortcut: str = "A") -> CifarResNet:
    """ResNet-32 with stage widths 16/32/64 and 64-d features (as LDAM-DRW and ETF+DR)."""
    return CifarResNet((16, 32, 64), 5, in_channels, shortcut)


def resnet32_glmc(in_channels: int = 3, shortcut: str = "A") -> CifarResNet:
    """ResNet-32 with stage widths 64/128/256 and 256-d features (as GLMC)."""
    return CifarResNet((64, 128, 256), 5, in_channels, shortcut)


class CNN1D(nn.Module):
    """A small 1-D CNN for MNIST-1D: (B, C, L) -> features (B, feature_dim).

    Three conv-BN-ReLU layers (kernel 5, 3, 3; strides 1, 2, 2) then a linear layer with ReLU.
    About 60k parameters at the defaults: fast enough for interactive CPU training.
    """

    def __init__(
        self, in_channels: int = 1, length: int = 40, channels: int = 32, feature_dim: int = 64
    ) -> None:
        super().__init__()
        if min(in_channels, length, channels, feature_dim) < 1:
            raise ValueError("in_channels, length, channels and feature_dim must all be >= 1")
        c = channels
        self.conv = nn.Sequential(
            nn.Conv1d(in_channels, c, 5, padding=2, bias=False),
            nn.BatchNorm1d(c),
            nn.ReLU(inplace=True),
            nn.Conv1d(c, 2 * c, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm1d(2 * c),
            nn.ReLU(inplace=True),
            nn.Conv1d(2 * c, 2 * c, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm1d(2 * c),
            nn.ReLU(inplace=True),
        )
        out_len = math.ceil(math.ceil(length / 2) / 2)
        self.fc = nn.Linear(2 * c * out_len, feature_dim)
        self.feature_dim = int(feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc(self.conv(x).flatten(1)))


class MLP(nn.Module):
    """A ReLU MLP on the flattened input: ``(B, *input_shape)`` -> features (B, hidden[-1])."""

    def __init__(self, input_dim: int, hidden: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        if input_dim < 1 or not hidden or min(hidden) < 1:
            raise ValueError(f"need input_dim >= 1 and positive hidden widths, got {hidden!r}")
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(input_dim, width), nn.ReLU(inplace=True)]
            input_dim = width
        self.net = nn.Sequential(*layers)
        self.feature_dim = int(hidden[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class ImageNetResNet(nn.Module):
    """torchvision's ResNet-50 or ResNeXt-50 (32x4d) without its classifier: (B, C, H, W) ->
    features (B, 2048) after the global average pooling.

    ``weights=None``: randomly initialised as torchvision does, nothing is downloaded. The stem
    (7x7 stride-2 convolution, max pooling) is kept as it is, so small images shrink to 1x1 in
    the last stage (still a valid, if crude, network: the tests use 32x32). ``in_channels``
    other than 3 replaces the first convolution with one of that many input channels.
    ``options`` go to the torchvision constructor (e.g. ``zero_init_residual=True``).
    """

    def __init__(self, arch: str = "resnet50", in_channels: int = 3, **options) -> None:
        super().__init__()
        import torchvision

        if arch not in TORCHVISION_BACKBONES:
            raise ValueError(f"arch must be one of {TORCHVISION_BACKBONES}, got {arch!r}")
        net = getattr(torchvision.models, arch)(weights=None, **options)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.feature_dim = int(net.fc.in_features)
        net.fc = nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build_backbone(name: str, input_shape: Sequence[int], **options) -> nn.Module:
    """Build a backbone by name for inputs of shape ``input_shape`` (without the batch axis).

    Names: "resnet32-ldam", "resnet32-glmc", "resnet50", "resnext50_32x4d" (input (C, H, W)),
    "cnn1d" (input (C, L)), "mlp" (any shape). ``options`` go to the constructor (e.g.
    ``feature_dim`` for "cnn1d"). The result's ``arch`` attribute is ``name``.
    """
    shape = tuple(int(s) for s in input_shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"input_shape must be positive sizes without the batch axis: {shape}")
    if name in ("resnet32-ldam", "resnet32-glmc"):
        if len(shape) != 3:
            raise ValueError(f"{name} needs input_shape (C, H, W), got {shape}")
        build = resnet32_ldam if name == "resnet32-ldam" else resnet32_glmc
        model: nn.Module = build(in_channels=shape[0], **options)
    elif name in TORCHVISION_BACKBONES:
        if len(shape) != 3:
            raise ValueError(f"{name} needs input_shape (C, H, W), got {shape}")
        model = ImageNetResNet(name, in_channels=shape[0], **options)
    elif name == "cnn1d":
        if len(shape) != 2:
            raise ValueError(f"cnn1d needs input_shape (C, L), got {shape}")
        model = CNN1D(in_channels=shape[0], length=shape[1], **options)
    elif name == "mlp":
        model = MLP(math.prod(shape), **options)
    else:
        raise ValueError(f"unknown backbone {name!r}; allowed: {', '.join(BACKBONES)}")
    model.arch = name  # recorded in a run's config (``records.RunConfig.backbone``)
    return model


class LinearHead(nn.Linear):
    """A learnable linear classifier: logits = features @ W^T + b, W (K, d)."""

    def __init__(self, feature_dim: int, num_classes: int, bias: bool = True) -> None:
        super().__init__(feature_dim, check_num_classes(num_classes), bias=bias)


class CosineHead(nn.Module):
    """Cosine classifier (Cao et al.'s ``NormedLinear``): logits_k = cos(h, w_k), in [-1, 1]."""

    def __init__(self, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        k = check_num_classes(num_classes)
        self.weight = nn.Parameter(torch.empty(k, feature_dim).uniform_(-1.0, 1.0))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(features, dim=1) @ F.normalize(self.weight, dim=1).T


class ETFHead(nn.Module):
    """A fixed simplex-ETF classifier (Yang et al. 2022): logits = features @ W^T.

    W (K, d) = ``geometry.simplex_etf(K, d, seed)``: unit rows, pairwise cosine -1/(K-1). It is a
    registered buffer, not a parameter: it moves with ``.to()``, is saved in ``state_dict`` and
    is never trained. Needs d >= K - 1.
    """

    weight: torch.Tensor

    def __init__(self, feature_dim: int, num_classes: int, seed: int = 0) -> None:
        super().__init__()
        etf = simplex_etf(num_classes, feature_dim, seed=seed)
        self.register_buffer("weight", etf.to(torch.float32))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self.weight.to(features.dtype).T


class Network(nn.Module):
    """A backbone followed by a head; forward returns ``ModelOutput(features, logits)``."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> ModelOutput:
        features = self.backbone(x)
        return ModelOutput(features, self.head(features))
