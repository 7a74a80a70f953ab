"""Journey (issue 23 item 5): a search stopped with Ctrl-C whose log then loses the end of its last line (a crash
in the middle of a write), resumed with the installed command as the docs type it: the torn line is cut off with
a note, the search finishes, and every file is there."""

from __future__ import annotations

import json

import pytest
import yaml

from journeys import assert_search_results, run_hwnas
from search_fixtures import write_nb201_tables

pytestmark = pytest.mark.journey


def _records(log) -> int:
    try:
        return max(0, len(log.read_bytes().splitlines()) - 1)  # less the header line
    except OSError:
        return 0


def test_ctrl_c_then_a_torn_log_line_then_resume_finishes(tmp_path):
    _, lat = write_nb201_tables(tmp_path)
    out = tmp_path / "run"
    log = out / "evaluations.jsonl"
    search = ["pareto-search", "--space", "nb201", "--space-opt", "C=4", "--space-opt", "N=1", "--space-opt",
              "input_size=8", "--objective", "error", "--objective", "latency_ms@dev", "--accuracy", "proxy",
              "--latency", f"dev=table:{lat}", "--strategy", "nsga2", "--strategy-opt", "population_size=10",
              "--budget", "16", "--out", out]
    stopped = run_hwnas(search, cwd=tmp_path, mode="pipe", interrupt_when=lambda: _records(log) >= 5)
    assert stopped.rc == 130 and "interrupted: everything finished so far is kept" in stopped.err, stopped.text[-2000:]
    assert json.loads((out / "checkpoint.json").read_text())["status"] == "interrupted"

    data = log.read_bytes().rstrip(b"\n")  # a crash mid-write: the last line loses its second half
    start = data.rfind(b"\n") + 1
    log.write_bytes(data[: start + (len(data) - start) // 2])
    kept = _records(log) - 1  # whole records left

    resumed = run_hwnas(["pareto-search", "--resume", out], cwd=tmp_path, mode="tty").ok()
    notes = [ln for ln in resumed.out.splitlines() if ln.startswith("note: ")]
    assert len(notes) == 1 and "cut off the torn last line" in notes[0], resumed.out[-2000:]
    assert "16 unique archs evaluated" in resumed.out
    front, evals = assert_search_results(out, n_evals=16)
    assert all(r["neg_naswot_source"].startswith("proxy:naswot") for r in evals)
    lines = [json.loads(x) for x in log.read_text().splitlines()]  # every line whole: header + 16 records
    assert lines[0]["hwnas_log"] == 1 and len(lines) == 17 and len({r["arch_id"] for r in lines[1:]}) == 16
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["computed_in_this_session"] == 16 - kept and config["replay_diverged"] is False
