"""Thermal awareness: temperatures before / after each arch, cooldown, throttled rows (fake sysfs, fake adb)."""

import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from hwnas.measure import thermal
from hwnas.measure.device_profile import load_profile
from hwnas.measure.protocol import ProtocolSettings
from hwnas.measure.runners.adb import AdbRunner
from hwnas.measure.runners.local import LocalRunner

FAKE = Path(__file__).parent / "fakes" / "fake_adb.py"


def test_parse_thermal_lines():
    r = thermal.parse_thermal_lines("zone cpu-big 52300\nzone cpu-big 50100\nzone gpu 41\nbattery battery 312\n"
                                    "zone broken \ncpufreq cpu4 1704000/2850000\ncpufreq cpu0 1800000/1800000\n")
    assert r["zones"] == {"cpu-big": 52.3, "cpu-big#1": 50.1, "gpu": 41.0, "battery": 31.2}
    assert r["capped_cpus"] == ["cpu4"]


def _tree(root: Path, temps_mc: dict, capped: bool = False) -> Path:
    for i, (kind, t) in enumerate(temps_mc.items()):
        z = root / f"sys/class/thermal/thermal_zone{i}"
        z.mkdir(parents=True, exist_ok=True)
        (z / "type").write_text(kind + "\n")
        (z / "temp").write_text(f"{t}\n")
    f = root / "sys/devices/system/cpu/cpu0/cpufreq"
    f.mkdir(parents=True, exist_ok=True)
    (f / "scaling_max_freq").write_text("1500000\n" if capped else "2400000\n")
    (f / "cpuinfo_max_freq").write_text("2400000\n")
    return root


def test_read_sysfs_jetson_like_tree(tmp_path):
    root = _tree(tmp_path, {"CPU-therm": 47500, "GPU-therm": 45000})
    assert thermal.read_sysfs(root) == {"zones": {"CPU-therm": 47.5, "GPU-therm": 45.0}, "capped_cpus": []}
    assert thermal.read_sysfs(tmp_path / "empty") == {"zones": {}, "capped_cpus": []}
    assert thermal.thermal_record({"zones": {}}, {"zones": {}}, {}) is None  # nothing to report: no record


def test_cooldown_waits_for_the_threshold_and_times_out():
    readings = iter([{"zones": {"cpu": t}} for t in (55.0, 48.0, 39.5)])
    now = [0.0]
    sleep = lambda s: now.__setitem__(0, now[0] + s)  # noqa: E731
    last, waited, ok = thermal.cool_down(lambda: next(readings), {"cooldown_c": 40}, sleep=sleep, clock=lambda: now[0])
    assert ok and waited == 4.0 and last["zones"]["cpu"] == 39.5
    hot = lambda: {"zones": {"cpu": 60.0}}  # noqa: E731
    _, waited, ok = thermal.cool_down(hot, {"cooldown_c": 40, "cooldown_timeout_s": 5}, sleep=sleep, clock=lambda: now[0])
    assert not ok and waited >= 5
    rec = thermal.thermal_record(hot(), hot(), {"cooldown_c": 40, "throttle_c": 55}, waited, ok)
    assert rec["throttled"] and "60.0 C >= throttle_c 55 C" in rec["reason"] and "timed out" in rec["reason"]
    assert thermal.thermal_record({"zones": {"cpu": 30.0}}, {"zones": {"cpu": 31.0}}, {"throttle_c": 55})["throttled"] is False
    only_gpu = thermal.thermal_record({"zones": {"cpu": 70.0, "gpu": 30.0}}, {"zones": {"gpu": 31.0}},
                                      {"throttle_c": 55, "zones": ["gpu"]})
    assert only_gpu["throttled"] is False and only_gpu["before_c"] == 30.0


@pytest.fixture
def fake_adb(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "adb").write_text(f"#!/bin/sh\nexec {sys.executable} {FAKE} \"$@\"\n")
    (bin_dir / "adb").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_ROOT", str(tmp_path / "phone"))
    return tmp_path / "phone"


def test_phone_cooldown_then_throttled_flag(fake_adb, tmp_path, monkeypatch):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"onnx")
    prof = replace(load_profile("pixel-onnxruntime"), energy={"sensor": "none", "power_model": None},
                   thermal={"cooldown_c": 40.0, "throttle_c": 50.0})
    monkeypatch.setenv("FAKE_ADB_TEMPS", "47,43,39.5,51")  # cools to 39.5, then heats to 51 while measuring
    r = AdbRunner(thermal_poll_s=0.01).run(model, prof, ProtocolSettings.quick(), op_profile=False)
    t = r.thermal
    assert t["before_c"] == 39.5 and t["after_c"] == 51.0 and t["zones_before"]["battery"] == 31.0
    assert t["throttled"] and t["reason"] == "51.0 C >= throttle_c 50 C" and t["cooldown_s"] >= 0
    # cool all along, but a CPU frequency cap (the thermal governor) still flags the row
    monkeypatch.setenv("FAKE_ADB_TEMPS", "36")
    monkeypatch.setenv("FAKE_ADB_CPU_CAPPED", "1")
    (fake_adb / "thermal_reads").unlink()
    r = AdbRunner().run(model, replace(prof, thermal={}), ProtocolSettings.quick(), op_profile=False)
    assert r.thermal["throttled"] and "capped below its maximum on cpu4" in r.thermal["reason"]


def test_local_runner_records_board_temperatures(tmp_path, shared_export_cache):
    from hwnas.export import ExportSettings, export_arch
    from hwnas.spaces import create_space

    sp = create_space("nb201", C=4, N=1)
    path = export_arch(sp, sp.from_index(2), ExportSettings(format="onnx"), cache_dir=shared_export_cache)
    root = _tree(tmp_path / "sysfs", {"cpu-thermal": 81500}, capped=True)  # a Raspberry Pi at its soft limit
    prof = replace(load_profile("host"), thermal={"throttle_c": 80.0}, energy={"sensor": "none"})
    r = LocalRunner(sysfs_root=root).run(path, prof, ProtocolSettings.quick(), op_profile=False)
    assert r.thermal["before_c"] == 81.5 and r.thermal["throttled"]
    assert "81.5 C >= throttle_c 80 C" in r.thermal["reason"] and "cpu0" in r.thermal["reason"]


def test_on_timeout_stop_raises_a_thermal_stop_that_counts_as_a_drop_off():
    from hwnas.measure.protocol import DeviceUnreachable

    hot = {"zones": {"cpu": 61.5}}
    thermal.stop_if_hot("p", hot, 120.0, False, {"cooldown_c": 40})  # default on_timeout: measure (row flagged)
    thermal.stop_if_hot("p", hot, 3.0, True, {"cooldown_c": 40, "on_timeout": "stop"})  # it cooled down in time
    with pytest.raises(thermal.ThermalStop, match=r"device p: thermal stop: the hottest zone is 61\.5 C, still "
                       r"above cooldown_c 40 C after 120 s") as err:
        thermal.stop_if_hot("p", hot, 120.0, False, {"cooldown_c": 40, "on_timeout": "stop"})
    assert isinstance(err.value, DeviceUnreachable)  # what a several-device profile retries, then reports


def test_an_agent_answering_409_is_a_thermal_stop_on_the_client(tmp_path):
    import io
    import urllib.error

    from hwnas.measure.runners.agent import AgentRunner

    class Profile:
        name = "board"

    body = io.BytesIO(b'{"error": "device pi: thermal stop: the hottest zone is 70.0 C"}')
    exc = urllib.error.HTTPError("http://x/measure", 409, "Conflict", {}, body)
    with pytest.raises(thermal.ThermalStop, match=r"device board \(agent at http://x/measure\): device pi: thermal"):
        AgentRunner._refused(exc, "http://x/measure", Profile())


def test_a_profile_says_measure_or_stop_on_a_cooldown_timeout(tmp_path):
    from hwnas.errors import HwnasError
    from hwnas.measure.device_profile import load_profile

    text = ("name: t\nruntime: onnxruntime\nconnection: {type: local}\nthermal: {cooldown_c: 40, on_timeout: %s}\n")
    (tmp_path / "ok.yaml").write_text(text % "stop")
    assert load_profile(tmp_path / "ok.yaml").thermal["on_timeout"] == "stop"
    (tmp_path / "bad.yaml").write_text(text % "wait")
    with pytest.raises(HwnasError, match="thermal.on_timeout.*measure or stop.*wait"):
        load_profile(tmp_path / "bad.yaml")
