"""The NAS-Bench-201 cell search space (Dong & Yang, ICLR 2020), exactly as in the public benchmark.

A cell is a 4-node DAG; each of its 6 edges j->i (j < i) carries one of 5 ops. Genes are the 6 op indices in
arch-string order: (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2); op indices follow the benchmark's op
list ``none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3``.

Benchmark index: NAS-Bench-201 / NATS-Bench / HW-NAS-Bench number the 15,625 cells in the order of the
benchmark's ``meta_archs`` list, a fixed permutation of the lexicographic order. ``nb201_order.npy`` holds
that permutation (entry i = lexicographic code of benchmark index i, code = genes read as a base-5 number);
it was generated from the arch column of NATS-Bench's CIFAR-10 table and is verified by
``benchmarks/verify_nb201_index.py`` against ../shared/data/nb201 and by a checksum test.

Network skeleton as in the benchmark's TinyNetwork: 3x3 conv stem + BN, N cells at C channels, a residual
reduction block to 2C, N cells, a reduction block to 4C, N cells, BN + ReLU, global pooling, linear classifier.
Defaults C=16, N=5, 32x32x3 input, 10 classes.
"""

from __future__ import annotations

import re
from functools import cached_property
from importlib import resources

import numpy as np

from ..contracts import Arch, InvalidArchError, StaticCosts
from .base import GeneSpace, one_hot

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from) in arch-string order
N_CELLS = 5 ** 6

_NODE_RE = re.compile(r"^([a-z_0-9]+)~(\d+)$")


def _load_order() -> np.ndarray:
    with resources.files(__package__).joinpath("nb201_order.npy").open("rb") as fh:
        order = np.load(fh, allow_pickle=False)
    if order.shape != (N_CELLS,) or len(np.unique(order)) != N_CELLS:
        raise RuntimeError("nb201_order.npy is corrupt: reinstall hwnas")
    return order.astype(np.int64)


class NB201Space(GeneSpace):
    name = "nb201"
    OPS = OPS
    EDGES = EDGES
    partial_fill = OPS.index("skip_connect")  # a progressive search's unchosen edge passes its input through
    static_costs_fast = True  # static_costs: one count per multiset of ops (a pool of every cell in seconds)

    def __init__(self, C: int = 16, N: int = 5, input_size: int = 32, num_classes: int = 10):
        self.C, self.N, self.input_size, self.num_classes = int(C), int(N), int(input_size), int(num_classes)
        if self.C < 1 or self.N < 0 or self.input_size < 4 or self.input_size % 4 or self.num_classes < 1:
            # the two residual reductions pool 2x2 beside a stride-2 conv: sizes must halve exactly twice
            raise InvalidArchError("nb201: need C >= 1, N >= 0, input_size a multiple of 4 (>= 4), num_classes >= 1")

    def cardinalities(self):
        return (len(OPS),) * len(EDGES)

    def input_shape(self):
        return (3, self.input_size, self.input_size)

    def config(self):
        return {"C": self.C, "N": self.N, "input_size": self.input_size, "num_classes": self.num_classes}

    # -- benchmark index ----------------------------------------------------------------------------------
    @cached_property
    def _order(self) -> np.ndarray:
        return _load_order()

    @cached_property
    def _rank(self) -> np.ndarray:
        rank = np.empty(N_CELLS, dtype=np.int64)
        rank[self._order] = np.arange(N_CELLS)
        return rank

    @staticmethod
    def _code(genes) -> int:
        code = 0
        for g in genes:
            code = code * 5 + int(g)
        return code

    def index(self, arch: Arch) -> int:
        """The NAS-Bench-201 benchmark index of ``arch`` (0..15624)."""
        return int(self._rank[self._code(self.check(arch).genes)])

    def from_index(self, index: int) -> Arch:
        if not 0 <= int(index) < N_CELLS:
            raise InvalidArchError(f"nb201: index {index} is out of range 0..{N_CELLS - 1}")
        code = int(self._order[int(index)])
        genes = []
        for _ in EDGES:
            genes.append(code % 5)
            code //= 5
        return self.make(genes[::-1])

    def all_archs(self) -> list[Arch]:
        """All 15,625 cells in benchmark index order."""
        return [self.from_index(i) for i in range(N_CELLS)]

    # -- strings ---------------------------------------------------------------------------------------
    def to_string(self, arch: Arch) -> str:
        g = self.check(arch).genes
        ops = [f"{OPS[g[k]]}~{src}" for k, (_, src) in enumerate(EDGES)]
        return "|" + "|+|".join(["|".join(ops[0:1]), "|".join(ops[1:3]), "|".join(ops[3:6])]) + "|"

    def from_string(self, s: str) -> Arch:
        text = str(s).strip()
        nodes = text.split("+")
        if len(nodes) != 3:
            raise InvalidArchError(f"nb201: malformed arch string {text!r}: expected 3 nodes separated by '+'")
        genes = []
        for node_i, node in enumerate(nodes, start=1):
            if not (node.startswith("|") and node.endswith("|")) or len(node) < 2:
                raise InvalidArchError(f"nb201: malformed arch string {text!r}: node {node_i} must be |op~j|...|")
            parts = node[1:-1].split("|")
            if len(parts) != node_i:
                raise InvalidArchError(f"nb201: malformed arch string {text!r}: node {node_i} needs {node_i} inputs")
            for j, part in enumerate(parts):
                m = _NODE_RE.match(part)
                if not m:
                    raise InvalidArchError(f"nb201: malformed arch string {text!r}: bad edge {part!r}")
                op, src = m.group(1), int(m.group(2))
                if op not in OPS:
                    raise InvalidArchError(f"nb201: unknown op {op!r} in {text!r}; known: {', '.join(OPS)}")
                if src != j:
                    raise InvalidArchError(f"nb201: edge {part!r} of node {node_i} must come from node {j}")
                genes.append(OPS.index(op))
        return self.make(genes)

    # -- building ----------------------------------------------------------------------------------------
    def build(self, arch: Arch):
        from . import nb201_torch

        return nb201_torch.TinyNetwork(self.check(arch).genes, self.C, self.N, self.num_classes)

    def static_costs(self, arch: Arch):
        """Counted from built graphs, five of them per space setting: every edge of a cell maps C channels to C at
        the same resolution and the cells of a stage share the genes, so an edge holding op ``o`` adds the same
        params and MACs wherever it sits, and the largest single-op footprint is the largest over the ops present.
        The graph with all six edges ``o`` is counted once per op: params and MACs of an arch are those of the
        all-``none`` graph plus, per edge, a sixth of (all-``o`` - all-``none``); its footprint the largest of
        the all-``o`` graphs of its ops (a search pool of all 15,625 cells costs five forward passes). Tested
        equal to counting each arch's own graph."""
        genes = self.check(arch).genes
        key = tuple(sorted(genes))
        memo = self.__dict__.setdefault("_static_costs", {})
        if key not in memo:
            uniform = self.__dict__.setdefault("_uniform_costs", {})
            for g in set(key) | {0}:
                if g not in uniform:
                    uniform[g] = super().static_costs(self.make([g] * len(genes)))
            none, n_edges = uniform[0], len(genes)
            params, macs = none.params, none.macs
            for g in key:
                d_params, d_macs = uniform[g].params - none.params, uniform[g].macs - none.macs
                if d_params % n_edges or d_macs % n_edges:  # an op whose cost depends on its edge: count the graph
                    memo[key] = super().static_costs(self.make(list(key)))
                    return memo[key]
                params, macs = params + d_params // n_edges, macs + d_macs // n_edges
            peak = max(uniform[g].peak_activation_bytes for g in set(key))
            memo[key] = StaticCosts(params=params, macs=macs, peak_activation_bytes=peak)
        return memo[key]

    # -- cell structure: which edges compute something, and which cells compute the same function ---------------
    @staticmethod
    def live_edges(genes) -> tuple[bool, ...]:
        """Per edge: True when it carries an op on some input-to-output path of non-'none' edges. An edge whose
        input is never reached from the cell input, or whose output never reaches the cell output, is dead."""
        fwd = {0}  # nodes reachable from the input
        for k, (dst, src) in enumerate(EDGES):
            if genes[k] != 0 and src in fwd:
                fwd.add(dst)
        bwd = {3}  # nodes from which the output is reachable
        for k in reversed(range(len(EDGES))):
            dst, src = EDGES[k]
            if genes[k] != 0 and dst in bwd:
                bwd.add(src)
        return tuple(bool(genes[k] != 0 and EDGES[k][1] in fwd and EDGES[k][0] in bwd) for k in range(len(EDGES)))

    def has_path(self, arch: Arch) -> bool:
        """True when some path of non-'none' edges joins the cell input to its output."""
        return any(self.live_edges(self.check(arch).genes))

    def simplify(self, arch: Arch) -> Arch:
        """The same function with dead edges set to 'none' (never costlier: the dead ops are gone)."""
        live = self.live_edges(arch.genes)
        return self.make([g if on else 0 for g, on in zip(arch.genes, live)])

    def encode(self, archs) -> np.ndarray:
        """Surrogate features of the simplified cells (dead edges removed): ``cell_graph_features`` beside the
        one-hot genes. Graph features let a linear model share strength between cells of similar depth and
        op mix, which one-hot genes alone do not (see docs/search.md, mobo)."""
        genes = np.array([self.simplify(a).genes for a in archs], dtype=int).reshape(len(archs), len(EDGES))
        return np.hstack([cell_graph_features(genes), one_hot(genes, self.cardinalities())])

    def equivalence_key(self, arch: Arch) -> str:
        """Equal for functionally identical cells: NAS-Bench-201's ``to_unique_str(consider_zero=True)`` (dead
        inputs are zero, sums are commutative; 6,466 classes among the 15,625 cells)."""
        g = arch.genes
        nodes = {0: "0"}
        for node in (1, 2, 3):
            terms = []
            for k, (dst, src) in enumerate(EDGES):
                if dst != node:
                    continue
                op = OPS[g[k]]
                if op == "none" or nodes[src] == "#":
                    terms.append("#")
                elif op == "skip_connect":
                    terms.append(nodes[src])
                else:
                    terms.append(f"({nodes[src]})@{op}")
            nodes[node] = "+".join(sorted(terms))
        return f"nb201:{nodes[3]}"


# the four input-to-output paths of the cell, as edge indices: 0->3, 0->1->3, 0->2->3, 0->1->2->3
PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))


def cell_graph_features(genes: np.ndarray) -> np.ndarray:
    """Per cell (rows of op indices, dead edges already 'none'): the number of each op, the most and fewest
    convolutions on a live input-to-output path, the most 3x3 convolutions on one, the number of live paths,
    whether a path without a convolution exists, and three products (1x1 x 3x3 count, 3x3 count squared,
    deepest path squared) that let a linear model bend."""
    g = np.asarray(genes, dtype=int).reshape(-1, len(EDGES))
    counts = np.column_stack([(g == k).sum(1) for k in range(1, len(OPS))])
    conv = np.isin(g, (OPS.index("nor_conv_1x1"), OPS.index("nor_conv_3x3")))
    conv3 = g == OPS.index("nor_conv_3x3")
    live = np.column_stack([np.all(g[:, list(p)] != 0, axis=1) for p in PATHS])
    depth = np.column_stack([conv[:, list(p)].sum(1) for p in PATHS])
    depth3 = np.column_stack([conv3[:, list(p)].sum(1) for p in PATHS])
    deepest = np.where(live, depth, -1).max(1)
    deepest3 = np.where(live, depth3, -1).max(1)
    shallowest = np.where(live, depth, len(EDGES)).min(1)
    conv_free = (live & (depth == 0)).any(1)
    n1, n3 = counts[:, OPS.index("nor_conv_1x1") - 1], counts[:, OPS.index("nor_conv_3x3") - 1]
    return np.column_stack([counts, deepest, deepest3, shallowest, live.sum(1), conv_free,
                            n1 * n3, n3 ** 2, deepest ** 2]).astype(float)

