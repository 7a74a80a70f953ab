"""The cheap-cost MOBO strategy (``mobo``): its hypervolume-improvement helper, surrogate and behaviour."""

import numpy as np
import pytest

from hwnas.errors import HwnasError
from hwnas.pareto import hypervolume, non_dominated_mask
from hwnas.strategies import create_strategy
from hwnas.spaces.base import one_hot
from hwnas.strategies.mobo import RidgeEnsemble, hv_improvement_2d
from hwnas.strategies.testing import ToySpace, toy_evaluator


def test_hv_improvement_matches_the_exact_hypervolume():
    rng = np.random.default_rng(0)
    ref = np.array([1.1, 1.1])
    for _ in range(5):
        F = rng.uniform(0, 1, (12, 2))
        F = F[non_dominated_mask(F)]
        P = rng.uniform(-0.2, 1.3, (40, 2))
        gain = hv_improvement_2d(F, P, ref)
        base = hypervolume(F, ref)
        exact = np.array([hypervolume(np.vstack([F, p]), ref) - base for p in P])
        assert np.allclose(gain, exact, atol=1e-12)
    # an empty front: the box between the point and the reference
    assert np.allclose(hv_improvement_2d(np.empty((0, 2)), np.array([[0.1, 0.6]]), ref), [1.0 * 0.5])


def test_gene_features_and_ridge_ensemble():
    X = one_hot(np.array([[0, 1], [2, 0]]), (3, 2), pairwise=True)
    assert X.shape == (2, 3 + 2 + 6) and np.all(X.sum(1) == 3)
    assert one_hot(np.array([[0, 1]]), (3, 2)).shape == (1, 5)
    rng = np.random.default_rng(1)
    A = rng.normal(size=(80, 5))
    y = A @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 4.0
    model = RidgeEnsemble(n_members=6, alpha=1e-6, seed=0).fit(A, y)
    mean, std = model.predict(A)
    assert np.allclose(mean, y, atol=1e-3) and std.max() < 1e-3
    noisy = RidgeEnsemble(n_members=6, alpha=1.0, seed=0).fit(A, y + rng.normal(0, 1, len(y)))
    assert noisy.predict(A)[1].mean() > 0.01  # bootstrap members disagree on noisy data


def _hv_of(values, ref):
    return hypervolume(values[non_dominated_mask(values)], ref)


def test_mobo_spends_budget_on_accuracy_only_and_beats_random_and_nsga2(tmp_path):
    space = ToySpace(n_genes=6, choices=5)
    everything = toy_evaluator(space, tmp_path).evaluate(space.all_archs())
    ref = everything.max(axis=0)
    scores = {"mobo": [], "random": [], "nsga2": []}
    for seed in range(3):
        for name in scores:
            ev = toy_evaluator(space, tmp_path)
            res = create_strategy(name).run(space, ev, 60, np.random.default_rng(seed))
            assert ev.n_unique == 60
            scores[name].append(_hv_of(res.values(), ref))
            if name == "mobo":
                assert res.config["cheap"] == ["latency_ms@toydev"] and res.config["predicted"] == ["error"]
                assert res.config["pool"] == space.size()
    assert np.mean(scores["mobo"]) > np.mean(scores["nsga2"]) > np.mean(scores["random"]) - 1e-9
    assert min(scores["mobo"]) > max(scores["random"])


def test_mobo_cheap_bounds_keep_the_budget_on_feasible_archs(tmp_path):
    space = ToySpace(n_genes=5, choices=4)
    ev = toy_evaluator(space, tmp_path, constraints=["latency_ms@toydev<=4"])
    create_strategy("mobo", n_init=5).run(space, ev, 40, np.random.default_rng(0))
    assert all(e.values[1] <= 4 for e in ev.evaluations())  # latency is known before evaluation


def test_mobo_without_cheap_costs_predicts_them(tmp_path):
    from hwnas.contracts import Objective
    from hwnas.contracts import Evaluation

    space = ToySpace(n_genes=4, choices=3)
    inner = toy_evaluator(space, tmp_path)

    class Opaque:  # the same objectives, but no cost source to query for free
        objectives = (Objective("error"), Objective("latency_ms", device="toydev"))

        def evaluate(self, archs):
            return inner.evaluate(archs)

        def evaluations(self) -> list[Evaluation]:
            return inner.evaluations()

        @property
        def n_unique(self):
            return inner.n_unique

    res = create_strategy("mobo", n_init=5, batch_size=4).run(space, Opaque(), 30, np.random.default_rng(0))
    assert inner.n_unique == 30 and res.config["cheap"] == []
    assert res.config["predicted"] == ["error", "latency_ms@toydev"]


def test_mobo_bad_parameters():
    with pytest.raises(HwnasError, match="n_init and batch_size"):
        create_strategy("mobo", batch_size=0).run(ToySpace(), None, 10, np.random.default_rng(0))


def test_focus_transform_clips_then_logs_and_inverts():
    from hwnas.strategies.mobo import focus_transform

    y = np.array([5.0, 6.0, 10.0, 40.0, 90.0])
    t, back = focus_transform(y, None)
    assert np.allclose(t, np.log(y)) and np.allclose(back(t), y)
    t, back = focus_transform(y, 0.5)  # everything worse than the median (10) looks like the median
    assert np.allclose(back(t), [5.0, 6.0, 10.0, 10.0, 10.0])
    t, back = focus_transform(np.array([-1.0, 2.0]), None)  # not all positive: no log
    assert np.allclose(t, [-1.0, 2.0]) and np.allclose(back(t), t)


def test_stratified_start_covers_the_cost_axis():
    from hwnas.strategies.mobo import CheapCostMOBO

    cost = np.arange(100, dtype=float)[::-1]  # pool index i costs 99 - i
    picks = CheapCostMOBO(init="stratified")._initial(np.arange(100), {1: cost}, 10, np.random.default_rng(0))
    assert sorted(np.floor(cost[picks] / 10).astype(int)) == list(range(10))  # one pick in each tenth
    rand = CheapCostMOBO(init="random")._initial(np.arange(100), {1: cost}, 10, np.random.default_rng(0))
    assert len(set(rand)) == 10 and sorted(np.floor(cost[rand] / 10).astype(int)) != list(range(10))


def test_tree_ensemble_and_blend_spread():
    from hwnas.strategies.mobo import Blend, TreeEnsemble

    rng = np.random.default_rng(2)
    A = rng.normal(size=(60, 4))
    y = np.where(A[:, 0] > 0, 3.0, -1.0) + 0.5 * A[:, 1]
    B = rng.normal(size=(40, 4))  # unseen points
    yb = np.where(B[:, 0] > 0, 3.0, -1.0) + 0.5 * B[:, 1]
    trees = TreeEnsemble(n_trees=32, seed=0).fit(A, y)
    mean, std = trees.predict(B)
    assert np.corrcoef(mean, yb)[0, 1] > 0.9 and std.mean() > 0.05  # the trees disagree away from the data
    blend = Blend(RidgeEnsemble(4, 1.0, 0), TreeEnsemble(16, 0)).fit(A, y)
    bm, bs = blend.predict(B)
    assert np.corrcoef(bm, yb)[0, 1] > 0.9 and np.all(bs > 0)


@pytest.mark.parametrize("params", [{"model": "trees"}, {"model": "blend"}, {"encoding": "genes", "focus": 0.5},
                                    {"init": "random"}, {"residual": "gp"},
                                    {"anchor": True}, {"explore_kappa": 2.0}])
def test_mobo_variants_spend_the_budget_exactly_and_beat_random(tmp_path, params):
    space = ToySpace(n_genes=5, choices=4)
    everything = toy_evaluator(space, tmp_path).evaluate(space.all_archs())
    ref = everything.max(axis=0)
    ev = toy_evaluator(space, tmp_path)
    res = create_strategy("mobo", n_init=8, **params).run(space, ev, 40, np.random.default_rng(0))
    rnd = create_strategy("random").run(space, toy_evaluator(space, tmp_path), 40, np.random.default_rng(0))
    assert ev.n_unique == 40 and res.config["model"] == params.get("model", "ridge")
    assert _hv_of(res.values(), ref) > _hv_of(rnd.values(), ref)


@pytest.mark.parametrize("bad, match", [({"encoding": "paths"}, "encoding"), ({"focus": 1.5}, "focus"),
                                        ({"model": "gp"}, "model"), ({"init": "sobol"}, "init"),
                                        ({"residual": "knn"}, "residual")])
def test_mobo_rejects_unknown_settings(bad, match):
    with pytest.raises(HwnasError, match=match):
        create_strategy("mobo", **bad).run(ToySpace(), None, 10, np.random.default_rng(0))


def test_three_objective_picks_follow_the_exact_hypervolume_improvement():
    from hwnas.pareto import hypervolume
    from hwnas.strategies.mobo import hv_improvement_picks

    rng = np.random.default_rng(3)
    front = np.array([[0.2, 0.6, 0.6], [0.6, 0.2, 0.6], [0.6, 0.6, 0.2]])
    P = rng.random((40, 3))
    P[0] = [0.7, 0.7, 0.7]  # dominated by the front: never picked
    ref = np.full(3, 1.1)
    exact = np.array([hypervolume(np.vstack([front, p]), ref) - hypervolume(front, ref) for p in P])
    free = np.ones(len(P), dtype=bool)
    free[int(np.argmax(exact))] = False  # not free (a constraint): never picked, however good
    picks = hv_improvement_picks(front, P, P, free, 3, ref, np.random.default_rng(0), n_samples=20000)
    assert 0 not in picks and int(np.argmax(exact)) not in picks and len(picks) == 3
    best_free = int(np.argmax(np.where(free, exact, -1)))
    assert picks[0] == best_free  # the largest exact gain among the free candidates comes first
    assert hv_improvement_picks(front, P[:1], P[:1], free[:1], 2, ref, np.random.default_rng(0)) == []


def test_residual_gp_carries_a_surprise_to_neighbours_and_is_unsure_far_away():
    from hwnas.strategies.mobo import residual_gp

    codes = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 1], [3, 3, 3, 3], [1, 1, 1, 1]])
    done, cand = np.array([0, 4]), np.arange(5)
    mean, var = residual_gp(codes, done, cand, np.array([-0.3, 0.0]), noise_var=1e-4, ell=0.5)
    assert mean[0] == pytest.approx(-0.3, abs=0.01) and var[0] < 1e-3  # evaluated: its own residual, sure
    assert -0.3 < mean[1] < mean[2] < 0  # one gene away: most of the surprise; two away: less
    assert abs(mean[3]) < 0.01 and var[3] == pytest.approx(0.045, rel=0.01)  # far from both: the prior
