"""The strategy toolkit: what every search strategy shares.

- objectives: which one is accuracy, which is cost, accuracy from a minimised value;
- ``Budget``: the one budget mechanism (unique architectures evaluated, at most the space's size);
- ``Recorder``: the per-generation history (with normalised hypervolume) and the ``SearchResult``;
- ``cheap_objective_values``: objective columns that cost no budget (graph counts, table/predictor sources);
- torch seeding and thread limits for the learned controllers and surrogates.

Pareto ranking lives in ``hwnas.pareto``, space knowledge (simplify, equivalence) in the space itself.
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import numpy as np

from ..contracts import Arch, Callback, Evaluation, Objective, SearchResult
from ..errors import HwnasError
from ..pareto import hypervolume, non_dominated_mask
from ..evaluation.objectives import STATIC_METRICS


# -- objectives ----------------------------------------------------------------------------------------------
def is_accuracy_objective(obj: Objective) -> bool:
    """Error or accuracy, or a zero-cost proxy's score standing in for it (``neg_<proxy>``)."""
    name = obj.name.lower()
    return name.startswith(("error", "acc", "neg_")) or "top1" in name


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


# -- budget ---------------------------------------------------------------------------------------------------
class Budget:
    """The search budget: at most ``min(budget, space.size())`` unique architectures evaluated.

    Archs already evaluated are served from the evaluator's cache and cost nothing. ``remaining`` says how many
    new ones are left; ``evaluate`` evaluates a batch, dropping new archs beyond the remaining budget (it returns
    the archs it kept, in input order, with their values); ``known`` gives the values of an evaluated arch.
    """

    def __init__(self, evaluator, budget: int, space):
        self.evaluator = evaluator
        self.limit = min(int(budget), int(space.size()))
        if self.limit < 1:
            raise HwnasError(f"budget must be >= 1 unique architectures, got {budget}")
        self.seen: dict[str, np.ndarray] = {}
        for e in evaluator.evaluations():
            self.seen[e.arch.arch_id] = np.asarray(e.values, dtype=float)

    @property
    def remaining(self) -> int:
        return max(0, self.limit - int(self.evaluator.n_unique))

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


# -- history and result ----------------------------------------------------------------------------------------
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


# -- objectives that cost no budget ----------------------------------------------------------------------------


def cheap_objective_values(evaluator, space, archs: Sequence[Arch], idx: Sequence[int], cache: dict) -> dict[int, np.ndarray]:
    """Objective columns (by index) that can be had without spending budget: static costs counted from the
    built graph, and device costs whose source is a table or a predictor (``source.values(space, archs,
    metric)``). Measured costs (device in the loop) and anything that fails are left to the surrogate."""
    out: dict[int, np.ndarray] = {}
    sources = getattr(evaluator, "costs", None) or {}
    for j in idx:
        obj = evaluator.objectives[j]
        try:
            if obj.name in STATIC_METRICS:
                col = []
                for a in archs:
                    if a.arch_id not in cache:
                        cache[a.arch_id] = space.static_costs(a)
                    col.append(getattr(cache[a.arch_id], STATIC_METRICS[obj.name]))
                out[j] = np.asarray(col, dtype=float)
            elif obj.label in sources and getattr(sources[obj.label], "cheap", False):
                out[j] = np.asarray(sources[obj.label].values(space, list(archs), obj.name)[0], dtype=float)
        except (HwnasError, KeyError, ValueError, NotImplementedError):
            continue
    return out


# -- torch ------------------------------------------------------------------------------------------------------
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
