"""An Once-for-All / FBNet-style macro space of inverted-residual (MBConv) blocks.

Skeleton of OFA's MobileNetV3 space (Cai et al., ICLR 2020): 3x3 stride-2 stem (16 ch, h-swish), a fixed
depthwise-separable block, then 5 stages of MBConv blocks with widths 24/40/80/112/160, strides 2/2/2/1/2,
activations relu/relu/h-swish/h-swish/h-swish and squeeze-excite in stages 2, 4 and 5; a 1x1 expand to 960,
global pooling, a 1x1 "feature mix" to 1280 and the classifier.

Searchable: per stage depth {2,3,4}; per block kernel {3,5,7} and expansion ratio {3,4,6}. A width
multiplier (default 1.0) and input size (default 224) are space settings.

Genes (45): 5 depth genes, then for each of the 5 stages x 4 block slots a kernel gene and an expansion
gene. Genes of block slots beyond a stage's depth are inactive and canonicalised to 0, so equal networks have
equal arch ids. String form: stages separated by '/', blocks by ',', each block ``k<kernel>e<expand>``, e.g.
``k3e4,k5e6/k3e3,k3e3,k7e6/...`` (depth = number of blocks).

``layers(arch)``: the network as plain layer records in execution order (the same layers ``build`` makes, with
their input sizes), for predictors that read a network's structure without exporting it
(``hwnas.predictors.space_kernels``).
"""

from __future__ import annotations

import re

from ..contracts import Arch, InvalidArchError
from .base import GeneSpace

KERNELS = (3, 5, 7)
EXPANDS = (3, 4, 6)
DEPTHS = (2, 3, 4)
N_STAGES = 5
MAX_DEPTH = max(DEPTHS)
WIDTHS = (24, 40, 80, 112, 160)
STRIDES = (2, 2, 2, 1, 2)
ACTS = ("relu", "relu", "hswish", "hswish", "hswish")
SE = (False, True, False, True, True)

_BLOCK_RE = re.compile(r"^k(\d+)e(\d+)$")


def make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class MobileNetSpace(GeneSpace):
    name = "mobilenet"

    def __init__(self, input_size: int = 224, num_classes: int = 1000, width_mult: float = 1.0):
        self.input_size, self.num_classes, self.width_mult = int(input_size), int(num_classes), float(width_mult)
        if self.input_size < 32 or self.num_classes < 1 or not 0.1 <= self.width_mult <= 4:
            raise InvalidArchError("mobilenet: need input_size >= 32, num_classes >= 1, 0.1 <= width_mult <= 4")

    def config(self):
        return {"input_size": self.input_size, "num_classes": self.num_classes, "width_mult": self.width_mult}

    def input_shape(self):
        return (3, self.input_size, self.input_size)

    def cardinalities(self):
        return (len(DEPTHS),) * N_STAGES + (len(KERNELS), len(EXPANDS)) * (N_STAGES * MAX_DEPTH)

    def size(self) -> int:
        per_stage = sum((len(KERNELS) * len(EXPANDS)) ** d for d in DEPTHS)
        return per_stage**N_STAGES

    @staticmethod
    def _block_slot(stage: int, block: int) -> int:
        return N_STAGES + 2 * (stage * MAX_DEPTH + block)

    def canonical(self, genes):
        genes = list(genes)
        for s in range(N_STAGES):
            depth = DEPTHS[genes[s]]
            for b in range(depth, MAX_DEPTH):
                i = self._block_slot(s, b)
                genes[i] = genes[i + 1] = 0
        return tuple(genes)

    def decode(self, arch: Arch) -> list[list[tuple[int, int]]]:
        """Per stage, the (kernel, expand) of each active block."""
        g = self.check(arch).genes
        stages = []
        for s in range(N_STAGES):
            blocks = []
            for b in range(DEPTHS[g[s]]):
                i = self._block_slot(s, b)
                blocks.append((KERNELS[g[i]], EXPANDS[g[i + 1]]))
            stages.append(blocks)
        return stages

    def to_string(self, arch: Arch) -> str:
        return "/".join(",".join(f"k{k}e{e}" for k, e in blocks) for blocks in self.decode(arch))

    def from_string(self, s: str) -> Arch:
        text = str(s).strip()
        stages = text.split("/")
        if len(stages) != N_STAGES:
            raise InvalidArchError(f"mobilenet: malformed arch string {text!r}: expected {N_STAGES} stages separated by '/'")
        genes = [0] * len(self.cardinalities())
        for si, stage in enumerate(stages):
            blocks = [b.strip() for b in stage.split(",")]
            if len(blocks) not in DEPTHS:
                raise InvalidArchError(f"mobilenet: stage {si + 1} of {text!r} has {len(blocks)} blocks; depth must be one of {DEPTHS}")
            genes[si] = DEPTHS.index(len(blocks))
            for bi, block in enumerate(blocks):
                m = _BLOCK_RE.match(block)
                if not m:
                    raise InvalidArchError(f"mobilenet: bad block {block!r} in {text!r}; expected k<kernel>e<expand>, e.g. k3e4")
                k, e = int(m.group(1)), int(m.group(2))
                if k not in KERNELS or e not in EXPANDS:
                    raise InvalidArchError(f"mobilenet: block {block!r}: kernel must be in {KERNELS}, expand in {EXPANDS}")
                i = self._block_slot(si, bi)
                genes[i], genes[i + 1] = KERNELS.index(k), EXPANDS.index(e)
        return self.make(genes)

    def layers(self, arch: Arch) -> list[dict]:
        """The layers of ``build(arch)`` in execution order, each a dict: ``op`` (``conv``: Conv2d [+ BN] [+ act]
        with ``cin, cout, k, stride, groups, hw`` (input H = W), ``act`` (``relu`` / ``hswish`` / ``""``) and
        ``residual`` (the block output adds the block input); ``se``: squeeze-excite on ``c`` channels with
        ``mid`` hidden, at ``hw``; ``gap``: global pooling of ``c`` x ``hw`` x ``hw``; ``flatten``: of ``c``;
        ``linear``: ``cin`` -> ``cout``) and ``name`` (the module path)."""
        def conv(name, cin, cout, k, stride, groups, hw, act_name, residual=False):
            out.append({"op": "conv", "name": name, "cin": cin, "cout": cout, "k": k, "stride": stride,
                        "groups": groups, "hw": hw, "act": act_name, "residual": residual})
            return (hw + 2 * (k // 2) - k) // stride + 1

        out: list[dict] = []
        hw = self.input_size
        c_stem = make_divisible(16 * self.width_mult)
        hw = conv("stem", 3, c_stem, 3, 2, 1, hw, "hswish")
        blocks = [(c_stem, c_stem, 3, 1, 1, "relu", False)]
        c = c_stem
        for s, stage in enumerate(self.decode(arch)):
            c_out = make_divisible(WIDTHS[s] * self.width_mult)
            for b, (k, e) in enumerate(stage):
                blocks.append((c, c_out, k, e, STRIDES[s] if b == 0 else 1, ACTS[s], SE[s]))
                c = c_out
        for i, (c_in, c_out, k, e, stride, act_name, se) in enumerate(blocks):
            name = f"blocks.{i}"
            mid = make_divisible(c_in * e)
            if e != 1:
                conv(f"{name}.expand", c_in, mid, 1, 1, 1, hw, act_name)
            h2 = conv(f"{name}.depthwise", mid, mid, k, stride, mid, hw, act_name)
            if se:
                out.append({"op": "se", "name": f"{name}.se", "c": mid, "mid": make_divisible(mid // 4), "hw": h2})
            conv(f"{name}.project", mid, c_out, 1, 1, 1, h2, "", residual=stride == 1 and c_in == c_out)
            hw = h2
        c_final, c_mix = make_divisible(960 * self.width_mult), make_divisible(1280 * self.width_mult)
        conv("final_expand", c, c_final, 1, 1, 1, hw, "hswish")
        out.append({"op": "gap", "name": "pool", "c": c_final, "hw": hw})
        conv("feature_mix", c_final, c_mix, 1, 1, 1, 1, "hswish")
        out.append({"op": "flatten", "name": "flatten", "c": c_mix})
        out.append({"op": "linear", "name": "classifier", "cin": c_mix, "cout": self.num_classes})
        return out

    def build(self, arch: Arch):
        from .mobilenet_torch import OFAMobileNetV3

        return OFAMobileNetV3(self.decode(arch), self.width_mult, self.num_classes)
