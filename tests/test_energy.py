import time

import pytest

from hwnas.measure.runners.energy import (BatteryReader, CounterMeter, Ina3221Reader, NvmlReader, PowerModel, RaplReader,
                                  SampledMeter, SensorError, estimate, integrate, open_meter)


def _rapl_tree(root, packages):
    base = root / "sys" / "class" / "powercap"
    for i, (uj, rng) in enumerate(packages):
        d = base / f"intel-rapl:{i}"
        d.mkdir(parents=True)
        (d / "energy_uj").write_text(f"{uj}\n")
        (d / "max_energy_range_uj").write_text(f"{rng}\n")
        (d / "name").write_text(f"package-{i}\n")
        sub = base / f"intel-rapl:{i}:0"  # core sub-domain: must not be double counted
        sub.mkdir()
        (sub / "energy_uj").write_text("999999\n")
    return base


def test_rapl_sums_packages_and_handles_wraparound(tmp_path):
    base = _rapl_tree(tmp_path, [(1_000_000, 10_000_000), (9_500_000, 10_000_000)])
    r = RaplReader(tmp_path)
    assert r.available() and [d.name for d in r.domains()] == ["intel-rapl:0", "intel-rapl:1"]
    meter = CounterMeter(r)
    meter.start()
    (base / "intel-rapl:0" / "energy_uj").write_text("3000000\n")  # +2 J
    (base / "intel-rapl:1" / "energy_uj").write_text("500000\n")  # wrapped: +1 J
    assert meter.stop() == pytest.approx(3.0)
    assert meter.label == "measured:rapl"


def test_rapl_absent_or_unreadable(tmp_path):
    assert not RaplReader(tmp_path).available()
    base = _rapl_tree(tmp_path, [(5, 10)])
    (base / "intel-rapl:0" / "energy_uj").write_text("garbage")
    assert not RaplReader(tmp_path).available()


class _FakeNvml:
    def __init__(self):
        self.mj = 1000.0

    def nvmlInit(self):
        pass

    def nvmlDeviceGetHandleByIndex(self, i):
        return ("gpu", i)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        self.mj += 250.0
        return self.mj


class _BrokenNvml(_FakeNvml):
    def nvmlInit(self):
        raise RuntimeError("NVML Shared Library Not Found")


def test_nvml_counter_with_injected_library():
    lib = _FakeNvml()
    r = NvmlReader(0, nvml=lib)
    assert r.available()
    m = CounterMeter(r)
    m.start()
    assert m.stop() == pytest.approx(0.25)


def test_nvml_missing_library_is_unavailable(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name == "pynvml":
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    assert not NvmlReader().available()


def test_ina3221_l4t32_iio_layout(tmp_path):
    dev = tmp_path / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    dev.mkdir(parents=True)
    for i, (name, mw) in enumerate([("POM_5V_IN", 4200), ("POM_5V_GPU", 1100), ("POM_5V_CPU", 900)]):
        (dev / f"rail_name_{i}").write_text(name + "\n")
        (dev / f"in_power{i}_input").write_text(f"{mw}\n")
    assert Ina3221Reader(tmp_path).rails() == ["POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"]
    assert Ina3221Reader(tmp_path, "POM_5V_GPU").power_w() == pytest.approx(1.1)
    assert Ina3221Reader(tmp_path).power_w() == pytest.approx(4.2)
    with pytest.raises(SensorError, match="no rail 'VDD_X'"):
        Ina3221Reader(tmp_path, "VDD_X").power_w()


def test_ina3221_hwmon_layout(tmp_path):
    hw = tmp_path / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    hw.mkdir(parents=True)
    (hw / "in1_label").write_text("VDD_IN\n")
    (hw / "in1_input").write_text("5000\n")  # mV
    (hw / "curr1_input").write_text("800\n")  # mA
    assert Ina3221Reader(tmp_path, "VDD_IN").power_w() == pytest.approx(4.0)
    assert not Ina3221Reader(tmp_path / "nothing").available()


def test_battery_reader_local_and_injected(tmp_path):
    d = tmp_path / "sys/class/power_supply/battery"
    d.mkdir(parents=True)
    (d / "current_now").write_text("-500000\n")  # uA, discharging
    (d / "voltage_now").write_text("4000000\n")  # uV
    assert BatteryReader(tmp_path).power_w() == pytest.approx(2.0)
    vals = {"current_now": "250000", "voltage_now": "3800000"}
    assert BatteryReader(read=vals.__getitem__).power_w() == pytest.approx(0.95)
    assert not BatteryReader(read=lambda n: "Permission denied").available()


def test_sampled_meter_integrates_a_constant_power():
    m = SampledMeter(lambda: 2.0, "fake", interval_s=0.01)
    m.start()
    time.sleep(0.1)
    joules = m.stop()
    span = m.samples[-1][0] - m.samples[0][0]
    assert joules == pytest.approx(2.0 * span) and m.mean_power_w == 2.0


def test_integrate_trapezoid():
    assert integrate([(0.0, 1.0), (1.0, 3.0), (3.0, 3.0)]) == pytest.approx(2.0 + 6.0)
    with pytest.raises(SensorError):
        integrate([(0.0, 1.0)])


def test_power_model_formula_and_label():
    pm = PowerModel("rpi4-board", idle_w=2.7, active_w=6.4, cores=4)
    assert pm.power_w(4) == pytest.approx(6.4) and pm.power_w(8) == pytest.approx(6.4)
    assert pm.power_w(1) == pytest.approx(2.7 + 3.7 / 4)
    assert pm.energy_mj(10.0, 4) == pytest.approx(64.0)
    assert estimate({"power_model": {"name": "x", "idle_w": 0, "active_w": 10, "cores": 2}}, 2.0, 1) == (10.0, "estimated:x")
    assert estimate({"sensor": "none"}, 2.0, 1) == (None, None)


def test_open_meter_selection(tmp_path):
    assert open_meter({"sensor": "none"}, root=tmp_path) is None
    assert open_meter({"sensor": "auto"}, root=tmp_path, nvml=_BrokenNvml()) is None  # no RAPL, no GPU
    _rapl_tree(tmp_path, [(1, 10)])
    assert open_meter({"sensor": "auto"}, root=tmp_path).label == "measured:rapl"
    assert open_meter({"sensor": "nvml"}, root=tmp_path, nvml=_FakeNvml()).label == "measured:nvml"
    assert open_meter({"sensor": "ina3221"}, root=tmp_path) is None  # named but absent -> estimate instead
    assert open_meter({"sensor": "rapl", "sysfs_root": str(tmp_path)}).label == "measured:rapl"


def test_battery_reader_finds_a_laptop_battery_by_type(tmp_path):
    base = tmp_path / "sys/class/power_supply"
    (base / "AC").mkdir(parents=True)
    (base / "AC" / "type").write_text("Mains\n")
    bat = base / "BAT0"
    bat.mkdir()
    (bat / "type").write_text("Battery\n")
    (bat / "current_now").write_text("1000000\n")
    (bat / "voltage_now").write_text("12000000\n")
    reader = BatteryReader(tmp_path)
    assert reader.supply == "BAT0" and reader.power_w() == pytest.approx(12.0)
    assert BatteryReader(tmp_path, "AC").available() is False  # mains has no current_now here
