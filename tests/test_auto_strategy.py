"""``--strategy auto`` (the default): mobo when every cost objective is cheap, else nsga2; config.yaml says why."""

import types

import pytest
import yaml

from hwnas.contracts import Objective
from hwnas.search import make_config, run_search
from hwnas.strategies import choose_strategy

from search_fixtures import write_nb201_tables


def fake_evaluator(objectives, cheap, fast_counts=True):
    costs = {o.label: types.SimpleNamespace(cheap=cheap) for o in objectives if o.device}
    space = types.SimpleNamespace(name="s", static_costs_fast=fast_counts)
    return types.SimpleNamespace(objectives=tuple(objectives), costs=costs, space=space)


@pytest.mark.parametrize("objectives, cheap, opts, expected, why", [
    ([Objective("error"), Objective("latency_ms", device="d")], True, {}, "mobo", "cheap source"),
    ([Objective("error"), Objective("params")], False, {}, "mobo", "cheap source"),
    ([Objective("error"), Objective("latency_ms", device="d")], False, {}, "nsga2", "latency_ms@d has no cheap"),
    ([Objective("error"), Objective("latency_ms", device="d")], True, {"population_size": 8}, "nsga2", "strategy-opt"),
    ([Objective("params"), Objective("macs")], True, {}, "nsga2", "no accuracy objective"),
    ([Objective("neg_synflow"), Objective("params")], False, {}, "mobo", "cheap source"),  # a proxy is no cost
])
def test_choice(objectives, cheap, opts, expected, why):
    name, reason = choose_strategy(fake_evaluator(objectives, cheap), opts)
    assert name == expected and why in reason


def test_static_counts_are_cheap_only_where_the_space_counts_a_pool_fast():
    from hwnas.spaces import create_space

    objectives = [Objective("error"), Objective("macs")]
    name, reason = choose_strategy(fake_evaluator(objectives, False, fast_counts=False), {})
    assert name == "nsga2" and "counted by building each network" in reason
    assert create_space("nb201").static_costs_fast and not create_space("mobilenet").static_costs_fast


def test_nb201_static_costs_per_op_multiset_equal_counting_each_graph():
    import numpy as np

    from hwnas.spaces import create_space
    from hwnas.spaces.base import count_costs

    for settings, n in (({"C": 8, "N": 1, "input_size": 8}, 30), ({}, 6)):  # the demo's cells and the benchmark's
        space = create_space("nb201", **settings)
        archs = space.sample_distinct(n, np.random.default_rng(1))
        archs += [space.make([g] * 6) for g in range(5)] + [space.make([0, 0, 0, 0, 0, 3]), space.make([4, 0, 1, 2, 3, 4])]
        for arch in archs:
            assert space.static_costs(arch) == count_costs(space.build(arch), space.input_shape()), space.to_string(arch)


def test_config_yaml_says_which_strategy_ran_and_why(tmp_path):
    acc, lat = write_nb201_tables(tmp_path)
    cfg = make_config({}, {"objective": ["error", "latency_ms"], "accuracy": f"table:{acc}",
                           "latency": [f"table:{lat}"], "budget": 25, "seed": 0})
    assert cfg.strategy == "auto"
    result = run_search(cfg, tmp_path / "run")
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["strategy"] == "auto" and saved["strategy_ran"] == "mobo" and "cheap source" in saved["strategy_why"]
    assert len(result.evaluations) == 25
