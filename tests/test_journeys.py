"""Journeys: the installed ``hwnas`` command run as a user types it (progress bar on), through a pipe as in a
CI log and under a pseudo-terminal, checked for what the user relies on: exit code, files, columns, provenance."""

from __future__ import annotations

import json

import pytest
import yaml

from journeys import assert_search_results, run_hwnas

pytestmark = pytest.mark.journey


def assert_trust_stated(out, ran, n_archs: int) -> dict:
    """trust.json measured a second training seed on ``n_archs`` archs; the CLI, report.html and config.yaml
    state the same measured tau and interval (issue #22: how far to trust the accuracy axis)."""
    trust = json.loads((out / "trust.json").read_text())
    assert trust["measured"] is True and trust["n_archs"] == n_archs and trust["seeds"] == [0, trust["train_seeds"]]
    assert -1 <= trust["kendall_tau"] <= 1 and trust["interval"]["points"] > 0
    tau, interval = f"{trust['kendall_tau']:+.2f}", f"{trust['interval']['points']:.2f}"
    assert f"Kendall tau {tau}" in trust["summary"] and f"+-{interval} points" in trust["summary"]
    assert trust["summary"] in ran.text  # the CLI prints it
    page = (out / "report.html").read_text()
    assert "How far to trust the accuracy axis" in page and "measured in this run" in page
    assert f"Kendall tau {tau} over {n_archs} archs" in page and f"&plusmn;{interval} points" in page
    assert yaml.safe_load((out / "config.yaml").read_text())["accuracy_trust"] == trust["summary"]
    return trust


def test_demo_search_runs_to_the_end_with_the_progress_bar_in_a_pipe(tmp_path):
    """The demo with tuning flags, its progress bar into a pipe as in a CI log (the terminal case is the
    no-argument demo below)."""
    out = tmp_path / "run"
    ran = run_hwnas(["pareto-search", "--budget", "4", "--trust-archs", "2", "--out", out], cwd=tmp_path,
                    mode="pipe").ok()
    assert "4 unique archs evaluated" in ran.text
    front, evals = assert_search_results(out, n_evals=4)
    assert all(r["error_source"].startswith("trained:digits(val") for r in evals)
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["budget"] == 4 and config["trust_archs"] == 2 and config["settings_from"]["trust_archs"] == "flag"
    assert_trust_stated(out, ran, n_archs=2)


def test_no_argument_demo_in_a_terminal(tmp_path):
    """`hwnas pareto-search` exactly as typed, nothing else: the whole embedded demo, in a terminal."""
    ran = run_hwnas(["pareto-search"], cwd=tmp_path, mode="tty", timeout=600).ok()
    (out,) = (tmp_path / "runs").iterdir()
    front, evals = assert_search_results(out)
    config = yaml.safe_load((out / "config.yaml").read_text())
    from hwnas.search import DEFAULT_RECIPE

    assert len(evals) == DEFAULT_RECIPE["budget"] == config["budget"]
    assert config["settings_from"]["space"] == "demo" and config["settings_from"]["out"] == "library default"
    # no host predictor in a fresh home: host latency measured in the loop, with the demo's quick protocol
    assert config["latency"] == ["host=measure:quick"] and config["measure_protocol"] == "quick"
    sources = [r["latency_ms@host_source"] for r in evals]
    measured = [s for s in sources if not s.startswith("failed:no path from input to output")]  # constant cells
    assert measured and all(s.startswith("measured:onnxruntime") and s.endswith("@host (quick protocol)")
                            for s in measured), sources
    assert f"results in runs/{out.name}" in ran.out
    trust = assert_trust_stated(out, ran, n_archs=DEFAULT_RECIPE["trust_archs"])
    # each value the mean of the demo's trainings; the check trains as many other seeds
    k = DEFAULT_RECIPE["train_seeds"]
    assert trust["seeds"] == [DEFAULT_RECIPE["seed"], DEFAULT_RECIPE["seed"] + k] and trust["train_seeds"] == k > 1
    assert all(r["error_source"].endswith(f"weight ema {DEFAULT_RECIPE['ema']:g}, mean of {k} trainings, seeds 0-{k - 1})")
               for r in evals)


@pytest.fixture(scope="module")
def nb201_tables(tmp_path_factory):
    """Synthetic stand-ins of the third-party tables: accuracy and two devices' latency (all 15,625 cells)."""
    from search_fixtures import write_nb201_tables

    first, second = tmp_path_factory.mktemp("tables"), tmp_path_factory.mktemp("tables")
    acc, pixel2 = write_nb201_tables(first)
    _, gold = write_nb201_tables(second, seed=1)
    return acc, pixel2, gold


def test_table_search_on_one_device(tmp_path, nb201_tables):
    """README: error x latency on a phone from tables, with a latency budget; the default strategy (auto)."""
    acc, pixel2, _ = nb201_tables
    out = tmp_path / "runs" / "pixel2"
    ran = run_hwnas(["pareto-search", "--space", "nb201", "--objective", "error", "--objective", "latency_ms@pixel2",
                     "--accuracy", f"table:{acc}", "--latency", f"pixel2=table:{pixel2}",
                     "--constraint", "latency_ms@pixel2<=15", "--budget", "40", "--seed", "0", "--out", out],
                    cwd=tmp_path).ok()
    assert "strategy: mobo (auto: every cost objective" in ran.err
    front, evals = assert_search_results(out, n_evals=40)
    assert list(front[0])[:3] == ["order", "arch", "arch_id"]
    assert all(r["error_source"] == f"imported:table:{acc.name}" for r in front)
    assert all(r["latency_ms@pixel2_source"] == f"imported:table:{pixel2.name}" for r in front)
    assert all(float(r["latency_ms@pixel2"]) <= 15 for r in front)  # the constraint holds on the front


def test_table_search_on_two_devices_with_the_recipe(tmp_path, nb201_tables):
    """search/nsga2-nb201-two-devices.yaml: three objectives, two devices, tables found through $NB201_DATA."""
    acc, pixel2, gold = nb201_tables
    data = tmp_path / "nb201"
    (data / "latency").mkdir(parents=True)
    (data / "accuracy_cifar10.csv").symlink_to(acc)
    (data / "latency" / "pixel2.csv").symlink_to(pixel2)
    (data / "latency" / "gold_6226.csv").symlink_to(gold)
    from doc_examples import REPO

    out = tmp_path / "two"
    ran = run_hwnas(["pareto-search", "--recipe", REPO / "search" / "nsga2-nb201-two-devices.yaml", "--budget", "30",
                     "--out", out], cwd=tmp_path, env={"NB201_DATA": str(data)}).ok()
    front, evals = assert_search_results(out, n_evals=30)
    assert {"latency_ms@pixel2", "latency_ms@gold_6226", "error"} <= set(front[0])
    assert all(r["latency_ms@gold_6226_source"] == "imported:table:gold_6226.csv" for r in evals)
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["settings_from"]["objective"].startswith("recipe ") and "strategy" in ran.err
    unset = run_hwnas(["pareto-search", "--recipe", REPO / "search" / "nsga2-nb201-two-devices.yaml",
                       "--out", tmp_path / "x"], cwd=tmp_path, env={"NB201_DATA": None})
    assert unset.rc == 2 and unset.err.strip().splitlines() == [
        "error: accuracy '${NB201_DATA}/accuracy_cifar10.csv': environment variable NB201_DATA is not set "
        "(export NB201_DATA=DIR; README.md, 'Third-party data', says where the NB201 tables come from)"]
    assert not (tmp_path / "x").exists()


def test_two_devices_and_a_latency_budget_with_the_default_strategy(tmp_path, nb201_tables):
    """docs/search.md (issue 26): error x two devices' latency under a budget on one of them, the default strategy
    (auto -> mobo: every cost has a cheap source); the front is feasible and non-dominated in three objectives."""
    import numpy as np

    from hwnas.pareto import non_dominated_mask

    acc, pixel2, gold = nb201_tables
    out = tmp_path / "runs" / "two-devices"
    ran = run_hwnas(["pareto-search", "--space", "nb201", "--objective", "error", "--objective", "latency_ms@pixel2",
                     "--objective", "latency_ms@gold_6226", "--accuracy", f"table:{acc}",
                     "--latency", f"pixel2=table:{pixel2}", "--latency", f"gold_6226=table:{gold}",
                     "--constraint", "latency_ms@pixel2<=15", "--budget", "40", "--seed", "0", "--out", out],
                    cwd=tmp_path).ok()
    assert "strategy: mobo (auto: every cost objective" in ran.err
    front, evals = assert_search_results(out, n_evals=40)
    assert yaml.safe_load((out / "config.yaml").read_text())["strategy_ran"] == "mobo"
    names = ["error", "latency_ms@pixel2", "latency_ms@gold_6226"]
    F = np.array([[float(r[n]) for n in names] for r in front])
    assert np.all(F[:, 1] <= 15) and non_dominated_mask(F).all()
    feasible = np.array([[float(r[n]) for n in names] for r in evals if float(r["latency_ms@pixel2"]) <= 15])
    assert len(F) == int(non_dominated_mask(feasible).sum())  # every feasible non-dominated evaluation is on it
    assert all(r["latency_ms@gold_6226_source"] == f"imported:table:{gold.name}" for r in front)


def test_search_then_report_then_retrain(tmp_path):
    """A trained search, its report re-rendered, its front retrained from scratch: the numbers line up."""
    out = tmp_path / "run"
    common = ["--space", "nb201", "--space-opt", "C=4", "--space-opt", "N=1", "--space-opt", "input_size=8",
              "--objective", "error", "--objective", "macs", "--accuracy", "train", "--dataset", "digits"]
    run_hwnas(["pareto-search", *common, "--epochs", "1", "--max-train", "300", "--budget", "5", "--out", out],
              cwd=tmp_path, mode="tty").ok()
    front, evals = assert_search_results(out, n_evals=5)
    assert all(r["error_source"].startswith("trained:digits(val, 1 epochs") for r in evals)
    assert all(r["test_error_source"].startswith("trained:digits(test") for r in front)  # read once, for the front
    assert all(r["macs_source"] == "counted:graph" for r in evals)
    (out / "report.html").unlink()
    run_hwnas(["report", out], cwd=tmp_path).ok()
    assert "test_error" in (out / "report.html").read_text()
    run_hwnas(["retrain", out, "--top", "2", "--epochs", "1", "--seeds", "1"], cwd=tmp_path).ok()
    import json

    from journeys import read_csv

    retrained = read_csv(out / "retrained.csv")
    assert 1 <= len(retrained) <= 2 and {r["arch_id"] for r in retrained} <= {r["arch_id"] for r in front}
    assert all(0 <= float(r["val_seed0"]) <= 100 and 0 <= float(r["test_seed0"]) <= 100 for r in retrained)
    assert "kendall_tau_val" in json.dumps(json.loads((out / "retrain.json").read_text()))


@pytest.mark.parametrize("mode", ["pipe", "tty"])
def test_ctrl_c_then_resume_gives_the_unbroken_result(tmp_path, nb201_tables, mode):
    acc, pixel2, _ = nb201_tables
    problem = ["pareto-search", "--space", "nb201", "--objective", "error", "--objective", "latency_ms@pixel2",
               "--accuracy", f"table:{acc}", "--latency", f"pixel2=table:{pixel2}", "--strategy", "evolution",
               "--strategy-opt", "population_size=10", "--budget", "400", "--seed", "1"]
    run_hwnas([*problem, "--out", tmp_path / "unbroken"], cwd=tmp_path).ok()
    out = tmp_path / "broken"
    log = out / "evaluations.jsonl"

    def some_done():
        return log.exists() and len(log.read_text().splitlines()) >= 50

    stopped = run_hwnas([*problem, "--out", out], cwd=tmp_path, mode=mode, interrupt_when=some_done)
    assert stopped.rc == 130 and "Traceback" not in stopped.text, stopped.text[-2000:]
    assert "interrupted: everything finished so far is kept" in stopped.text
    import json

    assert json.loads((out / "checkpoint.json").read_text())["status"] == "interrupted"
    assert not (out / "pareto.csv").exists()
    run_hwnas(["pareto-search", "--resume", out], cwd=tmp_path, mode=mode).ok()
    _, evals = assert_search_results(out, n_evals=400)
    _, unbroken = assert_search_results(tmp_path / "unbroken", n_evals=400)
    assert [r["arch_id"] for r in evals] == [r["arch_id"] for r in unbroken]
    assert (out / "pareto.csv").read_text() == (tmp_path / "unbroken" / "pareto.csv").read_text()
