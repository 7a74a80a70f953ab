"""Thermal awareness: read a device's temperatures before and after each arch, cool down, flag throttling.

Sources (all plain sysfs text, read locally, on a board through the agent, or on a phone over adb):

- ``/sys/class/thermal/thermal_zone*/{type,temp}``: millidegrees C, one per zone (CPU clusters, GPU, skin ...);
- ``/sys/class/power_supply/battery/temp``: tenths of a degree C (Android phones);
- ``/sys/devices/system/cpu/cpu*/cpufreq/{scaling_max_freq,cpuinfo_max_freq}``: a scaling cap below the
  hardware maximum is how Linux / Android thermal governors throttle a CPU.

The profile's ``thermal`` block sets the policy: ``cooldown_c`` (wait between archs until the hottest zone
is at or below this; MLPerf Mobile cools down before each performance run), ``cooldown_timeout_s``
(default 120), ``throttle_c`` (a row measured with any zone at or above this is flagged throttled) and
``zones`` (zone types to consider; default all). Without thresholds temperatures are still recorded
and only a CPU frequency cap flags a row throttled.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from .protocol import DeviceUnreachable

# One adb shell command printing every source as "<kind> <name> <value>" lines (parsed by parse_thermal_lines).
ADB_THERMAL_CMD = (
    "for z in /sys/class/thermal/thermal_zone*; do echo \"zone $(cat $z/type 2>/dev/null || basename $z) "
    "$(cat $z/temp 2>/dev/null)\"; done; echo \"battery battery $(cat /sys/class/power_supply/battery/temp "
    "2>/dev/null)\"; for c in /sys/devices/system/cpu/cpu[0-9]*; do echo \"cpufreq $(basename $c) "
    "$(cat $c/cpufreq/scaling_max_freq 2>/dev/null)/$(cat $c/cpufreq/cpuinfo_max_freq 2>/dev/null)\"; done")


def parse_thermal_lines(text: str) -> dict:
    """``zone <type> <millidegC>`` / ``battery battery <decidegC>`` / ``cpufreq <cpu> <cap>/<max>`` lines ->
    ``{"zones": {type: degC}, "capped_cpus": [cpu, ...]}`` (unreadable values are skipped)."""
    zones: dict[str, float] = {}
    capped = []
    for ln in text.splitlines():
        parts = ln.split()
        if len(parts) != 3:
            continue
        kind, name, val = parts
        try:
            if kind == "zone":
                t = float(val)
                c = t / 1000.0 if abs(t) > 200 else t  # some kernels report whole degrees
                key = name if name not in zones else f"{name}#{sum(k.startswith(name) for k in zones)}"
                zones[key] = round(c, 2)
            elif kind == "battery":
                zones["battery"] = round(float(val) / 10.0, 2)
            elif kind == "cpufreq":
                cap, hw = (float(x) for x in val.split("/"))
                if cap < hw:
                    capped.append(name)
        except ValueError:
            continue
    return {"zones": zones, "capped_cpus": capped}


def read_sysfs(root: Path | None = None) -> dict:
    """The same record from this machine's sysfs (``root`` for tests: a fake tree)."""
    root = Path(root or "/")
    lines = []
    for z in sorted((root / "sys/class/thermal").glob("thermal_zone*")):
        try:
            kind = (z / "type").read_text().strip() if (z / "type").exists() else z.name
            lines.append(f"zone {kind.replace(' ', '_')} {(z / 'temp').read_text().strip()}")
        except OSError:
            continue
    bat = root / "sys/class/power_supply/battery/temp"
    if bat.exists():
        try:
            lines.append(f"battery battery {bat.read_text().strip()}")
        except OSError:
            pass
    for c in sorted((root / "sys/devices/system/cpu").glob("cpu[0-9]*")):
        try:
            cap = (c / "cpufreq/scaling_max_freq").read_text().strip()
            hw = (c / "cpufreq/cpuinfo_max_freq").read_text().strip()
            lines.append(f"cpufreq {c.name} {cap}/{hw}")
        except OSError:
            continue
    return parse_thermal_lines("\n".join(lines))


def hottest(reading: dict, zones: list[str] | None = None) -> float | None:
    vals = [v for k, v in reading.get("zones", {}).items() if not zones or k.split("#")[0] in zones]
    return max(vals) if vals else None


def cool_down(read: Callable[[], dict], policy: dict, sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic, poll_s: float = 2.0) -> tuple[dict, float, bool]:
    """Wait until the hottest zone is <= ``policy['cooldown_c']`` (or the timeout passes).
    Returns (the last reading, seconds waited, reached)."""
    target = policy.get("cooldown_c")
    reading = read()
    if target is None:
        return reading, 0.0, True
    timeout = float(policy.get("cooldown_timeout_s") or 120.0)
    t0 = clock()
    while True:
        t = hottest(reading, policy.get("zones"))
        if t is None or t <= target:
            return reading, clock() - t0, True
        if clock() - t0 >= timeout:
            return reading, clock() - t0, False
        sleep(poll_s)
        reading = read()


class ThermalStop(DeviceUnreachable):
    """The device did not cool down to ``cooldown_c`` within ``cooldown_timeout_s`` and its profile says
    ``on_timeout: stop``: nothing is measured, and the device counts as dropped off (a several-device profile
    retries it with back-off, then reports it; the other devices go on)."""


def stop_if_hot(device: str, reading: dict, waited: float, cooled: bool, policy: dict) -> None:
    """Raise ``ThermalStop`` when the cooldown timed out and the policy says ``on_timeout: stop`` (default
    ``measure``: measure anyway, the row flagged throttled)."""
    if cooled or policy.get("on_timeout", "measure") != "stop":
        return
    t = hottest(reading, policy.get("zones"))
    raise ThermalStop(f"device {device}: thermal stop: the hottest zone is {t:.1f} C, still above cooldown_c "
                      f"{policy.get('cooldown_c'):g} C after {waited:.0f} s (thermal.on_timeout: stop)")


def thermal_record(before: dict, after: dict, policy: dict, cooldown_s: float = 0.0, cooled: bool = True) -> dict | None:
    """What a row stores: hottest zone before / after, every zone, the cooldown, and ``throttled``.
    None when the device exposes no temperature and no CPU frequency cap."""
    if not before.get("zones") and not after.get("zones") and not before.get("capped_cpus") \
            and not after.get("capped_cpus"):
        return None
    zones = policy.get("zones")
    b, a = hottest(before, zones), hottest(after, zones)
    limit = policy.get("throttle_c")
    reasons = []
    hot = [t for t in (b, a) if t is not None]
    if limit is not None and hot and max(hot) >= limit:
        reasons.append(f"{max(hot):.1f} C >= throttle_c {limit:g} C")
    capped = sorted(set(before.get("capped_cpus", [])) | set(after.get("capped_cpus", [])))
    if capped:
        reasons.append(f"CPU frequency capped below its maximum on {', '.join(capped)}")
    if not cooled:
        reasons.append(f"cooldown to {policy.get('cooldown_c')} C timed out")
    return {"before_c": b, "after_c": a, "zones_before": before.get("zones"), "zones_after": after.get("zones"),
            "cooldown_s": round(cooldown_s, 2), "throttled": bool(reasons), "reason": "; ".join(reasons) or None}


__all__ = ["ADB_THERMAL_CMD", "parse_thermal_lines", "read_sysfs", "hottest", "cool_down", "thermal_record"]
