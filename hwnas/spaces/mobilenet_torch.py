"""PyTorch modules for the OFA MobileNetV3-style space."""

from __future__ import annotations

from torch import nn

from .mobilenet import ACTS, SE, STRIDES, WIDTHS, make_divisible


def act(name: str) -> nn.Module:
    return nn.Hardswish() if name == "hswish" else nn.ReLU()


class SqueezeExcite(nn.Module):
    def __init__(self, c: int, reduction: int = 4):
        super().__init__()
        mid = make_divisible(c // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(c, mid, 1)
        self.relu = nn.ReLU()
        self.expand = nn.Conv2d(mid, c, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        return x * self.gate(self.expand(self.relu(self.reduce(self.pool(x)))))


class MBConv(nn.Module):
    def __init__(self, c_in, c_out, kernel, expand, stride, activation, se):
        super().__init__()
        mid = make_divisible(c_in * expand)
        layers = []
        if expand != 1:
            layers += [nn.Conv2d(c_in, mid, 1, bias=False), nn.BatchNorm2d(mid), act(activation)]
        layers += [
            nn.Conv2d(mid, mid, kernel, stride=stride, padding=kernel // 2, groups=mid, bias=False),
            nn.BatchNorm2d(mid),
            act(activation),
        ]
        if se:
            layers.append(SqueezeExcite(mid))
        layers += [nn.Conv2d(mid, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class OFAMobileNetV3(nn.Module):
    def __init__(self, stages, width_mult=1.0, num_classes=1000):
        super().__init__()
        c_stem = make_divisible(16 * width_mult)
        self.stem = nn.Sequential(nn.Conv2d(3, c_stem, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_stem), nn.Hardswish())
        blocks = [MBConv(c_stem, c_stem, 3, 1, 1, "relu", False)]
        c = c_stem
        for s, stage in enumerate(stages):
            c_out = make_divisible(WIDTHS[s] * width_mult)
            for b, (k, e) in enumerate(stage):
                blocks.append(MBConv(c, c_out, k, e, STRIDES[s] if b == 0 else 1, ACTS[s], SE[s]))
                c = c_out
        self.blocks = nn.Sequential(*blocks)
        c_final = make_divisible(960 * width_mult)
        c_mix = make_divisible(1280 * width_mult)
        self.final_expand = nn.Sequential(nn.Conv2d(c, c_final, 1, bias=False), nn.BatchNorm2d(c_final), nn.Hardswish())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_mix = nn.Sequential(nn.Conv2d(c_final, c_mix, 1, bias=False), nn.Hardswish())
        self.classifier = nn.Linear(c_mix, num_classes)

    def forward(self, x):
        x = self.final_expand(self.blocks(self.stem(x)))
        x = self.feature_mix(self.pool(x)).flatten(1)
        return self.classifier(x)
