"""Runners: where a model runs (this host, a phone over adb, a board's agent), the model worker and energy
sensors.

Every runner satisfies ``hwnas.contracts.Runner``: ``reachable(profile) -> (ok, why)`` and
``run(model_path, profile, protocol=None, op_profile=True) -> measure.protocol.RunResult``. ``RUNNERS`` maps a
profile's connection type to its runner class; ``get_runner(profile)`` makes one. Runners use
``measure.protocol`` only (never ``measure.campaign``, which uses them).
"""

from __future__ import annotations

from ...errors import HwnasError
from .adb import AdbRunner
from .agent import AgentRunner
from .local import LocalRunner

RUNNERS: dict[str, type] = {"local": LocalRunner, "adb": AdbRunner, "agent": AgentRunner}


def get_runner(profile):
    """The runner for a profile's connection type (local, adb, agent)."""
    kind = profile.connection_type
    if kind not in RUNNERS:  # pragma: no cover - profiles are validated against CONNECTIONS
        raise HwnasError(f"device {profile.name}: unknown connection type {kind!r}")
    return RUNNERS[kind]()


__all__ = ["RUNNERS", "get_runner", "LocalRunner", "AdbRunner", "AgentRunner"]
