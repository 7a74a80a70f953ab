"""`hwnas propose` proposes unmeasured, measurable archs of the space the user means, or says precisely why it
cannot (issue #22 item 9)."""

import csv

import pytest

from hwnas.cli.main import main
from hwnas.spaces import create_space

TINY = ["--space-opt", "C=8", "--space-opt", "N=1", "--space-opt", "input_size=8"]


def _table(path, indices):
    sp = create_space("nb201")
    path.write_text("arch,latency_ms\n" + "".join(
        f"{sp.to_string(sp.from_index(i))},{1 + 0.01 * (i % 97):.4f}\n" for i in indices))
    return path


def _proposals(path):
    return list(csv.DictReader(open(path)))


@pytest.fixture(scope="module")
def full_table(tmp_path_factory):
    from search_fixtures import write_nb201_tables

    return write_nb201_tables(tmp_path_factory.mktemp("tables"))[1]


def test_a_fully_imported_device_gets_a_precise_answer(tmp_path, full_table, capsys):
    store = tmp_path / "m.db"
    assert main(["import", "latency", str(full_table), "--device", "pixel2", "--store", str(store)]) == 0
    capsys.readouterr()
    assert main(["propose", "--device", "pixel2", "--k", "20", "--out", str(tmp_path / "next.csv"),
                 "--store", str(store)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert ("nothing to propose: every one of the 15,625 archs of nb201 (the defaults) already has a latency for "
            "'pixel2'") in err
    assert "(15,625 rows: 15,625 imported)" in err and "hwnas propose --device host" in err
    assert not (tmp_path / "next.csv").exists()


def test_no_space_opt_proposes_from_the_settings_the_device_was_measured_at(tmp_path, capsys):
    store = tmp_path / "m.db"
    measured = list(range(0, 1200, 100))
    assert main(["import", "latency", str(_table(tmp_path / "t.csv", measured)), "--device", "dev", *TINY,
                 "--store", str(store)]) == 0
    capsys.readouterr()
    out = tmp_path / "next.csv"
    assert main(["propose", "--device", "dev", "--k", "5", "--out", str(out), "--store", str(store)]) == 0
    said = capsys.readouterr().out
    assert "unmeasured nb201 archs (C=8 N=1 input_size=8;" in said and "12 already measured" in said
    sp = create_space("nb201", C=8, N=1, input_size=8)
    rows = _proposals(out)
    assert len(rows) == 5
    ids = {sp.from_index(i).arch_id for i in measured}
    from hwnas.spaces import arch_from_text

    archs = [arch_from_text(sp, r["arch"]) for r in rows]
    assert not ids & {a.arch_id for a in archs}
    assert all(sp.has_path(a) for a in archs)  # a constant cannot be measured: never proposed


def test_rows_of_other_settings_do_not_count_as_measured(tmp_path, capsys):
    store = tmp_path / "m.db"
    assert main(["import", "latency", str(_table(tmp_path / "t.csv", range(0, 1500, 100))), "--device", "dev",
                 "--store", str(store)]) == 0
    capsys.readouterr()
    assert main(["propose", "--device", "dev", "--k", "3", *TINY, "--out", str(tmp_path / "n.csv"),
                 "--store", str(store)]) == 0
    said = capsys.readouterr().out
    assert "(C=8 N=1 input_size=8; no predictor yet" in said and "; 0 already measured)" in said
    assert main(["import", "latency", str(_table(tmp_path / "u.csv", range(50, 500, 100))), "--device", "dev",
                 *TINY, "--store", str(store)]) == 0
    capsys.readouterr()
    # rows of the defaults and of other settings: the defaults (what no --space-opt means everywhere), with a note
    assert main(["propose", "--device", "dev", "--k", "3", "--out", str(tmp_path / "n.csv"),
                 "--store", str(store)]) == 0
    captured = capsys.readouterr()
    assert "(the defaults;" in captured.out and "15 already measured" in captured.out
    assert "also has rows of C=8 N=1 input_size=8 (5 rows) (--space-opt" in captured.err
    # rows of two settings, neither the defaults: which one is meant is asked, with the row counts
    assert main(["import", "latency", str(_table(tmp_path / "v.csv", range(60, 400, 100))), "--device", "other",
                 *TINY, "--store", str(store)]) == 0
    assert main(["import", "latency", str(_table(tmp_path / "w.csv", range(70, 300, 100))), "--device", "other",
                 "--space-opt", "C=4", "--store", str(store)]) == 0
    capsys.readouterr()
    assert main(["propose", "--device", "other", "--k", "3", "--out", str(tmp_path / "o.csv"),
                 "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert "has nb201 rows of 2 space settings: C=8 N=1 input_size=8 (4 rows), C=4 (3 rows)" in err
