"""The contracts of hwnas: value types and the protocols every implementation satisfies.

Read this module first. Everything else implements one of these (spaces implement ``SearchSpace``, runners
``Runner``, value sources ``ValueSource``, predictors ``LatencyPredictor``, strategies ``SearchStrategy``,
the evaluator ``Evaluator``) and imports them from here, never from a sibling implementation. This module
imports nothing of hwnas but ``errors``.

Search conventions: budget = number of **unique** architectures evaluated (duplicates are served from the
evaluator's cache and never counted). Objectives are all minimised inside the search (accuracy enters as
``error`` = 100 - acc %).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from .errors import HwnasError

@dataclass(frozen=True)
class Arch:
    """An architecture: the name of its space plus integer genes.

    ``arch_id`` is a stable hash of (space, genes); it does not depend on Python's hash seed, so it can
    key caches, the measurement store and checkpoints across processes and machines.
    """

    space: str
    genes: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "genes", tuple(int(g) for g in self.genes))

    @cached_property  # computed once per instance (a predictor's cross-validation asks millions of times)
    def arch_id(self) -> str:
        text = f"{self.space}:{','.join(map(str, self.genes))}"
        return hashlib.sha1(text.encode()).hexdigest()[:16]


class InvalidArchError(HwnasError, ValueError):
    """A malformed arch string or out-of-range genes."""


@dataclass(frozen=True)
class StaticCosts:
    """Costs counted from the built graph (not guessed)."""

    params: int
    macs: int
    peak_activation_bytes: int  # largest sum of live activations in a straight-line schedule (float32)

    @property
    def flops(self) -> int:
        return 2 * self.macs


@dataclass(frozen=True)
class Objective:
    """One objective of a search: a name with its unit in it, minimised unless said otherwise."""

    name: str
    minimize: bool = True
    bound: float | None = None  # a constraint `value <= bound` (for minimised objectives)
    device: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name}@{self.device}" if self.device else self.name


# -- search spaces -------------------------------------------------------------------------------------
@runtime_checkable
class SearchSpace(Protocol):
    """A space of architectures as integer gene vectors (implemented by ``spaces.base.GeneSpace``)."""

    name: str

    def cardinalities(self) -> Sequence[int]: ...                       # one entry per gene -> pymoo bounds
    def make(self, genes: Sequence[int]) -> Arch: ...                    # validate + canonicalise
    def check(self, arch: Arch) -> Arch: ...                             # an Arch of this space, else raise
    def sample(self, rng: np.random.Generator) -> Arch: ...
    def sample_distinct(self, n: int, rng: np.random.Generator, exclude=(), max_tries: int | None = None) -> list[Arch]: ...
    def mutate(self, arch: Arch, rng: np.random.Generator, rate: float | None = None) -> Arch: ...
    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch: ...
    def to_string(self, arch: Arch) -> str: ...
    def from_string(self, s: str) -> Arch: ...
    def build(self, arch: Arch) -> Any: ...                              # a torch.nn.Module
    def input_shape(self) -> tuple[int, ...]: ...
    def size(self) -> int: ...
    def config(self) -> dict: ...                                        # settings that change the network
    def static_costs(self, arch: Arch) -> StaticCosts: ...
    # space knowledge for search operators (GeneSpace gives identity defaults; nb201 knows its dead edges)
    def simplify(self, arch: Arch) -> Arch: ...                          # same function, cheapest genes
    def equivalence_key(self, arch: Arch) -> str: ...                    # equal for functionally equal archs
    def has_path(self, arch: Arch) -> bool: ...                          # input reaches output
    def encode(self, archs: Sequence[Arch]) -> Any: ...                   # surrogate features, a row per arch


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
        from .pareto import non_dominated_mask

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


# -- measurement ---------------------------------------------------------------------------------------
@runtime_checkable
class Runner(Protocol):
    """Where a model runs: this host, a phone over adb, a board's agent (``measure.runners.RUNNERS``)."""

    def reachable(self, profile: Any) -> tuple[bool, str]: ...          # profile: measure.DeviceProfile
    def run(self, model_path: Path, profile: Any, protocol: Any = None,
            op_profile: bool = True, reference: Path | None = None) -> Any: ...  # -> measure.protocol.RunResult
    # reference: a model file timed ABAB with the candidate for drift (local and adb; the agent refuses one)
    # isinstance() checks method names only: tests/test_runner_registry.py checks every runner accepts these calls


# -- value sources -----------------------------------------------------------------------------------------
@runtime_checkable
class ValueSource(Protocol):
    """Where one quantity comes from: table, proxy, train, supernet, predictor, measure, count.

    ``values`` returns the values (nan = unknown) and one provenance string per arch, e.g.
    ``table:accuracy_cifar10.csv``, ``predicted:lut@pixel``, ``measured:pixel(onnxruntime 1.20)``.
    """

    def values(self, space: SearchSpace, archs: Sequence[Arch], quantity: str) -> tuple[np.ndarray, list[str]]: ...


# -- predictors --------------------------------------------------------------------------------------------
@runtime_checkable
class LatencyPredictor(Protocol):
    """sklearn-style: ``__init__`` only stores parameters (implemented by ``predictors.base``)."""

    def fit(self, archs: Sequence[Arch], latency_ms) -> "LatencyPredictor": ...
    def predict(self, archs: Sequence[Arch]) -> tuple[np.ndarray, np.ndarray]: ...   # mean, std
    def save(self, directory: Path) -> Path: ...


__all__ = ["Arch", "InvalidArchError", "StaticCosts", "Objective", "SearchSpace", "Evaluation", "Evaluator",
           "Callback", "SearchResult", "SearchStrategy", "Runner", "ValueSource", "LatencyPredictor"]
