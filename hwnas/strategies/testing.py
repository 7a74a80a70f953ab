"""A reusable conformance test for search strategies (as scikit-learn's ``check_estimator``).

    from hwnas.strategies.testing import check_strategy
    check_strategy(MyStrategy())          # raises AssertionError naming what is wrong

It runs the strategy on a small toy space whose objectives come from synthetic tables through the real
``ArchEvaluator`` (no torch, milliseconds), and checks the contract: the budget counts unique archs and is
reached exactly; the result lists every evaluation in evaluation order; the history has one row per
generation with ``step``, ``n_evals``, ``hypervolume``, the callback sees every row; the same seed gives the
same run and a run resumed from a partial evaluation log replays to the same result; constraints are honoured
by ``SearchResult.pareto``; a space smaller than the budget ends the search.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import numpy as np

from ..contracts import Arch, InvalidArchError
from ..spaces.base import GeneSpace


class ToySpace(GeneSpace):
    """A tiny categorical space for tests: ``n_genes`` genes with ``choices`` values each; no network."""

    name = "toy"

    def __init__(self, n_genes: int = 5, choices: int = 4):
        self.n_genes, self.choices = int(n_genes), int(choices)

    def cardinalities(self):
        return (self.choices,) * self.n_genes

    def to_string(self, arch: Arch) -> str:
        return "-".join(map(str, self.check(arch).genes))

    def from_string(self, s: str) -> Arch:
        try:
            return self.make([int(t) for t in str(s).strip().split("-")])
        except ValueError:
            raise InvalidArchError(f"toy: malformed arch string {s!r}") from None

    def input_shape(self):
        return (1, 4, 4)

    def all_archs(self) -> list[Arch]:
        return [self.make(np.unravel_index(i, self.cardinalities())) for i in range(self.size())]


def write_toy_tables(space: ToySpace, directory: Path, seed: int = 0) -> tuple[Path, Path]:
    """Synthetic accuracy and latency tables with a real trade-off: bigger genes = more accurate and slower."""
    rng = np.random.default_rng(seed)
    directory = Path(directory)
    card = np.asarray(space.cardinalities())
    w_acc = rng.uniform(0.5, 1.5, len(card))
    w_lat = rng.uniform(0.5, 1.5, len(card))
    acc_path, lat_path = directory / "toy_accuracy.csv", directory / "toy_latency.csv"
    with acc_path.open("w", newline="") as fa, lat_path.open("w", newline="") as fl:
        wa, wl = csv.writer(fa), csv.writer(fl)
        wa.writerow(["arch", "test_accuracy"])
        wl.writerow(["arch", "latency_ms", "energy_mj"])
        for arch in space.all_archs():
            g = np.asarray(arch.genes, dtype=float) / np.maximum(card - 1, 1)
            acc = 60 + 35 * (1 - np.exp(-2 * (w_acc @ np.sqrt(g)) / len(g))) + rng.normal(0, 0.5)
            lat = 1 + 10 * (w_lat @ g) / len(g) + rng.normal(0, 0.1)
            wa.writerow([space.to_string(arch), f"{acc:.4f}"])
            wl.writerow([space.to_string(arch), f"{lat:.4f}", f"{2 * lat:.4f}"])
    return acc_path, lat_path


def toy_evaluator(space: ToySpace, directory: Path, constraints=(), log: Path | None = None):
    from ..evaluation import EvaluatorSpec, build_evaluator

    acc, lat = Path(directory) / "toy_accuracy.csv", Path(directory) / "toy_latency.csv"
    if not acc.exists():
        write_toy_tables(space, directory)
    spec = EvaluatorSpec(objectives=["error", "latency_ms@toydev"], constraints=list(constraints),
                         accuracy=f"table:{acc}", latency=[f"toydev=table:{lat}"])
    return build_evaluator(space, spec, log=log)


def _ids(result) -> list[str]:
    return [e.arch.arch_id for e in result.evaluations]


def check_strategy(strategy, budget: int = 60, seed: int = 0) -> None:
    """Assert that ``strategy`` honours the search contract (see the module docstring)."""
    space = ToySpace()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_toy_tables(space, tmp)
        ids = _check_run(strategy, space, tmp, budget, seed)
        _check_seeding(strategy, space, tmp, budget, seed, ids)
        _check_resume(strategy, space, tmp, budget, seed, ids)

        # 4. constraints: the front honours them
        ev3 = toy_evaluator(space, tmp, constraints=["latency_ms@toydev<=4"])
        con = strategy.run(space, ev3, budget, np.random.default_rng(seed))
        assert ev3.n_unique == budget
        if con.any_feasible:
            assert all(e.values[1] <= 4 for e in con.pareto()), "the front must satisfy the constraints"

        # 5. a space smaller than the budget ends the search
        small = ToySpace(n_genes=2, choices=3)
        small_dir = tmp / "small"
        small_dir.mkdir()
        ev4 = toy_evaluator(small, small_dir)
        res4 = strategy.run(small, ev4, 50, np.random.default_rng(seed))
        assert ev4.n_unique <= small.size() and len(res4.evaluations) == ev4.n_unique


def _check_run(strategy, space, tmp: Path, budget: int, seed: int) -> list[str]:
    """1. a run: budget of unique archs reached exactly, result well formed, history and callback. Returns the
    evaluated arch ids (the run is logged to ``tmp/log.jsonl``)."""
    from ..contracts import SearchResult
    from ..pareto import non_dominated_mask

    rows: list[dict] = []
    ev = toy_evaluator(space, tmp, log=tmp / "log.jsonl")
    result = strategy.run(space, ev, budget, np.random.default_rng(seed), callback=rows.append)
    assert isinstance(result, SearchResult), f"run() must return a SearchResult, got {type(result).__name__}"
    assert result.strategy == strategy.name, f"result.strategy {result.strategy!r} != {strategy.name!r}"
    assert result.space == space.name
    assert tuple(result.objectives) == tuple(ev.objectives), "result.objectives must be the evaluator's"
    assert ev.n_unique == budget, f"spent {ev.n_unique} unique evaluations, budget {budget}"
    ids = _ids(result)
    assert len(ids) == len(set(ids)) == budget, "result.evaluations must list each unique arch once"
    assert ids == [e.arch.arch_id for e in ev.evaluations()], "result.evaluations must be in evaluation order"
    assert result.history, "history must have one row per generation"
    for row in result.history:
        assert {"step", "n_evals", "hypervolume"} <= set(row), f"history row lacks keys: {row}"
    n_evals = [r["n_evals"] for r in result.history]
    assert n_evals == sorted(n_evals) and n_evals[-1] == budget, f"history n_evals {n_evals}"
    assert rows == result.history, "the callback must see every history row"
    front = result.pareto()
    assert front, "a run must have a Pareto front"
    assert non_dominated_mask(np.array([e.values for e in front])).all()
    return ids


def _check_seeding(strategy, space, tmp: Path, budget: int, seed: int, ids: list[str]) -> None:
    """2. same seed, same run; another seed, another run."""
    again = strategy.run(space, toy_evaluator(space, tmp), budget, np.random.default_rng(seed))
    assert _ids(again) == ids, "the same seed must give the same search"
    other = strategy.run(space, toy_evaluator(space, tmp), budget, np.random.default_rng(seed + 1))
    assert _ids(other) != ids, "another seed must give another search"


def _check_resume(strategy, space, tmp: Path, budget: int, seed: int, ids: list[str]) -> None:
    """3. resume: an evaluator preloaded with the first part of the log replays to the same result."""
    from ..evaluation import read_log

    logged = read_log(tmp / "log.jsonl")
    assert [e.arch.arch_id for e in logged] == ids
    ev2 = toy_evaluator(space, tmp)
    ev2.preload(logged[: budget // 2])
    resumed = strategy.run(space, ev2, budget, np.random.default_rng(seed))
    assert _ids(resumed) == ids and not ev2.replay_diverged, "a resumed run must replay to the same result"
    assert ev2.n_computed == budget - budget // 2, "a resumed run must not recompute logged evaluations"
