"""MONAS and DPP-Net through `hwnas pareto-search` and the recipes in search/."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
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
def test_recipes_resolve_to_a_space_and_a_strategy(name, monkeypatch, tmp_path):
    monkeypatch.setenv("NB201_DATA", str(tmp_path))  # the nb201 recipes name their tables under $NB201_DATA
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


@pytest.mark.parametrize("name", ["monas-peak-power.yaml", "monas-energy.yaml"])
def test_monas_power_recipes_run_with_tables_in_place_of_the_device(name, tmp_path, capsys):
    """The recipes' search (MONAS, peak power bound on the Titan X workstation) with the device and CIFAR-10
    replaced by tables over a reduced space: every target above 150 W gets the penalty reward."""
    import itertools

    space = create_space("monas_condensenet", depth_choices=(1, 2), growth_choices=(4, 8), input_size=8)
    archs = [space.make(g) for g in itertools.product(*[range(c) for c in space.cardinalities()])]
    rng = np.random.default_rng(0)
    acc, power = tmp_path / "acc.csv", tmp_path / "power.csv"
    acc.write_text("arch,test_accuracy\n" + "".join(f"{space.to_string(a)},{rng.uniform(60, 90):.2f}\n" for a in archs))
    power.write_text("arch,energy_mj,peak_power_w\n" + "".join(
        f"{space.to_string(a)},{rng.uniform(1, 5):.3f},{rng.uniform(100, 200):.1f}\n" for a in archs))
    out = tmp_path / "run"
    argv = ["pareto-search", "--recipe", str(ROOT / "search" / name), "--space-opt", "depth_choices=1-2",
            "--space-opt", "growth_choices=4-8", "--space-opt", "input_size=8", "--accuracy", f"table:{acc}",
            "--energy", f"titan-x-workstation=table:{power}", "--budget", "16", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    assert "16 unique archs evaluated" in capsys.readouterr().out
    config = yaml.safe_load((out / "config.yaml").read_text())
    best = space.from_string(config["strategy_params"]["best_arch"])
    peak = {r["arch"]: float(r["peak_power_w"]) for r in csv.DictReader(power.open())}
    assert peak[space.to_string(best)] <= 150  # the best reward is a feasible target
