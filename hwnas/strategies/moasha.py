"""``moasha``: multi-objective successive halving over training epochs (issue 26).

Each bracket draws ``n_initial`` new archs, trains them briefly (rung 0: 1 epoch), keeps the best ``1/eta`` by
non-dominated rank then crowding distance of (low-fidelity error, cheap cost objectives), trains those longer
(rung 1: ``eta`` epochs, ...), and evaluates the survivors of the last rung with the full recipe through the
evaluator. Only full-recipe values reach the evaluator (its cache, its log ``evaluations.jsonl``, the front);
low-fidelity values come from ``source.fidelity_values`` and are kept in the history rows only.

Budget: with a source that trains (``train``), ``budget`` is **total training epochs**. Warm start (``warm_start``,
the default, with the in-process executor): a rung is the first k epochs of the full recipe's own schedule and a
promoted arch goes on from its checkpoint (a promotion from 1 to 3 epochs costs 2 more; the full value is the
unbroken full-recipe run's, bit for bit on the CPU). Cold (``warm_start=false``, or a Ray executor, whose workers
hold no checkpoints): each rung retrains from scratch with a k-epoch schedule (from 1 to 3 epochs costs 3). With a
source without epochs (table, proxy, supernet) there is nothing cheaper to train, every rung is the full value, and
moasha is random search with ``budget`` counted in unique archs (as every other strategy).

Resume: low-fidelity trainings are not logged; a resumed run trains them again (the same seed on the CPU gives
the same values, so the same promotions), and full evaluations are served from the log.
"""

from __future__ import annotations

import math

import numpy as np

from ..contracts import Callback, SearchResult
from ..errors import HwnasError
from ..params import Params
from ..pareto import pareto_order
from .random_search import RandomSearch
from .toolkit import Recorder, accuracy_index, cheap_objective_values


def rung_epochs(full: int, eta: int) -> list[int]:
    """The rungs: 1, eta, eta^2, ... up to half of ``full``, then ``full`` (``rung_epochs(8, 3) == [1, 3, 8]``,
    ``rung_epochs(4, 3) == [1, 4]``: a rung over half the full recipe, retrained from scratch, would cost nearly
    a full training)."""
    if int(eta) < 2:
        raise HwnasError(f"eta must be >= 2, got {eta}")
    out, r = [], 1
    while r < int(full) and (r == 1 or 2 * r <= int(full)):
        out.append(r)
        r *= int(eta)
    return out + [int(full)]


def promote(F: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` rows of F (minimised columns) promoted: whole non-dominated fronts in turn, the last
    one by crowding distance (NSGA-II survival order); rows with an unknown (nan) value come last."""
    F = np.asarray(F, dtype=float)
    ok = np.flatnonzero(np.all(np.isfinite(F), axis=1))
    order = ok[pareto_order(F[ok])] if len(ok) else ok
    order = np.concatenate([order, np.flatnonzero(~np.all(np.isfinite(F), axis=1))]).astype(int)
    return np.sort(order[: max(0, int(k))])


class MOASHA(Params):
    name = "moasha"

    def __init__(self, eta: int = 3, n_initial: int | None = None, warm_start: bool = True):
        self.eta = eta
        self.n_initial = n_initial
        self.warm_start = warm_start

    def run(self, space, evaluator, budget: int, rng: np.random.Generator,
            callback: Callback | None = None) -> SearchResult:
        source = getattr(evaluator, "accuracy", None)
        if not hasattr(source, "fidelity_values"):
            result = RandomSearch().run(space, evaluator, budget, rng, callback)
            result.strategy = self.name
            result.config = {**self.get_params(), "budget_unit": "unique archs (no fidelity: the accuracy "
                             "source does not train)", **{k: v for k, v in result.config.items() if k.startswith("hv_")}}
            return result
        rungs = rung_epochs(source.full_epochs, self.eta)
        n0 = int(self.n_initial or self.eta ** (len(rungs) - 1))
        if n0 < 1:
            raise HwnasError(f"n_initial must be >= 1, got {n0}")
        return _Run(self, space, evaluator, int(budget), rng, Recorder(evaluator, callback), rungs, n0).go()


class _Run:
    """One moasha search: brackets of successive halving until the epoch budget is spent."""

    def __init__(self, strategy, space, evaluator, budget, rng, rec, rungs, n0):
        self.s, self.space, self.ev, self.budget, self.rng, self.rec = strategy, space, evaluator, budget, rng, rec
        self.rungs, self.n0 = rungs, n0
        in_process = getattr(getattr(evaluator, "executor", None), "name", "in-process") == "in-process"
        self.warm = bool(strategy.warm_start) and in_process
        # epochs a rung adds per arch: warm, what the previous rung left to train; cold, the whole rung again; times
        # the trainings each value averages (--train-seeds)
        self.per = int(getattr(evaluator.accuracy, "seeds", 1))
        self.step_epochs = [self.per * (r - (p if self.warm else 0)) for p, r in zip([0, *rungs], rungs)]
        self.acc_i = accuracy_index(evaluator.objectives)
        self.cost_i = [j for j in range(len(evaluator.objectives)) if j != self.acc_i]
        self.spent, self.step, self.low = 0, 0, 0
        self.seen = {e.arch.arch_id for e in evaluator.evaluations()}
        self._counts: dict = {}

    def left(self) -> int:
        return self.budget - self.spent

    def cost(self, n: int) -> int:
        """Epochs a bracket of ``n`` archs spends: n at rung 0, ceil(n/eta) at rung 1, ..."""
        total = 0
        for r in self.step_epochs:
            total += n * r
            n = math.ceil(n / self.s.eta)
        return total

    def go(self) -> SearchResult:
        if self.budget < 1:
            raise HwnasError(f"budget must be >= 1 training epochs, got {self.budget}")
        while self.left() >= self.step_epochs[0]:
            n = min(self.n0, self.space.size() - len(self.seen))
            while n > 0 and self.cost(n) > self.left():  # a bracket starts only where it can end in a full value
                n -= 1
            archs = self.space.sample_distinct(n, self.rng, exclude=self.seen, max_tries=1000 * max(n, 1)) if n > 0 else []
            if not archs:
                break
            self.seen.update(a.arch_id for a in archs)
            self.bracket(archs)
        unit = "training epochs" + (f" (each value the mean of {self.per} trainings)" if self.per > 1 else "")
        cfg = {**self.s.get_params(), "rungs": self.rungs, "budget_unit": unit,
               "warm_start": self.warm if self.warm or not self.s.warm_start else "off: a Ray executor's workers "
               "hold no checkpoints (each rung retrained from scratch)",
               "epochs_spent": int(self.spent), "low_fidelity_trainings": int(self.low)}
        return self.rec.result(self.s.name, self.space, cfg)

    def bracket(self, archs) -> None:
        source = self.ev.accuracy
        for i, (epochs, cost) in enumerate(zip(self.rungs, self.step_epochs)):
            archs = archs[: self.left() // cost]
            if not archs:
                return
            self.spent += cost * len(archs)
            self.step += 1
            if i == len(self.rungs) - 1:
                self.ev.evaluate(archs)
                self.rec.record(self.step, rung_epochs=epochs, trained=len(archs), epochs_spent=self.spent)
                return
            err, _ = source.fidelity_values(self.space, archs, "error", epochs, warm=self.warm)
            self.low += len(archs)
            cheap = cheap_objective_values(self.ev, self.space, archs, self.cost_i, self._counts)
            F = np.column_stack([err] + [cheap.get(j, np.zeros(len(archs))) for j in self.cost_i])
            keep = promote(F, math.ceil(len(archs) / self.s.eta))
            self.rec.record(self.step, rung_epochs=epochs, trained=len(archs), epochs_spent=self.spent)
            archs = [archs[k] for k in keep]
            if self.warm:
                source.keep_checkpoints(archs)
