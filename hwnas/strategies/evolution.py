"""Regularized (aging) evolution (Real et al., AAAI 2019), multi-objective.

A population of ``population_size`` architectures; each step draws ``sample_size`` members at random, takes
a parent from the best Pareto rank of that sample (feasible before infeasible), mutates it into an
architecture never evaluated before and appends the child; the *oldest* member dies. ``batch_size`` children
are made per step (one "generation" of the history).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ..contracts import Callback, SearchResult
from ..params import Params
from ..pareto import pareto_ranks
from .toolkit import Budget, Recorder


class AgingEvolution(Params):
    name = "evolution"

    def __init__(self, population_size: int = 50, sample_size: int = 10, batch_size: int = 10,
                 mutation_tries: int = 50):
        self.population_size = population_size
        self.sample_size = sample_size
        self.batch_size = batch_size
        self.mutation_tries = mutation_tries

    def run(self, space, evaluator, budget: int, rng: np.random.Generator,
            callback: Callback | None = None) -> SearchResult:
        rec = Recorder(evaluator, callback)
        budget_ = Budget(evaluator, budget, space)
        seen = {e.arch.arch_id for e in evaluator.evaluations()}
        population: deque = deque()  # (arch, F row, violation), oldest first
        step = 0

        def add(archs):
            nonlocal step
            F = evaluator.evaluate(archs)
            V = evaluator.violations(archs)
            for a, f, v in zip(archs, F, V):
                seen.add(a.arch_id)
                population.append((a, f, float(v)))
                if len(population) > int(self.population_size):
                    population.popleft()
            step += 1
            rec.record(step)

        # initial population: random
        while len(population) < int(self.population_size) and (left := budget_.remaining) > 0:
            n = min(int(self.batch_size), left, int(self.population_size) - len(population))
            batch = space.sample_distinct(n, rng, exclude=seen, max_tries=1000 * max(n, 1))
            if not batch:
                break
            add(batch)

        while (left := budget_.remaining) > 0 and population:
            children, ids = [], set()
            for _ in range(min(int(self.batch_size), left)):
                child = self._child(space, population, seen | ids, rng)
                if child is None:
                    break
                ids.add(child.arch_id)
                children.append(child)
            if not children:
                break
            add(children)
        return rec.result(self.name, space, self.get_params())

    def _child(self, space, population, seen, rng):
        k = min(int(self.sample_size), len(population))
        idx = rng.choice(len(population), size=k, replace=False)
        members = [population[i] for i in idx]
        ranks = pareto_ranks(np.array([m[1] for m in members]), np.array([m[2] for m in members]))
        best = np.flatnonzero(ranks == ranks.min())
        parent = members[int(best[rng.integers(len(best))])][0]
        for _ in range(int(self.mutation_tries)):
            child = space.mutate(parent, rng)
            if child.arch_id not in seen:
                return child
        fresh = space.sample_distinct(1, rng, exclude=seen, max_tries=1000)  # the neighbourhood is exhausted: jump
        return fresh[0] if fresh else None
