"""Device profiles: devices are data (``device_profiles/*.yaml``), validated into a ``DeviceProfile``.

A profile says which runtime runs the model (onnxruntime | litert), with how many threads, which delegate /
execution provider, at which input precision, pinned to which cores, how hwnas reaches the device
(connection: local | adb | agent) and how energy is obtained (a sensor, else a documented power model).
Validation errors name the file, the key and what was expected:

    device_profiles/pixel.yaml: key 'threads': expected a positive integer, got 'four'

Profiles are looked up by name in ``$HWNAS_HOME/device_profiles/`` (user profiles win) and then in the
``device_profiles/`` folder of the hwnas checkout; a path to a .yaml file works too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HwnasError, unknown
from ..paths import check_device_name, hwnas_home, project_root
from ..runtimes import RUNTIMES, format_for

PRECISIONS = ("fp32", "int8")
CONNECTIONS = ("local", "adb", "agent")
# delegates the adb runner's tools accept: benchmark_model flags; onnxruntime_perf_test -e values
ADB_DELEGATES = {"litert": ("xnnpack", "cpu", "none", "builtin", "gpu", "nnapi"),
                 "onnxruntime": ("cpu", "xnnpack", "nnapi", "qnn", "cpuexecutionprovider", "xnnpackexecutionprovider",
                                 "nnapiexecutionprovider", "qnnexecutionprovider")}
SENSORS = ("auto", "none", "rapl", "nvml", "ina3221", "battery")


class ProfileError(HwnasError):
    """A device profile YAML is missing, malformed or fails validation."""


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    runtime: str  # onnxruntime | litert
    threads: int = 1
    delegate: str | None = None  # litert: xnnpack | none | gpu | nnapi ...; onnxruntime: execution provider
    precision: str = "fp32"  # input / model precision: fp32 | int8
    connection: dict = field(default_factory=lambda: {"type": "local"})
    energy: dict = field(default_factory=lambda: {"sensor": "auto"})
    affinity: list[int] | None = None  # CPU cores to pin to (None: leave to the OS)
    description: str = ""
    source: str = ""  # the file it came from
    # drift compensation: a reference model timed in rounds interleaved with each candidate's (ABAB);
    # None / "none": off, "auto": a fixed arch of the space (measure.campaign.reference_arch), else an arch string
    reference: str | None = None
    thermal: dict = field(default_factory=dict)  # {cooldown_c, throttle_c, cooldown_timeout_s, zones, on_timeout}

    @property
    def format(self) -> str:
        return format_for(self.runtime)

    @property
    def connection_type(self) -> str:
        return self.connection.get("type", "local")

    def with_runtime(self, runtime: str | None) -> "DeviceProfile":
        """This profile measured with another runtime (``hwnas profile --runtime``); None keeps it."""
        if runtime is None or runtime == self.runtime:
            return self
        if runtime not in RUNTIMES:
            raise unknown("runtime", runtime, RUNTIMES)
        from dataclasses import replace

        # a delegate / execution provider belongs to one runtime; fall back to that runtime's CPU default
        return replace(self, runtime=runtime, delegate=None)

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "runtime": self.runtime,
                "threads": self.threads, "delegate": self.delegate, "precision": self.precision,
                "affinity": self.affinity, "connection": dict(self.connection), "energy": dict(self.energy),
                "reference": self.reference, "thermal": dict(self.thermal)}


# -- validation --------------------------------------------------------------------------------------------
_TOP_KEYS = {"name", "description", "runtime", "threads", "delegate", "precision", "affinity", "connection",
             "energy", "reference", "thermal"}
_THERMAL_KEYS = {"cooldown_c", "throttle_c", "cooldown_timeout_s", "zones", "on_timeout"}
_CONNECTION_KEYS = {
    "local": {"type"},
    "adb": {"type", "serial", "benchmark_model", "perf_test", "ep_options", "remote_dir", "adb", "taskset",
            "energy_duration_s"},
    "agent": {"type", "host", "port", "timeout_s"},
}
_ENERGY_KEYS = {"sensor", "power_model", "sysfs_root", "rail", "gpu_index", "supply", "sample_interval_s"}
_POWER_MODEL_KEYS = {"name", "idle_w", "active_w", "cores", "note"}


class _Checker:
    def __init__(self, where: str):
        self.where = where

    def fail(self, key: str, expected: str, got=None, show_got: bool = True) -> ProfileError:
        tail = f", got {got!r}" if show_got else ""
        return ProfileError(f"{self.where}: key '{key}': expected {expected}{tail}")

    def unknown_keys(self, d: dict, allowed: set, prefix: str = "") -> None:
        extra = sorted(set(d) - allowed)
        if extra:
            key = prefix + str(extra[0])
            raise self.fail(key, f"one of the known keys ({', '.join(sorted(allowed))})", show_got=False)

    def string(self, d: dict, key: str, prefix: str = "", required: bool = False, choices=None, default=None):
        full = prefix + key
        if key not in d or d[key] is None:
            if required:
                raise ProfileError(f"{self.where}: key '{full}' is missing: expected "
                                   + (f"one of {', '.join(choices)}" if choices else "a string"))
            return default
        v = d[key]
        if not isinstance(v, str) or not v.strip():
            raise self.fail(full, f"one of {', '.join(choices)}" if choices else "a non-empty string", v)
        if choices and v not in choices:
            raise self.fail(full, f"one of {', '.join(choices)}", v)
        return v

    def integer(self, d: dict, key: str, prefix: str = "", default=None, minimum: int = 1, maximum: int | None = None):
        full = prefix + key
        if key not in d or d[key] is None:
            return default
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum or (maximum is not None and v > maximum):
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            if maximum is not None:
                what = f"an integer in {minimum}..{maximum}"
            raise self.fail(full, what, v)
        return v

    def number(self, d: dict, key: str, prefix: str = "", required: bool = False, positive: bool = False):
        full = prefix + key
        if key not in d or d[key] is None:
            if required:
                raise ProfileError(f"{self.where}: key '{full}' is missing: expected a number (watts)")
            return None
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (positive and v <= 0) or v < 0:
            raise self.fail(full, "a positive number" if positive else "a number >= 0", v)
        return float(v)

    def mapping(self, d: dict, key: str, default=None) -> dict:
        if key not in d or d[key] is None:
            return dict(default or {})
        v = d[key]
        if not isinstance(v, dict):
            raise self.fail(key, "a mapping (key: value lines)", v)
        return dict(v)


def validate_profile(data, where: str = "<profile>", default_name: str | None = None) -> DeviceProfile:
    """Turn parsed YAML into a DeviceProfile, or raise ProfileError naming ``where``, the key and the expectation."""
    c = _Checker(where)
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: expected a mapping of keys (name, runtime, threads, ...), "
                           f"got {type(data).__name__}")
    c.unknown_keys(data, _TOP_KEYS)
    name = _name(c, data, where, default_name)
    runtime = c.string(data, "runtime", required=True, choices=RUNTIMES)
    threads = c.integer(data, "threads", default=1, maximum=256)
    delegate = c.string(data, "delegate")
    precision = c.string(data, "precision", choices=PRECISIONS, default="fp32")
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise c.fail("description", "a string", description)
    affinity = _affinity(c, data.get("affinity"))
    conn = _connection(c, data, runtime, delegate)
    energy = _energy(c, data)
    reference = c.string(data, "reference")
    if reference in (None, "none"):
        reference = None
    elif conn["type"] == "agent":
        raise c.fail("reference", "none for an agent connection (drift compensation runs in the local and adb "
                     "runners)", reference)
    return DeviceProfile(name=name, runtime=runtime, threads=threads, delegate=delegate, precision=precision,
                         connection=conn, energy=energy, affinity=affinity, description=description.strip(),
                         source=where, reference=reference, thermal=_thermal(c, data))


def _name(c: _Checker, data: dict, where: str, default_name: str | None) -> str:
    name = c.string(data, "name", default=default_name)
    if not name:
        raise ProfileError(f"{where}: key 'name' is missing: expected a string")
    try:
        check_device_name(name, "device name")
    except HwnasError as exc:
        raise ProfileError(f"{where}: key 'name': {exc}") from None
    return name


def _affinity(c: _Checker, affinity) -> list[int] | None:
    if affinity is None:
        return None
    if (not isinstance(affinity, list) or not affinity
            or not all(isinstance(a, int) and not isinstance(a, bool) and a >= 0 for a in affinity)):
        raise c.fail("affinity", "a non-empty list of CPU core numbers (integers >= 0) or null", affinity)
    return [int(a) for a in affinity]


def _connection(c: _Checker, data: dict, runtime: str, delegate: str | None) -> dict:
    conn = c.mapping(data, "connection", {"type": "local"})
    ctype = c.string(conn, "type", prefix="connection.", required=True, choices=CONNECTIONS)
    conn["type"] = ctype
    c.unknown_keys(conn, _CONNECTION_KEYS[ctype], prefix="connection.")
    if ctype == "agent":
        c.string(conn, "host", prefix="connection.", required=True)
        conn["port"] = c.integer(conn, "port", prefix="connection.", default=8765, maximum=65535)
        if "timeout_s" in conn:
            c.number(conn, "timeout_s", prefix="connection.", positive=True)
    if ctype == "adb":
        _adb_connection(c, conn, runtime, delegate)
    return conn


def _adb_connection(c: _Checker, conn: dict, runtime: str, delegate: str | None) -> None:
    for key in ("serial", "adb", "taskset", "ep_options"):
        c.string(conn, key, prefix="connection.")
    conn["benchmark_model"] = c.string(conn, "benchmark_model", prefix="connection.",
                                       default="/data/local/tmp/benchmark_model")
    conn["perf_test"] = c.string(conn, "perf_test", prefix="connection.",
                                 default="/data/local/tmp/onnxruntime_perf_test")
    # the phone's tools take these delegates / execution providers (checked here, not mid-run)
    known = ADB_DELEGATES[runtime]
    if delegate is not None and delegate.lower() not in known:
        raise c.fail("delegate", f"one of {', '.join(known)} for {runtime} over adb", delegate)
    conn["remote_dir"] = c.string(conn, "remote_dir", prefix="connection.", default="/data/local/tmp/hwnas")
    if "energy_duration_s" in conn:
        c.number(conn, "energy_duration_s", prefix="connection.", positive=True)


def _energy(c: _Checker, data: dict) -> dict:
    energy = c.mapping(data, "energy", {"sensor": "auto"})
    c.unknown_keys(energy, _ENERGY_KEYS, prefix="energy.")
    energy["sensor"] = c.string(energy, "sensor", prefix="energy.", choices=SENSORS, default="auto")
    c.string(energy, "sysfs_root", prefix="energy.")
    c.string(energy, "rail", prefix="energy.")
    c.string(energy, "supply", prefix="energy.")
    c.integer(energy, "gpu_index", prefix="energy.", minimum=0)
    if "sample_interval_s" in energy:  # how often power sensors are read (energy and peak power)
        c.number(energy, "sample_interval_s", prefix="energy.", positive=True)
    pm = energy.get("power_model")
    if pm is not None:
        energy["power_model"] = _power_model(c, pm)
    return energy


def _power_model(c: _Checker, pm) -> dict:
    if not isinstance(pm, dict):
        raise c.fail("energy.power_model", "a mapping with name, idle_w, active_w, cores", pm)
    c.unknown_keys(pm, _POWER_MODEL_KEYS, prefix="energy.power_model.")
    c.string(pm, "name", prefix="energy.power_model.", required=True)
    idle = c.number(pm, "idle_w", prefix="energy.power_model.", required=True)
    active = c.number(pm, "active_w", prefix="energy.power_model.", required=True, positive=True)
    c.integer(pm, "cores", prefix="energy.power_model.", default=1)
    if active < idle:
        raise c.fail("energy.power_model.active_w", f"a number >= idle_w ({idle})", active)
    return dict(pm)


def _thermal(c: _Checker, data: dict) -> dict:
    thermal = c.mapping(data, "thermal", {})
    c.unknown_keys(thermal, _THERMAL_KEYS, prefix="thermal.")
    for key in ("cooldown_c", "throttle_c", "cooldown_timeout_s"):
        if key in thermal:
            thermal[key] = c.number(thermal, key, prefix="thermal.", positive=True)
    if "on_timeout" in thermal and thermal["on_timeout"] not in ("measure", "stop"):
        raise c.fail("thermal.on_timeout", "measure or stop", thermal["on_timeout"])
    if "zones" in thermal and thermal["zones"] is not None:
        if not isinstance(thermal["zones"], list) or not all(isinstance(z, str) for z in thermal["zones"]):
            raise c.fail("thermal.zones", "a list of thermal zone types (strings)", thermal["zones"])
    return thermal


# -- loading -----------------------------------------------------------------------------------------------
def profile_dirs() -> list[Path]:
    """Where profiles are looked up by name, first match wins."""
    dirs = [hwnas_home() / "device_profiles"]
    root = project_root()
    if root is not None:
        dirs.append(root / "device_profiles")
    return dirs


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        root = project_root()
        if root is not None:
            try:
                return str(path.resolve().relative_to(root.resolve()))
            except ValueError:
                pass
        return str(path)


def load_profile_file(path: Path) -> DeviceProfile:
    import yaml

    path = Path(path)
    where = _display(path)
    if not path.is_file():
        raise ProfileError(f"device profile {where} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ProfileError(f"{where}: not valid YAML{at}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{where}: cannot read: {exc}") from None
    return validate_profile(data, where=where, default_name=path.stem)


def _profile_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in profile_dirs():
        if d.is_dir():
            for p in sorted(d.glob("*.yaml")) + sorted(d.glob("*.yml")):
                found.setdefault(p.stem, p)
    return found


def load_profile(name_or_path) -> DeviceProfile:
    """A profile by name (``host``, ``pixel`` ...) or by path to a YAML file."""
    if isinstance(name_or_path, DeviceProfile):
        return name_or_path
    text = str(name_or_path)
    p = Path(text).expanduser()
    if text.endswith((".yaml", ".yml")) or "/" in text:
        return load_profile_file(p)
    files = _profile_files()
    if text not in files:
        raise unknown("device", text, files)
    return load_profile_file(files[text])


def list_profiles() -> list[DeviceProfile]:
    """Every profile found by name (invalid files raise, naming the file)."""
    return [load_profile_file(p) for _, p in sorted(_profile_files().items())]


__all__ = ["DeviceProfile", "ProfileError", "load_profile", "load_profile_file", "list_profiles",
           "validate_profile", "profile_dirs", "RUNTIMES", "CONNECTIONS", "SENSORS"]
