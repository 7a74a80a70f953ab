"""Helpers shared by the MONAS and DPP-Net reproductions: which objective is accuracy, which is cost,
budget-guarded evaluation, per-step history rows and seeding torch from a numpy Generator."""

from __future__ import annotations

import contextlib
from typing import Sequence

import numpy as np

from ..contracts import Arch, Objective
from ..errors import HwnasError


def is_accuracy_objective(obj: Objective) -> bool:
    name = obj.name.lower()
    return name.startswith("error") or name.startswith("acc") or "top1" in name


def accuracy_index(objectives: Sequence[Objective], name: str | None = None) -> int:
    """Index of the accuracy objective (``error...`` by convention: 100 - accuracy %, minimised)."""
    labels = [o.label for o in objectives]
    if name is not None:
        for i, o in enumerate(objectives):
            if name in (o.name, o.label):
                return i
        raise HwnasError(f"accuracy objective {name!r} is not one of the evaluator's objectives: {', '.join(labels)}")
    for i, o in enumerate(objectives):
        if is_accuracy_objective(o):
            return i
    raise HwnasError(f"no accuracy objective (error/accuracy) among the evaluator's objectives: {', '.join(labels)}")


def cost_index(objectives: Sequence[Objective], acc_i: int, name: str | None = None) -> int:
    """Index of the cost objective (default: the first objective that is not the accuracy one)."""
    labels = [o.label for o in objectives]
    if name is not None:
        for i, o in enumerate(objectives):
            if name in (o.name, o.label) and i != acc_i:
                return i
        raise HwnasError(f"cost objective {name!r} is not one of the evaluator's objectives: {', '.join(labels)}")
    for i in range(len(objectives)):
        if i != acc_i:
            return i
    raise HwnasError(f"no cost objective besides accuracy among the evaluator's objectives: {', '.join(labels)}")


def accuracy_from_value(obj: Objective, value: float) -> float:
    """Accuracy as a fraction in [0, 1] from the (minimised) objective value."""
    name = obj.name.lower()
    if name.startswith("error"):
        return (100.0 - float(value)) / 100.0
    return -float(value) / 100.0 if obj.minimize else float(value) / 100.0


class BudgetedEvaluation:
    """Evaluate architectures while keeping the number of unique evaluated architectures <= budget.

    Archs already evaluated are served from the evaluator's cache and cost nothing; new ones beyond the
    remaining budget are dropped (``evaluate`` returns the archs it kept, in input order, with values).
    """

    def __init__(self, evaluator, budget: int):
        if int(budget) < 1:
            raise HwnasError(f"budget must be >= 1 unique architectures, got {budget}")
        self.evaluator = evaluator
        self.budget = int(budget)
        self.seen: dict[str, np.ndarray] = {}
        for e in evaluator.evaluations():
            self.seen[e.arch.arch_id] = np.asarray(e.values, dtype=float)

    @property
    def remaining(self) -> int:
        return max(0, self.budget - int(self.evaluator.n_unique))

    @property
    def exhausted(self) -> bool:
        return self.remaining <= 0

    def evaluate(self, archs: Sequence[Arch]) -> tuple[list[Arch], np.ndarray]:
        keep: list[Arch] = []
        new_ids: set[str] = set()
        left = self.remaining
        for a in archs:
            aid = a.arch_id
            if aid in self.seen or aid in new_ids:
                keep.append(a)
            elif len(new_ids) < left:
                new_ids.add(aid)
                keep.append(a)
        n_obj = len(self.evaluator.objectives)
        if not keep:
            return [], np.zeros((0, n_obj))
        F = np.asarray(self.evaluator.evaluate(keep), dtype=float).reshape(len(keep), n_obj)
        for a, f in zip(keep, F):
            self.seen[a.arch_id] = f
        return keep, F

    def known(self, arch: Arch) -> np.ndarray | None:
        return self.seen.get(arch.arch_id)


def torch_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


@contextlib.contextmanager
def seeded_torch(seed: int):
    """Run a block with torch's global RNG seeded (and restored afterwards): layer initialisation uses it."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


@contextlib.contextmanager
def torch_threads(n: int = 1):
    """Limit torch's intra-op threads for a block (the controller and surrogate are tiny: one thread is
    faster than contending for cores), restoring the previous setting afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
