"""The objective and constraint grammar (``error``, ``latency_ms@pixel2``, ``latency_ms@pixel2<=15``) and the
constraint violation."""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from ..contracts import Objective
from ..errors import HwnasError, unknown
from ..paths import check_device_name

OBJECTIVE_NAMES = ("error", "latency_ms", "energy_mj", "peak_power_w", "params", "macs", "peak_memory_bytes")
DEVICE_METRICS = ("latency_ms", "energy_mj", "peak_power_w")  # peak_power_w: from the energy source (--energy)
STATIC_METRICS = {"params": "params", "macs": "macs", "peak_memory_bytes": "peak_activation_bytes"}

_CONSTRAINT_RE = re.compile(r"^\s*([A-Za-z_]+(?:@[^<>=\s]+)?)\s*<=\s*([-+0-9.eE]+)\s*$")


def parse_objective(text: str) -> Objective:
    """``error`` / ``latency_ms@pixel2`` / ``params`` -> Objective (all minimised)."""
    text = str(text).strip()
    name, _, device = text.partition("@")
    name = name.strip()
    if name not in OBJECTIVE_NAMES:
        raise unknown("objective", name, OBJECTIVE_NAMES)
    if name in DEVICE_METRICS:
        if not device:
            raise HwnasError(f"objective {name!r} needs a device: {name}@DEVICE, e.g. {name}@pixel2 "
                             "(or exactly one device in the search)")
        check_device_name(device, f"objective {text!r}: device")
        return Objective(name, device=device)
    if device:
        raise HwnasError(f"objective {name!r} does not depend on a device; drop '@{device}'")
    return Objective(name)


def parse_constraint(text: str) -> Objective:
    """``latency_ms@pixel2<=15`` -> Objective with ``bound=15``."""
    m = _CONSTRAINT_RE.match(str(text))
    if not m:
        raise HwnasError(f"constraint {text!r}: expected OBJECTIVE<=NUMBER, e.g. latency_ms@pixel2<=15")
    obj = parse_objective(m.group(1))
    try:
        bound = float(m.group(2))
    except ValueError:
        raise HwnasError(f"constraint {text!r}: {m.group(2)!r} is not a number") from None
    return Objective(obj.name, bound=bound, device=obj.device)


def violation_of(values: Sequence[float], bounds: Sequence[float]) -> float:
    """Total relative excess over the bounds (0 = feasible): sum of max(0, (v - b) / max(|b|, 1e-9))."""
    total = 0.0
    for v, b in zip(values, bounds):
        if not np.isfinite(v):
            total += 1e6
        elif v > b:
            total += (v - b) / max(abs(b), 1e-9)
    return float(total)
