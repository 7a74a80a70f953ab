"""Peak power (MONAS's second objective): sampled from fake sensors at their rate, else a labelled estimate;
kept in the measurement store (schema 2)."""

from __future__ import annotations

import sqlite3
import time

import pytest

from hwnas.errors import HwnasError
from hwnas.measure.runners.energy import (CounterMeter, SampledMeter, estimate_peak_power, open_meter, peak_power,
                                          sample_interval)
from hwnas.store import SCHEMA_VERSION, Measurement, MeasurementStore

MODEL = {"name": "toy-board", "idle_w": 1.0, "active_w": 5.0, "cores": 4}


def test_sampled_meter_peak_is_the_largest_sample_of_a_fake_sensor():
    readings = iter([2.0, 2.0, 7.5, 2.5] + [2.0] * 10_000)  # a burst in the third sample
    m = SampledMeter(lambda: next(readings), "fake", interval_s=0.005)
    m.start()
    time.sleep(0.05)
    m.stop()
    assert m.peak_power_w == 7.5 and len(m.samples) >= 4
    w, src = peak_power(m, {"power_model": MODEL}, threads=4)
    assert w == 7.5 and src == f"measured:fake(peak of {len(m.samples)} samples every 5 ms)"


class _FakeCounter:
    """An energy counter (joules) of a device drawing 3 W, then 9 W once ``burst`` is set."""

    name = "fakecounter"

    def __init__(self):
        self.t0 = time.monotonic()
        self.burst_at = None

    def snapshot(self):
        t = time.monotonic() - self.t0
        if self.burst_at is None:
            return 3.0 * t
        return 3.0 * self.burst_at + 9.0 * (t - self.burst_at)

    @staticmethod
    def joules_between(a, b):
        return b - a


def test_counter_meter_peak_is_the_largest_mean_power_between_reads():
    c = _FakeCounter()
    m = CounterMeter(c, interval_s=0.01)
    m.start()
    time.sleep(0.06)
    c.burst_at = time.monotonic() - c.t0
    time.sleep(0.06)
    joules = m.stop()
    span = m.samples[-1][0] - m.samples[0][0]
    assert 3.0 * span < joules < 9.0 * span
    assert m.peak_power_w == pytest.approx(9.0, rel=0.1)
    assert m.peak_source.startswith("measured:fakecounter(peak of ") and "every 10 ms" in m.peak_source


def test_peak_power_falls_back_to_the_labelled_power_model_estimate(tmp_path):
    assert open_meter({"sensor": "battery", "power_model": MODEL}, root=tmp_path) is None  # no battery there
    assert peak_power(None, {"power_model": MODEL}, threads=2) == (1.0 + 4.0 * 2 / 4, "estimated:toy-board")
    assert estimate_peak_power({}, threads=1) == (None, None)
    assert sample_interval({"sample_interval_s": 0.2}) == 0.2 and sample_interval(None) == 0.05


def test_ina3221_meter_from_a_fake_sysfs_tree_reports_peak_power(tmp_path):
    dev = tmp_path / "sys/bus/i2c/drivers/ina3221x/1-0040/iio:device0"
    dev.mkdir(parents=True)
    (dev / "rail_name_0").write_text("VDD_IN\n")
    (dev / "in_power0_input").write_text("3000\n")  # mW
    m = open_meter({"sensor": "ina3221", "rail": "VDD_IN", "sample_interval_s": 0.005}, root=tmp_path)
    m.start()
    (dev / "in_power0_input").write_text("6400\n")
    time.sleep(0.03)
    (dev / "in_power0_input").write_text("3100\n")
    time.sleep(0.02)
    m.stop()
    assert m.peak_power_w == pytest.approx(6.4) and m.peak_source.startswith("measured:ina3221(")


def _m(**kw):
    return Measurement(space="nb201", arch_id="a1", arch="|a1|", device="jetson-tx1", runtime="onnxruntime",
                       runtime_version="1.0", settings={"format": "onnx"}, source="measured", latency_ms=1.0, **kw)


def test_store_keeps_peak_power_and_migrates_a_schema_1_file(tmp_path):
    assert SCHEMA_VERSION == 3
    store = MeasurementStore(tmp_path / "m.db")
    store.add(_m(peak_power_w=6.4, peak_power_source="measured:ina3221(peak of 9 samples every 20 ms)"))
    (back,) = MeasurementStore(tmp_path / "m.db").query()
    assert back.peak_power_w == 6.4 and back.peak_power_source.startswith("measured:ina3221")
    # a store written by the previous hwnas (schema 1, no peak power columns) is migrated in place
    from hwnas import store as store_mod

    old = tmp_path / "old.db"
    con = sqlite3.connect(old)
    con.executescript(store_mod._SCHEMA_V1 + "PRAGMA user_version=1;")
    con.close()
    s = MeasurementStore(old)
    assert s.schema_version == 3
    s.add(_m())
    (back,) = s.query()
    assert back.peak_power_w is None and back.peak_power_source is None


# -- the objective ------------------------------------------------------------------------------------------


def test_peak_power_objective_and_constraint_from_a_table(tmp_path):
    from hwnas.evaluation import EvaluatorSpec, build_evaluator
    from hwnas.spaces import create_space

    space = create_space("nb201", C=4, N=1)
    archs = [space.from_index(i) for i in (0, 7, 99)]
    acc = tmp_path / "acc.csv"
    acc.write_text("arch,test_accuracy\n" + "".join(f"{space.to_string(a)},{80 + i}\n" for i, a in enumerate(archs)))
    power = tmp_path / "power.csv"
    power.write_text("arch,peak_power_w\n" + "".join(f"{space.to_string(a)},{5.0 + 2 * i}\n" for i, a in enumerate(archs)))
    ev = build_evaluator(space, EvaluatorSpec(objectives=["error", "peak_power_w@tx1"],
                                              constraints=["peak_power_w@tx1<=8"], energy=[f"tx1=table:{power}"],
                                              accuracy=f"table:{acc}"))
    F = ev.evaluate(archs)
    assert F[:, 1].tolist() == [5.0, 7.0, 9.0]
    assert ev.violations(archs).tolist()[:2] == [0.0, 0.0] and ev.violations(archs)[2] > 0
    # the single-device shorthand (issue 11) names the one device; with two it asks which
    one = build_evaluator(space, EvaluatorSpec(objectives=["peak_power_w"], energy=[f"dev=table:{power}"]))
    assert [o.label for o in one.objectives] == ["peak_power_w@dev"]
    with pytest.raises(HwnasError, match=r"several devices \(a, b\): name the one meant, e\.g\. latency_ms@a"):
        build_evaluator(space, EvaluatorSpec(objectives=["peak_power_w"], energy=[f"a=table:{power}", f"b=table:{power}"]))


@pytest.mark.slow  # two real local measurements: ~50 s on the shared 2-core box
def test_monas_searches_under_a_peak_power_limit_measured_from_a_fake_ina3221(tmp_path, monkeypatch):
    """End to end: MONAS's constrained reward on peak_power_w@DEV, each candidate really run here in ONNX
    Runtime while a background thread samples a fake INA3221 sysfs tree (the only fake: the board)."""
    import os

    from hwnas.cli.main import main
    from search_fixtures import write_nb201_tables

    home = tmp_path / "hwnas_home"
    monkeypatch.setenv("HWNAS_HOME", str(home))
    sysfs = tmp_path / "board"
    dev = sysfs / "sys/bus/i2c/drivers/ina3221x/1-0040/iio:device0"
    dev.mkdir(parents=True)
    (dev / "rail_name_0").write_text("VDD_IN\n")
    (dev / "in_power0_input").write_text("4200\n")  # mW
    (home / "device_profiles").mkdir(parents=True)
    (home / "device_profiles" / "fakejet.yaml").write_text(
        "runtime: onnxruntime\nthreads: 1\nconnection: {type: local}\n"
        f"energy: {{sensor: ina3221, rail: VDD_IN, sysfs_root: '{sysfs}', sample_interval_s: 0.005}}\n")
    acc, _ = write_nb201_tables(tmp_path)
    out = tmp_path / "run"
    argv = ["pareto-search", "--space", "nb201", "--space-opt", "C=4", "--space-opt", "N=1", "--space-opt",
            "input_size=8", "--strategy", "monas", "--strategy-opt", "reward=constrained", "--strategy-opt",
            "batch_size=2", "--objective", "error", "--objective", "peak_power_w@fakejet", "--constraint",
            "peak_power_w@fakejet<=5", "--accuracy", f"table:{acc}", "--energy", "fakejet=measure",
            "--budget", "2", "--no-progress", "--out", str(out)]
    assert main(argv) == 0, os.listdir(out)
    import json

    rows = [json.loads(line) for line in (out / "evaluations.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "hwnas_log" not in r]  # the log's header: the settings, not an evaluation
    assert len(rows) == 2
    for r in rows:
        assert r["values"][1] == pytest.approx(4.2)
        assert r["sources"][1].startswith("measured:ina3221(peak of ") and r["sources"][1].endswith("@fakejet")
        assert r["violation"] == 0
