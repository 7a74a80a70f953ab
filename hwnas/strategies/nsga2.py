"""NSGA-II (Deb et al., 2002) through pymoo's ask/tell interface, with operators that respect the space.

Genes are categorical integers (an nb201 edge's op, a MobileNet block's kernel), so the defaults are
operators for categories, not SBX/PM with rounding: uniform crossover and a mutation that resamples a gene
to a *different* value (each gene with probability ``mutation_rate``, default 1/n, at least one gene per
child). A repair maps every child to the space's canonical genes (inactive genes zeroed, so equal networks
are one candidate) and duplicate elimination drops any child already evaluated in this run, so the budget
is spent on unique architectures only. Constraints enter pymoo as one inequality (the total violation), so
pymoo's constraint-domination prefers feasible candidates. Everything random comes from the passed
Generator (pymoo gets a seed drawn from it).

Options (see docs/search.md for what each scored on the NB201 benchmark): ``crossover="sbx", mutation="pm"``
gives the plain pymoo baseline (SBX + polynomial mutation with rounding); ``mutation="neighbour"`` moves a gene
one step along its choice list; ``space_aware`` repairs to the cheapest equivalent network and treats isomorphic cells as
duplicates (the space's ``simplify`` and ``equivalence_key``); ``surrogate`` pre-screens ``pool_factor`` x more children with a surrogate fitted
to the evaluations so far.
"""

from __future__ import annotations

import numpy as np

from ..contracts import Callback, SearchResult
from ..errors import HwnasError
from ..params import Params
from .toolkit import Budget, Recorder


def _mutate(row: np.ndarray, card: np.ndarray, rate: float, min_mutations: int, step: str, random_state) -> None:
    """Resample each mutable gene of ``row`` (in place) with probability ``rate`` to a different category, at
    least ``min_mutations`` of them; ``step="neighbour"``: one step along the choice list (ordered genes)."""
    mutable = np.flatnonzero(card > 1)
    picks = mutable[random_state.random(len(mutable)) < rate]
    if len(picks) < min_mutations and len(mutable):
        extra = random_state.choice(mutable, size=min(min_mutations, len(mutable)), replace=False)
        picks = np.union1d(picks, extra)
    for i in picks:
        if step == "neighbour" and card[i] > 2:
            d = 1 if random_state.random() < 0.5 else -1
            v = row[i] + d
            row[i] = v if 0 <= v < card[i] else row[i] - d
        else:
            row[i] = (row[i] + 1 + int(random_state.integers(card[i] - 1))) % card[i]


def _mark_duplicates(ids: list, seen: set, others: set | None, is_duplicate: np.ndarray) -> np.ndarray:
    """Without ``others``: duplicates within the batch and against everything evaluated (``seen``); with
    ``others``: the ids already among them."""
    if others is not None:
        for i, aid in enumerate(ids):
            if aid in others:
                is_duplicate[i] = True
        return is_duplicate
    batch = set()
    for i, aid in enumerate(ids):
        if aid in seen or aid in batch:
            is_duplicate[i] = True
        batch.add(aid)
    return is_duplicate


def _screening_targets(evals) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """(genes, targets, violations, constrained) of the evaluations: objectives scaled to [0, 1] over the finite
    ones (a non-finite value counts as the worst), plus log(1 + violation) as a last column when any is
    violated."""
    X = np.array([e.arch.genes for e in evals])
    F = np.array([e.values for e in evals], dtype=float)
    V = np.array([e.violation for e in evals], dtype=float)
    ok = np.all(np.isfinite(F), axis=1)
    lo, hi = F[ok].min(axis=0), F[ok].max(axis=0)
    scale = np.where(hi > lo, hi - lo, 1.0)
    Y = (np.where(np.isfinite(F), F, hi) - lo) / scale
    constrained = bool((V > 0).any())
    if constrained:
        Y = np.column_stack([Y, np.log1p(V)])
    return X, Y, V, constrained


def _rank_and_crowding(front: np.ndarray, Pf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-dominated rank and crowding distance of the predicted points ``Pf`` sorted together with the
    evaluated ``front``."""
    from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    allF = np.vstack([front, Pf])
    ranks = np.empty(len(allF), dtype=int)
    for r, idx in enumerate(NonDominatedSorting().do(allF)):
        ranks[idx] = r
    crowd = np.zeros(len(allF))
    for r in np.unique(ranks):
        idx = np.flatnonzero(ranks == r)
        crowd[idx] = calc_crowding_distance(allF[idx]) if len(idx) > 2 else np.inf
    return ranks[len(front):], crowd[len(front):]


def _pymoo_operators(space, seen: set, mutation_rate, min_mutations: int, space_aware: bool, step: str = "any"):
    from pymoo.core.duplicate import DuplicateElimination
    from pymoo.core.mutation import Mutation
    from pymoo.core.repair import Repair
    from pymoo.core.sampling import Sampling

    card = np.asarray(space.cardinalities(), dtype=int)
    to_arch = (lambda row: space.simplify(space.make(row))) if space_aware else space.make
    key = space.equivalence_key if space_aware else (lambda a: a.arch_id)

    def canonical(X):
        X = np.clip(np.rint(np.asarray(X, dtype=float)), 0, card - 1).astype(int)
        return np.array([to_arch(row).genes for row in X], dtype=int).reshape(X.shape)

    class SpaceSampling(Sampling):
        def _do(self, problem, n_samples, random_state=None, **kwargs):
            return np.array([space.sample(random_state).genes for _ in range(n_samples)], dtype=int)

    class SpaceRepair(Repair):
        def _do(self, problem, X, **kwargs):
            return canonical(X)

    class CategoricalMutation(Mutation):
        """Resample genes to a different category; at least ``min_mutations`` genes per child."""

        def _do(self, problem, X, random_state=None, **kwargs):
            X = np.asarray(X, dtype=int).copy()
            rate = 1.0 / X.shape[1] if mutation_rate is None else float(mutation_rate)
            for row in X:
                _mutate(row, card, rate, min_mutations, step, random_state)
            return X

    class ArchiveDuplicates(DuplicateElimination):
        """Duplicates within the batch, against the population, and against everything evaluated."""

        def _do(self, pop, other, is_duplicate):
            ids = [key(space.make(row)) for row in canonical(pop.get("X"))]
            others = None if other is None else {key(space.make(row)) for row in canonical(other.get("X"))}
            return _mark_duplicates(ids, seen, others, is_duplicate)

    return SpaceSampling(), SpaceRepair(), CategoricalMutation(prob=1.0), ArchiveDuplicates()


def _screened_mating(inner, evaluator, space, factor: int, seed: int):
    """Wrap pymoo's mating: make ``factor`` x more unique children than asked, predict their objectives with a
    surrogate (extra-trees on one-hot genes) fitted to every evaluation so far, and keep the children whose
    predictions rank best (non-dominated sorting against the evaluated front, then crowding distance).
    No child is evaluated to choose: the budget still counts real evaluations only."""
    from pymoo.core.infill import InfillCriterion

    card = np.asarray(space.cardinalities(), dtype=int)
    offsets = np.concatenate([[0], np.cumsum(card)[:-1]])

    def onehot(X):
        X = np.asarray(X, dtype=int)
        out = np.zeros((len(X), int(card.sum())))
        out[np.arange(len(X))[:, None], offsets + X] = 1.0
        return out

    class ScreenedMating(InfillCriterion):
        def __init__(self):
            super().__init__(repair=inner.repair, eliminate_duplicates=inner.eliminate_duplicates)
            self.calls = 0

        def do(self, problem, pop, n_offsprings, **kwargs):
            pool = inner.do(problem, pop, n_offsprings * factor, **kwargs)
            evals = evaluator.evaluations()
            if len(pool) <= n_offsprings or len(evals) < 4:
                return pool[:n_offsprings]
            from sklearn.ensemble import ExtraTreesRegressor

            X, Y, V, constrained = _screening_targets(evals)
            m = len(evals[0].values)
            self.calls += 1
            model = ExtraTreesRegressor(n_estimators=64, min_samples_leaf=1, random_state=seed + self.calls)
            model.fit(onehot(X), Y)
            Xp = np.asarray(pool.get("X"), dtype=int)
            P = model.predict(onehot(Xp)).reshape(len(Xp), -1)
            Pf, Pv = P[:, :m], (P[:, -1] if constrained else np.zeros(len(Xp)))
            feasible = V <= 0
            front = Y[feasible][:, :m] if feasible.any() else np.empty((0, m))
            rank_p, crowd_p = _rank_and_crowding(front, Pf)
            order = np.lexsort((-crowd_p, rank_p, Pv > 0.05))
            return pool[order[:n_offsprings]]

    return ScreenedMating()


class NSGA2Search(Params):
    name = "nsga2"

    def __init__(self, population_size: int = 10, offspring_size: int | None = None, crossover: str = "uniform",
                 crossover_prob: float = 0.9, mutation_rate: float | None = None, min_mutations: int = 1,
                 space_aware: bool = False, surrogate: bool = False, pool_factor: int = 10, mutation: str = "any"):
        self.population_size = population_size
        self.offspring_size = offspring_size
        self.crossover = crossover
        self.crossover_prob = crossover_prob
        self.mutation_rate = mutation_rate
        self.min_mutations = min_mutations
        self.space_aware = space_aware
        self.surrogate = surrogate
        self.pool_factor = pool_factor
        self.mutation = mutation

    def _algorithm(self, space, evaluator, seen: set, seed: int):
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.crossover.ux import UX
        from pymoo.operators.mutation.pm import PM
        from pymoo.operators.repair.rounding import RoundingRepair

        sampling, repair, mutation, dups = _pymoo_operators(space, seen, self.mutation_rate, int(self.min_mutations),
                                                          bool(self.space_aware), self.mutation)
        if self.crossover == "uniform":
            crossover = UX(prob=float(self.crossover_prob))
        else:  # "sbx": simulated binary crossover on the integers, rounded
            crossover = SBX(prob=float(self.crossover_prob), eta=15, vtype=float, repair=RoundingRepair())
        if self.mutation == "pm":  # polynomial mutation, rounded
            mutation = PM(eta=20, vtype=float, repair=RoundingRepair())
        algorithm = NSGA2(pop_size=int(self.population_size),
                          n_offsprings=int(self.offspring_size or self.population_size),
                          sampling=sampling, crossover=crossover, mutation=mutation, repair=repair,
                          eliminate_duplicates=dups, seed=seed)
        if self.surrogate and int(self.pool_factor) > 1:
            algorithm.mating = _screened_mating(algorithm.mating, evaluator, space, int(self.pool_factor), seed)
        return algorithm

    def run(self, space, evaluator, budget: int, rng: np.random.Generator,
            callback: Callback | None = None) -> SearchResult:
        from pymoo.core.evaluator import Evaluator as PymooEvaluator
        from pymoo.core.problem import Problem
        from pymoo.problems.static import StaticProblem
        from pymoo.core.termination import NoTermination

        if int(self.population_size) < 2:
            raise HwnasError("nsga2: population_size must be >= 2")
        if self.crossover not in ("uniform", "sbx"):
            raise HwnasError(f"nsga2: unknown crossover {self.crossover!r}; known: uniform, sbx")
        if self.mutation not in ("any", "neighbour", "pm"):
            raise HwnasError(f"nsga2: unknown mutation {self.mutation!r}; known: any, neighbour, pm")
        card = np.asarray(space.cardinalities(), dtype=int)
        n_obj = len(evaluator.objectives)
        problem = Problem(n_var=len(card), n_obj=n_obj, n_ieq_constr=1, xl=np.zeros(len(card)), xu=card - 1,
                          vtype=int)
        key = space.equivalence_key if self.space_aware else (lambda a: a.arch_id)
        seen = {key(e.arch) for e in evaluator.evaluations()}
        algorithm = self._algorithm(space, evaluator, seen, int(rng.integers(2**31 - 1)))
        algorithm.setup(problem, termination=NoTermination())
        rec = Recorder(evaluator, callback)
        budget_ = Budget(evaluator, budget, space)
        step = 0
        while (left := budget_.remaining) > 0:
            pop = algorithm.ask()
            if pop is None or len(pop) == 0:
                break  # no new unique candidate could be made: the reachable space is exhausted
            pop = pop[:left]
            archs = [space.make(row) for row in np.asarray(pop.get("X"), dtype=int)]
            F = evaluator.evaluate(archs)
            G = evaluator.violations(archs).reshape(-1, 1)
            seen.update(key(a) for a in archs)
            F = np.nan_to_num(F, nan=1e12, posinf=1e12, neginf=-1e12)  # a degenerate candidate stays rankable
            PymooEvaluator().eval(StaticProblem(problem, F=F, G=G), pop)
            algorithm.tell(infills=pop)
            step += 1
            rec.record(step)
        return rec.result(self.name, space, self.get_params())
