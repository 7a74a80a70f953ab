"""Random search: unique architectures sampled uniformly from the space (the baseline every NAS paper needs)."""

from __future__ import annotations

import numpy as np

from ..contracts import Callback, SearchResult
from .common import Recorder, remaining, sample_new


class RandomSearch:
    name = "random"

    def __init__(self, batch_size: int = 20):
        self.batch_size = batch_size

    def run(self, space, evaluator, budget: int, rng: np.random.Generator,
            callback: Callback | None = None) -> SearchResult:
        rec = Recorder(evaluator, callback)
        seen = {e.arch.arch_id for e in evaluator.evaluations()}
        step = 0
        while (left := remaining(evaluator, budget, space)) > 0:
            batch = sample_new(space, rng, seen, min(int(self.batch_size), left))
            if not batch:
                break
            evaluator.evaluate(batch)
            seen.update(a.arch_id for a in batch)
            step += 1
            rec.record(step)
        return rec.result(self.name, space, {"batch_size": self.batch_size})
