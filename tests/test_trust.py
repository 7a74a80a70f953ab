"""How far to trust the accuracy axis (``trust.json``, issue #22): measured in the run for ``--accuracy train``
(a second training seed on archs spanning the evaluated range), stated, not invented, for other sources."""

from __future__ import annotations

import json

import pytest

from hwnas.cli.main import main
from hwnas.errors import HwnasError
from hwnas.search import make_config, run_search
from hwnas.search.trust import spanning

from search_fixtures import table_args, write_nb201_tables


def _quick_train(budget=4, trust_archs=3, **extra):
    """A tiny real training search: error vs MACs (counted, so no device in the loop)."""
    return make_config({"space": "nb201", "space_opt": {"C": 4, "N": 1, "input_size": 8}, "strategy": "random",
                        "objective": ["error", "macs"], "accuracy": "train", "dataset": "digits", "epochs": 1,
                        "max_train": 200, "budget": budget, "seed": 0, "trust_archs": trust_archs, **extra})


def test_a_train_search_measures_its_seed_spread_and_the_report_shows_it(tmp_path):
    out = tmp_path / "run"
    result = run_search(_quick_train(), out)
    trust = json.loads((out / "trust.json").read_text())
    assert trust["measured"] is True and trust["accuracy_source"] == "train"
    assert trust["n_archs"] == 3 and trust["seeds"] == [0, 1] and len(trust["archs"]) == 3
    # the first value of each arch is the search's own; the second comes from training seed 1 on the same splits
    searched = {e.arch.arch_id: e.values[0] for e in result.evaluations}
    for a in trust["archs"]:
        assert a["error_search"] == pytest.approx(searched[a["arch_id"]], abs=1e-3)
        assert a["seed2_source"].startswith("trained:digits(val, 1 epochs") and a["seed2_source"].endswith("seed 1)")
    diffs = [abs(a["error_seed2"] - a["error_search"]) for a in trust["archs"]]
    assert max(diffs) > 0  # another seed really trained another model
    assert trust["median_abs_diff_points"] == pytest.approx(sorted(diffs)[1], abs=1e-3)
    assert -1 <= trust["kendall_tau"] <= 1 and trust["interval"]["points"] > 0
    assert trust["val_images"] == 359 and trust["cost"]["trainings"] == 3 and trust["cost"]["wall_s"] > 0
    assert result.config["accuracy_trust"] == trust["summary"]
    page = (out / "report.html").read_text()
    assert "How far to trust the accuracy axis" in page and "measured in this run" in page
    assert f"Kendall tau {trust['kendall_tau']:+.2f} over 3 archs" in page
    assert all(a["arch"] in page for a in trust["archs"])
    assert main(["report", str(out)]) == 0  # re-rendering keeps the section (it reads trust.json)
    assert "How far to trust the accuracy axis" in (out / "report.html").read_text()


def test_a_value_can_be_the_mean_of_several_trainings_and_the_check_uses_the_next_seeds(tmp_path):
    """--train-seeds K: each value is the mean validation accuracy of K trainings (seeds 0..K-1), as the trainings
    themselves give it; the seed check trains seeds K..2K-1, the test error of the front is the mean of K too."""
    from hwnas.evaluation.sources.train import TrainSource
    from hwnas.spaces import create_space

    out = tmp_path / "run"
    result = run_search(_quick_train(budget=3, trust_archs=2, train_seeds=2, ema=0.9), out)
    assert result.config["train_seeds"] == 2 and result.config["ema"] == 0.9
    space = create_space("nb201", C=4, N=1, input_size=8)
    one = TrainSource("digits", epochs=1, max_train=200, seed=0, ema=0.9)  # one training per value, splits of seed 0
    for e in result.evaluations:
        singles = [one.seed_values(space, [e.arch], "error", s)[0][0] for s in (0, 1)]
        assert e.values[0] == pytest.approx(sum(singles) / 2, abs=1e-9)
        assert e.sources[0].endswith("weight ema 0.9, mean of 2 trainings, seeds 0-1)")
    trust = json.loads((out / "trust.json").read_text())
    assert trust["seeds"] == [0, 2] and trust["train_seeds"] == 2 and trust["cost"]["trainings"] == 4
    assert all(a["seed2_source"].endswith("mean of 2 trainings, seeds 2-3)") for a in trust["archs"])
    assert "a second set of 2 training seeds" in trust["summary"]
    assert "error (search, mean of seeds 0-1)" in (out / "report.html").read_text()
    with pytest.raises(HwnasError, match="train seeds must be >= 1"):
        TrainSource("digits", seeds=0)
    # a rung averages as many trainings, and a warm promotion goes on from each of them: the full value is the
    # mean of the unbroken trainings
    arch = space.from_index(5)
    two = TrainSource("digits", epochs=2, max_train=200, seeds=2)
    low, prov = two.fidelity_values(space, [arch], "error", 1, warm=True)
    assert prov[0].endswith("mean of 2 trainings, seeds 0-1)") and "epoch 1 of 2" in prov[0]
    assert len(two._kept[arch.arch_id]) == 2
    assert two.values(space, [arch], "error")[0][0] == TrainSource("digits", epochs=2, max_train=200, seeds=2).values(
        space, [arch], "error")[0][0]
    # moasha's budget counts the epochs of every training: a 2-seed value costs twice the epochs
    cfg = _quick_train(budget=6, trust_archs=0, train_seeds=2, epochs=2, strategy="moasha",
                       strategy_opt={"eta": 2, "n_initial": 2})
    params = run_search(cfg, tmp_path / "moasha").config["strategy_params"]
    assert params["epochs_spent"] == 6 and params["low_fidelity_trainings"] == 2  # 2 x (1 + 1) epochs, then 1 x 2
    assert params["budget_unit"] == "training epochs (each value the mean of 2 trainings)"


def test_the_cli_prints_the_trust_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["pareto-search", "--space", "nb201", "--space-opt", "C=4", "--space-opt", "N=1",
                 "--space-opt", "input_size=8", "--strategy", "random", "--objective", "error", "--objective", "macs",
                 "--accuracy", "train", "--epochs", "1", "--max-train", "200", "--budget", "3", "--out", str(out),
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "accuracy axis: a second training seed on 3 archs" in text and "(trust.json)" in text


def test_the_seed_check_can_be_turned_off_and_is_validated(tmp_path):
    out = tmp_path / "run"
    run_search(_quick_train(budget=2, trust_archs=0), out)
    trust = json.loads((out / "trust.json").read_text())
    assert trust["measured"] is False and trust["interval"] is None and "not measured" in trust["summary"]
    with pytest.raises(HwnasError, match="trust_archs must be >= 0"):
        _quick_train(trust_archs=-1)


def test_a_table_search_says_its_accuracy_is_imported_with_no_interval(tmp_path):
    tables = write_nb201_tables(tmp_path)
    out = tmp_path / "run"
    assert main(table_args(tables, budget=10, population=5) + ["--out", str(out)]) == 0
    trust = json.loads((out / "trust.json").read_text())
    assert trust["measured"] is False and trust["interval"] is None and trust["accuracy_source"] == "table"
    assert "imported" in trust["summary"]
    page = (out / "report.html").read_text()
    assert "How far to trust the accuracy axis" in page and "no interval is invented" in page


def test_spanning_picks_evenly_spaced_ranks_of_finite_values():
    from hwnas.contracts import Arch, Evaluation

    evals = [Evaluation(Arch("nb201", (i, 0, 0, 0, 0, 0)), (float(v), 1.0), ("s", "s"))
             for i, v in enumerate([5, 1, 9, float("nan"), 3, 7, 2, 8, 4, 6])]
    picked = [e.values[0] for e in spanning(evals, 0, 3)]
    assert picked == [2.0, 5.0, 8.0]  # ranks 1, 4, 7 of the 9 finite values 1..9 (band midpoints)
    assert len(spanning(evals, 0, 20)) == 9
