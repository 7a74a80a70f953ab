"""Energy: measured where a sensor exists, else estimated from a documented power model.

Sensors (every sysfs path is relative to an injectable ``root``, so readers are tested on fake trees):

- **rapl**: Linux powercap, ``<root>/sys/class/powercap/intel-rapl:N/energy_uj`` (package domains, also
  exposed for AMD CPUs by recent kernels); a wrapping counter in microjoules (``max_energy_range_uj``).
- **nvml**: NVIDIA's ``nvmlDeviceGetTotalEnergyConsumption`` (millijoules since driver load), when the
  optional ``pynvml`` / ``nvidia-ml-py`` package is installed and a GPU is present.
- **ina3221**: the Jetson power monitor. L4T 32 (Nano): ``<root>/sys/bus/i2c/drivers/ina3221x/*/iio:device*/
  in_power<i>_input`` (mW) named by ``rail_name_<i>``; newer L4T: ``.../ina3221/*/hwmon/hwmon*/in<i>_label``,
  ``in<i>_input`` (mV) and ``curr<i>_input`` (mA). Sampled in a thread while the model runs.
- **battery**: ``current_now`` (uA) and ``voltage_now`` (uV) of a power supply, read locally or through
  ``adb shell cat`` on Android; sampled while the model runs.

Energy per inference = energy over the timed runs / number of inferences, labelled ``measured:<sensor>``.
It is the whole package / rail / battery energy during the run, so it includes idle power and any other load.

Peak power (``peak_power_w``, MONAS's second objective) = the largest power seen while the model runs, at the
sensor's sampling interval (profile key ``energy.sample_interval_s``, default 0.05 s): for power sensors
(INA3221, battery) the largest sample; for energy counters (RAPL, NVML) the largest mean power between two
counter reads one interval apart. Labelled ``measured:<sensor>(peak of <n> samples every <ms> ms)``; a
shorter burst than the interval is averaged away, so it is a lower bound of the electrical peak.

Power model (used when no sensor is readable; labelled ``estimated:<model name>``):

    P_w = idle_w + (active_w - idle_w) * min(threads, cores) / cores
    energy_mj = P_w * latency_ms          (W x ms = mJ)
    peak_power_w (estimated) = P_w        (the model's power while busy: the same for every network)

``idle_w`` / ``active_w`` / ``cores`` come from the device profile's ``energy.power_model``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ...errors import HwnasError


class SensorError(HwnasError):
    """A sensor exists but could not be read."""


def _read_number(path: Path) -> float:
    try:
        return float(Path(path).read_text().strip())
    except (OSError, ValueError) as exc:
        raise SensorError(f"cannot read {path}: {exc}") from None


# -- counters --------------------------------------------------------------------------------------------
class RaplReader:
    """Sum of the RAPL package domains' energy counters (joules), handling counter wrap-around."""

    name = "rapl"

    def __init__(self, root: Path | str = "/"):
        self.root = Path(root)

    def domains(self) -> list[Path]:
        base = self.root / "sys" / "class" / "powercap"
        if not base.is_dir():
            return []
        # top-level packages only (intel-rapl:0), not their sub-domains (intel-rapl:0:0, core/uncore/dram)
        return sorted(d for d in base.iterdir() if d.name.count(":") == 1 and (d / "energy_uj").is_file())

    def available(self) -> bool:
        try:
            return bool(self.domains()) and all(self._counter(d) >= 0 for d in self.domains())
        except SensorError:
            return False

    @staticmethod
    def _counter(d: Path) -> float:
        return _read_number(d / "energy_uj")

    def snapshot(self) -> dict[Path, float]:
        return {d: self._counter(d) for d in self.domains()}

    def joules_between(self, a: dict[Path, float], b: dict[Path, float]) -> float:
        total_uj = 0.0
        for d, start in a.items():
            end = b[d]
            if end < start:  # wrapped
                rng = _read_number(d / "max_energy_range_uj") if (d / "max_energy_range_uj").is_file() else 2 ** 32
                end += rng
            total_uj += end - start
        return total_uj / 1e6


def _nvml_errors(lib) -> tuple:
    """pynvml's error class (every NVML failure derives from it), when ``lib`` has one."""
    err = getattr(lib, "NVMLError", None)
    return (err,) if isinstance(err, type) and issubclass(err, Exception) else ()


class NvmlReader:
    """NVIDIA GPU total energy counter through pynvml (optional import; ``nvml`` injectable for tests)."""

    name = "nvml"

    def __init__(self, index: int = 0, nvml=None):
        self.index = index
        self._nvml = nvml
        self._handle = None

    def _lib(self):
        if self._nvml is None:
            try:
                import pynvml  # type: ignore
            except ImportError:
                return None
            self._nvml = pynvml
        return self._nvml

    def available(self) -> bool:
        lib = self._lib()
        if lib is None:
            return False
        try:
            lib.nvmlInit()
            self._handle = lib.nvmlDeviceGetHandleByIndex(self.index)
            lib.nvmlDeviceGetTotalEnergyConsumption(self._handle)
            return True
        except (OSError, RuntimeError, *_nvml_errors(lib)):  # no library, no GPU, no energy counter on this one
            return False

    def snapshot(self) -> float:
        if self._handle is None and not self.available():
            raise SensorError("NVML is not available")
        return float(self._lib().nvmlDeviceGetTotalEnergyConsumption(self._handle))  # mJ

    def joules_between(self, a: float, b: float) -> float:
        return (b - a) / 1e3


# -- instantaneous power ---------------------------------------------------------------------------------
class Ina3221Reader:
    """Power of one INA3221 rail (watts): L4T 32 iio layout or the newer hwmon layout."""

    name = "ina3221"

    def __init__(self, root: Path | str = "/", rail: str | None = None):
        self.root = Path(root)
        self.rail = rail

    def _channels(self) -> list[tuple[str, Callable[[], float]]]:
        chans: list[tuple[str, Callable[[], float]]] = []
        drivers = self.root / "sys" / "bus" / "i2c" / "drivers"
        for dev in sorted(drivers.glob("ina3221x/*/iio:device*")):  # L4T 32: mW per rail
            for p in sorted(dev.glob("in_power*_input")):
                i = p.name[len("in_power"):-len("_input")]
                label_file = dev / f"rail_name_{i}"
                label = label_file.read_text().strip() if label_file.is_file() else f"rail{i}"
                chans.append((label, lambda p=p: _read_number(p) / 1e3))
        for hw in sorted(drivers.glob("ina3221/*/hwmon/hwmon*")):  # newer L4T: mV and mA
            for lab in sorted(hw.glob("in*_label")):
                i = lab.name[2:-len("_label")]
                v, c = hw / f"in{i}_input", hw / f"curr{i}_input"
                if v.is_file() and c.is_file():
                    chans.append((lab.read_text().strip(),
                                  lambda v=v, c=c: _read_number(v) * _read_number(c) / 1e6))
        return chans

    def rails(self) -> list[str]:
        return [n for n, _ in self._channels()]

    def _reader(self) -> Callable[[], float]:
        chans = self._channels()
        if not chans:
            raise SensorError(f"no INA3221 power monitor under {self.root / 'sys/bus/i2c/drivers'}")
        if self.rail is None:
            return chans[0][1]
        for n, fn in chans:
            if n == self.rail:
                return fn
        raise SensorError(f"INA3221 has no rail {self.rail!r}; rails: {', '.join(n for n, _ in chans)}")

    def available(self) -> bool:
        try:
            self._reader()()
            return True
        except SensorError:
            return False

    def power_w(self) -> float:
        return self._reader()()


class BatteryReader:
    """Battery power (watts) from current_now (uA) and voltage_now (uV).

    ``read(name) -> str`` returns the content of ``<supply>/<name>``; by default it reads
    ``<root>/sys/class/power_supply/<supply>/`` locally; the adb runner passes one that runs ``adb shell cat``.
    The current's sign convention differs between vendors, so its magnitude is used.
    """

    name = "battery"

    def __init__(self, root: Path | str = "/", supply: str | None = None, read: Callable[[str], str] | None = None):
        self.root = Path(root)
        self.supply = supply or (self._find_supply(self.root) if read is None else "battery")
        self._read = read

    @staticmethod
    def _find_supply(root: Path) -> str:
        """The supply whose ``type`` is Battery ('battery' on phones, 'BAT0' on laptops); 'battery' if none."""
        base = root / "sys" / "class" / "power_supply"
        try:
            for d in sorted(base.iterdir()):
                try:
                    if (d / "type").read_text().strip().lower() == "battery":
                        return d.name
                except OSError:
                    continue
        except OSError:
            pass
        return "battery"

    def _value(self, name: str) -> float:
        if self._read is not None:
            text = self._read(name)
            try:
                return float(str(text).strip())
            except ValueError:
                raise SensorError(f"battery {name}: expected a number, got {text!r}") from None
        return _read_number(self.root / "sys" / "class" / "power_supply" / self.supply / name)

    def available(self) -> bool:
        try:
            self.power_w()
            return True
        except SensorError:
            return False

    def power_w(self) -> float:
        return abs(self._value("current_now")) * self._value("voltage_now") / 1e12


# -- meters: energy over an interval --------------------------------------------------------------------
class _Sampler:
    """Calls ``read()`` every ``interval_s`` in a background thread, keeping ``(time_s, value)`` samples."""

    def __init__(self, read: Callable, interval_s: float = 0.05):
        self.read = read
        self.interval_s = float(interval_s)
        self.samples: list = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: Exception | None = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.samples.append((time.monotonic(), self.read()))
            except Exception as exc:  # a sensor that stops answering: recorded, stop() reports it
                self._error = exc
                return

    def start(self) -> None:
        """Read once now (a sensor that fails raises here), then every ``interval_s`` until ``stop``."""
        self.samples = [(time.monotonic(), self.read())]
        self._error = None
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.samples.append((time.monotonic(), self.read()))
        except Exception as exc:  # recorded like the loop's: the first failure is reported
            self._error = self._error or exc

    def peak_label(self, name: str) -> str:
        return f"measured:{name}(peak of {len(self.samples)} samples every {self.interval_s * 1e3:g} ms)"


class CounterMeter(_Sampler):
    """Energy from a counter (RAPL, NVML) read at start and stop, and read every ``interval_s`` in between
    for the peak power (the largest mean power between two consecutive reads)."""

    def __init__(self, reader, interval_s: float = 0.05):
        super().__init__(reader.snapshot, interval_s)
        self.reader = reader
        self.label = f"measured:{reader.name}"

    def stop(self) -> float:
        """Joules since ``start``."""
        super().stop()
        if self._error is not None or len(self.samples) < 2:
            raise SensorError(f"{self.reader.name}: counter reads failed" + (f": {self._error}" if self._error else ""))
        # summed over consecutive reads, so a counter that wraps more than once in the run is still counted
        return sum(self.reader.joules_between(a, b) for (_, a), (_, b) in zip(self.samples, self.samples[1:]))

    @property
    def peak_power_w(self) -> float | None:
        rates = [self.reader.joules_between(a, b) / (t1 - t0)
                 for (t0, a), (t1, b) in zip(self.samples, self.samples[1:]) if t1 > t0]
        return max(rates) if rates else None

    @property
    def peak_source(self) -> str:
        return self.peak_label(self.reader.name)


class SampledMeter(_Sampler):
    """Integrates a power reading (W) sampled in a background thread (trapezoid rule); its largest sample is
    the peak power."""

    def __init__(self, power_fn: Callable[[], float], name: str, interval_s: float = 0.05):
        super().__init__(lambda: float(power_fn()), interval_s)
        self.power_fn = power_fn
        self.name = name
        self.label = f"measured:{name}"

    def stop(self) -> float:
        super().stop()
        return integrate(self.samples, self._error)

    @property
    def mean_power_w(self) -> float | None:
        if not self.samples:
            return None
        return sum(p for _, p in self.samples) / len(self.samples)

    @property
    def peak_power_w(self) -> float | None:
        return max((p for _, p in self.samples), default=None)

    @property
    def peak_source(self) -> str:
        return self.peak_label(self.name)


def integrate(samples: list[tuple[float, float]], error: Exception | None = None) -> float:
    """Joules from (time_s, power_w) samples by the trapezoid rule."""
    if len(samples) < 2:
        raise SensorError(f"too few power samples to integrate ({len(samples)})"
                          + (f": {error}" if error else ""))
    return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(samples, samples[1:]))


# -- the power model ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PowerModel:
    name: str
    idle_w: float
    active_w: float
    cores: int = 1

    @classmethod
    def from_config(cls, cfg: dict | None) -> "PowerModel | None":
        if not cfg:
            return None
        return cls(name=str(cfg["name"]), idle_w=float(cfg["idle_w"]), active_w=float(cfg["active_w"]),
                   cores=int(cfg.get("cores") or 1))

    def power_w(self, threads: int) -> float:
        busy = min(max(int(threads), 1), self.cores)
        return self.idle_w + (self.active_w - self.idle_w) * busy / self.cores

    def energy_mj(self, latency_ms: float, threads: int) -> float:
        return self.power_w(threads) * latency_ms

    @property
    def label(self) -> str:
        return f"estimated:{self.name}"


def open_meter(energy: dict | None, root: Path | str | None = None, nvml=None):
    """A meter for the profile's ``energy`` section, or None when no sensor is readable here.

    ``sensor: auto`` tries RAPL, then NVML; ``none`` means no sensor; a named sensor that cannot be read
    gives None too (the caller then estimates with the power model and labels the figure so).
    """
    energy = energy or {}
    sensor = energy.get("sensor", "auto")
    root = Path(root if root is not None else energy.get("sysfs_root") or "/")
    interval = sample_interval(energy)
    if sensor == "none":
        return None
    if sensor in ("auto", "rapl"):
        r = RaplReader(root)
        if r.available():
            return CounterMeter(r, interval)
    if sensor in ("auto", "nvml"):
        n = NvmlReader(int(energy.get("gpu_index") or 0), nvml=nvml)
        if n.available():
            return CounterMeter(n, interval)
    if sensor == "ina3221":
        r = Ina3221Reader(root, energy.get("rail"))
        if r.available():
            return SampledMeter(r.power_w, "ina3221", interval)
    if sensor == "battery":
        b = BatteryReader(root, energy.get("supply"))
        if b.available():
            return SampledMeter(b.power_w, "battery", interval)
    return None


def sample_interval(energy: dict | None) -> float:
    """The profile's ``energy.sample_interval_s`` (default 0.05 s)."""
    return float((energy or {}).get("sample_interval_s") or 0.05)


def peak_power(meter, energy: dict | None, threads: int) -> tuple[float | None, str | None]:
    """(peak_power_w, source): from a meter that ran (its samples), else the power model's estimate."""
    if meter is not None and getattr(meter, "peak_power_w", None) is not None:
        return float(meter.peak_power_w), meter.peak_source
    return estimate_peak_power(energy, threads)


def estimate_peak_power(energy: dict | None, threads: int) -> tuple[float | None, str | None]:
    """(P_w, 'estimated:<model>') from the profile's power model, or (None, None) without one. The model's
    power does not depend on the network, so every network of a device gets the same estimate."""
    model = PowerModel.from_config((energy or {}).get("power_model"))
    if model is None:
        return None, None
    return model.power_w(threads), model.label


def estimate(energy: dict | None, latency_ms: float, threads: int) -> tuple[float | None, str | None]:
    """(energy_mj, 'estimated:<model>') from the profile's power model, or (None, None) without one."""
    model = PowerModel.from_config((energy or {}).get("power_model"))
    if model is None:
        return None, None
    return model.energy_mj(latency_ms, threads), model.label


__all__ = ["RaplReader", "NvmlReader", "Ina3221Reader", "BatteryReader", "CounterMeter", "SampledMeter",
           "PowerModel", "open_meter", "estimate", "estimate_peak_power", "peak_power", "sample_interval",
           "integrate", "SensorError"]
