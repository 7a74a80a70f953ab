"""PyTorch modules of the NAS-Bench-201 network (TinyNetwork), following the benchmark's definitions."""

from __future__ import annotations

import torch
from torch import nn

from .nb201 import EDGES, OPS


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in, c_out, kernel, stride, padding):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        )


def make_op(name: str, c: int) -> nn.Module | None:
    if name == "none":
        return None  # contributes zero: the edge is dropped (as multiplying by zero would)
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1, 1, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3, 1, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise KeyError(name)


class Cell(nn.Module):
    def __init__(self, genes, c: int):
        super().__init__()
        self.edges = nn.ModuleDict()
        self.plan: list[tuple[int, int, str]] = []
        for k, (dst, src) in enumerate(EDGES):
            op = make_op(OPS[genes[k]], c)
            if op is not None:
                key = f"{dst}_{src}"
                self.edges[key] = op
                self.plan.append((dst, src, key))

    def forward(self, x):
        nodes = [x]
        for dst in (1, 2, 3):
            terms = [self.edges[key](nodes[src]) for d, src, key in self.plan if d == dst]
            if terms:
                out = terms[0]
                for t in terms[1:]:
                    out = out + t
            else:
                out = torch.zeros_like(x)
            nodes.append(out)
        return nodes[3]


class ResNetBasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride=2):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=False),
        )

    def forward(self, x):
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class TinyNetwork(nn.Module):
    def __init__(self, genes, C=16, N=5, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers = []
        c = C
        for stage in range(3):
            if stage > 0:
                layers.append(ResNetBasicBlock(c, 2 * c, 2))
                c *= 2
            layers.extend(Cell(genes, c) for _ in range(N))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x):
        x = self.lastact(self.cells(self.stem(x)))
        x = self.global_pooling(x).flatten(1)
        return self.classifier(x)
