"""``count``: parameters, MACs and peak activation memory counted from the built graph."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ...contracts import Arch
from ..objectives import STATIC_METRICS
from .base import Source


class CountSource(Source):
    """Static costs counted from the graph (``space.static_costs``); one count serves all three quantities."""

    kind = "count"
    per_arch = True
    cheap = True

    @classmethod
    def from_spec(cls, arg, device, settings):
        return cls()

    def describe(self) -> str:
        return "counted:graph"

    def _costs(self, space, arch: Arch):
        last = getattr(self, "_last", None)
        if last is None or last[0] != arch.arch_id:
            last = self._last = (arch.arch_id, space.static_costs(arch))
        return last[1]

    def values(self, space, archs: Sequence[Arch], quantity: str) -> tuple[np.ndarray, list[str]]:
        attr = STATIC_METRICS[quantity]
        return (np.array([float(getattr(self._costs(space, a), attr)) for a in archs], dtype=float),
                [self.describe()] * len(archs))

    def __getstate__(self):  # ship no counts to remote workers
        return {}
