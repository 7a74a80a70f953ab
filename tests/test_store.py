import sqlite3

import pytest

from hwnas.errors import HwnasError
from hwnas.store import (SCHEMA_VERSION, Measurement, MeasurementStore, StoreError, default_store_path,
                         resolve_store_path)


def _m(arch_id="a1", latency=1.0, device="host", runtime="onnxruntime", settings=None, source="measured", **kw):
    return Measurement(space="nb201", arch_id=arch_id, arch=f"|{arch_id}|", device=device, runtime=runtime,
                       runtime_version="1.0", settings=settings or {"threads": 1}, source=source,
                       latency_ms=latency, **kw)


def test_location_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_HOME", str(tmp_path / "home"))
    assert default_store_path() == tmp_path / "home" / "measurements.db"
    assert MeasurementStore().path == tmp_path / "home" / "measurements.db"
    assert resolve_store_path(tmp_path / "x.db") == tmp_path / "x.db"
    assert resolve_store_path(tmp_path) == tmp_path / "measurements.db"
    monkeypatch.delenv("HWNAS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert default_store_path() == tmp_path / "user" / ".hwnas" / "measurements.db"


def test_round_trip_keeps_every_field(tmp_path):
    store = MeasurementStore(tmp_path / "m.db")
    m = _m(latency_p90_ms=1.2, latency_iqr_ms=0.1, latency_cv=0.03, n_runs=40, first_inference_ms=5.0,
           unstable=True, energy_mj=2.5, energy_source="estimated:host-cpu-generic",
           fingerprint={"cpu": "x", "cores": 2}, op_profile=[{"name": "conv", "op_type": "Conv", "ms": 0.4}])
    rid = store.add(m)
    assert rid == m.id == 1
    (back,) = MeasurementStore(tmp_path / "m.db").query()
    assert back == m


def test_reprofiling_appends_and_latest_returns_newest(tmp_path):
    store = MeasurementStore(tmp_path / "m.db")
    store.add(_m("a1", 1.0))
    store.add(_m("a2", 2.0))
    store.add(_m("a1", 3.0))
    store.add(_m("a1", 9.0, settings={"threads": 4}))  # other settings: its own key
    latest = {(m.arch_id, m.settings["threads"]): m.latency_ms for m in store.query()}
    assert latest == {("a1", 1): 3.0, ("a2", 1): 2.0, ("a1", 4): 9.0}
    assert [m.latency_ms for m in store.query(latest=False)] == [1.0, 2.0, 3.0, 9.0]
    assert [m.latency_ms for m in store.query(settings={"threads": 4})] == [9.0]
    assert store.measured_ids("host", "nb201", "onnxruntime", {"threads": 1}) == {"a1", "a2"}
    assert store.measured_ids("host", "nb201", "litert", {"threads": 1}) == set()


def test_query_filters(tmp_path):
    store = MeasurementStore(tmp_path / "m.db")
    store.add(_m("a", device="host"))
    store.add(_m("b", device="pixel", runtime="litert"))
    store.add(_m("c", device="pixel", source="imported", runtime="unknown"))
    assert {m.arch_id for m in store.query(device="pixel")} == {"b", "c"}
    assert [m.arch_id for m in store.query(source="imported")] == ["c"]
    assert [m.arch_id for m in store.query(runtime="litert")] == ["b"]
    assert store.devices() == {"host": 1, "pixel": 2}


def test_add_many_is_all_or_nothing(tmp_path):
    store = MeasurementStore(tmp_path / "m.db")
    good = _m("a")
    bad = _m("b")
    bad.fingerprint = {"x": object()}  # serialisable via default=str, so make the row itself fail instead
    bad.latency_ms = None  # NOT NULL constraint fails inside the transaction
    with pytest.raises(sqlite3.IntegrityError):
        store.add_many([good, bad])
    assert len(store) == 0
    store.add(_m("c"))
    assert len(store) == 1


def test_wal_and_schema_version(tmp_path):
    store = MeasurementStore(tmp_path / "m.db")
    mode = store._conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal" and store.schema_version == SCHEMA_VERSION


def test_refuses_newer_schema_and_foreign_files(tmp_path):
    p = tmp_path / "new.db"
    MeasurementStore(p).close()
    con = sqlite3.connect(p)
    con.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer than this hwnas"):
        MeasurementStore(p)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"hello, this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a hwnas measurement store"):
        MeasurementStore(junk)
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="not a hwnas measurement store"):
        MeasurementStore(other)


def test_measurement_validation():
    with pytest.raises(HwnasError, match="source"):
        _m(source="guessed")
    with pytest.raises(HwnasError, match="latency_ms must be > 0"):
        _m(latency=-1.0)
    with pytest.raises(HwnasError, match="latency_ms must be a finite number"):
        _m(latency=float("nan"))


def test_failures_are_recorded(tmp_path):
    store = MeasurementStore(tmp_path / "m.db")
    store.add_failure("nb201", "a", "|a|", "host", "litert", {"threads": 1}, "conversion failed")
    (f,) = store.failures("host")
    assert f["error"] == "conversion failed" and f["arch_id"] == "a"
    assert len(store) == 0
