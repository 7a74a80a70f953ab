"""PyTorch building blocks of CondenseNet-like, densely connected networks (Huang et al., CVPR 2018), shared
by the ``monas_condensenet`` and ``dppnet`` spaces. Everything exports to ONNX (Conv, Gather, Concat, ...).

Learned group convolution is built in its *condensed* (deployed) form: CondenseNet learns during training
which input channels each group keeps and then replaces the layer by an index-select (a fixed channel
permutation) followed by a grouped 1x1 convolution. We build that deployed structure with a fixed,
interleaving permutation, so cost and latency are those of the deployed layer; the learning of the
permutation (condensation during training) is not reproduced.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def fit_groups(c_in: int, c_out: int, groups: int) -> int:
    """The largest group count <= ``groups`` that divides both channel counts."""
    g = math.gcd(math.gcd(int(c_in), int(c_out)), int(groups))
    return max(1, g)


class LearnedGroupConv1x1(nn.Module):
    """CondenseNet learned group 1x1 convolution, condensed: channel index-select + grouped 1x1 conv."""

    def __init__(self, c_in: int, c_out: int, groups: int = 4):
        super().__init__()
        g = fit_groups(c_in, c_out, groups)
        index = torch.arange(c_in).reshape(g, c_in // g).t().reshape(-1)  # interleave: each group sees all parts
        self.register_buffer("index", index, persistent=False)
        self.conv = nn.Conv2d(c_in, c_out, 1, groups=g, bias=False)

    def forward(self, x):
        return self.conv(torch.index_select(x, 1, self.index))


class DepthwiseSeparable3x3(nn.Sequential):
    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False))


def make_conv(kind: str, c_in: int, c_out: int, groups: int = 4) -> nn.Module:
    if kind == "conv1x1":
        return nn.Conv2d(c_in, c_out, 1, bias=False)
    if kind == "conv3x3":
        return nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    if kind == "gconv1x1":
        return nn.Conv2d(c_in, c_out, 1, groups=fit_groups(c_in, c_out, groups), bias=False)
    if kind == "gconv3x3":
        return nn.Conv2d(c_in, c_out, 3, padding=1, groups=fit_groups(c_in, c_out, groups), bias=False)
    if kind == "lgconv1x1":
        return LearnedGroupConv1x1(c_in, c_out, groups)
    if kind == "dsconv3x3":
        return DepthwiseSeparable3x3(c_in, c_out)
    raise KeyError(kind)


def make_norm(kind: str, c: int) -> nn.Module:
    if kind == "bn_relu":
        return nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())
    if kind == "bn":
        return nn.BatchNorm2d(c)
    if kind == "identity":
        return nn.Identity()
    raise KeyError(kind)


class LayerCell(nn.Module):
    """A sequence of (Norm, Conv) layers: inner convs widen to ``bottleneck`` channels, the last one emits
    ``growth`` channels (as CondenseNet's BN-ReLU-LGConv1x1(4k) -> BN-ReLU-GConv3x3(k) layer). ``tail``: an
    optional Norm (``bn_relu`` / ``bn``) on the cell's output, after the last conv; ``none`` for no layer."""

    def __init__(self, layers, c_in: int, growth: int, bottleneck: int, groups: int, tail: str = "none"):
        super().__init__()
        mods = []
        c = c_in
        for i, (norm, conv) in enumerate(layers):
            c_out = growth if i == len(layers) - 1 else bottleneck
            mods += [make_norm(norm, c), make_conv(conv, c, c_out, groups)]
            c = c_out
        if tail != "none":
            mods.append(make_norm(tail, c))
        self.body = nn.Sequential(*mods)

    def forward(self, x):
        return self.body(x)


class DenseNet(nn.Module):
    """CondenseNet skeleton: 3x3 stem (2 x first growth), per stage ``depth`` densely connected units (each
    unit's output concatenated to its input), 2x2 average pooling between stages, BN-ReLU, global pooling,
    linear classifier. ``cell(stage, c_in, growth)`` builds one unit."""

    def __init__(self, cell, depths, growths, num_classes: int = 10):
        super().__init__()
        c = 2 * int(growths[0])
        self.stem = nn.Conv2d(3, c, 3, padding=1, bias=False)
        self.units = nn.ModuleList()
        self.pool_after: list[bool] = []
        for s, (depth, growth) in enumerate(zip(depths, growths)):
            for d in range(int(depth)):
                self.units.append(cell(s, c, int(growth)))
                self.pool_after.append(d == int(depth) - 1 and s < len(depths) - 1)
                c += int(growth)
        self.pool = nn.AvgPool2d(2)
        self.head = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Linear(c, num_classes)
        self.out_channels = c

    def forward(self, x):
        x = self.stem(x)
        for unit, pool in zip(self.units, self.pool_after):
            x = torch.cat([x, unit(x)], 1)
            if pool:
                x = self.pool(x)
        return self.classifier(self.head(x).flatten(1))


class AlexNetCifar(nn.Module):
    """AlexNet-style CIFAR network (cuda-convnet layout): conv+ReLU layers with 3x3/2 max pooling after the
    first, second and last conv, then fully connected 384 -> 192 -> classes. ``batch_norm`` adds BN after each
    conv (not AlexNet's; it makes the network trainable in a few epochs)."""

    def __init__(self, layers, input_size: int = 32, num_classes: int = 10, fc=(384, 192), batch_norm: bool = False):
        super().__init__()
        mods = []
        c = 3
        n = len(layers)
        pools = {0, 1, n - 1} if n >= 3 else set(range(n))
        size = int(input_size)
        for i, (filters, kernel) in enumerate(layers):
            mods += [nn.Conv2d(c, filters, kernel, padding=kernel // 2, bias=not batch_norm)]
            mods += [nn.BatchNorm2d(filters), nn.ReLU()] if batch_norm else [nn.ReLU()]
            if i in pools:
                mods.append(nn.MaxPool2d(3, stride=2, padding=1))
                size = (size + 2 - 3) // 2 + 1
            c = filters
        self.features = nn.Sequential(*mods)
        dims = [c * size * size, *fc]
        fcs = []
        for a, b in zip(dims, dims[1:]):
            fcs += [nn.Linear(a, b), nn.ReLU()]
        self.classifier = nn.Sequential(*fcs, nn.Linear(dims[-1], num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))
