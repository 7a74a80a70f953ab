"""The DPP-Net space (Dong et al., ECCV 2018, arXiv 1806.08198): variable-length cells of (Norm, Conv) layers
stacked in a CondenseNet-like densely connected skeleton.

A cell is a sequence of 1..``max_length`` layers; each layer is a Norm {bn_relu, bn, identity} followed by a
Conv {conv1x1, conv3x3, gconv1x1, gconv3x3, lgconv1x1 (CondenseNet learned group conv, condensed form),
dsconv3x3 (depthwise separable)}. Inner convs widen to ``bottleneck`` x growth channels, the last one emits the
growth rate; the cell is one densely connected unit (its output concatenated to its input), repeated
``depths[s]`` times in stage s with growth ``growths[s]``; stages joined by 2x2 average pooling
(CondenseNet-86 skeleton by default: depths 14-14-14, growth 8-16-32, 4 groups).

Genes: a length gene (value l - 1), then (norm, conv) for each of the ``max_length`` layer slots (slots beyond
the length are inactive and canonicalised to 0), then a ``tail`` gene: an optional Norm {none, bn_relu, bn}
after the last conv (applied to the cell's growth-rate output; a trailing ``identity`` is no layer, so it is
``none``). The tail exists so that DPP-Net's one-layer progression (a Norm or a Conv per step) has a network
to evaluate at every step: a cell that ends in a Norm layer.

For progressive search the space offers two views of a cell:

- pairs (``layer_choices()`` = 3 x 6 = 18, ``from_layers(seq)``, ``layers(arch)``): one (Norm, Conv) per item;
- single layers (``single_layer_choices(position)``: 3 Norms at even positions, 6 Convs at odd ones,
  ``from_single_layers(seq)``, ``single_layers(arch)``): Norm, Conv, Norm, Conv, ... (CondenseNet's
  pre-activation order), at least 2 layers (a cell needs a conv), an odd count ending in the tail Norm.

String: pairs joined by ',', each ``norm:conv``, e.g. ``bn_relu:lgconv1x1,bn_relu:gconv3x3`` (CondenseNet's
layer), then the tail Norm alone if there is one: ``bn_relu:lgconv1x1,bn``.
"""

from __future__ import annotations

from typing import Sequence

from ..contracts import Arch, InvalidArchError
from .base import GeneSpace
from .monas import _tuple

NORMS = ("bn_relu", "bn", "identity")
CONVS = ("conv1x1", "conv3x3", "gconv1x1", "gconv3x3", "lgconv1x1", "dsconv3x3")
TAILS = ("none", "bn_relu", "bn")  # the optional Norm after the last conv (identity there is no layer)


class DPPNetSpace(GeneSpace):
    name = "dppnet"

    def __init__(self, max_length: int = 4, depths=(14, 14, 14), growths=(8, 16, 32), bottleneck: int = 4,
                 groups: int = 4, input_size: int = 32, num_classes: int = 10):
        self.max_length = int(max_length)
        self.depths = _tuple(depths, "depths", self.name, distinct=False)
        self.growths = _tuple(growths, "growths", self.name, distinct=False)
        self.bottleneck, self.groups = int(bottleneck), int(groups)
        self.input_size, self.num_classes = int(input_size), int(num_classes)
        if self.max_length < 1:
            raise InvalidArchError(f"{self.name}: max_length must be >= 1")
        if len(self.growths) != len(self.depths):
            raise InvalidArchError(f"{self.name}: need one positive growth rate per stage ({len(self.depths)})")
        if self.bottleneck < 1 or self.groups < 1 or self.num_classes < 1:
            raise InvalidArchError(f"{self.name}: need bottleneck, groups, num_classes >= 1")

    def config(self):
        return {"max_length": self.max_length, "depths": list(self.depths), "growths": list(self.growths),
                "bottleneck": self.bottleneck, "groups": self.groups, "input_size": self.input_size,
                "num_classes": self.num_classes}

    def input_shape(self):
        return (3, self.input_size, self.input_size)

    def cardinalities(self):
        return (self.max_length,) + (len(NORMS), len(CONVS)) * self.max_length + (len(TAILS),)

    def size(self) -> int:
        n = len(NORMS) * len(CONVS)
        return len(TAILS) * sum(n**length for length in range(1, self.max_length + 1))

    def canonical(self, genes):
        genes = list(genes)
        for i in range(genes[0] + 1, self.max_length):
            genes[1 + 2 * i] = genes[2 + 2 * i] = 0
        return tuple(genes)

    # -- layer sequences (progressive search) ----------------------------------------------------------
    @staticmethod
    def layer_choices() -> int:
        return len(NORMS) * len(CONVS)

    def from_layers(self, seq: Sequence[int], tail: str = "none") -> Arch:
        seq = [int(c) for c in seq]
        if not 1 <= len(seq) <= self.max_length:
            raise InvalidArchError(f"{self.name}: a cell has 1..{self.max_length} (norm, conv) layers, got {len(seq)}")
        if any(not 0 <= c < self.layer_choices() for c in seq):
            raise InvalidArchError(f"{self.name}: layer choices are 0..{self.layer_choices() - 1}, got {seq}")
        genes = [len(seq) - 1] + [0] * (2 * self.max_length) + [TAILS.index(tail)]
        for i, c in enumerate(seq):
            genes[1 + 2 * i], genes[2 + 2 * i] = divmod(c, len(CONVS))
        return self.make(genes)

    def layers(self, arch: Arch) -> list[int]:
        g = self.check(arch).genes
        return [g[1 + 2 * i] * len(CONVS) + g[2 + 2 * i] for i in range(g[0] + 1)]

    def tail(self, arch: Arch) -> str:
        return TAILS[self.check(arch).genes[-1]]

    @staticmethod
    def single_layer_choices(position: int) -> int:
        """Choices of the single layer at ``position`` (0-based): a Norm at even positions, a Conv at odd ones."""
        return len(NORMS) if position % 2 == 0 else len(CONVS)

    def from_single_layers(self, seq: Sequence[int]) -> Arch:
        """A cell from single layers (Norm index, Conv index, Norm index, ...); an odd count ends in a tail Norm
        (``identity`` there is no layer)."""
        seq = [int(c) for c in seq]
        if not 2 <= len(seq) <= 2 * self.max_length + 1:
            raise InvalidArchError(f"{self.name}: a cell has 2..{2 * self.max_length + 1} single layers "
                                   f"(Norm, Conv, Norm, ...), got {len(seq)}")
        for i, c in enumerate(seq):
            if not 0 <= c < self.single_layer_choices(i):
                raise InvalidArchError(f"{self.name}: single layer {i} is 0..{self.single_layer_choices(i) - 1}, got {c}")
        pairs = [seq[i] * len(CONVS) + seq[i + 1] for i in range(0, len(seq) - 1, 2)]
        tail = "none" if len(seq) % 2 == 0 or NORMS[seq[-1]] == "identity" else NORMS[seq[-1]]
        if len(pairs) > self.max_length:
            raise InvalidArchError(f"{self.name}: more than {self.max_length} (norm, conv) layers in {seq}")
        return self.from_layers(pairs, tail)

    def single_layers(self, arch: Arch) -> list[int]:
        out = []
        for c in self.layers(arch):
            out += list(divmod(c, len(CONVS)))
        tail = self.tail(arch)
        return out + ([NORMS.index(tail)] if tail != "none" else [])

    def decode(self, arch: Arch) -> list[tuple[str, str]]:
        return [(NORMS[c // len(CONVS)], CONVS[c % len(CONVS)]) for c in self.layers(arch)]

    # -- strings ---------------------------------------------------------------------------------------
    def to_string(self, arch: Arch) -> str:
        tail = self.tail(arch)
        return ",".join([f"{n}:{c}" for n, c in self.decode(arch)] + ([tail] if tail != "none" else []))

    def from_string(self, s: str) -> Arch:
        text = str(s).strip()
        parts = [p.strip() for p in text.split(",")]
        tail = "none"
        if len(parts) > 1 and ":" not in parts[-1]:
            tail = parts.pop()
            if tail not in TAILS[1:]:
                raise InvalidArchError(f"{self.name}: bad tail {tail!r} in {text!r}; expected one of "
                                       f"{', '.join(TAILS[1:])} after the last norm:conv")
        seq = []
        for part in parts:
            norm, sep, conv = part.partition(":")
            if not sep or norm not in NORMS or conv not in CONVS:
                raise InvalidArchError(f"{self.name}: bad layer {part!r} in {text!r}; expected norm:conv with norm in "
                                       f"{', '.join(NORMS)} and conv in {', '.join(CONVS)}")
            seq.append(NORMS.index(norm) * len(CONVS) + CONVS.index(conv))
        return self.from_layers(seq, tail)

    # -- building ----------------------------------------------------------------------------------------
    def build(self, arch: Arch):
        from .condense_torch import DenseNet, LayerCell

        layers, tail = self.decode(arch), self.tail(arch)
        b, groups = self.bottleneck, self.groups
        return DenseNet(lambda s, c_in, k: LayerCell(layers, c_in, k, b * k, groups, tail=tail), self.depths,
                        self.growths, self.num_classes)
