"""MONAS and DPP-Net reproductions: controller, surrogate, Pareto selection, strategies on a planted table."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.contracts import Objective
from hwnas.errors import HwnasError
from hwnas.pareto import non_dominated_mask, pareto_order, pareto_ranks, pareto_select
from hwnas.spaces import create_space
from hwnas.contracts import Evaluation
from hwnas.strategies.dppnet import DPPNet, LSTMSurrogate
from hwnas.strategies.monas import MONAS


class PlantedEvaluator:
    """A table evaluator over a planted function of the genes: error (%) and a cost (ms).

    error = 5 + sum_i w_i[g_i] (+ a pairwise term), cost = sum_i c_i[g_i]; both seeded, no training.
    """

    def __init__(self, space, seed: int = 0, cost_values: bool = False, bound: float | None = None):
        r = np.random.default_rng(seed)
        cards = space.cardinalities()
        self.w = [r.uniform(0, 10, c) for c in cards]
        self.c = [r.uniform(0.5, 3, c) for c in cards]
        self.objectives = (Objective("error_pct"), Objective("latency_ms", bound=bound))
        self._cache: dict[str, Evaluation] = {}
        self.calls = 0
        if cost_values:  # like a table cost source (a cheap ValueSource): values without spending budget
            self.costs = {"latency_ms": self}
            self.cheap = True

    def _f(self, arch):
        g = arch.genes
        err = 5 + sum(w[x] for w, x in zip(self.w, g)) + (3.0 if len(g) > 1 and g[0] == g[1] else 0.0)
        cost = sum(c[x] for c, x in zip(self.c, g))
        return (float(err), float(cost))

    def values(self, space, archs, metric):
        assert metric == "latency_ms"
        return np.array([self._f(a)[1] for a in archs]), ["planted"] * len(archs)

    def evaluate(self, archs):
        self.calls += 1
        out = []
        for a in archs:
            e = self._cache.get(a.arch_id)
            if e is None:
                e = Evaluation(a, self._f(a), ("planted", "planted"))
                self._cache[a.arch_id] = e
            out.append(e.values)
        return np.array(out, dtype=float).reshape(len(archs), 2)

    def evaluations(self):
        return list(self._cache.values())

    @property
    def n_unique(self):
        return len(self._cache)


# -- MONAS ------------------------------------------------------------------------------------------------


def test_controller_policy_moves_toward_planted_optimum():
    """REINFORCE on a toy reward (number of genes equal to a planted target) raises p(target)."""
    import torch

    from hwnas.strategies.toolkit import torch_threads

    cards = [4, 3, 5, 4]
    target = torch.tensor([[2, 0, 4, 1]])
    ctl = MONAS.controller(cards, hidden=32, seed=0)
    opt = torch.optim.Adam(ctl.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(0)
    before = float(ctl.log_prob(target).detach())
    baseline = None
    with torch_threads(1):
        for _ in range(60):
            acts, logp, _ = ctl.sample(16, gen)
            R = (acts == target).float().sum(1)
            baseline = float(R.mean()) if baseline is None else 0.9 * baseline + 0.1 * float(R.mean())
            loss = -((R - baseline) * logp).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    after = float(ctl.log_prob(target).detach())
    assert after > before + 2.0, (before, after)
    assert np.exp(after) > 0.5  # the policy now mostly emits the optimum


def test_controller_input_is_fixed_zeros_by_default():
    """MONAS's controller reads a zero vector first; it is not trained unless learn_input=True."""
    import torch

    ctl = MONAS.controller([4, 3], hidden=8, seed=0)
    assert "start" not in dict(ctl.named_parameters()) and torch.count_nonzero(ctl.start) == 0
    opt = torch.optim.Adam(ctl.parameters(), lr=0.1)
    acts, logp, _ = ctl.sample(4, torch.Generator().manual_seed(0))
    (-logp.mean()).backward()
    opt.step()
    assert torch.count_nonzero(ctl.start) == 0  # still zeros after an update
    learned = MONAS.controller([4, 3], hidden=8, seed=0, learn_input=True)
    assert "start" in dict(learned.named_parameters())
    # feedback=False: zeros at every step, so the policy of step 2 does not depend on the sampled choice
    blind = MONAS.controller([4, 3], hidden=8, seed=0, feedback=False)
    def step2_gap(ctl):  # log p(second = 1 | first = 0) - log p(second = 1 | first = 3), via differences
        with torch.no_grad():
            lp1 = ctl._steps(2, actions=torch.tensor([[0, 1], [3, 1]]))[1]
            lp2 = ctl._steps(2, actions=torch.tensor([[0, 2], [3, 2]]))[1]
        return float((lp1[0] - lp1[1]) - (lp2[0] - lp2[1]))

    assert abs(step2_gap(blind)) < 1e-6 and abs(step2_gap(ctl)) > 1e-6
    space = create_space("nb201", C=4, N=1)
    for opts in ({}, {"learn_input": True}, {"feedback": False}):
        res = MONAS(batch_size=4, **opts).run(space, PlantedEvaluator(space), 12, np.random.default_rng(0))
        assert len(res.evaluations) == 12 and res.config["learn_input"] == opts.get("learn_input", False)


def test_monas_gives_the_penalty_to_targets_that_break_a_constraint():
    """A bound the reward does not use (e.g. peak power while the reward is on energy) still counts."""
    space = create_space("nb201", C=4, N=1)

    class Bounded(PlantedEvaluator):
        def violations(self, archs):
            return np.array([max(0.0, self._f(a)[1] - 8.0) for a in archs])

    res = MONAS(alpha=1.0, batch_size=8).run(space, Bounded(space, seed=1), 48, np.random.default_rng(0))
    ev = Bounded(space, seed=1)
    best = space.from_string(res.config["best_arch"])
    assert ev.violations([best])[0] == 0 and res.config["best_reward"] > 0
    free = MONAS(alpha=1.0, batch_size=8, penalise_violations=False).run(space, Bounded(space, seed=1), 48,
                                                                        np.random.default_rng(0))
    assert free.config["best_reward"] >= res.config["best_reward"]


def test_monas_mixed_reward_improves_over_its_first_samples():
    space = create_space("nb201", C=4, N=1)
    ev = PlantedEvaluator(space, seed=1)
    res = MONAS(alpha=1.0, batch_size=8, lr=0.05, hidden=32).run(space, ev, 160, np.random.default_rng(0))
    assert ev.n_unique <= 160
    F = res.values()
    first, last = F[:16, 0].mean(), F[-16:, 0].mean()
    assert last < first - 5, (first, last)  # accuracy-only reward: error falls
    assert res.strategy == "monas" and res.config["best_arch"].startswith("|")
    assert [h["step"] for h in res.history] == list(range(1, len(res.history) + 1))


def test_monas_cost_weight_moves_the_search_toward_cheap_nets():
    space = create_space("nb201", C=4, N=1)
    means = {}
    for alpha in (1.0, 0.0):
        ev = PlantedEvaluator(space, seed=1)
        res = MONAS(alpha=alpha, batch_size=8, lr=0.05, hidden=32).run(space, ev, 120, np.random.default_rng(3))
        means[alpha] = res.values()[-24:, 1].mean()
    assert means[0.0] < means[1.0]


def test_monas_rewards_and_errors():
    space = create_space("nb201", C=4, N=1)
    ev = PlantedEvaluator(space, seed=2, bound=8.0)
    res = MONAS(reward="constrained", batch_size=4, lr=0.05).run(space, ev, 40, np.random.default_rng(0))
    assert res.config["budget"] == 40 and ev.n_unique <= 40
    res = MONAS(reward="accuracy_floor", threshold=70.0, batch_size=4).run(space, PlantedEvaluator(space), 20,
                                                                          np.random.default_rng(0))
    assert len(res.evaluations) <= 20
    with pytest.raises(HwnasError, match="threshold"):
        MONAS(reward="constrained").run(space, PlantedEvaluator(space), 10, np.random.default_rng(0))
    with pytest.raises(HwnasError, match="unknown MONAS reward"):
        MONAS(reward="nope").run(space, PlantedEvaluator(space), 10, np.random.default_rng(0))


def test_monas_is_seeded():
    space = create_space("nb201", C=4, N=1)
    runs = [MONAS(batch_size=4).run(space, PlantedEvaluator(space), 30, np.random.default_rng(7)) for _ in range(2)]
    assert [e.arch for e in runs[0].evaluations] == [e.arch for e in runs[1].evaluations]


# -- DPP-Net -------------------------------------------------------------------------------------------------


def test_surrogate_learns_a_planted_function():
    r = np.random.default_rng(0)
    weights = r.normal(size=7)

    def f(seq):  # position-weighted sum plus an order-dependent term
        return sum(weights[t] * (1 + 0.3 * i) for i, t in enumerate(seq)) + (1.5 if seq[-1] == seq[0] else 0.0)

    seqs = [list(r.integers(1, 7, size=r.integers(1, 6))) for _ in range(300)]
    y = np.array([f(s) for s in seqs])
    sur = LSTMSurrogate(vocab=7, epochs=250, hidden=32, seed=0).fit(seqs[:200], y[:200])
    pred = sur.predict(seqs[200:])[:, 0]
    r2 = 1 - np.sum((pred - y[200:]) ** 2) / np.sum((y[200:] - y[200:].mean()) ** 2)
    assert r2 > 0.8, r2


def test_pareto_select_keeps_exactly_k_and_whole_first_front():
    r = np.random.default_rng(0)
    for trial in range(20):
        F = r.random((int(r.integers(5, 40)), int(r.integers(2, 4))))
        nd = np.flatnonzero(non_dominated_mask(F))
        for k in range(1, len(F) + 3):
            sel = pareto_select(F, k)
            assert len(sel) == min(k, len(F)) and len(set(sel.tolist())) == len(sel)
            if len(nd) <= k:  # fewer non-dominated than K: none of them is dropped
                assert set(nd.tolist()) <= set(sel.tolist())
            else:  # more: only non-dominated ones are kept
                assert set(sel.tolist()) <= set(nd.tolist())


def test_pareto_select_crowding_keeps_extremes():
    F = np.array([[0, 10], [1, 9], [2, 8], [3, 7], [10, 0], [5, 5.0]])
    sel = pareto_select(F, 3)
    assert {0, 4} <= set(sel.tolist())
    with pytest.raises(HwnasError):
        pareto_select(F, -1)


@pytest.mark.parametrize("cheap", [False, True])
def test_dppnet_on_nb201_grows_cells_within_budget(cheap):
    space = create_space("nb201", C=4, N=1)
    ev = PlantedEvaluator(space, seed=4, cost_values=cheap)
    res = DPPNet(k=6, epochs=60, hidden=16).run(space, ev, 200, np.random.default_rng(0))
    assert res.history[-1]["predicted"] == (["error_pct"] if cheap else ["error_pct", "latency_ms"])
    # 5 length-1 cells, then 6 per length for lengths 2..6
    assert ev.n_unique <= 5 + 6 * 5
    assert [h["length"] for h in res.history] == [1, 2, 3, 4, 5, 6]
    assert res.config["stopped"] == "max_length"
    assert res.history[1]["n_candidates"] == 5 * 5 and all(h["n_candidates"] == 6 * 5 for h in res.history[2:])
    if cheap:  # costs exact, accuracy predicted: the search beats as many random cells on hypervolume
        from hwnas.pareto import hypervolume

        ref = np.array([60.0, 20.0])
        r = np.random.default_rng(1)
        F_rand = PlantedEvaluator(space, seed=4).evaluate([space.sample(r) for _ in range(ev.n_unique)])
        assert hypervolume(res.values(), ref) > hypervolume(F_rand, ref)


def test_dppnet_auto_k_spends_the_budget_exactly():
    space = create_space("nb201", C=4, N=1)
    ev = PlantedEvaluator(space, seed=4)
    res = DPPNet(epochs=20, hidden=8).run(space, ev, 27, np.random.default_rng(0))
    assert ev.n_unique == 27 and res.config["stopped"] == "budget"
    assert res.config["k_used"][0] == -(-(27 - 5) // 5)  # ceil(left / lengths left)
    ev = PlantedEvaluator(space, seed=4)
    res = DPPNet(k=10, epochs=20, hidden=8).run(space, ev, 12, np.random.default_rng(0))
    assert ev.n_unique == 12 and res.config["stopped"] == "budget"
    ev = PlantedEvaluator(space, seed=4)
    res = DPPNet(k=2, epochs=20, hidden=8).run(space, ev, 100, np.random.default_rng(0))
    assert ev.n_unique <= 5 + 2 * 5 and res.config["stopped"] == "max_length"  # fixed K leaves budget unspent
    with pytest.raises(HwnasError):
        DPPNet(k=0).run(space, ev, 12, np.random.default_rng(0))


# check_strategy for monas and dppnet: tests/test_strategies.py runs it for every registered strategy.


def test_dppnet_grows_one_layer_per_step_on_the_dppnet_space():
    """The default growth: a Norm (3 children) or a Conv (6 children) by turn, from every (Norm, Conv) start."""
    space = create_space("dppnet", max_length=3, depths=(1,), growths=(4,), input_size=8)
    ev = PlantedEvaluator(space, seed=0)
    dpp = DPPNet(k=3, epochs=30, hidden=8)
    res = dpp.run(space, ev, 100, np.random.default_rng(0))
    assert res.config["progression"] == "SingleLayerProgression" and res.config["length_unit"] == "layers"
    assert [h["length"] for h in res.history] == [2, 3, 4, 5, 6]
    assert [h["n_candidates"] for h in res.history[1:]] == [18 * 3, 3 * 6, 3 * 3, 3 * 6]  # all 18 starts expand
    assert res.history[0]["k"] == 18 and all(h["k"] == 3 for h in res.history[1:])
    # fixed K: 18 starts + at most K new cells per longer length; the rest of the budget stays unspent
    assert dpp.budget_needed(space) == 18 + 3 * 4 == res.config["budget_needed"]
    assert ev.n_unique <= 30 and res.config["stopped"] == "max_length"
    singles = {len(space.single_layers(e.arch)) for e in res.evaluations}
    assert {2, 3, 4} <= singles <= {2, 3, 4, 5, 6}  # cells ending in a Norm (odd) are evaluated too
    # max_length is in single layers in this mode
    res = DPPNet(k=2, epochs=10, hidden=8, max_length=3).run(space, PlantedEvaluator(space), 100,
                                                             np.random.default_rng(0))
    assert [h["length"] for h in res.history] == [2, 3]
    with pytest.raises(HwnasError, match="growth"):
        DPPNet(growth="triple").run(space, ev, 10, np.random.default_rng(0))


def test_dppnet_pair_growth_option_on_the_dppnet_space():
    space = create_space("dppnet", max_length=3, depths=(1,), growths=(4,), input_size=8)
    ev = PlantedEvaluator(space, seed=0)
    res = DPPNet(k=3, epochs=30, hidden=8, growth="pair").run(space, ev, 100, np.random.default_rng(0))
    assert res.config["progression"] == "LayerProgression"
    lengths = sorted({len(space.layers(e.arch)) for e in res.evaluations})
    assert lengths == [1, 2, 3] and ev.n_unique == 18 + 3 + 3
    assert res.history[1]["n_candidates"] == 18 * 18 and res.history[2]["n_candidates"] == 3 * 18


def test_dppnet_takes_static_costs_from_the_graph_without_spending_budget():
    from hwnas.strategies.toolkit import cheap_objective_values

    space = create_space("monas_alexnet", layers=2, filter_choices=(4, 8), kernel_choices=(1, 3), input_size=8)

    class Ev:
        objectives = (Objective("error"), Objective("params"), Objective("latency_ms", device="cam"))
        costs = {}

    archs = [space.sample(np.random.default_rng(i)) for i in range(3)]
    out = cheap_objective_values(Ev(), space, archs, [1, 2], {})
    assert set(out) == {1}  # params counted; latency has no free source: the surrogate predicts it
    assert out[1].tolist() == [space.static_costs(a).params for a in archs]


def test_monas_runs_on_its_alexnet_space():
    space = create_space("monas_alexnet")
    ev = PlantedEvaluator(space, seed=0)
    res = MONAS(batch_size=5).run(space, ev, 20, np.random.default_rng(0))
    assert ev.n_unique == 20 and res.config["best_arch"].count("-") == 4


def test_pareto_order_puts_infeasible_candidates_last_by_violation():
    F = np.array([[0, 0.0], [1, 1], [2, 2], [3, 3]])
    order = pareto_order(F, violation=np.array([2.0, 0, 1.0, 0]))
    assert order.tolist() == [1, 3, 2, 0]
    # the same rule as ranks: fronts of the feasible rows, then one rank per infeasible row by violation
    assert pareto_ranks(F, violation=np.array([2.0, 0, 1.0, 0])).tolist() == [3, 0, 2, 1]
    G = np.array([[0, 1.0], [1, 0], [1, 1], [2, 2], [0, 1]])
    assert pareto_ranks(G).tolist() == [0, 0, 1, 2, 0]  # duplicates share a front


def test_monas_handles_inactive_genes_of_mobilenet():
    space = create_space("mobilenet")
    ev = PlantedEvaluator(space, seed=0)
    res = MONAS(batch_size=4).run(space, ev, 12, np.random.default_rng(0))
    assert ev.n_unique == 12
    assert all(space.make(e.arch.genes) == e.arch for e in res.evaluations)  # canonical archs only
