"""Stored baselines (``--baseline`` / ``--update-baseline``) and the calibrated noise file of the CI check.

A stored baseline is only trusted on the machine that wrote it: same device name, same machine
fingerprint (``hwnas.measure.protocol.host_fingerprint``; only :data:`MACHINE_KEYS` count), same profile
settings (threads, delegate, affinity) and, per model, the same runtime version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..errors import HwnasError, ParametersError
from ..fileio import now_iso
from ..measure.device_profile import DeviceProfile
from .ab import device_settings

if TYPE_CHECKING:  # pragma: no cover
    from .check import CheckReport

BASELINE_FORMAT = "hwnas-ci-baseline/1"
NOISE_FORMAT = "hwnas-ci-noise/1"
# the fingerprint keys that identify a machine (not its software: python / hwnas versions may change)
MACHINE_KEYS = ("host", "machine", "cpu", "cores", "usable_cores", "os")


def write_json(data: dict, path: Path) -> Path:
    """Write ``data`` as indented JSON, atomically (numpy scalars as floats)."""
    from ..fileio import atomic_path, check_writable

    path = check_writable(Path(path))
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, default=float) + "\n")
    return path


def fingerprint_mismatch(stored: dict, current: dict) -> list[str]:
    """What differs between two machines' fingerprints (only the keys in MACHINE_KEYS count)."""
    return [f"{k}: {stored.get(k)!r} != {current.get(k)!r}" for k in MACHINE_KEYS if stored.get(k) != current.get(k)]


def machine_problem(stored: dict, device: DeviceProfile, fingerprint: dict) -> str | None:
    """Why a stored baseline was measured elsewhere (device, machine or profile settings), or None."""
    problems = fingerprint_mismatch(stored.get("fingerprint", {}), fingerprint)
    if stored.get("device") != device.name:
        problems.insert(0, f"device: {stored.get('device')!r} != {device.name!r}")
    now_settings = device_settings(device)
    for k, v in (stored.get("device_settings") or {}).items():
        if now_settings.get(k) != v:
            problems.append(f"{k}: {v!r} != {now_settings.get(k)!r}")
    return "; ".join(problems) if problems else None


def load_baseline_file(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ParametersError(f"baseline file {path} does not exist (write one with `update_baseline` {path})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: bad JSON, or not text at all (a model file)
        why = "it is not text (a model file? `baseline` takes the JSON written by `update_baseline`)" \
            if isinstance(exc, UnicodeDecodeError) else str(exc)
        raise ParametersError(f"baseline file {path} is not valid JSON: {why}") from None
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT or not isinstance(data.get("models"), dict):
        raise ParametersError(f"baseline file {path} is not an hwnas ci-check baseline (format {BASELINE_FORMAT}); "
                              "write one with `update_baseline`")
    return data


def baseline_from_report(report: "CheckReport", source: str = "") -> dict:
    """A ``--baseline`` file from the candidates' measurements of a report."""
    models = {}
    for m in report.models:
        meas = m.measurement
        if not meas:
            continue
        models[m.name] = {
            "candidate": m.candidate, "sha256": m.candidate_sha256, "runtime": m.runtime,
            "runtime_version": m.runtime_version,
            "round_medians_ms": [r["candidate_median_ms"] for r in meas["rounds"]],
            "samples_ms": [r["candidate_ms"] for r in meas["rounds"]],
            "first_inference_ms": meas["first_inference_ms"].get("candidate"), "per_block": meas["per_block"],
            "gates": dict(m.candidate_facts),
        }
    return {"format": BASELINE_FORMAT, "created_at": now_iso(), "hwnas_version": report.hwnas_version,
            "device": report.device["name"], "fingerprint": report.device["fingerprint"],
            "device_settings": {k: report.device.get(k) for k in ("threads", "delegate", "affinity")},
            "source": source or "measured", "models": models,
            "input_shape": None if report.settings.input_shape is None else list(report.settings.input_shape)}


# -- calibrated noise ------------------------------------------------------------------------------------
def noise_path() -> Path:
    from ..paths import hwnas_home

    return hwnas_home() / "ci-check" / "noise.json"


def load_noise(path: Path | None = None) -> list[dict]:
    path = Path(path) if path else noise_path()
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise HwnasError(f"noise file {path} is unreadable ({exc}); delete it and run `hwnas ci-check calibrate`") from None
    return list(data.get("models", []))


def find_noise(entries: list[dict], device: str, sha256: str, name: str) -> dict | None:
    """The newest calibration of this model on this device: by file hash, else by name."""
    same_device = [e for e in entries if e.get("device") == device]
    for e in reversed(same_device):
        if e.get("sha256") == sha256:
            return e
    for e in reversed(same_device):
        if e.get("name") == name:
            return e
    return None


def save_noise(entries: Sequence[dict], path: Path | None = None) -> Path:
    """Merge calibration entries into the noise file (newest entry per device + model wins)."""
    path = Path(path) if path else noise_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    old = load_noise(path)
    keys = {(e["device"], e["sha256"]) for e in entries}
    merged = [e for e in old if (e.get("device"), e.get("sha256")) not in keys] + list(entries)
    return write_json({"format": NOISE_FORMAT, "models": merged}, path)
