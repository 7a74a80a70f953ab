"""`hwnas report RUN_A RUN_B --out compare.html` (issue #27, step 2): fronts overlaid, hypervolume on the union's
normalisation, hypervolume at common budgets, a warning when the runs do not solve the same problem."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from hwnas.cli.main import main
from hwnas.pareto import hypervolume, non_dominated_mask

from search_fixtures import table_args, write_nb201_tables


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of one problem (seeds 0 and 1), one of another (other latency tables)."""
    root = tmp_path_factory.mktemp("runs")
    for t in ("t0", "t1"):
        (root / t).mkdir()
    tables = write_nb201_tables(root / "t0")
    other = (tables[0], write_nb201_tables(root / "t1", seed=1)[1])  # the same accuracy, other latencies
    out = {}
    for name, t, extra in (("a", tables, []), ("b", tables, ["--seed", "1"]), ("c", other, [])):
        assert main(table_args(t, budget=24, population=8) + extra + ["--out", str(root / name)]) == 0
        out[name] = root / name
    return out


def _data(page: str) -> dict:
    start = page.index("id='hwnas-data'>") + len("id='hwnas-data'>")
    return json.loads(page[start: page.index("</script>", start)])


def _union_hv(dirs):
    """Hypervolume of each run's feasible points, normalised by the union's ideal and nadir (computed here from
    evaluations.csv, independently of the page)."""
    F = []
    for d in dirs:
        with open(d / "evaluations.csv", newline="") as fh:
            F.append(np.array([[float(r["error"]), float(r["latency_ms@dev"])] for r in csv.DictReader(fh)]))
    allF = np.vstack(F)
    ideal, nadir = allF.min(axis=0), allF.max(axis=0)
    out = []
    for f in F:
        Z = (f[non_dominated_mask(f)] - ideal) / (nadir - ideal)
        out.append(hypervolume(Z, np.full(2, 1.1)))
    return out


def test_two_runs_of_one_problem(runs, tmp_path, capsys):
    page_path = tmp_path / "compare.html"
    assert main(["report", str(runs["a"]), str(runs["b"]), "--out", str(page_path)]) == 0
    assert "comparison of 2 runs" in capsys.readouterr().out
    page = page_path.read_text()
    assert "id='same-problem'" in page and "id='mismatch'" not in page
    data = _data(page)
    assert data["kind"] == "compare" and [r["name"] for r in data["runs"]] == ["a", "b"]
    assert [len(r["evals"]) for r in data["runs"]] == [24, 24]
    assert all(any(e["f"] for e in r["evals"]) for r in data["runs"])
    # hypervolume at 6, 12 and 24 evaluations (25/50/100 % of the smallest run), the last equal to an
    # independent computation on the union's normalisation
    row = re.search(r"<tbody><tr><td>a</td>(.*?)</tr><tr><td>b</td>(.*?)</tr>", page.split("id='t-hv'")[1])
    assert "HV after 6 evaluations" in page and "HV after 12 evaluations" in page
    cells = [[float(c) for c in re.findall(r"<td>([\d.]+)</td>", g)] for g in row.groups()]
    expected = _union_hv([runs["a"], runs["b"]])
    for c, hv in zip(cells, expected):
        assert c[0] <= c[1] <= c[2] and c[2] == pytest.approx(hv, abs=1e-4) and c[4] == pytest.approx(hv, abs=1e-4)
    assert data["runs"][0]["history"][-1] == [24, pytest.approx(expected[0], abs=1e-6)]


def test_different_problems_are_flagged(runs, tmp_path):
    page_path = tmp_path / "compare.html"
    assert main(["report", str(runs["a"]), str(runs["c"]), "--out", str(page_path)]) == 0
    page = page_path.read_text()
    assert "id='mismatch'" in page and "do not solve the same problem (latency differ)" in page
    assert "t1/latency.csv" in page.split("id='mismatch'")[1]


def test_bad_runs_exit_2_with_one_line(runs, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for bad in (tmp_path / "missing", tmp_path / "empty"):
        assert main(["report", str(runs["a"]), str(bad), "--out", str(tmp_path / "c.html")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and str(bad) in err
    assert not (tmp_path / "c.html").exists()
    assert main(["report", str(runs["a"]), str(runs["b"]), "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_one_run_with_out_writes_the_page_there(runs, tmp_path):
    assert main(["report", str(runs["a"]), "--out", str(tmp_path / "a.html")]) == 0
    assert _data((tmp_path / "a.html").read_text())["kind"] == "run"
