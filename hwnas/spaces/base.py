"""Shared machinery for search spaces: gene validation, sampling, mutation, crossover, static costs."""

from __future__ import annotations

from itertools import combinations
from typing import Sequence

import numpy as np

from ..contracts import Arch, InvalidArchError, StaticCosts


class GeneSpace:
    """A space whose architectures are integer gene vectors with per-gene cardinalities.

    Subclasses set ``name`` and implement ``cardinalities``, ``to_string``, ``from_string``, ``build`` and
    ``input_shape``; they may override ``canonical`` when some genes are inactive (so that equal networks
    get equal arch ids), and ``simplify`` / ``equivalence_key`` / ``has_path`` when they know which gene
    vectors compute the same function (search operators use these for repair and duplicate elimination).
    """

    name: str = ""
    partial_fill: int = 0  # the value a progressive search (DPP-Net) gives genes it has not chosen yet
    static_costs_fast: bool = False  # True where static_costs of a whole search pool take seconds (auto reads it)

    # -- genes ---------------------------------------------------------------------------------------
    def cardinalities(self) -> Sequence[int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def canonical(self, genes: tuple[int, ...]) -> tuple[int, ...]:
        return genes

    def make(self, genes: Sequence[int]) -> Arch:
        card = self.cardinalities()
        try:
            genes = tuple(int(g) for g in genes)
        except (TypeError, ValueError) as exc:
            raise InvalidArchError(f"{self.name}: genes must be integers, got {list(genes)!r}") from exc
        if len(genes) != len(card):
            raise InvalidArchError(f"{self.name}: expected {len(card)} genes, got {len(genes)}")
        for i, (g, c) in enumerate(zip(genes, card)):
            if not 0 <= g < c:
                raise InvalidArchError(f"{self.name}: gene {i} = {g} is out of range 0..{c - 1}")
        return Arch(self.name, self.canonical(genes))

    def size(self) -> int:
        return int(np.prod([int(c) for c in self.cardinalities()], dtype=object))

    def sample(self, rng: np.random.Generator) -> Arch:
        return self.make([int(rng.integers(c)) for c in self.cardinalities()])

    def sample_distinct(self, n: int, rng: np.random.Generator, exclude=(), max_tries: int | None = None) -> list[Arch]:
        """Up to ``n`` archs drawn with ``rng``, all distinct and none whose arch id is in ``exclude``; fewer only
        when ``max_tries`` draws (default 50 n + 100) did not find enough (a nearly exhausted space)."""
        seen, out = set(exclude), []
        limit = max_tries if max_tries is not None else 50 * n + 100
        for _ in range(limit):
            if len(out) >= n:
                break
            a = self.sample(rng)
            if a.arch_id not in seen:
                seen.add(a.arch_id)
                out.append(a)
        return out

    def mutate(self, arch: Arch, rng: np.random.Generator, rate: float | None = None) -> Arch:
        """Resample each gene with probability ``rate`` (default 1/n); always change at least one gene,
        and always return a different architecture when the space has more than one."""
        card = self.cardinalities()
        n = len(card)
        rate = 1.0 / n if rate is None else rate
        mutable = [i for i, c in enumerate(card) if c > 1]
        if not mutable:
            return arch
        for _ in range(100):
            genes = list(arch.genes)
            picks = [i for i in mutable if rng.random() < rate] or [int(rng.choice(mutable))]
            for i in picks:
                choices = [v for v in range(card[i]) if v != genes[i]]
                genes[i] = int(rng.choice(choices))
            child = self.make(genes)
            if child != arch:
                return child
        return child

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """Uniform crossover of the gene vectors."""
        mask = rng.random(len(a.genes)) < 0.5
        return self.make([ga if m else gb for ga, gb, m in zip(a.genes, b.genes, mask)])

    def check(self, arch: Arch) -> Arch:
        if arch.space != self.name:
            raise InvalidArchError(f"arch belongs to space {arch.space!r}, not {self.name!r}")
        return self.make(arch.genes)

    # -- space knowledge (generic defaults; a space that knows more overrides them) ----------------------
    def simplify(self, arch: Arch) -> Arch:
        """The cheapest arch computing the same function (default: ``arch`` itself)."""
        return arch

    def equivalence_key(self, arch: Arch) -> str:
        """Equal for functionally identical archs (default: each canonical gene vector is its own class)."""
        return arch.arch_id

    def has_path(self, arch: Arch) -> bool:
        """True when the network's input reaches its output (default: always)."""
        return True

    def encode(self, archs: Sequence[Arch]) -> np.ndarray:
        """Numeric features of ``archs`` for surrogate models (one row per arch): one-hot genes and one-hot gene
        pairs of the simplified arch, so functionally identical archs share a row. A space that knows its graph
        gives graph features instead (nb201)."""
        genes = np.array([self.simplify(a).genes for a in archs], dtype=int).reshape(len(archs), -1)
        return one_hot(genes, self.cardinalities(), pairwise=True)

    # -- building --------------------------------------------------------------------------------------
    def input_shape(self) -> tuple[int, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def static_costs(self, arch: Arch) -> StaticCosts:
        return count_costs(self.build(arch), self.input_shape())

    def config(self) -> dict:
        """The settings that change the built network (part of export cache keys)."""
        return {}


def one_hot(genes: np.ndarray, cards: Sequence[int], pairwise: bool = False) -> np.ndarray:
    """One-hot columns of each gene (``cards[i]`` columns for gene i); rows are gene vectors. ``pairwise``: also
    one-hot pairs of genes (every pair of positions, every pair of values)."""
    genes = np.asarray(genes, dtype=int).reshape(-1, len(cards))
    cols = [np.eye(int(c))[genes[:, i]] for i, c in enumerate(cards)]
    if pairwise:
        for i, j in combinations(range(len(cards)), 2):
            cols.append(np.eye(int(cards[i]) * int(cards[j]))[genes[:, i] * int(cards[j]) + genes[:, j]])
    return np.hstack(cols) if cols else np.zeros((len(genes), 0))


def count_costs(model, input_shape: tuple[int, ...]) -> StaticCosts:
    """Count params and multiply-accumulates from a real forward pass with hooks on every leaf module.

    MACs: convolutions (per output element: in_channels/groups * kh * kw) and linear layers. Peak activation
    memory: the largest input+output footprint of any leaf module plus the tensors it must keep alive is
    hard to know without a schedule, so we report the largest (input + output) bytes of a single leaf op,
    which is the lower bound runtimes such as TFLite's arena planner approach for chain-like networks.
    """
    import torch

    macs = 0
    peak = 0

    def hook(module, inputs, output):
        nonlocal macs, peak
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            macs += output.numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, torch.nn.Linear):
            macs += output.numel() * module.in_features
        in_bytes = sum(t.numel() * 4 for t in inputs if isinstance(t, torch.Tensor))
        out_bytes = output.numel() * 4 if isinstance(output, torch.Tensor) else 0
        peak = max(peak, in_bytes + out_bytes)

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
    params = sum(p.numel() for p in model.parameters())
    return StaticCosts(params=int(params), macs=int(macs), peak_activation_bytes=int(peak))
