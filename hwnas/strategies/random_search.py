"""Random search: unique architectures sampled uniformly from the space (the baseline every NAS paper needs)."""

from __future__ import annotations

import numpy as np

from ..contracts import Callback, SearchResult
from ..params import Params
from .toolkit import Budget, Recorder


class RandomSearch(Params):
    name = "random"

    def __init__(self, batch_size: int = 20):
        self.batch_size = batch_size

    def run(self, space, evaluator, budget: int, rng: np.random.Generator,
            callback: Callback | None = None) -> SearchResult:
        rec = Recorder(evaluator, callback)
        budget_ = Budget(evaluator, budget, space)
        seen = {e.arch.arch_id for e in evaluator.evaluations()}
        step = 0
        while (left := budget_.remaining) > 0:
            n = min(int(self.batch_size), left)
            batch = space.sample_distinct(n, rng, exclude=seen, max_tries=1000 * max(n, 1))
            if not batch:
                break
            evaluator.evaluate(batch)
            seen.update(a.arch_id for a in batch)
            step += 1
            rec.record(step)
        return rec.result(self.name, space, self.get_params())
