"""Single-path one-shot supernet of the NAS-Bench-201 cell space (SPOS, Guo et al. 2020; RSPS, Li & Talwalkar 2019).

Every cell edge holds one module per op with its own weights, shared by all architectures that pick that op on
that edge (``none``, ``skip_connect`` and ``avg_pool_3x3`` have no weights). The stem, the two residual
reductions, the last batch norm and the classifier are shared by every path. A training step samples one
architecture uniformly (all 15,625 cells, as in RSPS) and trains that path only. A subnet is exported as the
space's own ``TinyNetwork`` with the shared weights of its ops copied in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...spaces.nb201 import EDGES, OPS
from ...spaces.nb201_torch import ResNetBasicBlock, make_op

_EDGE_INDEX = {f"{dst}_{src}": k for k, (dst, src) in enumerate(EDGES)}


def blank_subnet(space, arch) -> nn.Module:
    """The space's standalone network for ``arch`` with uninitialised tensors (every one is overwritten next)."""
    with torch.device("meta"):
        sub = space.build(arch)
    return sub.to_empty(device="cpu")


class SuperCell(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.edges = nn.ModuleDict()
        for dst, src in EDGES:
            ops = nn.ModuleDict()
            for name in OPS:
                op = make_op(name, c)
                if op is not None:
                    ops[name] = op
            self.edges[f"{dst}_{src}"] = ops

    def forward(self, x, genes):
        nodes = [x]
        for dst in (1, 2, 3):
            out = None
            for k, (d, src) in enumerate(EDGES):
                name = OPS[genes[k]]
                if d != dst or name == "none":
                    continue
                y = self.edges[f"{d}_{src}"][name](nodes[src])
                out = y if out is None else out + y
            nodes.append(torch.zeros_like(x) if out is None else out)
        return nodes[3]


class NB201Supernet(nn.Module):
    """Weight-sharing TinyNetwork: same skeleton and parameter names as the space's network, plus the op name."""

    def __init__(self, space):
        super().__init__()
        self.space = space
        C, N = space.C, space.N
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        c = C
        for stage in range(3):
            if stage > 0:
                layers.append(ResNetBasicBlock(c, 2 * c, 2))
                c *= 2
            layers.extend(SuperCell(c) for _ in range(N))
        self.cells = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, space.num_classes)

    def forward(self, x, arch):
        genes = self.space.check(arch).genes
        x = self.stem(x)
        for m in self.cells:
            x = m(x, genes) if isinstance(m, SuperCell) else m(x)
        x = self.global_pooling(self.lastact(x)).flatten(1)
        return self.classifier(x)

    def train_loss(self, x, y, rng, recipe):
        """SPOS / RSPS: one uniformly sampled path per step, cross-entropy on the labels."""
        return F.cross_entropy(self(x, self.space.sample(rng)), y)

    def extract(self, arch) -> nn.Module:
        """The space's standalone network for ``arch`` with this supernet's weights (a copy, eval mode)."""
        genes = self.space.check(arch).genes
        sub = blank_subnet(self.space, arch)
        own = self.state_dict()
        state = {}
        for key in sub.state_dict():
            parts = key.split(".")
            if len(parts) > 3 and parts[2] == "edges":  # cells.<i>.edges.<dst_src>.<rest> -> insert the op name
                op = OPS[genes[_EDGE_INDEX[parts[3]]]]
                state[key] = own[".".join(parts[:4] + [op] + parts[4:])]
            else:
                state[key] = own[key]
        sub.load_state_dict({k: v.detach().clone() for k, v in state.items()}, strict=True)
        return sub.eval()
