"""moasha (issue 26): rungs, multi-objective promotion, the epoch budget, low-fidelity values never taken for
full ones, and the journey of `hwnas pareto-search --strategy moasha --accuracy train:digits`."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from hwnas.errors import HwnasError
from hwnas.evaluation import EvaluatorSpec, build_evaluator
from hwnas.spaces import create_space
from hwnas.strategies import create_strategy
from hwnas.strategies.moasha import promote, rung_epochs
from hwnas.strategies.testing import check_strategy

from journeys import assert_search_results, read_csv, run_hwnas


def test_rungs_grow_by_eta_and_end_at_the_full_recipe():
    assert rung_epochs(8, 3) == [1, 3, 8]
    assert rung_epochs(9, 3) == [1, 3, 9]
    assert rung_epochs(2, 3) == [1, 2]
    assert rung_epochs(1, 3) == [1]
    assert rung_epochs(20, 2) == [1, 2, 4, 8, 20]
    assert rung_epochs(4, 3) == [1, 4]
    with pytest.raises(HwnasError):
        rung_epochs(8, 1)


def test_promotion_takes_whole_fronts_then_crowding():
    # rows 0, 1, 2 are the non-dominated front; 3 and 4 are dominated; 5 is unknown (nan) and ranks last
    F = np.array([[1.0, 9.0], [5.0, 5.0], [9.0, 1.0], [6.0, 6.0], [9.0, 9.0], [np.nan, 0.0]])
    assert promote(F, 3).tolist() == [0, 1, 2]
    assert promote(F, 2).tolist() == [0, 2]  # the front's extremes have infinite crowding distance
    assert promote(F, 4).tolist() == [0, 1, 2, 3]
    assert 5 not in promote(F, 5).tolist()
    # error alone (one objective): the best errors
    assert promote(np.array([[3.0], [1.0], [2.0]]), 1).tolist() == [1]


def test_moasha_passes_check_strategy_on_a_source_without_epochs():
    """A table has no fidelity: moasha is random search with the budget in unique archs (docs/search.md)."""
    check_strategy(create_strategy("moasha"))


@pytest.mark.parametrize(("warm", "spent", "low", "full", "rungs"), [
    (True, 10, 7, 3, [1, 2, 1, 2, 1, 2]),  # a bracket of 3: 3 x 1 epoch + 1 promoted x 1 more = 4; 4 + 4 + (1 + 1)
    (False, 10, 6, 2, [1, 2, 1, 2]),  # each rung from scratch: 3 x 1 + 1 x 2 = 5; two brackets = 10
])
def test_moasha_spends_epochs_and_only_full_values_reach_the_evaluator(tmp_path, warm, spent, low, full, rungs):
    space = create_space("nb201", C=4, N=1, input_size=8)
    spec = EvaluatorSpec(objectives=["error", "params"], accuracy="train:digits", epochs=2, max_train=200)
    ev = build_evaluator(space, spec, log=tmp_path / "log.jsonl")
    rows = []
    strategy = create_strategy("moasha", eta=3, n_initial=3, warm_start=warm)
    result = strategy.run(space, ev, 10, np.random.default_rng(0), rows.append)
    params = result.config
    assert params["rungs"] == [1, 2] and params["budget_unit"] == "training epochs"
    assert params["warm_start"] is warm
    assert params["epochs_spent"] == spent and params["low_fidelity_trainings"] == low
    assert ev.n_unique == full
    for e in ev.evaluations():
        assert "of 2" not in e.sources[0] and "2 epochs" in e.sources[0], e.sources[0]
    assert [r["rung_epochs"] for r in rows] == rungs
    logged = (tmp_path / "log.jsonl").read_text().splitlines()
    assert len(logged) == full  # the full evaluations: no low-fidelity value is logged
    # a full value that went on from its rung's checkpoint is the full recipe trained from scratch, bit for bit
    archs = [e.arch for e in ev.evaluations()]
    fresh = build_evaluator(space, spec).accuracy.values(space, archs, "error")[0]
    assert [e.values[0] for e in ev.evaluations()] == list(fresh)


def test_warm_rungs_go_on_where_the_last_stopped_and_keep_only_the_promoted():
    space = create_space("nb201", C=4, N=1, input_size=8)
    source = build_evaluator(space, EvaluatorSpec(objectives=["error"], accuracy="train:digits", epochs=3,
                                                  max_train=200)).accuracy
    a, b = space.sample_distinct(2, np.random.default_rng(1))
    one, prov = source.fidelity_values(space, [a, b], "error", 1, warm=True)
    assert all("epoch 1 of 3" in p for p in prov), prov
    source.keep_checkpoints([a])
    two, prov2 = source.fidelity_values(space, [a], "error", 2, warm=True)
    assert "epoch 2 of 3" in prov2[0]
    assert source.fidelity_values(space, [b], "error", 1, warm=True)[0][0] == one[1]  # b from scratch again
    assert source.fidelity_values(space, [a], "error", 1, warm=True)[0][0] == one[0]  # not from a's epoch 2
    source.keep_checkpoints([a])
    assert source.fidelity_values(space, [a], "error", 2, warm=True)[0][0] == two[0]
    source.keep_checkpoints([a])
    full = source.values(space, [a, b], "error")[0]  # a from its epoch-2 checkpoint, b from scratch
    fresh = type(source)("digits", epochs=3, max_train=200).values(space, [a, b], "error")[0]
    assert list(full) == list(fresh)
    assert source._kept == {}  # a's checkpoint was used up; b's was dropped when a alone was promoted
    assert one[0] != two[0]  # a went on training between the rungs


def test_low_fidelity_values_say_their_fidelity():
    space = create_space("nb201", C=4, N=1, input_size=8)
    spec = EvaluatorSpec(objectives=["error"], accuracy="train:digits", epochs=3, max_train=200)
    ev = build_evaluator(space, spec)
    arch = space.sample_distinct(1, np.random.default_rng(0))[0]
    vals, prov = ev.accuracy.fidelity_values(space, [arch], "error", 1)
    assert 0 <= vals[0] <= 100 and "1 of 3 epochs" in prov[0] and "seed 0" in prov[0], prov
    with pytest.raises(HwnasError):
        ev.accuracy.fidelity_values(space, [arch], "error", 4)


@pytest.mark.journey
def test_journey_moasha_pareto_search(tmp_path):
    out = tmp_path / "mf"
    ran = run_hwnas(["pareto-search", "--space", "nb201", "--space-opt", "C=4", "--space-opt", "N=1",
                     "--space-opt", "input_size=8", "--strategy", "moasha", "--strategy-opt", "eta=3",
                     "--strategy-opt", "n_initial=3", "--accuracy", "train:digits", "--epochs", "2",
                     "--objective", "error", "--objective", "params", "--budget", "10", "--seed", "0",
                     "--trust-archs", "0", "--out", out], cwd=tmp_path, timeout=120).ok()
    assert "moasha" in ran.text
    front, evals = assert_search_results(out, n_evals=3)
    for row in evals:
        assert row["fidelity"] == "full (2 of 2 epochs)"
        assert row["error_source"].startswith("trained:digits(val, 2 epochs"), row["error_source"]
    for row in front:
        assert " of " not in row["error_source"] and row["fidelity"].startswith("full")
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["strategy"] == "moasha"
    assert config["strategy_params"]["budget_unit"] == "training epochs"
    assert config["strategy_params"]["rungs"] == [1, 2]
    assert config["strategy_params"]["epochs_spent"] == 10 and config["strategy_params"]["warm_start"] is True
    history = read_csv(out / "history.csv")
    assert [int(r["rung_epochs"]) for r in history] == [1, 2, 1, 2, 1, 2]


@pytest.mark.journey
def test_journey_moasha_resume_reproduces_an_unbroken_run(tmp_path):
    """A run of 10 epochs resumed to 20 gives the unbroken 20-epoch run: the full values replay from the log, the
    low-fidelity trainings are trained again with the same seed and promote the same archs."""
    args = ["pareto-search", "--space", "nb201", "--space-opt", "C=4", "--space-opt", "N=1", "--space-opt",
            "input_size=8", "--strategy", "moasha", "--strategy-opt", "n_initial=3", "--accuracy", "train:digits",
            "--epochs", "2", "--objective", "error", "--objective", "params", "--trust-archs", "0", "--seed", "0"]
    run_hwnas(args + ["--budget", "10", "--out", tmp_path / "a"], cwd=tmp_path, timeout=120).ok()
    run_hwnas(["pareto-search", "--resume", tmp_path / "a", "--budget", "20"], cwd=tmp_path, timeout=120).ok()
    run_hwnas(args + ["--budget", "20", "--out", tmp_path / "b"], cwd=tmp_path, timeout=120).ok()
    a, b = read_csv(tmp_path / "a" / "evaluations.csv"), read_csv(tmp_path / "b" / "evaluations.csv")
    assert len(a) == 5  # brackets of 3 archs at 4 epochs each (1 + 1 + 1 at 1 epoch, 1 promoted: 1 more)
    assert [(r["arch_id"], r["error"], r["fidelity"]) for r in a] == [(r["arch_id"], r["error"], r["fidelity"]) for r in b]


def test_under_ray_the_rungs_run_cold_and_config_says_why():
    """Ray workers hold no checkpoints: a warm promotion would train from scratch but be counted as the epochs left."""
    from hwnas.evaluation.executors import InProcessExecutor

    class NamedRay(InProcessExecutor):  # the evaluator only asks the executor's name; no cluster is needed for that
        name = "ray"

    space = create_space("nb201", C=4, N=1, input_size=8)
    spec = EvaluatorSpec(objectives=["error", "params"], accuracy="train:digits", epochs=2, max_train=200)
    ev = build_evaluator(space, spec, executor=NamedRay())
    params = create_strategy("moasha", eta=3, n_initial=3).run(space, ev, 5, np.random.default_rng(0)).config
    assert params["warm_start"].startswith("off: a Ray executor") and params["epochs_spent"] == 5
    assert ev.n_unique == 1  # one cold bracket: 3 x 1 epoch + 1 x 2
