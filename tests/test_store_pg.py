"""Issue 28: the team store. The store's contract on both engines (SQLite and a real PostgreSQL server started by
tests/pg_server.py, fixtures pg_server and pg_url; where none can start, the PostgreSQL cases skip saying why), concurrent writers and a
concurrent migration, ``hwnas store copy`` both ways, passwords never shown, and the journey import ->
fit-predictor -> predict / pareto-search against a PostgreSQL store."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from csv import DictReader
from pathlib import Path

import pytest

from hwnas.cli.main import main
from hwnas.errors import HwnasError
from hwnas.store import SCHEMA_VERSION, Measurement, MeasurementStore, StoreError, mask_url, store_target
from journeys import HWNAS, run_hwnas
from test_store_consistency import _RACER, nb201_csv

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests"), *sys.path])}


def _m(arch_id="a1", latency=1.0, device="host", runtime="onnxruntime", settings=None, source="measured", **kw):
    return Measurement(space="nb201", arch_id=arch_id, arch=f"|{arch_id}|", device=device, runtime=runtime,
                       runtime_version="1.0", settings=settings or {"threads": 1}, source=source,
                       latency_ms=latency, **kw)


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    """A fresh store on each engine: a SQLite path or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "m.db")
    return request.getfixturevalue("pg_url")


def _driver_errors():
    import psycopg

    return (sqlite3.IntegrityError, psycopg.IntegrityError)


# -- the store's contract, on both engines ----------------------------------------------------------------------
def test_round_trip_keeps_every_field(target):
    store = MeasurementStore(target)
    m = _m(latency_p90_ms=1.2, latency_iqr_ms=0.1, latency_cv=0.03, n_runs=40, first_inference_ms=5.0,
           unstable=True, energy_mj=2.5, energy_source="estimated:host-cpu-generic", peak_power_w=3.25,
           peak_power_source="measured:rapl", fingerprint={"cpu": "x", "cores": 2},
           op_profile=[{"name": "conv", "op_type": "Conv", "ms": 0.4}], latency_corrected_ms=1.0000000000000002,
           reference={"arch": "|r|", "ratio": 1.1}, estimator="median", throttled=False, thermal={"before_c": 41.5})
    assert store.add(m) == m.id == 1
    (back,) = MeasurementStore(target).query()
    assert back == m  # every float exactly (PostgreSQL: DOUBLE PRECISION, not REAL)
    assert store.schema_version == SCHEMA_VERSION


def test_reprofiling_appends_latest_filters_and_devices(target):
    store = MeasurementStore(target)
    store.add(_m("a1", 1.0))
    store.add(_m("a2", 2.0))
    store.add(_m("a1", 3.0))
    store.add(_m("a1", 9.0, settings={"threads": 4}))
    store.add(_m("b", device="pixel", runtime="litert"))
    store.add(_m("c", device="pixel", source="imported", runtime="unknown"))
    latest = {(m.arch_id, m.settings["threads"]): m.latency_ms for m in store.query(device="host")}
    assert latest == {("a1", 1): 3.0, ("a2", 1): 2.0, ("a1", 4): 9.0}
    assert [m.latency_ms for m in store.query(device="host", latest=False)] == [1.0, 2.0, 3.0, 9.0]
    assert [m.latency_ms for m in store.query(settings={"threads": 4})] == [9.0]
    assert store.measured_ids("host", "nb201", "onnxruntime", {"threads": 1}) == {"a1", "a2"}
    assert [m.arch_id for m in store.query(source="imported")] == ["c"]
    assert [m.arch_id for m in store.query(runtime="litert")] == ["b"]
    assert store.devices() == {"host": 4, "pixel": 2} and len(store) == 6


def test_add_many_is_all_or_nothing_and_if_absent_returns_the_stored_row(target):
    store = MeasurementStore(target)
    bad = _m("b")
    bad.latency_ms = None  # NOT NULL fails inside the transaction
    with pytest.raises(_driver_errors()):
        store.add_many([_m("a"), bad])
    assert len(store) == 0
    first = store.add(_m("a"))
    assert store.add(_m("a", 5.0), if_absent=True) == first and len(store) == 1
    assert store.add_many([_m("a"), _m("z")], if_absent=True)[0] == first and len(store) == 2


def test_an_import_is_stored_once_and_a_failing_one_stores_nothing(target):
    store = MeasurementStore(target)

    def rows(n, fail_at=None):
        for i in range(n):
            if i == fail_at:
                raise HwnasError(f"line {i + 2}: bad")
            yield _m(f"x{i}", 1.0 + i, source="imported", fingerprint={"sha256": "f00d"})

    with pytest.raises(HwnasError, match="line 7"):
        store.add_import(rows(10, fail_at=5), "f00d", "host", "nb201", batch=2)
    assert len(store) == 0
    assert store.add_import(rows(10), "f00d", "host", "nb201", batch=3) == 10
    assert store.add_import(rows(10), "f00d", "host", "nb201") == 0 and store.has_import("f00d", "host", "nb201")
    assert [m.arch_id for m in store.query(latest=False)] == [f"x{i}" for i in range(10)]  # in file order


def test_failures_and_reference_medians(target):
    store = MeasurementStore(target)
    store.add_failure("nb201", "a", "|a|", "host", "litert", {"threads": 1}, "conversion failed")
    (f,) = store.failures("host")
    assert f["error"] == "conversion failed" and f["arch_id"] == "a" and len(store) == 0
    assert store.add_reference_median("host", "k", "|r|", 2.0) == 2.0
    assert store.add_reference_median("host", "k", "|r|", 4.0) == 3.0
    assert store.reference_median("host", "other") is None


def test_a_damaged_row_is_one_error_naming_it_and_how_to_delete_it(pg_url):
    store = MeasurementStore(pg_url)
    store.add(_m("a"))
    store._conn.execute("UPDATE measurements SET settings = '{not json' WHERE id = 1")
    with pytest.raises(StoreError, match=r"row 1 \(device 'host'.*settings is not valid JSON.*psql .*WHERE id=1"):
        store.query()


def test_newer_schemas_and_foreign_databases_are_refused(pg_server):
    url = pg_server.new_database()
    MeasurementStore(url).close()
    store = MeasurementStore(url)
    store._conn.execute("INSERT INTO hwnas_schema VALUES (?, 'x', 'future')", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer than this hwnas"):
        MeasurementStore(url)
    other = pg_server.new_database()
    import psycopg

    with psycopg.connect(other, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts (x int)")
    with pytest.raises(StoreError, match="not a hwnas measurement store .*accounts"):
        MeasurementStore(other)


# -- where the store is, and what is shown of it ----------------------------------------------------------------
def test_store_target_and_hwnas_store(tmp_path, monkeypatch, pg_url):
    url = "postgresql://alice:s3cret@db.lab:5432/hwnas"
    assert store_target(url) == url and store_target(tmp_path / "x.db") == tmp_path / "x.db"
    monkeypatch.setenv("HWNAS_STORE", str(tmp_path / "team.db"))
    assert store_target(None) == tmp_path / "team.db" and MeasurementStore().path == tmp_path / "team.db"
    monkeypatch.setenv("HWNAS_STORE", pg_url)
    store = MeasurementStore()
    assert store.engine == "PostgreSQL" and store.path == pg_url
    csv = nb201_csv(tmp_path / "lat.csv", 5)
    assert main(["import", "latency", str(csv), "--device", "d"]) == 0  # no --store: $HWNAS_STORE
    assert len(MeasurementStore(pg_url)) == 5


@pytest.mark.parametrize("url, shown", [
    ("postgresql://alice:s3cret@db.lab:5432/hwnas", "postgresql://alice:***@db.lab:5432/hwnas"),
    ("postgresql://alice@db.lab/hwnas", "postgresql://alice@db.lab/hwnas"),
    ("postgres://a:p%40ss@h/db?sslmode=require", "postgres://a:***@h/db?sslmode=require"),
    ("postgresql:///db?host=/tmp/s&password=s3cret&user=u", "postgresql:///db?host=/tmp/s&password=***&user=u"),
])
def test_passwords_are_masked(url, shown):
    assert mask_url(url) == shown


def test_a_password_is_never_printed(capsys):
    pytest.importorskip("psycopg")
    # nothing listens on port 1: the connection error is one line, with the password masked
    rc = main(["export-measurements", "--device", "d", "--out", "x.csv",
               "--store", "postgresql://alice:s3cret@127.0.0.1:1/hwnas"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "s3cret" not in err and "postgresql://alice:***@127.0.0.1:1/hwnas" in err, err


def test_without_the_driver_a_url_is_one_line_naming_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg raises ImportError
    rc = main(["export-measurements", "--device", "d", "--out", "x.csv", "--store", "postgresql://u@h/db"])
    err = capsys.readouterr().err
    assert rc == 2 and "pip install 'hwnas[postgres]'" in err and len(err.strip().splitlines()) == 1, err


def test_propose_reads_the_team_store(pg_url, tmp_path, capsys):
    assert main(["import", "latency", str(nb201_csv(tmp_path / "p.csv", 12)), "--device", "p", "--store", pg_url]) == 0
    capsys.readouterr()
    assert main(["propose", "--device", "p", "--k", "3", "--out", str(tmp_path / "next.csv"), "--store", pg_url]) == 0
    out = capsys.readouterr().out
    assert "12 already measured" in out, out
    proposed = {r["arch"] for r in DictReader((tmp_path / "next.csv").open())}
    stored = {m.arch for m in MeasurementStore(pg_url).query(device="p")}
    assert len(proposed) == 3 and not proposed & stored  # unmeasured archs: it read the team store's rows


# -- concurrent writers and migrations --------------------------------------------------------------------------
_WRITER = r"""
import sys, time
from pathlib import Path
from hwnas.store import Measurement, MeasurementStore

target, gate, me, first, n, batch = sys.argv[1], Path(sys.argv[2]), sys.argv[3], *map(int, sys.argv[4:7])
store = MeasurementStore(target)
(gate / me).touch()
while len(list(gate.iterdir())) < int(sys.argv[7]):
    time.sleep(0.005)
ms = [Measurement(space="nb201", arch_id=f"a{i}", arch=f"|a{i}|", device="d", runtime="r", runtime_version="1",
                  settings={"t": 1}, source="measured", latency_ms=1.0 + i) for i in range(first, first + n)]
for k in range(0, n, batch):
    store.add_many(ms[k:k + batch], if_absent=True)
"""


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_concurrent_writers_never_lose_or_duplicate_a_row(engine, tmp_path, request):
    target = str(tmp_path / "m.db") if engine == "sqlite" else request.getfixturevalue("pg_url")
    MeasurementStore(target).close()
    gate = tmp_path / "gate"
    gate.mkdir()
    procs, n, step = 4, 150, 75  # writer p writes a[75p, 75p + 150): each key but the ends by two writers
    ps = [subprocess.Popen([sys.executable, "-c", _WRITER, target, str(gate), str(p), str(p * step), str(n), "7",
                            str(procs)], env=ENV, stderr=subprocess.PIPE, text=True) for p in range(procs)]
    errs = [p.communicate(timeout=240)[1] for p in ps]
    assert [p.returncode for p in ps] == [0] * procs, errs
    rows = MeasurementStore(target).query(latest=False)
    ids = sorted(int(m.arch_id[1:]) for m in rows)
    assert ids == list(range((procs - 1) * step + n))  # every key once: none lost, none twice


_MIGRATE_RACER = r"""
import sys, time
from pathlib import Path
import hwnas.store_pg as pg
from hwnas.store import MeasurementStore

url, gate, me, locked = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
migrate = pg.Postgres.migrate

def gated(self, conn):  # both processes found the old version before either migrates
    (gate / me).touch()
    deadline = time.monotonic() + 30
    while len(list(gate.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    return migrate(self, conn)

pg.Postgres.migrate = gated
if not locked:  # the control: without the advisory lock the race is real
    pg.advisory_key = lambda text: None
    execute = pg.PgConnection.execute
    pg.PgConnection.execute = lambda self, sql, args=(): (
        None if "pg_advisory_xact_lock" in sql and args == (None,) else execute(self, sql, args))
    version_of = pg.Postgres.schema_version
    reads = []

    def read_then_wait(self, conn):  # both read the old version inside their transactions before either migrates
        version = version_of(conn)  # (on a loaded machine one could otherwise commit before the other began)
        reads.append(version)
        if len(reads) == 2:  # the second read, in migrate(): the first one found the store to need migrating
            (gate / f"read-{me}").touch()
            deadline = time.monotonic() + 30
            while len([f for f in gate.iterdir() if f.name.startswith("read-")]) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        return version

    pg.Postgres.schema_version = read_then_wait
MeasurementStore(url).close()
"""


@pytest.mark.parametrize("locked", [True, False], ids=["advisory-lock", "control-without-lock"])
def test_a_migration_run_by_two_processes_at_once_happens_once(pg_server, tmp_path, locked):
    import psycopg

    from hwnas.store import _MIGRATIONS, _SCHEMA_V1
    from hwnas.store_pg import pg_sql

    url = pg_server.new_database()
    with psycopg.connect(url, autocommit=True) as conn:  # a store that an hwnas of schema 2 wrote
        for stmt in pg_sql(_SCHEMA_V1 + ";" + _MIGRATIONS[1]).split(";"):
            if stmt.strip():
                conn.execute(stmt)
        conn.execute("CREATE TABLE hwnas_schema (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL, "
                     "hwnas_version TEXT NOT NULL)")
        conn.execute("INSERT INTO hwnas_schema VALUES (1, 'then', 'old'), (2, 'then', 'old')")
    gate = tmp_path / "gate"
    gate.mkdir()
    ps = [subprocess.Popen([sys.executable, "-c", _MIGRATE_RACER, url, str(gate), me, "1" if locked else "0"],
                           env=ENV, stderr=subprocess.PIPE, text=True) for me in ("a", "b")]
    errs = [p.communicate(timeout=120)[1] for p in ps]
    assert sorted(f.name for f in gate.iterdir() if not f.name.startswith("read-")) == ["a", "b"]  # both set out at once
    with psycopg.connect(url) as conn:
        steps = conn.execute("SELECT version FROM hwnas_schema ORDER BY version").fetchall()
    if not locked:
        assert sorted(p.returncode for p in ps) == [0, 1], errs  # the second ALTER TABLE fails: the lock matters
        return
    assert [p.returncode for p in ps] == [0, 0], errs
    assert steps == [(1,), (2,), (3,)]  # step 3 recorded (and run) once
    assert MeasurementStore(url).schema_version == 3


def test_two_identical_imports_at_once_store_the_file_once(pg_url, tmp_path):
    csv = nb201_csv(tmp_path / "lat.csv", 120)
    MeasurementStore(pg_url).close()
    gate = tmp_path / "gate"
    gate.mkdir()
    argv = ["import", "latency", str(csv), "--device", "d", "--store", pg_url]
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(gate), name, *argv], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=ENV) for name in ("a", "b")]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted(gate.iterdir()) == [gate / "a", gate / "b"]
    assert len(MeasurementStore(pg_url)) == 120
    assert sorted(o[0].strip().split(" ")[0] for o in outs) == [str(csv), "imported"], outs


# -- hwnas store copy -------------------------------------------------------------------------------------------
def _content(store):
    return [{k: v for k, v in m.to_dict().items() if k != "id"} for m in store.query(latest=False)]


def test_store_copy_both_ways_is_idempotent(pg_url, tmp_path, capsys):
    local = tmp_path / "mine.db"
    mine = MeasurementStore(local)
    mine.add_many([_m(f"a{i}", 1.0 + i / 7, fingerprint={"sha256": "x"}, op_profile=[{"ms": i / 3}])
                   for i in range(30)])
    mine.add(_m("a0", 2.5))  # a re-measurement: a second row of one key
    mine.add_failure("nb201", "f", "|f|", "host", "onnxruntime", {"threads": 1}, "boom")
    mine.add_reference_median("host", "k", "|r|", 1.25)
    capsys.readouterr()
    assert main(["store", "copy", str(local), pg_url]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"copied 31 measurements from {local} to {pg_url} (0 already there)"), out
    assert "failures: 1 copied" in out and "reference medians: 1 copied" in out
    assert main(["store", "copy", str(local), pg_url]) == 0
    assert "copied 0 measurements" in capsys.readouterr().out  # a second copy adds nothing
    team = MeasurementStore(pg_url)
    assert _content(team) == _content(mine) and team.failures()[0]["error"] == "boom"
    team.add(_m("b", 7.0, device="pixel"))  # someone else's measurement
    back = tmp_path / "back.db"
    assert main(["store", "copy", pg_url, str(back)]) == 0
    assert main(["store", "copy", pg_url, str(local)]) == 0
    assert "copied 1 measurements" in capsys.readouterr().out.splitlines()[-1]
    assert _content(MeasurementStore(back)) == _content(team) == _content(MeasurementStore(local))
    assert MeasurementStore(back).reference_median("host", "k") == 1.25


def test_store_copy_refuses_a_missing_source_and_the_same_store(tmp_path, capsys):
    assert main(["store", "copy", str(tmp_path / "none.db"), str(tmp_path / "b.db")]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "b.db").exists()
    MeasurementStore(tmp_path / "a.db").close()
    assert main(["store", "copy", str(tmp_path / "a.db"), str(tmp_path / "a.db")]) == 2
    assert "the same store" in capsys.readouterr().err


# -- the journey: one person's measurements, everyone's predictor ----------------------------------------------
def _with_password(url: str) -> tuple[str, str]:
    """``url`` with a password in it, and as hwnas must show it (the test server trusts local connections, so the
    password is never checked)."""
    return (url.replace("postgresql:///", "postgresql://hwnas:s3cret@/", 1),
            url.replace("postgresql:///", "postgresql://hwnas:***@/", 1))


@pytest.mark.journey
def test_journey_import_fit_predict_on_a_postgresql_store(pg_url, tmp_path):
    url, shown = _with_password(pg_url)
    csv = nb201_csv(tmp_path / "pixel2.csv", 60, latency=lambda i: 1.0 + (i * 37 % 60) / 20)
    ran = run_hwnas(["import", "latency", "pixel2.csv", "--device", "pixel2", "--store", url], cwd=tmp_path).ok()
    assert f"imported 60 measurements for pixel2 (nb201) into {shown}" in ran.out, ran.text
    ran = run_hwnas(["fit-predictor", "--device", "pixel2", "--kind", "lut", "--store", url], cwd=tmp_path).ok()
    assert "trained lut on 60 archs of pixel2" in ran.out and "s3cret" not in ran.text, ran.text
    card = json.loads((tmp_path / "latency_models" / "pixel2" / "nb201-lut" / "card.json").read_text())
    assert card["store"] == f"PostgreSQL {shown}" and card["training"]["count"] == 60  # where its rows came from
    (tmp_path / "archs.txt").write_text("".join(line.split(",")[0] + "\n" for line in csv.read_text().splitlines()[1:4]))
    run_hwnas(["predict", "--device", "pixel2", "--archs", "archs.txt", "--out", "pred.csv"], cwd=tmp_path).ok()
    rows = list(DictReader((tmp_path / "pred.csv").open()))
    assert len(rows) == 3 and all(r["provenance"].startswith("predicted:lut:nb201-lut") and "trained_on=60@"
                                  in r["provenance"] for r in rows), rows
    ran = run_hwnas(["export-measurements", "--device", "pixel2", "--out", "back.csv"], cwd=tmp_path,
                    env={"HWNAS_STORE": url}).ok()  # $HWNAS_STORE instead of --store
    assert "wrote 60 measurements of pixel2 to back.csv" in ran.out and "s3cret" not in ran.text, ran.text
    assert all(r["source"] == "imported" for r in DictReader((tmp_path / "back.csv").open()))


@pytest.mark.journey
def test_journey_a_search_elsewhere_fits_its_predictor_from_the_team_store(pg_url, tmp_path):
    """A second machine has no saved predictor of pixel2: ``--latency pixel2=predictor --store URL`` fits one from
    the team store's rows, and every evaluation says so."""
    url, _ = _with_password(pg_url)
    assert main(["import", "latency", str(nb201_csv(tmp_path / "pixel2.csv", 20)), "--device", "pixel2",
                 "--store", url]) == 0
    ran = run_hwnas(["pareto-search", "--space", "nb201", "--strategy", "random", "--objective", "params",
                     "--objective", "latency_ms@pixel2", "--latency", "pixel2=predictor", "--budget", "6",
                     "--seed", "0", "--store", url, "--out", "run"], cwd=tmp_path).ok()
    evals = list(DictReader((tmp_path / "run" / "evaluations.csv").open()))
    assert len(evals) == 6 and "s3cret" not in ran.text, ran.text
    assert all(re.search(r"predicted:nb201-\w+-from-store@pixel2", json.dumps(e)) for e in evals), evals[0]
    without = run_hwnas(["pareto-search", "--space", "nb201", "--strategy", "random", "--objective", "params",
                         "--objective", "latency_ms@pixel2", "--latency", "pixel2=predictor", "--budget", "6",
                         "--out", "run2"], cwd=tmp_path, env={"HWNAS_STORE": None})  # no store: none, as before
    assert without.rc == 2 and "Traceback" not in without.text, without.text


# -- docs/lab.md: its PostgreSQL blocks run against a real server -----------------------------------------------
@pytest.mark.journey
def test_lab_page_commands_run_against_a_server(pg_url, tmp_path):
    from doc_examples import blocks

    page = [b for b in blocks(REPO / "docs" / "lab.md") if b.mark == "not-run" and "PostgreSQL" in b.why]
    assert page, "docs/lab.md has no PostgreSQL blocks any more"
    nb201_csv(tmp_path / "pixel2.csv", 40)
    home = tmp_path / "home"
    (home / ".hwnas").mkdir(parents=True)
    MeasurementStore(home / ".hwnas" / "measurements.db").add(_m("mine", 2.0))
    for block in page:
        script = re.sub(r"^export HWNAS_STORE=\S+", f"export HWNAS_STORE='{pg_url}'", block.text, flags=re.M)
        assert "HWNAS_STORE" not in block.text or pg_url in script, block.where
        r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                           timeout=300, env={**ENV, "HOME": str(home), "HWNAS_HOME": str(home / ".hwnas"),
                                             "PATH": f"{Path(HWNAS).parent}{os.pathsep}{os.environ['PATH']}"})
        assert r.returncode == 0 and "Traceback" not in r.stderr, f"{block.where}\n{script}\n{r.stderr[-3000:]}"
    assert MeasurementStore(pg_url).devices() == {"host": 1, "pixel2": 40}
