"""MONAS and DPP-Net through `hwnas pareto-search` and the recipes in search/."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from hwnas.cli.main import main
from hwnas.search import load_recipe, make_config
from hwnas.spaces import create_space
from hwnas.strategies import create_strategy

from search_fixtures import write_nb201_tables

ROOT = Path(__file__).resolve().parent.parent
RECIPES = sorted(p.name for p in (ROOT / "search").glob("*.yaml") if p.name.startswith(("monas", "dppnet")))


def test_the_recipes_exist():
    assert {"monas.yaml", "monas-condensenet.yaml", "monas-alexnet.yaml", "dppnet.yaml", "monas-nb201-pixel2.yaml",
            "dppnet-nb201-pixel2.yaml"} <= set(RECIPES)


@pytest.mark.parametrize("name", RECIPES)
def test_recipes_resolve_to_a_space_and_a_strategy(name):
    cfg = make_config(load_recipe(ROOT / "search" / name))
    assert cfg.strategy in ("monas", "dppnet")
    space = create_space(cfg.space, **cfg.space_opt)
    strategy = create_strategy(cfg.strategy, **cfg.strategy_opt)
    assert strategy.name == cfg.strategy and space.size() > 1


def test_dppnet_recipes_use_the_papers_fixed_k_and_name_its_devices():
    for name in ("dppnet.yaml", "dppnet-devices.yaml"):
        cfg = make_config(load_recipe(ROOT / "search" / name))
        space = create_space(cfg.space, **cfg.space_opt)
        strategy = create_strategy(cfg.strategy, **cfg.strategy_opt)
        assert strategy.k is not None and strategy.growth == "layer"
        assert cfg.budget == strategy.budget_needed(space)  # the budget follows from K and the maximum length
    devices = {o.partition("@")[2] for o in cfg.objective if "@" in o}
    assert devices == {"titan-x-workstation", "jetson-tx1", "cortex-a53-phone"}


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    return write_nb201_tables(tmp_path_factory.mktemp("tables"))


@pytest.mark.parametrize("strategy,opts", [("dppnet", ["epochs=20", "hidden=8"]),
                                           ("monas", ["reward=constrained", "batch_size=6"])])
def test_pareto_search_runs_the_reproductions(strategy, opts, tables, tmp_path, capsys):
    acc, lat = tables
    out = tmp_path / strategy
    argv = ["pareto-search", "--strategy", strategy, "--objective", "error", "--objective", "latency_ms@dev",
            "--constraint", "latency_ms@dev<=8", "--accuracy", f"table:{acc}", "--latency", f"dev=table:{lat}",
            "--budget", "30", "--no-progress", "--out", str(out)]
    for o in opts:
        argv += ["--strategy-opt", o]
    assert main(argv) == 0
    assert "30 unique archs evaluated" in capsys.readouterr().out
    with open(out / "pareto.csv", newline="") as fh:
        front = list(csv.DictReader(fh))
    assert front and all(float(r["latency_ms@dev"]) <= 8 for r in front)
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["strategy"] == strategy and config["strategy_params"]["budget"] == 30
    if strategy == "monas":
        assert config["strategy_params"]["best_arch"].startswith("|")
