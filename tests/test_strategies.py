import numpy as np
import pytest

from hwnas.errors import HwnasError
from hwnas.strategies import STRATEGIES, create_strategy
from hwnas.strategies.testing import ToySpace, check_strategy, toy_evaluator


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_passes_the_conformance_check(name):
    check_strategy(create_strategy(name))


def test_unknown_strategy_and_bad_parameters_are_clear():
    for bad, message in [({"crossover": "one-point"}, "unknown crossover 'one-point'"),
                         ({"mutation": "swap"}, "unknown mutation 'swap'")]:
        with pytest.raises(HwnasError, match=message):
            create_strategy("nsga2", **bad).run(ToySpace(), None, 10, np.random.default_rng(0))
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
            from hwnas.strategies.toolkit import Recorder

            rec = Recorder(evaluator, callback)
            evaluator.evaluate([space.sample(rng) for _ in range(budget + 5)])
            rec.record(1)
            return rec.result(self.name, space)

    with pytest.raises(AssertionError):
        check_strategy(Greedy())


def test_nsga2_options_pass_the_conformance_check():
    check_strategy(create_strategy("nsga2", crossover="sbx", mutation="pm", population_size=12))
    check_strategy(create_strategy("nsga2", surrogate=True, space_aware=True, pool_factor=4, mutation="neighbour"))


def test_nb201_equivalence_matches_the_benchmark_and_simplify_keeps_the_function():
    from hwnas.spaces import create_space

    space = create_space("nb201")
    archs = space.all_archs()
    assert len({space.equivalence_key(a) for a in archs}) == 6466  # NAS-Bench-201's count of unique cells
    dead = space.from_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|")
    assert space.to_string(space.simplify(dead)) == \
        "|none~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"  # node 1 feeds nothing
    assert space.equivalence_key(dead) == space.equivalence_key(space.simplify(dead))
    # simplify only drops dead edges: the live-edge analysis, and a cell with no input-output path is all 'none'
    for a in archs[::97]:
        live = space.live_edges(a.genes)
        assert space.simplify(a).genes == tuple(g if on else 0 for g, on in zip(a.genes, live))
        assert space.has_path(a) == any(live)


def test_every_strategy_derives_its_parameters_from_its_constructor():
    import inspect

    for name, factory in STRATEGIES.items():
        params = create_strategy(name).get_params()
        assert list(params) == [p for p in inspect.signature(factory.__init__).parameters if p != "self"], name
        assert create_strategy(name, **params).get_params() == params, name


def test_one_budget_helper_counts_unique_archs_and_caps_at_the_space(tmp_path):
    from hwnas.strategies.toolkit import Budget

    space = ToySpace(n_genes=2, choices=3)
    ev = toy_evaluator(space, tmp_path)
    budget = Budget(ev, 50, space)
    assert budget.limit == space.size() == 9 and budget.remaining == 9
    archs = space.all_archs()
    kept, F = budget.evaluate(archs[:4] + archs[:2])
    assert len(kept) == 6 and F.shape == (6, 2) and budget.remaining == 5
    kept, _ = budget.evaluate(archs)  # only 5 new ones fit
    assert len(kept) == 4 + 5 and budget.exhausted and budget.known(archs[0]) is not None
    with pytest.raises(HwnasError):
        Budget(ev, 0, space)
