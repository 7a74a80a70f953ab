"""``measure``: profile each candidate on the device in the loop; every measurement lands in the
measurement store (``hwnas.measure.campaign.measure_archs``)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ...contracts import Arch
from ...errors import HwnasError
from .base import Source


class MeasureSource(Source):
    """Latency and energy of one device, measured; both quantities of a device share one measurement.
    An arch the device could not run is unknown (nan, ``failed:<why>``), never 0 ms. ``measure:quick`` uses the
    quick protocol (``ProtocolSettings.quick()``: short caps; a result that misses the interval is flagged unstable
    in the store, as with ``hwnas profile --quick``)."""

    kind = "measure"

    def __init__(self, device: str, store_path: str | None = None, quick: bool = False):
        self.device, self.store_path, self.quick = device, store_path, bool(quick)

    @classmethod
    def from_spec(cls, arg, device, settings):
        if arg not in ("", None, "quick"):
            raise HwnasError(f"measure takes no option, or 'quick' (measure:quick: the short protocol), got {arg!r}")
        return cls(device, quick=arg == "quick")

    def measure(self, space, archs: Sequence[Arch]) -> list:
        """One Measurement per arch, or a failure message (str) for an arch the device could not run."""
        cache = self.__dict__.setdefault("_cache", {})
        todo = [a for a in archs if a.arch_id not in cache]
        if todo:
            cache.update(self._measure(space, todo))
        return [cache[a.arch_id] for a in archs]

    def check(self, space, quantity: str) -> None:
        """Fail now on an unknown device profile."""
        from ...measure.device_profile import load_profile

        load_profile(self.device)

    def _measure(self, space, archs: Sequence[Arch]) -> dict:
        from ...measure.campaign import measure_archs
        from ...measure.device_profile import load_profile
        from ...measure.protocol import ProtocolSettings
        from ...store import MeasurementStore

        profile = load_profile(self.device)
        store = MeasurementStore(self.store_path or None)  # None: $HWNAS_STORE, else the default file
        failed: dict[str, str] = {}
        done = measure_archs(space, list(archs), profile, store,
                             protocol=ProtocolSettings.quick() if self.quick else None,
                             on_error=lambda arch, message: failed.__setitem__(arch.arch_id, str(message)))
        out: dict = {m.arch_id: m for m in done}
        for a in archs:
            out.setdefault(a.arch_id, failed.get(a.arch_id, "not measured"))
        return out

    def values(self, space, archs: Sequence[Arch], quantity: str) -> tuple[np.ndarray, list[str]]:
        vals, provenance = np.full(len(archs), np.nan), [""] * len(archs)
        for i, m in enumerate(self.measure(space, archs)):
            if isinstance(m, str):  # the device could not run it
                provenance[i] = f"failed:{m}"[:300]
                continue
            if quantity == "latency_ms":
                runtime = f"{m.runtime} {m.runtime_version}".strip()
                vals[i] = m.latency_ms
                provenance[i] = f"{m.source}:{runtime}@{m.device}" + (" (quick protocol)" if self.quick else "")
            elif quantity == "peak_power_w":
                if m.peak_power_w is None:
                    raise HwnasError(f"peak_power_w@{self.device}: no peak power for {m.arch} (no sensor or power model "
                                     "in the device profile, or a measurement stored before peak power was recorded)")
                vals[i] = m.peak_power_w
                provenance[i] = f"{m.peak_power_source or 'measured'}@{m.device}"
            elif m.energy_mj is None:
                raise HwnasError(f"energy_mj@{self.device}: the device profile has no energy sensor or power model")
            else:
                vals[i] = m.energy_mj
                provenance[i] = f"{m.energy_source or 'measured'}@{m.device}"
        return vals, provenance
