"""The search contract: Evaluator in, SearchResult out. Every strategy (nsga2, random, evolution, monas,
dppnet) implements ``SearchStrategy.run`` and is checked by the same conformance test.

Budget = number of **unique** architectures evaluated (duplicates are served from the evaluator's cache and
never counted). Objectives are all minimised inside the search (accuracy enters as ``error`` = 100 - acc %).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np

from ..core import Arch, Objective


@dataclass(frozen=True)
class Evaluation:
    """One evaluated architecture: objective values (evaluator order) and how each was obtained."""

    arch: Arch
    values: tuple[float, ...]
    sources: tuple[str, ...]  # per objective, e.g. "table:accuracy_cifar10.csv", "predicted:lut@pixel", "measured:..."
    extras: dict = field(default_factory=dict, compare=False)  # e.g. params, macs, arch string
    violation: float = 0.0  # total constraint violation (0 = feasible), over bounded objectives and constraints


class Evaluator(Protocol):
    objectives: tuple[Objective, ...]

    def evaluate(self, archs: Sequence[Arch]) -> np.ndarray:
        """(n, n_obj) minimised objective values; cached by arch id."""
        ...

    def evaluations(self) -> list[Evaluation]:
        """Every unique architecture evaluated so far, in evaluation order."""
        ...

    def violations(self, archs: Sequence[Arch]) -> np.ndarray:
        """(n,) total constraint violation, 0 = feasible (evaluates what is not cached)."""
        ...

    @property
    def n_unique(self) -> int: ...


Callback = Callable[[dict], None]  # called once per generation/step with {"step", "n_evals", "hypervolume", ...}


@dataclass
class SearchResult:
    strategy: str
    space: str
    objectives: tuple[Objective, ...]
    evaluations: list[Evaluation]
    history: list[dict] = field(default_factory=list)  # one row per generation: step, n_evals, hypervolume
    config: dict = field(default_factory=dict)

    def values(self) -> np.ndarray:
        return np.array([e.values for e in self.evaluations], dtype=float).reshape(len(self.evaluations), len(self.objectives))

    def feasible_mask(self) -> np.ndarray:
        F = self.values()
        feasible = np.array([e.violation <= 0 for e in self.evaluations], dtype=bool)
        for j, obj in enumerate(self.objectives):
            if obj.bound is not None:
                feasible &= F[:, j] <= obj.bound
        return feasible

    @property
    def any_feasible(self) -> bool:
        return bool(self.evaluations) and bool(self.feasible_mask().any())

    def pareto(self) -> list[Evaluation]:
        """The non-dominated feasible evaluations (all minimised). When no evaluation satisfies the
        constraints, the non-dominated ones among the least-violating (check ``any_feasible``)."""
        from ..pareto import non_dominated_mask

        if not self.evaluations:
            return []
        F = self.values()
        feasible = self.feasible_mask()
        if feasible.any():
            idx = np.flatnonzero(feasible)
        else:
            v = np.array([e.violation for e in self.evaluations])
            idx = np.flatnonzero(v <= v.min() + 1e-12)
        mask = non_dominated_mask(F[idx])
        return [self.evaluations[i] for i in idx[mask]]


class SearchStrategy(Protocol):
    name: str

    def run(self, space, evaluator: Evaluator, budget: int, rng: np.random.Generator,
            callback: Callback | None = None) -> SearchResult: ...
