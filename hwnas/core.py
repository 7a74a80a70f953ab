"""Core value types shared by every part of hwnas (see DESIGN.md)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

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

    @property
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


@runtime_checkable
class SearchSpace(Protocol):
    name: str

    def cardinalities(self) -> Sequence[int]: ...
    def make(self, genes: Sequence[int]) -> Arch: ...
    def sample(self, rng: np.random.Generator) -> Arch: ...
    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch: ...
    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch: ...
    def to_string(self, arch: Arch) -> str: ...
    def from_string(self, s: str) -> Arch: ...
    def build(self, arch: Arch): ...
    def input_shape(self) -> tuple[int, ...]: ...
    def size(self) -> int: ...


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


__all__ = ["Arch", "InvalidArchError", "StaticCosts", "SearchSpace", "Objective", "field"]
