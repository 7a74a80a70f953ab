"""MONAS's target networks (Hsu et al., 2018, arXiv 1806.10332): a CondenseNet-style and an AlexNet-style space.

``monas_condensenet``: a CondenseNet for CIFAR (Huang et al., CVPR 2018) whose per-stage depth (dense layers)
and growth rate are searched. Each dense layer is CondenseNet's BN-ReLU-LGConv1x1(bottleneck x growth) ->
BN-ReLU-GConv3x3(growth); stages are joined by 2x2 average pooling. Genes: one depth gene per stage, then one
growth gene per stage. Defaults: 3 stages, depth in {6, 8, 10, 12, 14, 16, 18}, growth in {4, 8, 12, 16, 24,
32}; CondenseNet-86 (14-14-14, growth 8-16-32) is in the space. String: ``d14-14-14_g8-16-32``.

``monas_alexnet``: an AlexNet-style CIFAR network (cuda-convnet layout, 3x3/2 max pooling after the first,
second and last conv; fully connected 384-192-classes) whose per-layer filter count and kernel size are
searched. Genes: per conv layer a filter gene and a kernel gene. Defaults: 5 conv layers, filters in
{24, 36, 48, 64}, kernel in {1, 3, 5, 7}; ``batch_norm=True`` adds BN after each conv (not AlexNet's, but
trainable in a few epochs). String: ``f64k5-f64k5-f48k3-f48k3-f36k3``.

Choice lists, stage/layer counts, bottleneck and group counts are settings (``--space-opt``); the papers'
exact lists are not available here (see docs/reproductions.md).
"""

from __future__ import annotations

import re

from ..contracts import Arch, InvalidArchError
from .base import GeneSpace


def _tuple(value, name: str, space: str, distinct: bool = True) -> tuple[int, ...]:
    """A setting given as a list, a single int, or a string such as ``"8-16-32"`` / ``"8,16,32"``."""
    if isinstance(value, int):
        value = [value]
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\s/-]+", value.strip()) if v]
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidArchError(f"{space}: {name} must be a list of integers, got {value!r}") from None
    if not out or min(out) < 1 or (distinct and len(set(out)) != len(out)):
        raise InvalidArchError(f"{space}: {name} must be {'distinct ' if distinct else ''}positive integers, got {value!r}")
    return out


class MonasCondenseNetSpace(GeneSpace):
    name = "monas_condensenet"

    def __init__(self, stages: int = 3, depth_choices=(6, 8, 10, 12, 14, 16, 18),
                 growth_choices=(4, 8, 12, 16, 24, 32), bottleneck: int = 4, groups: int = 4,
                 input_size: int = 32, num_classes: int = 10):
        self.stages = int(stages)
        self.depth_choices = _tuple(depth_choices, "depth_choices", self.name)
        self.growth_choices = _tuple(growth_choices, "growth_choices", self.name)
        self.bottleneck, self.groups = int(bottleneck), int(groups)
        self.input_size, self.num_classes = int(input_size), int(num_classes)
        if self.stages < 1 or self.bottleneck < 1 or self.groups < 1 or self.num_classes < 1:
            raise InvalidArchError(f"{self.name}: need stages, bottleneck, groups, num_classes >= 1")
        if self.input_size < 2 ** (self.stages - 1):
            raise InvalidArchError(f"{self.name}: input_size {self.input_size} is too small for {self.stages} stages")

    def config(self):
        return {"stages": self.stages, "depth_choices": list(self.depth_choices),
                "growth_choices": list(self.growth_choices), "bottleneck": self.bottleneck, "groups": self.groups,
                "input_size": self.input_size, "num_classes": self.num_classes}

    def input_shape(self):
        return (3, self.input_size, self.input_size)

    def cardinalities(self):
        return (len(self.depth_choices),) * self.stages + (len(self.growth_choices),) * self.stages

    def decode(self, arch: Arch) -> tuple[tuple[int, ...], tuple[int, ...]]:
        g = self.check(arch).genes
        return (tuple(self.depth_choices[i] for i in g[: self.stages]),
                tuple(self.growth_choices[i] for i in g[self.stages:]))

    def to_string(self, arch: Arch) -> str:
        depths, growths = self.decode(arch)
        return f"d{'-'.join(map(str, depths))}_g{'-'.join(map(str, growths))}"

    def from_string(self, s: str) -> Arch:
        text = str(s).strip()
        m = re.fullmatch(r"d([\d-]+)_g([\d-]+)", text)
        if not m:
            raise InvalidArchError(f"{self.name}: malformed arch string {text!r}; expected e.g. d14-14-14_g8-16-32")
        depths = [int(v) for v in m.group(1).split("-") if v]
        growths = [int(v) for v in m.group(2).split("-") if v]
        if len(depths) != self.stages or len(growths) != self.stages:
            raise InvalidArchError(f"{self.name}: {text!r} needs {self.stages} depths and {self.stages} growth rates")
        bad = [d for d in depths if d not in self.depth_choices] + [g for g in growths if g not in self.growth_choices]
        if bad:
            raise InvalidArchError(f"{self.name}: {text!r}: depth must be in {self.depth_choices}, "
                                   f"growth in {self.growth_choices}")
        return self.make([self.depth_choices.index(d) for d in depths] + [self.growth_choices.index(g) for g in growths])

    def build(self, arch: Arch):
        from .condense_torch import DenseNet, LayerCell

        depths, growths = self.decode(arch)
        layers = (("bn_relu", "lgconv1x1"), ("bn_relu", "gconv3x3"))
        b, groups = self.bottleneck, self.groups
        return DenseNet(lambda s, c_in, k: LayerCell(layers, c_in, k, b * k, groups), depths, growths, self.num_classes)


class MonasAlexNetSpace(GeneSpace):
    name = "monas_alexnet"

    def __init__(self, layers: int = 5, filter_choices=(24, 36, 48, 64), kernel_choices=(1, 3, 5, 7),
                 input_size: int = 32, num_classes: int = 10, batch_norm: bool = False):
        self.layers = int(layers)
        self.filter_choices = _tuple(filter_choices, "filter_choices", self.name)
        self.kernel_choices = _tuple(kernel_choices, "kernel_choices", self.name)
        self.input_size, self.num_classes = int(input_size), int(num_classes)
        self.batch_norm = bool(batch_norm) if not isinstance(batch_norm, str) else batch_norm.lower() in ("1", "true", "yes")
        if self.layers < 1 or self.num_classes < 1 or self.input_size < 8:
            raise InvalidArchError(f"{self.name}: need layers >= 1, num_classes >= 1, input_size >= 8")
        if any(k % 2 == 0 for k in self.kernel_choices):
            raise InvalidArchError(f"{self.name}: kernel sizes must be odd, got {self.kernel_choices}")

    def config(self):
        return {"layers": self.layers, "filter_choices": list(self.filter_choices),
                "kernel_choices": list(self.kernel_choices), "input_size": self.input_size,
                "num_classes": self.num_classes, "batch_norm": self.batch_norm}

    def input_shape(self):
        return (3, self.input_size, self.input_size)

    def cardinalities(self):
        return (len(self.filter_choices), len(self.kernel_choices)) * self.layers

    def decode(self, arch: Arch) -> list[tuple[int, int]]:
        g = self.check(arch).genes
        return [(self.filter_choices[g[2 * i]], self.kernel_choices[g[2 * i + 1]]) for i in range(self.layers)]

    def to_string(self, arch: Arch) -> str:
        return "-".join(f"f{f}k{k}" for f, k in self.decode(arch))

    def from_string(self, s: str) -> Arch:
        text = str(s).strip()
        parts = text.split("-")
        if len(parts) != self.layers:
            raise InvalidArchError(f"{self.name}: {text!r} needs {self.layers} layers f<filters>k<kernel> joined by '-'")
        genes = []
        for part in parts:
            m = re.fullmatch(r"f(\d+)k(\d+)", part)
            if not m:
                raise InvalidArchError(f"{self.name}: bad layer {part!r} in {text!r}; expected e.g. f64k5")
            f, k = int(m.group(1)), int(m.group(2))
            if f not in self.filter_choices or k not in self.kernel_choices:
                raise InvalidArchError(f"{self.name}: layer {part!r}: filters must be in {self.filter_choices}, "
                                       f"kernel in {self.kernel_choices}")
            genes += [self.filter_choices.index(f), self.kernel_choices.index(k)]
        return self.make(genes)

    def build(self, arch: Arch):
        from .condense_torch import AlexNetCifar

        return AlexNetCifar(self.decode(arch), self.input_size, self.num_classes, batch_norm=self.batch_norm)
