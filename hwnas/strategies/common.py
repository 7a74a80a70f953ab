"""Pieces every strategy shares: the per-generation history (with hypervolume) and the SearchResult."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..pareto import hypervolume, non_dominated_mask
from ..contracts import Arch, Callback, Evaluation, SearchResult


def feasible_values(evaluations: Sequence[Evaluation], objectives) -> np.ndarray:
    """(k, m) objective values of the feasible evaluations."""
    rows = []
    for e in evaluations:
        if e.violation > 0:
            continue
        if any(o.bound is not None and v > o.bound for v, o in zip(e.values, objectives)):
            continue
        rows.append(e.values)
    return np.array(rows, dtype=float).reshape(len(rows), len(objectives))


class Recorder:
    """Keeps one history row per generation (step, n_evals, hypervolume, front_size) and calls the callback.

    Hypervolume is normalised: objectives are scaled by the ideal and nadir of the feasible points of the
    first recorded generation (unless ``hv_bounds=(ideal, nadir)`` is given) and the reference point is
    that nadir + 10% of the range, so the figure is comparable across generations of one run.
    """

    def __init__(self, evaluator, callback: Callback | None = None, hv_bounds=None):
        self.evaluator = evaluator
        self.callback = callback
        self.history: list[dict] = []
        self.hv_bounds = None if hv_bounds is None else tuple(np.asarray(b, dtype=float) for b in hv_bounds)
        self._front = np.empty((0, len(evaluator.objectives)))  # feasible non-dominated values so far
        self._seen = 0  # evaluations already folded into the front

    def _update_front(self, evaluations: Sequence[Evaluation]) -> np.ndarray:
        F = feasible_values(evaluations[self._seen:], self.evaluator.objectives)
        self._seen = len(evaluations)
        F = F[np.all(np.isfinite(F), axis=1)]
        if len(F) and self.hv_bounds is None:
            self.hv_bounds = (F.min(axis=0), F.max(axis=0))
        both = np.vstack([self._front, F])
        self._front = both[non_dominated_mask(both)] if len(both) else both
        return self._front

    def hypervolume_of(self, front: np.ndarray) -> float:
        """Normalised hypervolume of (feasible, finite) objective values."""
        if len(front) == 0 or self.hv_bounds is None:
            return 0.0
        ideal, nadir = self.hv_bounds
        scale = np.where(nadir - ideal > 0, nadir - ideal, 1.0)
        Z = (front - ideal) / scale
        return hypervolume(Z, np.full(Z.shape[1], 1.1))

    def record(self, step: int, **extra) -> dict:
        evaluations = self.evaluator.evaluations()
        front = self._update_front(evaluations)
        row = {"step": int(step), "n_evals": len(evaluations), "hypervolume": self.hypervolume_of(front),
               "front_size": int(len(front)), **extra}
        self.history.append(row)
        if self.callback is not None:
            self.callback(row)
        return row

    def result(self, strategy: str, space, config: dict | None = None) -> SearchResult:
        cfg = dict(config or {})
        if self.hv_bounds is not None:
            cfg["hv_ideal"] = [float(v) for v in self.hv_bounds[0]]
            cfg["hv_nadir"] = [float(v) for v in self.hv_bounds[1]]
        return SearchResult(strategy=strategy, space=space.name, objectives=tuple(self.evaluator.objectives),
                            evaluations=self.evaluator.evaluations(), history=list(self.history), config=cfg)


def sample_new(space, rng: np.random.Generator, seen: set, n: int, max_tries: int = 1000) -> list[Arch]:
    """Up to ``n`` random archs not in ``seen`` (and not repeated); fewer when the space is nearly exhausted."""
    return space.sample_distinct(n, rng, exclude=seen, max_tries=max_tries * max(n, 1))


def remaining(evaluator, budget: int, space) -> int:
    """How many unique evaluations the budget (and the space) still allow."""
    return max(0, min(int(budget), int(space.size())) - int(evaluator.n_unique))


def pareto_ranks(F: np.ndarray, violation: np.ndarray | None = None) -> np.ndarray:
    """Rank 0 = non-dominated; infeasible points rank after every feasible one, by violation."""
    F = np.asarray(F, dtype=float)
    n = len(F)
    ranks = np.full(n, -1, dtype=int)
    violation = np.zeros(n) if violation is None else np.asarray(violation, dtype=float)
    feasible = np.flatnonzero(violation <= 0)
    left = feasible
    r = 0
    while len(left):
        mask = non_dominated_mask(F[left])
        ranks[left[mask]] = r
        left = left[~mask]
        r += 1
    infeasible = np.flatnonzero(violation > 0)
    if len(infeasible):
        order = np.argsort(violation[infeasible], kind="stable")
        ranks[infeasible[order]] = r + np.arange(len(infeasible))
    return ranks
