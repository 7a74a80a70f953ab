"""Features of architectures for the latency predictors, with a versioned schema.

Every predictor turns archs into numbers through one ``Featurizer`` of the arch's search space. A saved
predictor records the featurizer's ``schema()`` (space, space settings, featurizer version, a hash of the
feature names); loading it under a featurizer that computes different features fails clearly.

Three views of an architecture:

- ``tokens``: the per-operator view used by the lookup table: one token per (position, op), e.g. ``e3:nor_conv_3x3``
  for nb201 edge 3, or ``g12=2`` for gene 12 of a generic gene space.
- ``kernels``: the nn-Meter-style view: the kernels a runtime executes (fused ReLU-Conv-BN, AvgPool, Add, ...)
  each with its configuration (channels, spatial size, kernel size), summed per kernel type as
  ``<type>:count``, ``<type>:mmacs`` and ``<type>:mbytes`` (output tensor size). Two executed-graph
  hypotheses exist for nb201: ``pruned`` (exporters / converters drop ops on edges that are not on an
  input-to-output path and 'none' edges) and ``full`` (the benchmark's reference PyTorch code runs every op,
  'none' included as a multiply by zero). The kernel predictor picks between them by cross-validation.
- ``arch``: a flat vector for learned models: per-edge one-hot, op counts, live-op counts, the kernel sums of
  both graph hypotheses, and static costs (MACs, params) from the space's own counting.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from typing import Sequence

import numpy as np

from ..contracts import Arch
from ..errors import ParametersError

FEATURIZER_VERSION = 1


class FeatureError(ParametersError):
    """The archs cannot be featurized (wrong space, unsupported view); parameters it names are in backticks."""


def _names_hash(names: Sequence[str]) -> str:
    return hashlib.sha1("\n".join(names).encode()).hexdigest()[:16]


class Featurizer:
    """Generic gene-space featurizer: gene one-hot tokens; no kernel view."""

    supports_kernels = False

    def __init__(self, space):
        self.space = space

    # -- schema ----------------------------------------------------------------------------------------
    def schema(self) -> dict:
        names = self.arch_feature_names()
        return {"featurizer": type(self).__name__, "version": FEATURIZER_VERSION, "space": self.space.name,
                "space_config": self.space.config(), "n_arch_features": len(names),
                "arch_features_hash": _names_hash(names)}

    def check(self, archs: Sequence[Arch]) -> list[Arch]:
        archs = list(archs)
        for a in archs:
            if not isinstance(a, Arch):
                raise FeatureError(f"expected Arch objects, got {type(a).__name__}")
            if a.space != self.space.name:
                raise FeatureError(f"arch {a.arch_id} belongs to space {a.space!r}, this predictor to "
                                   f"{self.space.name!r}")
        return archs

    # -- views -------------------------------------------------------------------------------------------
    def token_names(self) -> list[str]:
        return [f"g{i}={v}" for i, c in enumerate(self.space.cardinalities()) for v in range(int(c))]

    def tokens(self, archs: Sequence[Arch]) -> np.ndarray:
        """(n, n_tokens) counts of (position, op) tokens."""
        archs = self.check(archs)
        card = [int(c) for c in self.space.cardinalities()]
        offsets = np.concatenate([[0], np.cumsum(card)[:-1]])
        out = np.zeros((len(archs), sum(card)))
        for r, a in enumerate(archs):
            out[r, offsets + np.asarray(a.genes)] = 1.0
        return out

    def kernel_names(self, graph: str) -> list[str]:
        raise FeatureError(f"the kernel view is not implemented for space {self.space.name!r}; "
                           "use `kind` lut or arch")

    def kernels(self, archs: Sequence[Arch], graph: str) -> np.ndarray:
        raise FeatureError(f"the kernel view is not implemented for space {self.space.name!r}; "
                           "use `kind` lut or arch")

    def arch_feature_names(self) -> list[str]:
        return self.token_names()

    def arch_features(self, archs: Sequence[Arch]) -> np.ndarray:
        return self.tokens(archs)


# --------------------------------------------------------------------------------------------------------
# NAS-Bench-201
# --------------------------------------------------------------------------------------------------------
from ..spaces.nb201 import NB201Space  # noqa: E402

OPS, EDGES = NB201Space.OPS, NB201Space.EDGES

KERNEL_TYPES = ("relu", "conv1x1_bn", "conv3x3_bn", "avgpool3x3", "identity", "zero", "add", "fill_zeros")
GRAPHS = ("pruned", "full")
_NODE_EDGES = ((0,), (1, 2), (3, 4, 5))  # edge indices entering nodes 1, 2, 3
# the kernel an executed edge runs; a conv edge also needs the ReLU of its source node
_EDGE_KERNEL = {"none": "zero", "skip_connect": "identity", "nor_conv_1x1": "conv1x1_bn",
                "nor_conv_3x3": "conv3x3_bn", "avg_pool_3x3": "avgpool3x3"}
_CONV_OPS = {"nor_conv_1x1", "nor_conv_3x3"}


@lru_cache(maxsize=65536)
def cell_kernels(genes: tuple[int, ...], graph: str) -> tuple[tuple[str, int], ...]:
    """The kernels one nb201 cell executes under a graph hypothesis: (type, multiplicity) pairs.

    Per executed edge: skip -> identity, 1x1 / 3x3 conv -> one fused Conv+BN kernel (the ReLU in front of it
    runs once per distinct source node: runtimes share it between edges reading the same node), avg pool ->
    avgpool3x3, 'none' -> zero (only in the ``full`` graph). Each node with m executed inputs adds m-1 Add
    kernels; a node with none is filled with zeros (``fill_zeros``) when something reads it.
    """
    if graph not in GRAPHS:
        raise FeatureError(f"unknown executed-graph hypothesis {graph!r}; known: {', '.join(GRAPHS)}")
    if graph == "pruned":
        run = NB201Space.live_edges(genes)
    else:
        run = tuple(True for _ in genes)
    counts: dict[str, int] = {}

    def add(t, m=1):
        counts[t] = counts.get(t, 0) + m

    relu_sources = set()
    for k, g in enumerate(genes):
        if run[k] and OPS[g] in _EDGE_KERNEL:
            add(_EDGE_KERNEL[OPS[g]])
            if OPS[g] in _CONV_OPS:
                relu_sources.add(EDGES[k][1])
    if relu_sources:
        add("relu", len(relu_sources))
    for node_edges in _NODE_EDGES:
        m = sum(1 for k in node_edges if run[k])
        if m > 1:
            add("add", m - 1)
        elif m == 0 and (graph == "full" or node_edges == _NODE_EDGES[-1]):
            add("fill_zeros")
    return tuple(sorted(counts.items()))


_ROW_MEMO: dict = {}  # (view, version, space, settings) -> {genes: feature row}; NB201Featurizer._memo_rows
_ROW_MEMO_MAX = 100_000


class NB201Featurizer(Featurizer):
    supports_kernels = True

    def _stages(self):
        """(channels, spatial size, cells) of each of the three stages of TinyNetwork."""
        sp = self.space
        return [(sp.C * 2 ** s, max(1, sp.input_size // 2 ** s), sp.N) for s in range(3)]

    def token_names(self) -> list[str]:
        return [f"e{k}:{op}" for k in range(len(EDGES)) for op in OPS]

    def kernel_names(self, graph: str = "pruned") -> list[str]:
        if graph not in GRAPHS:
            raise FeatureError(f"unknown executed-graph hypothesis {graph!r}; known: {', '.join(GRAPHS)}")
        return [f"{t}:{q}" for t in KERNEL_TYPES for q in ("count", "mmacs", "mbytes")]

    def _kernel_config_sums(self, ktype: str) -> tuple[float, float, float]:
        """(cells, MMACs, output MB) of one kernel of this type in one cell, summed over every cell."""
        cells = macs = nbytes = 0.0
        for c, hw, n in self._stages():
            out = c * hw * hw
            k = {"conv1x1_bn": 1, "conv3x3_bn": 3}.get(ktype)
            m = out * c * k * k if k else (out * 9 if ktype == "avgpool3x3" else 0)
            cells += n
            macs += n * m / 1e6
            nbytes += n * out * 4 / 1e6
        return cells, macs, nbytes

    def _memo_rows(self, view: str, archs: list, compute) -> np.ndarray:
        """Rows of feature view ``view`` for ``archs``, each computed once per process and space setting (a
        feature row is a pure function of the arch and the space's settings): cross-validation asks for the same
        rows once per fold and candidate (17 times for one ``auto`` fit)."""
        key = (view, FEATURIZER_VERSION, self.space.name, json.dumps(self.space.config(), sort_keys=True))
        if not archs:
            return compute([])
        memo = _ROW_MEMO.setdefault(key, {})  # keyed by genes: the space is in ``key``
        todo = list({a.genes: a for a in archs if a.genes not in memo}.values())
        if todo:
            if len(memo) + len(todo) > _ROW_MEMO_MAX:
                memo.clear()
                todo = list({a.genes: a for a in archs}.values())
            for a, row in zip(todo, compute(todo)):
                memo[a.genes] = row
        return np.array([memo[a.genes] for a in archs]).reshape(len(archs), -1)

    def kernels(self, archs: Sequence[Arch], graph: str = "pruned") -> np.ndarray:
        """(n, 3 * n_kernel_types): per kernel type, its count, MMACs and output MB over the whole network."""
        archs = self.check(archs)
        names = self.kernel_names(graph)
        return self._memo_rows(f"kernels:{graph}", archs, lambda todo: self._kernels(todo, graph, names))

    def _kernels(self, archs, graph, names) -> np.ndarray:
        col = {n: i for i, n in enumerate(names)}
        per_type = {t: self._kernel_config_sums(t) for t in KERNEL_TYPES}
        out = np.zeros((len(archs), len(names)))
        for r, a in enumerate(archs):
            for t, m in cell_kernels(a.genes, graph):
                cells, macs, nbytes = per_type[t]
                out[r, col[f"{t}:count"]] += m * cells
                out[r, col[f"{t}:mmacs"]] += m * macs
                out[r, col[f"{t}:mbytes"]] += m * nbytes
        return out

    def arch_feature_names(self) -> list[str]:
        names = [f"onehot:{t}" for t in self.token_names()]
        names += [f"count:{op}" for op in OPS] + [f"live:{op}" for op in OPS]
        names += [f"fanin{i + 1}" for i in range(3)] + [f"live_fanin{i + 1}" for i in range(3)]
        for graph in GRAPHS:
            names += [f"{graph}:{t}:count" for t in KERNEL_TYPES]
        names += ["static:mmacs", "static:mparams"]
        return names

    def arch_features(self, archs: Sequence[Arch]) -> np.ndarray:
        archs = self.check(archs)
        return self._memo_rows("arch", archs, self._arch_features)

    def _arch_features(self, archs) -> np.ndarray:
        G = np.array([a.genes for a in archs], dtype=np.int64).reshape(len(archs), len(EDGES))
        L = np.array([NB201Space.live_edges(tuple(g)) for g in G], dtype=bool).reshape(G.shape)
        parts = [self.tokens(archs)]
        parts.append(np.stack([(G == o).sum(1) for o in range(len(OPS))], 1))
        parts.append(np.stack([((G == o) & L).sum(1) for o in range(len(OPS))], 1))
        parts.append(np.stack([(G[:, list(e)] != 0).sum(1) for e in _NODE_EDGES], 1))
        parts.append(np.stack([L[:, list(e)].sum(1) for e in _NODE_EDGES], 1))
        for graph in GRAPHS:
            block = np.zeros((len(archs), len(KERNEL_TYPES)))
            for r, g in enumerate(G):
                for t, m in cell_kernels(tuple(int(x) for x in g), graph):
                    block[r, KERNEL_TYPES.index(t)] = m
            parts.append(block)
        parts.append(static_cost_features(self.space, archs))
        return np.hstack([np.asarray(p, dtype=float) for p in parts])

    def tokens(self, archs: Sequence[Arch]) -> np.ndarray:
        archs = self.check(archs)
        out = np.zeros((len(archs), len(EDGES) * len(OPS)))
        for r, a in enumerate(archs):
            for k, g in enumerate(a.genes):
                out[r, k * len(OPS) + g] = 1.0
        return out


# -- static costs --------------------------------------------------------------------------------------------
def _static_cache_path(space):
    from ..paths import hwnas_home

    key = hashlib.sha1(json.dumps({"space": space.name, **space.config()}, sort_keys=True).encode()).hexdigest()[:16]
    return hwnas_home() / "cache" / "static_costs" / f"{space.name}-{key}.json"


_STATIC_MEMO: dict = {}


def nb201_static_table(space) -> dict:
    """Per-(edge, op) params and MACs of nb201, from the space's own counting (``static_costs``).

    Counting one arch builds the torch network and runs it (about a second here), far too slow for 15,625
    archs. In nb201 every op's params and MACs are independent of the other edges, so the costs are additive:
    base (all edges 'none') + one delta per (edge, op). The table is built from 1 + 24 counted archs, checked
    exactly against two more counted archs, and cached in ``$HWNAS_HOME/cache/static_costs/``.
    """
    mem_key = (space.name, json.dumps(space.config(), sort_keys=True))
    if mem_key in _STATIC_MEMO:
        return _STATIC_MEMO[mem_key]
    path = _static_cache_path(space)
    if path.is_file():
        try:
            table = json.loads(path.read_text())
            if table.get("version") == FEATURIZER_VERSION:
                _STATIC_MEMO[mem_key] = table
                return table
        except (OSError, ValueError):
            pass
    base_genes = [0] * len(EDGES)
    base = space.static_costs(space.make(base_genes))
    delta = {}
    for k in range(len(EDGES)):
        for o in range(1, len(OPS)):
            g = list(base_genes)
            g[k] = o
            c = space.static_costs(space.make(g))
            delta[f"{k}:{o}"] = [c.params - base.params, c.macs - base.macs]
    table = {"version": FEATURIZER_VERSION, "base": [base.params, base.macs], "delta": delta}
    for check in ((3, 2, 4, 1, 3, 2), (2, 3, 3, 4, 1, 3)):
        want = space.static_costs(space.make(check))
        got = _static_from_table(table, check)
        if (want.params, want.macs) != got:
            raise FeatureError(f"nb201 static costs are not additive for {check}: counted {want}, table {got}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(table))
        tmp.replace(path)
    except OSError:
        pass  # a read-only home only costs the recount
    _STATIC_MEMO[mem_key] = table
    return table


def _static_from_table(table: dict, genes) -> tuple[int, int]:
    params, macs = table["base"]
    for k, o in enumerate(genes):
        if o:
            dp, dm = table["delta"][f"{k}:{int(o)}"]
            params += dp
            macs += dm
    return int(params), int(macs)


def static_cost_features(space, archs: Sequence[Arch]) -> np.ndarray:
    table = nb201_static_table(space)
    out = np.zeros((len(archs), 2))
    for r, a in enumerate(archs):
        p, m = _static_from_table(table, a.genes)
        out[r] = (m / 1e6, p / 1e6)
    return out


FEATURIZERS = {"nb201": NB201Featurizer}


def featurizer_for(space) -> Featurizer:
    return FEATURIZERS.get(space.name, Featurizer)(space)


__all__ = ["Featurizer", "NB201Featurizer", "FeatureError", "featurizer_for", "cell_kernels",
           "KERNEL_TYPES", "GRAPHS", "FEATURIZER_VERSION", "nb201_static_table"]
