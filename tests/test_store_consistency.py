"""Issue 23, items 4, 8 and 14: imports that stay consistent (two at once store a file once; values outside the
plausible range are refused, as table sources refuse them; a hand-edited store row is one line naming it) and
a large import read as a stream."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hwnas.cli.main import main
from hwnas.errors import HwnasError
from hwnas.spaces import create_space
from hwnas.store import MeasurementStore

CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"


def one_line_error(capsys, rc, *needles):
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


def nb201_csv(path: Path, n: int, latency=lambda i: 1.0 + i / 100) -> Path:
    space = create_space("nb201")
    rows = [f"{space.to_string(space.from_index(i))},{latency(i)},{2.0 * (1 + i / 100)}" for i in range(n)]
    path.write_text("arch,latency_ms,energy_mj\n" + "\n".join(rows) + "\n")
    return path


# -- item 4: two identical imports at once store the file once ----------------------------------------------
# Each process runs the real CLI (hwnas.cli.main.main). Before its first write transaction it waits until the
# other process is about to write too, so both have made every check they make before writing: an "already
# imported" check made outside the insert transaction (the bug) then lets both insert.
_RACER = r"""
import sys, time
from pathlib import Path
from hwnas.store import MeasurementStore
from hwnas.cli.main import main

gate, me = Path(sys.argv[1]), sys.argv[2]
_db = MeasurementStore._db

def gated(self, write=False):
    if write and not (gate / me).exists():
        (gate / me).touch()
        deadline = time.monotonic() + 30
        while len(list(gate.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    return _db(self, write)

MeasurementStore._db = gated
sys.exit(main(sys.argv[3:]))
"""


def test_two_identical_imports_at_once_store_the_file_once(tmp_path):
    csv = nb201_csv(tmp_path / "lat.csv", 300)
    db = tmp_path / "m.db"
    MeasurementStore(db).close()
    gate = tmp_path / "gate"
    gate.mkdir()
    argv = ["import", "latency", str(csv), "--device", "d", "--store", str(db)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent.parent), *sys.path])}
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(gate), name, *argv], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for name in ("a", "b")]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted(gate.iterdir()) == [gate / "a", gate / "b"]  # both really got to their write at once
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == 300
    said = sorted(o[0].strip().split(" ")[0] for o in outs)
    assert said == [str(csv), "imported"], outs  # one imported 300 rows; the other: "... was already imported"


def test_a_bad_row_late_in_a_large_import_stores_nothing(tmp_path, capsys):
    csv = nb201_csv(tmp_path / "lat.csv", 25_000 // 2)  # more rows than one staged batch
    with csv.open("a") as fh:
        fh.write(f"{CELL},-3\n")
    db = tmp_path / "m.db"
    rc = main(["import", "latency", str(csv), "--device", "d", "--store", str(db)])
    one_line_error(capsys, rc, "line 12502", "latency_ms must be > 0")
    assert len(MeasurementStore(db)) == 0
    csv.write_text("\n".join(csv.read_text().splitlines()[:-1]) + "\n")
    assert main(["import", "latency", str(csv), "--device", "d", "--store", str(db)]) == 0
    assert len(MeasurementStore(db)) == 12_500


# -- item 8: values outside the plausible range; hand-edited store rows ----------------------------------------
@pytest.mark.parametrize("value, needle", [
    ("1e308", "latency_ms must be at most 3.6e+06 (one hour), got 1e+308"),
    ("nan", "latency_ms must be a finite number"),
    ("0", "latency_ms must be > 0"),
])
def test_import_refuses_values_outside_the_plausible_range(tmp_path, capsys, value, needle):
    csv = tmp_path / "lat.csv"
    csv.write_text(f"arch,latency_ms\n{CELL},1.5\n\"{CELL.replace('avg_pool', 'nor_conv')}\",{value}\n")
    db = tmp_path / "m.db"
    rc = main(["import", "latency", str(csv), "--device", "d", "--store", str(db)])
    one_line_error(capsys, rc, f"{csv}, line 3", needle)
    assert len(MeasurementStore(db)) == 0


def test_import_refuses_an_implausible_energy(tmp_path, capsys):
    csv = tmp_path / "lat.csv"
    csv.write_text(f"arch,latency_ms,energy_mj\n{CELL},1.5,1e300\n")
    rc = main(["import", "latency", str(csv), "--device", "d", "--store", str(tmp_path / "m.db")])
    one_line_error(capsys, rc, "line 2", "energy_mj must be at most")


def test_table_sources_obey_the_same_range(tmp_path):
    from hwnas.evaluation.sources.table import TableSource

    table = tmp_path / "lat.csv"
    table.write_text(f"arch,latency_ms\n{CELL},1e308\n")
    with pytest.raises(HwnasError, match=r"line 2 .*latency_ms must be at most 3.6e\+06"):
        TableSource(table).check(create_space("nb201"), "latency_ms")


@pytest.fixture
def store_with_rows(tmp_path):
    csv = nb201_csv(tmp_path / "lat.csv", 40)
    db = tmp_path / "m.db"
    assert main(["import", "latency", str(csv), "--device", "d", "--store", str(db)]) == 0
    return db


@pytest.mark.parametrize("column, value, needle", [
    ("latency_ms", "abc", "latency_ms must be a number, got 'abc'"),
    ("latency_ms", 1e308, "latency_ms must be at most 3.6e+06"),
    ("energy_mj", -4.0, "energy_mj must be >= 0"),
    ("latency_p90_ms", "fast", "latency_p90_ms must be a number"),
    ("settings", "{not json", "settings is not valid JSON"),
])
@pytest.mark.parametrize("command", ["fit-predictor", "export-measurements"])
def test_a_hand_edited_store_row_is_one_line_naming_it(store_with_rows, tmp_path, capsys, column, value, needle,
                                                       command):
    db = store_with_rows
    with sqlite3.connect(db) as conn:
        conn.execute(f"UPDATE measurements SET {column}=? WHERE id=7", (value,))
    capsys.readouterr()
    argv = ["fit-predictor", "--device", "d", "--store", str(db), "--out", str(tmp_path / "models")]
    if command == "export-measurements":
        argv = ["export-measurements", "--device", "d", "--store", str(db), "--out", str(tmp_path / "x.csv")]
    rc = main(argv)
    one_line_error(capsys, rc, f"{db}: row 7 (device 'd', arch |", needle, "WHERE id=7")
