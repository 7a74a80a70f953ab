"""``ArchEvaluator``: objectives (+ constraint-only quantities) of a batch of archs from their value sources,
cached by arch id, logged as they are computed."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ..contracts import Arch, Evaluation, Objective
from ..errors import HwnasError, ParametersError
from ..store import value_problem
from .checkpoint import append_log
from .executors import InProcessExecutor
from .objectives import DEVICE_METRICS, STATIC_METRICS, violation_of
from .sources import CountSource


def _per_arch_work(task):
    """The per-arch (heavy) quantities of one arch: ``{label: (value, provenance)}``. Picklable."""
    space, arch, wanted = task
    out: dict[str, tuple[float, str]] = {}
    for label, source, quantity in wanted:
        vals, provenance = source.values(space, [arch], quantity)
        out[label] = (vals[0], provenance[0])
    return out


class ArchEvaluator:
    """The Evaluator of hwnas: objectives (+ constraint-only quantities) for a batch of archs, cached by id.

    ``objectives``: what the search minimises. ``constraints``: bounded quantities; a constraint on an
    objective puts the bound on that objective (so ``SearchResult.pareto`` honours it). ``accuracy``: a source
    for ``error``. ``costs``: quantity label (``latency_ms@pixel2``) -> cost source; counted quantities
    (params, macs, peak memory) come from a ``CountSource``. ``log``: a JSON-lines file to which each new
    evaluation is appended at once (the checkpoint), ``on_evaluated``: called with each new Evaluation.
    """

    def __init__(self, space, objectives: Sequence[Objective], constraints: Sequence[Objective] = (),
                 accuracy=None, costs: dict | None = None, executor=None, log: Path | None = None,
                 on_evaluated: Callable[[Evaluation], None] | None = None):
        self.space = space
        self.accuracy = accuracy
        self.costs = dict(costs or {})
        self.executor = executor or InProcessExecutor()
        self.log = Path(log) if log else None
        self.on_evaluated = on_evaluated
        if not objectives:
            raise HwnasError("a search needs at least one objective")
        bounds: dict[str, float] = {}  # label -> tightest bound
        con: dict[str, Objective] = {}
        for c in constraints:
            if c.bound is None:
                raise HwnasError(f"constraint {c.label} has no bound")
            bounds[c.label] = min(c.bound, bounds.get(c.label, math.inf))
            con.setdefault(c.label, c)
        labels = [o.label for o in objectives]
        if len(set(labels)) != len(labels):
            raise HwnasError(f"objective listed twice: {', '.join(sorted({x for x in labels if labels.count(x) > 1}))}")
        self._check_sources(list(objectives) + list(constraints))
        self.objectives: tuple[Objective, ...] = tuple(
            Objective(self._sources[o.label].objective_name(o.name), bound=bounds.get(o.label, o.bound), device=o.device)
            for o in objectives)
        self.constraints: tuple[Objective, ...] = tuple(
            Objective(c.name, bound=bounds[label], device=c.device) for label, c in con.items() if label not in labels)
        self._internal = labels + [c.label for c in self.constraints]
        self._seen: dict[str, Evaluation] = {}
        self._known: dict[str, Evaluation] = {}
        self.n_computed = 0  # evaluations actually computed in this process (not served from a checkpoint)
        self.replay_diverged = False

    # -- set-up checks -------------------------------------------------------------------------------------
    def _check_sources(self, quantities: Sequence[Objective]) -> None:
        """Find the source of every quantity (``self._sources``: label -> source), or say what is missing."""
        self._sources: dict = {}
        counter = CountSource()
        for q in quantities:
            if q.name == "error":
                if self.accuracy is None:
                    raise ParametersError("objective 'error' needs an accuracy source: `accuracy` "
                                          "table:FILE|proxy|train|supernet:PATH")
                if self.accuracy.objective_name("error") != "error" and q.bound is not None:
                    raise HwnasError("a constraint on 'error' needs a real accuracy (table or train), not a proxy score")
                self._sources[q.label] = self.accuracy
            elif q.name in DEVICE_METRICS:
                if q.label not in self.costs:
                    param = "latency" if q.name == "latency_ms" else "energy"  # energy_mj, peak_power_w
                    raise ParametersError(f"no cost source for {q.label}: `{param}` "
                                          f"{q.device}=table:FILE|predictor|measure")
                self._sources[q.label] = self.costs[q.label]
            elif q.name in STATIC_METRICS:
                self._sources[q.label] = counter

    # -- state ----------------------------------------------------------------------------------------------
    @property
    def bounds(self) -> list[float]:
        return [o.bound for o in self.objectives if o.bound is not None] + [c.bound for c in self.constraints]

    @property
    def n_unique(self) -> int:
        return len(self._seen)

    def evaluations(self) -> list[Evaluation]:
        return list(self._seen.values())

    def preload(self, evaluations: Iterable[Evaluation], where: Sequence[str] | None = None) -> None:
        """Results known from a checkpoint: served without recomputation when (and if) asked for again. Each
        passes the checks a fresh evaluation passes (:meth:`_checked`: the arch is one of this space, a value and
        a provenance for every objective and constraint, each value in its quantity's range, the violation
        computed from them, not read), or a HwnasError names it: ``where[i]`` (e.g. ``run/evaluations.jsonl
        line 7``), else its position."""
        for i, e in enumerate(evaluations):
            try:
                e = self._replayed(e)
            except HwnasError as exc:
                at = where[i] if where is not None else f"logged evaluation {i + 1}"
                raise HwnasError(f"{at}: {exc}") from None
            self._known.setdefault(e.arch.arch_id, e)

    def _replayed(self, e: Evaluation) -> Evaluation:
        """A logged evaluation, checked as :meth:`_make` checks a fresh one, with its violation recomputed."""
        try:
            arch = self.space.check(e.arch)
        except HwnasError as exc:
            raise HwnasError(f"not an arch of this search: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise HwnasError(f"not an arch of this search ({exc})") from None
        k = len(self.objectives)
        if len(e.values) != k or len(e.sources) != k:
            raise HwnasError(f"{len(e.values)} values / {len(e.sources)} provenances for {k} objectives "
                             f"({', '.join(o.label for o in self.objectives)})")
        given = e.extras.get("constraints") or {}
        given_sources = e.extras.get("constraint_sources") or {}
        if self.constraints and not (isinstance(given, dict) and isinstance(given_sources, dict)):
            raise HwnasError("no constraint values")
        vals, srcs = list(e.values), list(e.sources)
        for c in self.constraints:
            if c.label not in given or not isinstance(given[c.label], (int, float)) or isinstance(given[c.label], bool):
                raise HwnasError(f"no value for the constraint quantity {c.label}")
            vals.append(float(given[c.label]))
            srcs.append(given_sources.get(c.label, ""))
        if not all(isinstance(s, str) for s in srcs):
            raise HwnasError(f"a provenance is not text: {srcs!r}")
        violation = self._checked(vals, srcs, fresh=False)
        return Evaluation(arch, tuple(vals[:k]), tuple(srcs[:k]), dict(e.extras), violation=violation)

    def _checked(self, vals: Sequence[float], srcs: Sequence[str], fresh: bool = True) -> float:
        """The checks every evaluation passes, fresh or replayed from a log; returns its constraint violation.
        Each finite value must lie in its quantity's range (``hwnas.store.VALUE_RANGES``: a latency in (0 ms,
        1 h], an error in 0-100 ...); nan or inf is an unknown value, never feasible."""
        quantities = list(self.objectives) + list(self.constraints)
        for q, v, s in zip(quantities, vals, srcs):
            problem = value_problem(q.name, float(v)) if math.isfinite(v) else None
            if problem:
                raise HwnasError(f"{q.label} from {s or 'its source'} is {v:g}: {problem}" if fresh
                                 else f"{q.label} is {v:g} ({s}): {problem}")
        k = len(self.objectives)
        bounded = [(vals[j], o.bound) for j, o in enumerate(self.objectives) if o.bound is not None]
        bounded += [(vals[k + j], c.bound) for j, c in enumerate(self.constraints)]
        violation = violation_of([v for v, _ in bounded], [b for _, b in bounded])
        if not all(np.isfinite(vals)):  # an unknown value (failed measurement, degenerate proxy) is never feasible
            violation += 1e6
        return violation

    # -- evaluation -------------------------------------------------------------------------------------
    def evaluate(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.array([e.values for e in self.evaluate_full(archs)], dtype=float).reshape(len(archs), len(self.objectives))

    def violations(self, archs: Sequence[Arch]) -> np.ndarray:
        """Total constraint violation of each arch (0 = feasible); evaluates what is not cached."""
        return np.array([e.violation for e in self.evaluate_full(archs)], dtype=float)

    def evaluate_full(self, archs: Sequence[Arch]) -> list[Evaluation]:
        archs = [self.space.check(a) for a in archs]
        new: list[Arch] = []
        pending = set()
        for a in archs:
            aid = a.arch_id
            if aid in self._seen or aid in pending:
                continue
            pending.add(aid)
            if aid in self._known:
                if new:  # keep evaluation order identical to the checkpoint
                    self._compute(new)
                    new = []
                self._accept(self._known.pop(aid))
            else:
                if self._known:
                    self.replay_diverged = True
                new.append(a)
        if new:
            self._compute(new)
        return [self._seen[a.arch_id] for a in archs]

    def _accept(self, e: Evaluation) -> None:
        self._seen[e.arch.arch_id] = e
        if self.on_evaluated is not None:
            self.on_evaluated(e)

    def _compute(self, archs: list[Arch]) -> None:
        labels = self._internal
        n = len(archs)
        values = {label: np.full(n, np.nan) for label in labels}
        sources = {label: [""] * n for label in labels}
        per_arch = []  # (label, source, quantity) computed one arch at a time through the executor
        for label in labels:
            source, quantity = self._sources[label], label.partition("@")[0]
            if source.per_arch:
                per_arch.append((label, source, quantity))
            else:  # batch sources first: tables, predictors, measurements
                values[label], sources[label] = source.values(self.space, archs, quantity)
        if per_arch:
            results: Iterable = self.executor.map(_per_arch_work, [(self.space, a, per_arch) for a in archs])
        else:
            results = ({} for _ in archs)
        for i, (arch, res) in enumerate(zip(archs, results)):
            for label, (v, s) in res.items():
                values[label][i], sources[label][i] = v, s
            self._accept(self._make(arch, [values[lb][i] for lb in labels], [sources[lb][i] for lb in labels]))
            self.n_computed += 1

    def _make(self, arch: Arch, vals: list[float], srcs: list[str]) -> Evaluation:
        k = len(self.objectives)
        violation = self._checked(vals, srcs)
        extras = {"arch": self.space.to_string(arch)}
        if self.constraints:
            extras["constraints"] = {c.label: float(vals[k + j]) for j, c in enumerate(self.constraints)}
            extras["constraint_sources"] = {c.label: srcs[k + j] for j, c in enumerate(self.constraints)}
        e = Evaluation(arch, tuple(float(v) for v in vals[:k]), tuple(srcs[:k]), extras, violation=violation)
        if self.log is not None:
            append_log(self.log, e)
        return e
