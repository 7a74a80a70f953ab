"""``--strategy auto`` (the default): mobo when every cost objective is cheap, else nsga2; config.yaml says why."""

import types

import pytest
import yaml

from hwnas.contracts import Objective
from hwnas.search import make_config, run_search
from hwnas.strategies import choose_strategy

from search_fixtures import write_nb201_tables


def fake_evaluator(objectives, cheap):
    costs = {o.label: types.SimpleNamespace(cheap=cheap) for o in objectives if o.device}
    return types.SimpleNamespace(objectives=tuple(objectives), costs=costs)


@pytest.mark.parametrize("objectives, cheap, opts, expected, why", [
    ([Objective("error"), Objective("latency_ms", device="d")], True, {}, "mobo", "cheap source"),
    ([Objective("error"), Objective("params")], False, {}, "mobo", "cheap source"),
    ([Objective("error"), Objective("latency_ms", device="d")], False, {}, "nsga2", "latency_ms@d has no cheap"),
    ([Objective("error"), Objective("latency_ms", device="d")], True, {"population_size": 8}, "nsga2", "strategy-opt"),
    ([Objective("params"), Objective("macs")], True, {}, "nsga2", "no accuracy objective"),
])
def test_choice(objectives, cheap, opts, expected, why):
    name, reason = choose_strategy(fake_evaluator(objectives, cheap), opts)
    assert name == expected and why in reason


def test_config_yaml_says_which_strategy_ran_and_why(tmp_path):
    acc, lat = write_nb201_tables(tmp_path)
    cfg = make_config({}, {"objective": ["error", "latency_ms"], "accuracy": f"table:{acc}",
                           "latency": [f"table:{lat}"], "budget": 25, "seed": 0})
    assert cfg.strategy == "auto"
    result = run_search(cfg, tmp_path / "run")
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["strategy"] == "auto" and saved["strategy_ran"] == "mobo" and "cheap source" in saved["strategy_why"]
    assert len(result.evaluations) == 25
