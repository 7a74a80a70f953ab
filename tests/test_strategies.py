import numpy as np
import pytest

from hwnas.errors import HwnasError
from hwnas.strategies import STRATEGIES, create_strategy
from hwnas.strategies.testing import ToySpace, check_strategy, toy_evaluator


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_passes_the_conformance_check(name):
    check_strategy(create_strategy(name))


def test_unknown_strategy_and_bad_parameters_are_clear():
    with pytest.raises(HwnasError, match="unknown strategy 'nope'; known: .*nsga2"):
        create_strategy("nope")
    with pytest.raises(HwnasError, match="does not take these parameters"):
        create_strategy("nsga2", bogus=1)


def test_nsga2_beats_random_on_the_toy_problem(tmp_path):
    from hwnas.pareto import hypervolume

    space = ToySpace(n_genes=6, choices=5)
    everything = toy_evaluator(space, tmp_path).evaluate(space.all_archs())
    ref = everything.max(axis=0)
    hv = {}
    for name in ("nsga2", "random"):
        hv[name] = []
        for seed in range(3):
            res = create_strategy(name).run(space, toy_evaluator(space, tmp_path), 150, np.random.default_rng(seed))
            hv[name].append(hypervolume(np.array([e.values for e in res.pareto()]), ref))
    assert np.mean(hv["nsga2"]) > np.mean(hv["random"])


def test_check_strategy_catches_a_strategy_that_overspends(tmp_path):
    class Greedy:
        name = "greedy"

        def run(self, space, evaluator, budget, rng, callback=None):
            from hwnas.strategies.common import Recorder

            rec = Recorder(evaluator, callback)
            evaluator.evaluate([space.sample(rng) for _ in range(budget + 5)])
            rec.record(1)
            return rec.result(self.name, space)

    with pytest.raises(AssertionError):
        check_strategy(Greedy())
