import csv
import html
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hwnas.cli.main import main
from hwnas.evaluation import read_log
from hwnas.search import DEFAULT_RECIPE, default_config, make_config, run_search

from search_fixtures import table_args, write_nb201_tables


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    return write_nb201_tables(tmp_path_factory.mktemp("tables"))


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_search_writes_every_result_file(tables, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(table_args(tables) + ["--out", str(out)]) == 0
    assert "40 unique archs evaluated" in capsys.readouterr().out
    for name in ("pareto.csv", "evaluations.csv", "history.csv", "config.yaml", "pareto.png", "report.html"):
        assert (out / name).stat().st_size > 0, name
    evals = read_csv(out / "evaluations.csv")
    assert len(evals) == 40 and len({r["arch_id"] for r in evals}) == 40
    front = read_csv(out / "pareto.csv")
    assert front and all(r["error_source"] == "imported:table:accuracy.csv" for r in front)
    assert all(r["latency_ms@dev_source"] == "imported:table:latency.csv" for r in front)
    on_front = {r["arch_id"] for r in evals if r["on_front"] == "True"}
    assert on_front == {r["arch_id"] for r in front}
    history = read_csv(out / "history.csv")
    assert [int(r["n_evals"]) for r in history][-1] == 40 and all(float(r["hypervolume"]) > 0 for r in history)
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["strategy_ran"] == "nsga2" and config["strategy_params"]["population_size"] == 10
    assert config["accuracy"] == f"table:{tables[0]}"  # resolved to an absolute path
    page = (out / "report.html").read_text()
    # one self-contained page: its data and its script inline, nothing fetched (no URL, no src=, no link)
    assert "<script type='application/json' id='hwnas-data'>" in page and "id='plots'" in page
    assert "http://" not in page and "https://" not in page and " src=" not in page and "<link" not in page


def test_recipe_keys_are_flag_names_and_flags_override(tables, tmp_path):
    acc, lat = tables
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"space": "nb201", "strategy": "random", "objective": ["error", "latency_ms@dev"],
                                      "accuracy": f"table:{acc}", "latency": [f"dev=table:{lat}"], "budget": 500,
                                      "seed": 3}))
    out = tmp_path / "run"
    assert main(["pareto-search", "--recipe", str(recipe), "--budget", "25", "--out", str(out), "--no-progress"]) == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert (config["strategy"], config["budget"], config["seed"]) == ("random", 25, 3)
    assert len(read_csv(out / "evaluations.csv")) == 25
    (tmp_path / "bad.yaml").write_text("budgt: 3\n")
    with pytest.raises(Exception, match="unknown recipe setting 'budgt'"):
        make_config(yaml.safe_load((tmp_path / "bad.yaml").read_text()))


def test_interrupted_search_resumes_to_the_unbroken_result(tables, tmp_path):
    acc, lat = tables
    cfg = make_config({"objective": ["error", "latency_ms@dev"], "accuracy": f"table:{acc}",
                       "latency": [f"dev=table:{lat}"], "budget": 60, "strategy": "evolution",
                       "strategy_opt": {"population_size": 20, "batch_size": 7}})
    run_search(cfg, tmp_path / "a")  # the unbroken reference run

    def ctrl_c(kind, info):
        if kind == "evaluated" and info["n_evals"] == 31:  # mid-generation
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_search(cfg, tmp_path / "b", progress=ctrl_c)
    assert '"interrupted"' in (tmp_path / "b" / "checkpoint.json").read_text()
    assert main(["report", str(tmp_path / "b")]) == 0  # an interrupted run can still be looked at
    assert main(["pareto-search", "--resume", str(tmp_path / "b"), "--no-progress"]) == 0
    for name in ("evaluations.csv", "pareto.csv", "history.csv"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text(), name
    config = yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())
    assert config["computed_in_this_session"] == 29 and config["replay_diverged"] is False


def test_report_re_renders(tables, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(table_args(tables, budget=20) + ["--out", str(out)]) == 0
    page, png = (out / "report.html").read_text(), (out / "pareto.png").read_bytes()
    (out / "report.html").unlink()
    (out / "pareto.png").unlink()
    assert main(["report", str(out)]) == 0
    # the same report, re-rendered from the run's files alone: the page, the plot, and every front arch in it
    assert (out / "report.html").read_text() == page and (out / "pareto.png").read_bytes() == png
    assert all(f"<td>{html.escape(r['arch'])}</td>" in page for r in read_csv(out / "pareto.csv"))


def test_impossible_constraint_warns_and_keeps_the_least_violating(tables, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(table_args(tables, budget=20) + ["--constraint", "latency_ms@dev<=0", "--out", str(out)]) == 0
    assert "no evaluated architecture satisfies the constraints" in capsys.readouterr().err
    front = read_csv(out / "pareto.csv")
    evals = read_csv(out / "evaluations.csv")
    least = min(float(r["violation"]) for r in evals)
    assert front and all(float(r["violation"]) == least for r in front)


@pytest.mark.parametrize("extra, message", [
    (["--objective", "speed"], "unknown objective 'speed'"),
    (["--space", "nope"], "unknown search space 'nope'"),
    (["--strategy", "nope"], "unknown strategy 'nope'"),
    (["--accuracy", "table:/nonexistent/acc.csv"], "table /nonexistent/acc.csv does not exist"),
    (["--objective", "latency_ms@other"], "no cost source for latency_ms@other"),
    (["--executor", "dask"], "unknown executor 'dask'"),
    (["--budget", "0"], "budget must be >= 1"),
])
def test_bad_input_is_one_clear_line(tables, tmp_path, capsys, extra, message):
    out = tmp_path / "run"
    args = table_args(tables) + ["--out", str(out)]
    if extra[0] == "--accuracy":
        args[args.index("--accuracy") + 1] = extra[1]
        extra = []
    assert main(args + extra) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()  # nothing half-written


def test_table_missing_rows_are_unknown_never_on_the_front(tmp_path, capsys):
    acc, lat = write_nb201_tables(tmp_path)
    lines = acc.read_text().splitlines()
    acc.write_text("\n".join(lines[:1] + lines[1:4000]) + "\n")  # most cells missing: the crash
    out = tmp_path / "run"
    assert main(table_args((acc, lat)) + ["--out", str(out)]) == 0
    err = capsys.readouterr().err
    warnings = [ln for ln in err.splitlines() if "no value in accuracy.csv" in ln]
    evals = read_csv(out / "evaluations.csv")
    missing = [r for r in evals if r["error_source"] == "missing:table accuracy.csv"]
    assert len(evals) == 40 and missing and len(warnings) == 1 and f"warning: {len(missing)} evaluated" in warnings[0]
    assert all(r["on_front"] == "False" for r in missing)
    assert all(r["error_source"] == "imported:table:accuracy.csv" for r in read_csv(out / "pareto.csv"))


def test_existing_results_are_not_overwritten(tables, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(table_args(tables, budget=10) + ["--out", str(out)]) == 0
    assert main(table_args(tables, budget=10) + ["--out", str(out)]) == 2
    assert "already holds a search: continue it with --resume" in capsys.readouterr().err
    assert main(["pareto-search", "--resume", str(out), "--seed", "4"]) == 2
    assert "only --budget may change" in capsys.readouterr().err


def test_out_in_missing_folders_is_made_and_under_a_file_is_one_line(tables, tmp_path, capsys):
    out = tmp_path / "runs" / "x" / "sn"  # `--out runs/sn` on a fresh checkout, where runs/ does not exist yet
    assert main(table_args(tables, budget=10) + ["--out", str(out)]) == 0
    assert len(read_csv(out / "evaluations.csv")) == 10
    (tmp_path / "file").write_text("")
    assert main(table_args(tables, budget=10) + ["--out", str(tmp_path / "file" / "run")]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error")]  # notes on the problem may precede it
    assert len(errors) == 1 and "is a file, not a directory" in errors[0] and "Traceback" not in err


def test_resume_with_a_larger_budget_continues(tables, tmp_path):
    out = tmp_path / "run"
    assert main(table_args(tables, budget=20) + ["--out", str(out)]) == 0
    assert main(["pareto-search", "--resume", str(out), "--budget", "30", "--no-progress"]) == 0
    assert len(read_csv(out / "evaluations.csv")) == 30


def test_embedded_default_is_a_real_small_problem(tmp_path):
    notes = []
    cfg = default_config(notes)
    assert cfg.accuracy == "train" and cfg.dataset == "digits" and cfg.space == "nb201"
    assert cfg.objective[0] == "error" and cfg.objective[1] in ("macs", "latency_ms@host")
    if cfg.objective[1] == "macs":
        assert "MACs" in notes[0]
    quick = make_config({**cfg.to_dict(), "budget": 3, "epochs": 1, "max_train": 400,
                         "strategy_opt": {"population_size": 3}})
    result = run_search(quick, tmp_path / "run")
    assert len(result.evaluations) == 3
    # the search selects on validation error; the provenance says which split and recipe
    assert all(e.sources[0] == "trained:digits(val, 1 epochs, short recipe, max 400 train images, weight ema 0.9, "
               "mean of 4 trainings, seeds 0-3)" for e in result.evaluations)
    assert DEFAULT_RECIPE["budget"] * DEFAULT_RECIPE["train_seeds"] < 120  # under a second per training: a minute
    front = read_csv(tmp_path / "run" / "pareto.csv")
    assert front and all(r["test_error_source"].startswith("trained:digits(test, 1 epochs") for r in front)
    assert all(0 <= float(r["test_error"]) <= 100 for r in front)
    assert "test_error" not in read_csv(tmp_path / "run" / "evaluations.csv")[0]  # test numbers: the front only
    page = (tmp_path / "run" / "report.html").read_text()
    assert "test_error" in page
    # the page's data carries validation beside test for the front (its details panel sets them side by side)
    start = page.index("id='hwnas-data'>") + len("id='hwnas-data'>")
    data = json.loads(page[start: page.index("</script>", start)])
    tested = {e["a"]: data["sources"][e["t"][1]] for e in data["runs"][0]["evals"] if "t" in e}
    assert tested == {r["arch"]: r["test_error_source"] for r in front}


def test_the_search_cannot_read_the_test_split_before_it_ends(tmp_path, monkeypatch):
    """The test split is locked during the search; it is unlocked exactly once, after the last evaluation."""
    from hwnas.accuracy import datasets
    from hwnas.accuracy.datasets import LockedSplitError

    out = tmp_path / "run"
    unlocked_after = []
    real_unlock = datasets.Splits.unlock_test

    def spy(self):
        log = out / "evaluations.jsonl"
        unlocked_after.append(len(read_log(log)))  # evaluations logged (the header line is not one)
        return real_unlock(self)

    monkeypatch.setattr(datasets.Splits, "unlock_test", spy)
    splits = datasets.load_splits("digits", (1, 8, 8))
    with pytest.raises(LockedSplitError):
        splits.test()
    cfg = make_config({"space": "nb201", "space_opt": {"C": 8, "N": 1, "input_size": 8}, "strategy": "random",
                       "objective": ["error", "macs"], "accuracy": "train", "dataset": "digits", "budget": 4,
                       "epochs": 1, "max_train": 300})
    result = run_search(cfg, out)
    assert len(result.evaluations) == 4
    assert unlocked_after and set(unlocked_after) == {4}  # only after all four evaluations were logged
    assert len(unlocked_after) == 1  # one unlock, for the whole front


def test_cli_error_has_no_traceback(tables, tmp_path):
    args = [a for a in table_args(tables) if a != "--no-progress"]  # with the progress bar
    proc = subprocess.run([sys.executable, "-m", "hwnas", *args, "--objective", "latency_ms",
                           "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "error: objective listed twice: latency_ms@dev"  # the shorthand names dev


def test_every_recipe_is_valid(monkeypatch, tmp_path):
    recipes = sorted((Path(__file__).resolve().parent.parent / "search").glob("*.yaml"))
    assert len(recipes) >= 5
    from hwnas.search import load_recipe

    monkeypatch.setenv("NB201_DATA", str(tmp_path))  # the third-party tables' folder (README: Third-party data)
    for path in recipes:
        cfg = make_config(load_recipe(path))  # keys and types only: no data is read
        assert cfg.objective and cfg.budget >= 1, path.name
        assert all(str(tmp_path) in s for s in [cfg.accuracy or "", *cfg.latency] if "table:" in s), path.name


@pytest.mark.parametrize("value, expected", [("no", False), ("false", False), (False, False), (0, False),
                                             ("yes", True), ("True", True), (True, True), ("1", True)])
def test_config_booleans_are_real_booleans(value, expected):
    assert make_config({"download": value}).download is expected


@pytest.mark.parametrize("key, value, message", [
    ("download", "maybe", "download must be true or false, got 'maybe'"),
    ("budget", "ten", "budget must be an integer, got 'ten'"),
    ("epochs", 2.5, "epochs must be an integer, got 2.5"),
    ("max_train", "many", "max_train must be an integer, got 'many'"),
    ("seed", True, "seed must be an integer, got True"),
])
def test_config_fields_name_themselves_in_errors(key, value, message):
    from hwnas.errors import HwnasError

    with pytest.raises(HwnasError, match=message):
        make_config({key: value})
    assert make_config({"budget": "12", "max_train": 400.0}).budget == 12


def test_resume_config_allows_only_the_budget_to_change(tables, tmp_path):
    from hwnas.errors import HwnasError
    from hwnas.search import resume_config

    out = tmp_path / "run"
    assert main(table_args(tables, budget=10) + ["--out", str(out)]) == 0
    assert resume_config(out, {"budget": 25, "seed": None}).budget == 25
    with pytest.raises(HwnasError, match=r"only `budget` may change \(got `seed`, `out`\)"):
        resume_config(out, {"seed": 4, "out": tmp_path})
    with pytest.raises(HwnasError, match="holds no search to resume"):
        resume_config(tmp_path / "nothing")
