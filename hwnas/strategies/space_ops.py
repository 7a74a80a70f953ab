"""Space knowledge that search operators use: equivalent architectures and their cheapest representative.

Two gene vectors can build the same function. In NAS-Bench-201 an edge whose input is never reached from the
cell input, or whose output never reaches the cell output, computes nothing that matters; and sums are
commutative, so cells that differ only in the order of their terms are isomorphic (the benchmark's own
``to_unique_str(consider_zero=True)`` identifies 6,466 classes among the 15,625 cells).

- ``simplify(space, arch)``: the same function with dead edges set to ``none`` (never costlier: the dead ops
  are gone). Used as a repair, so searches do not spend evaluations on dead computation.
- ``equivalence_key(space, arch)``: equal for functionally identical archs. Used for duplicate elimination,
  so the budget is not spent twice on one function.

Spaces without an entry here use the identity (each canonical gene vector is its own class).
"""

from __future__ import annotations

from ..contracts import Arch

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


def _nb201_simplify(space, arch: Arch) -> Arch:
    g = list(arch.genes)
    live = [op != 0 for op in g]
    reach = {0}  # nodes reachable from the input
    for k, (dst, src) in enumerate(NB201_EDGES):
        if live[k] and src in reach:
            reach.add(dst)
    co = {3}  # nodes from which the output is reachable
    for k in reversed(range(len(NB201_EDGES))):
        dst, src = NB201_EDGES[k]
        if live[k] and dst in co:
            co.add(src)
    for k, (dst, src) in enumerate(NB201_EDGES):
        if not (live[k] and src in reach and dst in co):
            g[k] = 0
    return space.make(g)


def _nb201_key(space, arch: Arch) -> str:
    """NAS-Bench-201's ``to_unique_str(consider_zero=True)``."""
    g = arch.genes
    nodes = {0: "0"}
    for node in (1, 2, 3):
        terms = []
        for k, (dst, src) in enumerate(NB201_EDGES):
            if dst != node:
                continue
            op = NB201_OPS[g[k]]
            if op == "none" or nodes[src] == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(nodes[src])
            else:
                terms.append(f"({nodes[src]})@{op}")
        nodes[node] = "+".join(sorted(terms))
    return f"nb201:{nodes[3]}"


_SIMPLIFY = {"nb201": _nb201_simplify}
_KEY = {"nb201": _nb201_key}


def simplify(space, arch: Arch) -> Arch:
    fn = _SIMPLIFY.get(space.name)
    return fn(space, arch) if fn else arch


def equivalence_key(space, arch: Arch) -> str:
    fn = _KEY.get(space.name)
    return fn(space, arch) if fn else arch.arch_id
