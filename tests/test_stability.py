"""Repeatable measurements: estimators, drift compensation (ABAB reference), pinning record, store schema 2."""

import sqlite3
from dataclasses import replace

import numpy as np
import pytest

from hwnas.errors import HwnasError
from hwnas.measure.campaign import measure_archs, reference_arch
from hwnas.measure.device_profile import ProfileError, load_profile, validate_profile
from hwnas.measure.protocol import ESTIMATORS, ProtocolSettings, estimates, interleaved_reference, run_protocol
from hwnas.spaces import create_space
from hwnas.store import SCHEMA_VERSION, Measurement, MeasurementStore


def test_estimators_on_known_samples():
    times = list(range(1, 101))  # 1..100 ms
    rounds = [10.0, 20.0, 30.0]
    e = estimates(times, rounds)
    assert set(e) == set(ESTIMATORS)
    assert e["median"] == 50.5 and e["median_of_rounds"] == 20.0 and e["p10"] == pytest.approx(10.9)
    assert e["trimmed_mean"] == pytest.approx(50.5)  # symmetric: trimming keeps the mean
    assert estimates([1, 1, 1, 1, 1, 1, 1, 1, 1, 100], [1])["trimmed_mean"] == 1.0  # one outlier cut away
    with pytest.raises(HwnasError, match="unknown estimator 'mean'; known: median, median_of_rounds, p10"):
        ProtocolSettings(estimator="mean")


def test_protocol_reports_every_estimator_and_uses_the_chosen_one():
    rng = np.random.default_rng(0)
    clock = iter(np.arange(0, 1000, 0.01))
    sample = lambda n: list(1.0 + 0.01 * rng.standard_normal(n))  # noqa: E731
    s = ProtocolSettings(estimator="p10", max_time_s=1.0)
    res = run_protocol(sample, s, clock=lambda: next(clock))
    rep = res.report(s)
    assert rep["estimator"] == "p10" and set(rep["estimates"]) == set(ESTIMATORS)
    assert res.estimate(s) == pytest.approx(rep["estimates"]["p10"], abs=1e-6) and res.estimate(s) < res.stats.median_ms
    assert len(res.round_medians) == res.rounds


def test_interleaved_reference_cancels_drift():
    drift = 1.0 + 0.3 * np.sin(np.arange(12))  # the machine's speed swings +-30 % from round to round
    ref, cand = list(1.0 * drift), list(2.5 * drift)
    r = interleaved_reference(ref, cand)
    assert r["ratio"] == pytest.approx(2.5) and r["rounds"] == 12 and r["ratio_iqr"] == pytest.approx(0.0)
    with pytest.raises(HwnasError, match="no reference rounds"):
        interleaved_reference([], [1.0])


# -- store schema 2 and its migration ------------------------------------------------------------------------
V1_DDL = """
CREATE TABLE measurements (id INTEGER PRIMARY KEY AUTOINCREMENT, space TEXT NOT NULL, arch_id TEXT NOT NULL,
  arch TEXT NOT NULL, device TEXT NOT NULL, runtime TEXT NOT NULL, runtime_version TEXT NOT NULL, settings TEXT NOT NULL,
  source TEXT NOT NULL, latency_ms REAL NOT NULL, latency_p90_ms REAL, latency_iqr_ms REAL, latency_cv REAL,
  n_runs INTEGER NOT NULL, first_inference_ms REAL, unstable INTEGER NOT NULL, energy_mj REAL, energy_source TEXT,
  fingerprint TEXT NOT NULL, created_at TEXT NOT NULL, op_profile TEXT, settings_key TEXT NOT NULL);
CREATE INDEX measurements_key ON measurements (device, space, runtime, settings_key, arch_id);
CREATE TABLE failures (id INTEGER PRIMARY KEY AUTOINCREMENT, space TEXT NOT NULL, arch_id TEXT NOT NULL,
  arch TEXT NOT NULL, device TEXT NOT NULL, runtime TEXT NOT NULL, settings TEXT NOT NULL, settings_key TEXT NOT NULL,
  error TEXT NOT NULL, created_at TEXT NOT NULL);
PRAGMA user_version=1;
"""


def test_a_version_1_store_is_migrated_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(V1_DDL)
    conn.execute("INSERT INTO measurements (space, arch_id, arch, device, runtime, runtime_version, settings, source, "
                 "latency_ms, n_runs, unstable, fingerprint, created_at, settings_key) VALUES "
                 "('nb201','a1','|x|','host','onnxruntime','1.0','{}','measured',1.5,100,0,'{}','2026-01-01T00:00:00Z','k')")
    conn.commit()
    conn.close()
    st = MeasurementStore(path)
    assert SCHEMA_VERSION == 3 and st.schema_version == 3
    (old,) = st.query()
    assert old.latency_ms == 1.5 and old.latency_corrected_ms is None and old.reference is None
    assert old.estimator is None and old.throttled is None and old.thermal is None
    m = Measurement(space="nb201", arch_id="a2", arch="|y|", device="host", runtime="onnxruntime", runtime_version="1",
                    settings={}, source="measured", latency_ms=2.0, latency_corrected_ms=1.9, estimator="median",
                    reference={"arch_id": "r", "long_run_median_ms": 1.0}, throttled=True, thermal={"after_c": 51.0})
    st.add(m)
    new = st.query(arch_id="a2")[0]
    assert (new.latency_corrected_ms, new.estimator, new.throttled, new.thermal) == (1.9, "median", True, {"after_c": 51.0})
    assert st.reference_median("host", "k") is None
    assert st.add_reference_median("host", "k", "|r|", 1.0) == 1.0
    st.add_reference_median("host", "k", "|r|", 3.0)
    assert st.add_reference_median("host", "k", "|r|", 1.2) == 1.2 and st.reference_median("host", "other") is None
    st.close()
    assert MeasurementStore(path).schema_version == 3  # opening again: nothing to migrate


def test_two_processes_opening_an_old_store_migrate_it_once(tmp_path, monkeypatch):
    """A second opener that read the old version before the first one migrated must not migrate again
    ('duplicate column name'): the version is read again under the write lock."""
    import threading

    from hwnas import store as store_mod

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(V1_DDL)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN IMMEDIATE")  # the first opener, mid-migration
    out = {}
    read_old = threading.Event()

    class Opener(sqlite3.Connection):
        """The second opener's connection: says when it has read version 1 and asks for the write lock."""

        def execute(self, sql, *args):
            if sql == "BEGIN IMMEDIATE":
                read_old.set()
            return super().execute(sql, *args)

    real_connect = sqlite3.connect
    monkeypatch.setattr(store_mod.sqlite3, "connect", lambda *a, **kw: real_connect(*a, factory=Opener, **kw))

    def second():
        try:
            out["store"] = MeasurementStore(path)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            out["error"] = exc

    t = threading.Thread(target=second)
    t.start()
    assert read_old.wait(30)  # the second opener has read version 1 (not a sleep: it may be slow to get there)
    for v in (1, 2):
        store_mod._run_script(conn, store_mod._MIGRATIONS[v])
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    conn.execute("COMMIT")
    t.join(30)
    assert "error" not in out, out.get("error")
    assert out["store"].schema_version == SCHEMA_VERSION
    out["store"].close()


# -- profiles --------------------------------------------------------------------------------------------
def test_reference_and_thermal_profile_keys():
    host = load_profile("host")
    assert host.reference is None and load_profile("pixel").reference is None  # off by default (docs/profiling.md)
    assert validate_profile({**host.to_dict(), "reference": "auto"}, where="x.yaml").reference == "auto"
    data = load_profile("raspberry-pi-4").to_dict()
    with pytest.raises(ProfileError, match="key 'reference': expected none for an agent connection"):
        validate_profile({**data, "reference": "auto"}, where="x.yaml")
    with pytest.raises(ProfileError, match="key 'thermal.cooldown': expected one of the known keys"):
        validate_profile({**data, "thermal": {"cooldown": 40}}, where="x.yaml")
    p = validate_profile({**load_profile("pixel").to_dict(), "thermal": {"cooldown_c": 40, "throttle_c": 48}}, where="x")
    assert p.thermal == {"cooldown_c": 40.0, "throttle_c": 48.0}


def test_measure_with_a_drift_reference_stores_raw_and_corrected(tmp_path, shared_export_cache):
    sp = create_space("nb201", C=4, N=1)
    store = MeasurementStore(tmp_path / "m.db")
    archs = [sp.from_index(i) for i in (2, 9)]
    ms = measure_archs(sp, archs, "host", store, ProtocolSettings.quick(), cache_dir=shared_export_cache, reference="auto",
                       op_profile=False)
    ref = reference_arch(sp)
    assert ref == reference_arch(sp)  # the same every run
    for m in ms:
        r = m.reference
        assert r["arch_id"] == ref.arch_id and r["arch"] == sp.to_string(ref) and r["rounds"] >= 3
        assert m.latency_corrected_ms == pytest.approx(r["ratio"] * r["long_run_median_ms"])
        assert m.estimator == "median" and m.latency_ms > 0
        pinned = m.fingerprint["protocol"]["pinned"]
        assert pinned["requested"] is None and pinned["cores"] and pinned["intra_op_threads"] == 1
    assert store.reference_median("host", ms[0].reference["key"]) == pytest.approx(
        float(np.median([m.reference["median_ms"] for m in ms])))
    # off: no reference, corrected stays empty; pinned to core 0 where the OS allows
    (m,) = measure_archs(sp, archs[:1], replace(load_profile("host"), affinity=[0]), store, ProtocolSettings.quick(),
                         cache_dir=shared_export_cache, op_profile=False, skip_measured=False, reference=None)
    assert m.reference is None and m.latency_corrected_ms is None
    assert m.fingerprint["protocol"]["pinned"]["cores"] == [0]
