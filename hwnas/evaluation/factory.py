"""From names to an evaluator: ``EvaluatorSpec`` (what the CLI and recipes give) and ``build_evaluator``."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable

from ..errors import HwnasError, ParametersError
from ..paths import check_device_name
from .evaluator import ArchEvaluator
from .objectives import DEVICE_METRICS, parse_constraint, parse_objective
from .sources import create_source


@dataclass
class EvaluatorSpec:
    """Everything needed to build an ArchEvaluator from names (what the CLI and recipes give)."""

    objectives: list[str]
    constraints: list[str] = field(default_factory=list)
    accuracy: str | None = None
    latency: list[str] = field(default_factory=list)
    energy: list[str] = field(default_factory=list)
    dataset: str = "digits"
    epochs: int = 3
    proxy: str = "naswot"
    data_dir: str | None = None
    download: bool = False
    batch_size: int = 64
    seed: int = 0
    max_train: int | None = None
    lr: float = 0.05
    label_smoothing: float = 0.0
    ema: float | None = None
    train_seeds: int = 1
    train_device: str = "auto"

    def settings(self) -> dict:
        """The settings a source may take (dataset, epochs, seed, ...)."""
        return {k: v for k, v in asdict(self).items()
                if k not in ("objectives", "constraints", "accuracy", "latency", "energy")}


def split_device_specs(specs: Iterable[str] | str | None) -> tuple[str | None, dict[str, str]]:
    """``["predictor", "pixel2=table:p.csv"]`` -> (default "predictor", {"pixel2": "table:p.csv"})."""
    if specs is None:
        return None, {}
    if isinstance(specs, str):
        specs = [specs]
    default, per_device = None, {}
    for spec in specs:
        spec = str(spec).strip()
        head, sep, rest = spec.partition("=")
        if sep and ":" not in head and head:
            per_device[check_device_name(head.strip(), f"{spec!r}: device")] = rest
        else:
            default = spec
    return default, per_device


def _bare_device_metric(text: str) -> str | None:
    """``latency_ms`` / ``energy_mj<=5`` (a device metric without ``@DEV``) -> its name, else None."""
    head = re.split(r"<=", str(text), maxsplit=1)[0].strip()
    return head if head in DEVICE_METRICS else None


def resolve_single_device(spec: EvaluatorSpec) -> EvaluatorSpec:
    """The single-device shorthand: ``latency_ms`` (no ``@DEV``) names the one device of the search, that is
    the one device in the other objectives, constraints or ``DEV=SOURCE`` specs; with none named, the device
    is the stem of a ``table:FILE`` cost source, else ``host``. Several devices: name the one meant."""
    quantities = list(spec.objectives) + list(spec.constraints)
    if not any(_bare_device_metric(q) for q in quantities):
        return spec
    devices = {str(q).split("@", 1)[1].split("<=", 1)[0].strip() for q in quantities if "@" in str(q)}
    specs = [split_device_specs(spec.latency), split_device_specs(spec.energy)]
    devices |= {d for _, per_device in specs for d in per_device}
    if len(devices) > 1:
        raise HwnasError(f"several devices ({', '.join(sorted(devices))}): name the one meant, e.g. "
                         f"latency_ms@{sorted(devices)[0]}")
    if devices:
        device = devices.pop()
    else:
        tables = [d for d, _ in specs if d and d.startswith("table:")]
        device = re.sub(r"[^A-Za-z0-9_.\-]", "_", Path(tables[0][len("table:"):]).stem) if tables else "host"

    def named(text: str) -> str:
        name = _bare_device_metric(text)
        return str(text).replace(name, f"{name}@{device}", 1) if name else text

    return replace(spec, objectives=[named(o) for o in spec.objectives],
                   constraints=[named(c) for c in spec.constraints])


def build_evaluator(space, spec: EvaluatorSpec, executor=None, log: Path | None = None,
                    on_evaluated=None) -> ArchEvaluator:
    """The evaluator for ``spec``; every source is checked (files read, predictors loaded) before it returns."""
    spec = resolve_single_device(spec)
    objectives = [parse_objective(o) for o in spec.objectives]
    constraints = [parse_constraint(c) for c in spec.constraints]
    quantities = objectives + constraints
    settings = spec.settings()
    accuracy = None
    if any(q.name == "error" for q in quantities):
        if not spec.accuracy:
            raise ParametersError("objective 'error' needs `accuracy` table:FILE|proxy|train|supernet:PATH")
        accuracy = create_source(spec.accuracy, "accuracy", **settings)
    defaults = {"latency_ms": ("latency", *split_device_specs(spec.latency), "predictor"),
                "energy_mj": ("energy", *split_device_specs(spec.energy), "measure")}
    defaults["peak_power_w"] = defaults["energy_mj"]  # both come from the device's power sensor
    costs: dict = {}
    made: dict = {}  # one source per (device, spec): latency and energy of a device share measurements
    used = set()
    for q in quantities:
        if q.name not in defaults:
            continue
        param, default, per_device, fallback = defaults[q.name]
        text = per_device.get(q.device) or default or (None if per_device else fallback)
        if text is None:
            raise ParametersError(f"no cost source for {q.label}: add `{param}` {q.device}=table:FILE|predictor|measure")
        used.add(q.device)
        if (q.device, text) not in made:
            made[q.device, text] = create_source(text, "cost", q.device, **settings)
        costs[q.label] = made[q.device, text]
    named = set(defaults["latency_ms"][2]) | set(defaults["energy_mj"][2])
    for name in sorted(named):
        if name not in used:
            raise HwnasError(f"a cost source is given for device {name!r}, but no objective or constraint uses it")
    if accuracy is not None:
        accuracy.check(space, "error")
    for label, src in costs.items():
        src.check(space, label.partition("@")[0])
    return ArchEvaluator(space, objectives, constraints, accuracy=accuracy, costs=costs, executor=executor,
                         log=log, on_evaluated=on_evaluated)
