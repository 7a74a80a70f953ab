"""Issue 23, items 5-7: a resumed search stays consistent with its log. A torn last line (a crash mid-write) is
cut off, with a note, before anything is appended; a config.yaml edited to another search is refused, naming the
changed keys (the log's first line records the settings); replayed values pass the checks fresh ones pass."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from hwnas.cli.main import main
from hwnas.errors import HwnasError
from hwnas.evaluation import read_log
from hwnas.search import make_config, run_search

from search_fixtures import write_nb201_tables


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    return write_nb201_tables(tmp_path_factory.mktemp("tables"))


def config(tables, budget=24, **extra):
    acc, lat = tables
    return make_config({"objective": ["error", "latency_ms@dev"], "accuracy": f"table:{acc}",
                        "latency": [f"dev=table:{lat}"], "budget": budget, "strategy": "nsga2",
                        "strategy_opt": {"population_size": 6}, **extra})


def interrupted(tables, out: Path, at: int, budget=24) -> None:
    """A search stopped by Ctrl-C after ``at`` evaluations."""
    def ctrl_c(kind, info):
        if kind == "evaluated" and info["n_evals"] == at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_search(config(tables, budget), out, progress=ctrl_c)


def resume(out: Path, capsys, *extra) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(["pareto-search", "--resume", str(out), "--no-progress", *extra])
    return rc, capsys.readouterr().err


def log_lines(out: Path) -> list[dict]:
    """Every line of the log parsed (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in (out / "evaluations.jsonl").read_text().splitlines()]


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_log_begins_with_the_settings_of_the_search(tables, tmp_path):
    run_search(config(tables, 12), tmp_path / "run")
    header, *records = log_lines(tmp_path / "run")
    assert header["hwnas_log"] == 1 and header["settings"]["space"] == "nb201"
    assert header["settings"]["objective"] == ["error", "latency_ms@dev"]
    assert "budget" not in header["settings"] and "out" not in header["settings"]  # these may change
    assert len(records) == 12 and [e.arch.arch_id for e in read_log(tmp_path / "run" / "evaluations.jsonl")] == \
        [r["arch_id"] for r in records]


# -- item 5: a torn last line ---------------------------------------------------------------------------------
def test_a_torn_last_line_is_cut_off_said_and_the_resume_finishes(tables, tmp_path, capsys):
    run_search(config(tables), tmp_path / "unbroken")
    out = tmp_path / "run"
    interrupted(tables, out, at=9)
    log = out / "evaluations.jsonl"
    text = log.read_text()
    last = text.splitlines()[-1]
    log.write_text(text[: len(text) - len(last) - 1] + last[: len(last) // 2])  # a crash in the middle of a write
    torn_arch = json.loads(last)["arch_id"]
    rc, err = resume(out, capsys)
    assert rc == 0, err
    notes = [ln for ln in err.splitlines() if ln.startswith("note: ")]
    assert len(notes) == 1 and "cut off the torn last line 10" in notes[0] and "evaluated again" in notes[0], err
    lines = log_lines(out)  # before: the next record was appended onto the torn line (8 lines, 7 valid)
    assert len(lines) == 1 + 24 and len({r["arch_id"] for r in lines[1:]}) == 24
    assert torn_arch in {r["arch_id"] for r in lines[1:]}
    for name in ("evaluations.csv", "pareto.csv"):  # the same result as a run never stopped
        assert (tmp_path / "unbroken" / name).read_text() == (out / name).read_text(), name
    rc, err = resume(out, capsys)  # and a later resume recomputes nothing
    assert rc == 0 and "note:" not in err, err
    assert yaml.safe_load((out / "config.yaml").read_text())["budget"] == 24
    assert len(log_lines(out)) == 25


def test_a_last_record_that_lacks_only_its_newline_is_kept(tables, tmp_path, capsys):
    out = tmp_path / "run"
    interrupted(tables, out, at=9)
    log = out / "evaluations.jsonl"
    log.write_text(log.read_text()[:-1])
    rc, err = resume(out, capsys)
    assert rc == 0 and "line 10 lacked its newline (a crash mid-write); completed it" in err, err
    assert len(log_lines(out)) == 25
    config_after = yaml.safe_load((out / "config.yaml").read_text())
    assert config_after["computed_in_this_session"] == 24 - 9  # the ninth record was served, not recomputed


def test_a_damaged_line_before_the_last_refuses_and_changes_nothing(tables, tmp_path, capsys):
    out = tmp_path / "run"
    interrupted(tables, out, at=9)
    log = out / "evaluations.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    lines[4] = lines[4][:40] + lines[5]  # the old bug's mark: a torn record with the next one glued on
    del lines[5]
    log.write_text("".join(lines))
    before = log.read_bytes()
    rc, err = resume(out, capsys)
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "line 5 is not a complete evaluation record" in err and "delete that line" in err
    assert log.read_bytes() == before


# -- item 6: config.yaml edited to another search ---------------------------------------------------------------
@pytest.mark.parametrize("edit, named", [
    ({"space": "mobilenet"}, "space: \"nb201\" -> \"mobilenet\""),
    ({"seed": 5}, "seed: 0 -> 5"),
    ({"objective": ["error", "macs"]}, "objective: "),
    ({"strategy_opt": {"population_size": 8}}, "strategy_opt: {\"population_size\": 6} -> {\"population_size\": 8}"),
    ({"space_opt": {"C": 4}, "seed": 2}, "space_opt: {} -> {\"C\": 4}; seed: 0 -> 2"),
])
def test_a_changed_config_is_refused_naming_the_changed_keys(tables, tmp_path, capsys, edit, named):
    out = tmp_path / "run"
    run_search(config(tables), out)
    saved = yaml.safe_load((out / "config.yaml").read_text())
    (out / "config.yaml").write_text(yaml.safe_dump({**saved, **edit}, sort_keys=False))
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != "config.yaml"}
    rc, err = resume(out, capsys, "--budget", "30")
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "config.yaml no longer matches the settings the search started with" in err and named in err, err
    assert "only --budget may change on resume" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != "config.yaml"} == files


def test_budget_and_keys_that_are_not_settings_may_change(tables, tmp_path, capsys):
    out = tmp_path / "run"
    run_search(config(tables), out)
    saved = yaml.safe_load((out / "config.yaml").read_text())
    saved.update({"budget": 30, "settings_from": {"space": "flag"}, "strategy_why": "edited", "out": "/elsewhere"})
    (out / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    rc, err = resume(out, capsys)
    assert rc == 0, err
    assert len(read_csv(out / "evaluations.csv")) == 30


def test_a_log_of_an_older_hwnas_resumes_with_a_note(tables, tmp_path, capsys):
    out = tmp_path / "run"
    interrupted(tables, out, at=9)
    log = out / "evaluations.jsonl"
    log.write_text("".join(log.read_text().splitlines(keepends=True)[1:]))  # no header line
    rc, err = resume(out, capsys)
    assert rc == 0 and "does not record the search's settings; config.yaml is taken as they were" in err, err
    assert len(read_csv(out / "evaluations.csv")) == 24


# -- item 7: replayed values are checked like fresh ones ------------------------------------------------------
def _poison(out: Path, line: int, **fields) -> None:
    log = out / "evaluations.jsonl"
    lines = log.read_text().splitlines()
    record = json.loads(lines[line - 1])
    record.update(fields)
    lines[line - 1] = json.dumps(record)
    log.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("fields, needle", [
    ({"values": [-1e308, float("nan")]}, "line 4: error is -1e+308 (imported:table:accuracy.csv): error must be a "
                                         "percentage in 0-100"),
    ({"values": [50.0, 1e308]}, "line 4: latency_ms@dev is 1e+308 (imported:table:latency.csv): latency_ms must "
                                "be at most 3.6e+06"),
    ({"values": [50.0, -2.0]}, "latency_ms must be > 0"),
    ({"values": [50.0]}, "line 4: 1 values / 2 provenances for 2 objectives"),
    ({"genes": [9, 9, 9, 9, 9, 9]}, "line 4: not an arch of this search"),
    ({"space": "mobilenet"}, "line 4: not an arch of this search"),
    ({"values": "abc"}, "line 4 is not a complete evaluation record"),
])
def test_poisoned_replay_values_are_refused(tables, tmp_path, capsys, fields, needle):
    out = tmp_path / "run"
    run_search(config(tables), out)
    _poison(out, 4, **fields)
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    rc, err = resume(out, capsys, "--budget", "30")
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert needle in err, err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == files  # pareto.csv, report kept


def test_a_replayed_unknown_value_is_never_feasible_whatever_the_log_says(tables, tmp_path, capsys):
    out = tmp_path / "run"
    run_search(config(tables), out)
    _poison(out, 4, values=[float("nan"), float("nan")], violation=0.0)
    arch_id = log_lines(out)[3]["arch_id"]
    rc, err = resume(out, capsys, "--budget", "26")
    assert rc == 0, err
    rows = {r["arch_id"]: r for r in read_csv(out / "evaluations.csv")}
    assert rows[arch_id]["on_front"] == "False" and float(rows[arch_id]["violation"]) >= 1e6
    assert arch_id not in {r["arch_id"] for r in read_csv(out / "pareto.csv")}


def test_library_preload_checks_too(tables):
    from hwnas.contracts import Evaluation
    from hwnas.evaluation import build_evaluator
    from hwnas.spaces import create_space

    cfg = config(tables)
    space = create_space("nb201")
    ev = build_evaluator(space, cfg.evaluator_spec())
    bad = Evaluation(space.from_index(7), (-5.0, 1.0), ("x", "y"), {})
    with pytest.raises(HwnasError, match=r"logged evaluation 1: error is -5 \(x\): error must be a percentage"):
        ev.preload([bad])
