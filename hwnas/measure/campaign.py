"""A measuring campaign: export each arch, run it on the profile's device, store each result as it comes.

``measure_archs`` is the loop behind ``hwnas profile``, the ``measure`` cost source and the stability
benchmark. The protocol (settings, statistics, ``RunResult``) is ``measure.protocol``; where a model runs is
a runner from ``measure.runners``. Results go to the store one at a time, so an interrupted run keeps
everything finished, and archs already stored with the same settings (``measurement_settings``) are
skipped, so a re-run resumes.

Drift compensation: with a reference (the profile's ``reference``: ``auto`` = ``reference_arch(space)``, or an
arch string), every candidate is timed in rounds interleaved with the reference's (ABAB, one worker). The
row keeps ``latency_ms`` as measured and adds ``latency_corrected_ms`` = median over rounds of (candidate
round median / reference round median before it) x the reference's long-run median on that device (the
median of every reference median the store holds for it under the same settings), with the reference's
identity and both medians in ``reference``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .. import export
from ..contracts import Runner
from ..errors import HwnasError
from ..store import Measurement, MeasurementStore, settings_key
from .device_profile import load_profile
from .protocol import DeviceUnreachable, MeasurementFailed, ProtocolSettings
from .runners import get_runner


NO_PATH = "no path from input to output"  # why a cell that computes a constant is never measured


def measurement_settings(space, profile, export_settings=None) -> dict:
    """The settings that key a measurement: same settings -> comparable, resumable."""
    es = export_settings or export.ExportSettings(format=profile.format, precision=profile.precision)
    default_delegate = {"onnxruntime": "CPUExecutionProvider", "litert": "xnnpack"}[profile.runtime]
    return {"format": es.format, "precision": es.precision, "batch": es.batch, "opset": es.opset,
            "threads": profile.threads, "delegate": profile.delegate or default_delegate,
            "affinity": profile.affinity, "connection": profile.connection_type, "space": space.config()}


REFERENCE_SEED = 17  # "auto" reference: the first arch space.sample_distinct draws with this seed


def reference_arch(space, spec: str | None = "auto"):
    """The drift reference for ``space``: ``auto`` -> a fixed arch of the space (same every run), else the arch
    written as ``spec``; None / ``none`` -> None."""
    if spec in (None, "none"):
        return None
    if spec == "auto":
        return space.check(space.sample_distinct(1, np.random.default_rng(REFERENCE_SEED))[0])
    from ..spaces import arch_from_text

    return space.check(arch_from_text(space, spec))


def measure_archs(space, archs: Sequence, profile, store=None, protocol: ProtocolSettings | None = None, *,
                  runner: Runner | None = None, cache_dir: Path | None = None, op_profile: bool = True,
                  skip_measured: bool = True, on_result: Callable | None = None, on_skip: Callable | None = None,
                  on_error: Callable | None = None, reference: str | None = "profile") -> list:
    """Measure each arch on ``profile``'s device and append each result to ``store`` as it comes.

    Archs already in the store with the same settings are skipped (their stored measurement is returned),
    so a re-run resumes. A failed export or a crashing model is recorded as a failure in the store and the
    run goes on: with ``on_error(arch, message)`` the failed archs are left out of the returned list;
    without it, ``MeasurementFailed`` is raised at the end (everything else is measured and stored first),
    so callers never get a silently shorter list. A cell with no path from input to output (a constant) fails
    with ``NO_PATH`` without being exported or run. An unreachable device raises ``DeviceUnreachable`` at
    once. ``reference``: ``"profile"`` (the profile's setting), ``"auto"``, an arch string, or None (off).
    Returns the measurements in the order of ``archs``.
    """
    profile = load_profile(profile)
    store = store if store is not None else MeasurementStore()
    runner = runner or get_runner(profile)
    c = _Campaign(space, profile, store, runner, protocol or ProtocolSettings(), cache_dir, op_profile)
    done = store.measured_ids(profile.name, space.name, profile.runtime, c.settings) if skip_measured else set()
    if any(space.check(a).arch_id not in done and space.has_path(a) for a in archs):
        c.prepare(reference)  # fail before exporting anything
    out, failed = [], []
    for arch in archs:
        arch = space.check(arch)
        if arch.arch_id in done:
            m = c.stored(arch)
            if m is not None:
                out.append(m)
            if on_skip:
                on_skip(arch, m)
            continue
        m = c.measure_one(arch, failed, on_error)
        if m is None:
            continue
        store.add(m, if_absent=skip_measured)  # a concurrent profile may have stored it meanwhile
        done.add(arch.arch_id)
        out.append(m)
        if on_result:
            on_result(arch, m)
    if failed and on_error is None:
        raise MeasurementFailed(f"{len(failed)} of {len(archs)} archs could not be measured on {profile.name} "
                                f"(the rest are stored); first: {failed[0][0]}: {failed[0][1]}")
    return out


class _Campaign:
    """What every arch of one ``measure_archs`` call shares, and its steps for one arch."""

    def __init__(self, space, profile, store, runner, protocol, cache_dir, op_profile):
        self.space, self.profile, self.store, self.runner = space, profile, store, runner
        self.protocol, self.cache_dir, self.op_profile = protocol, cache_dir, op_profile
        self.es = export.ExportSettings(format=profile.format, precision=profile.precision)
        self.settings = measurement_settings(space, profile, self.es)
        self.ref_arch, self.ref_key, self.run_kw = None, None, {}

    def prepare(self, reference) -> None:
        """Before anything is measured: the device is reachable, the drift reference (if any) exported."""
        profile, space = self.profile, self.space
        ok, why = self.runner.reachable(profile)
        if not ok:
            raise DeviceUnreachable(f"device {profile.name} is not reachable: {why}")
        self.ref_arch = reference_arch(space, profile.reference if reference == "profile" else reference)
        if self.ref_arch is not None and profile.connection_type == "agent":
            raise HwnasError(f"device {profile.name}: a drift reference is not supported over the agent "
                             "(use reference: none)")
        if self.ref_arch is not None:
            self.run_kw["reference"] = export.export_arch(space, self.ref_arch, self.es, cache_dir=self.cache_dir)
            self.ref_key = f"{space.name}:{self.ref_arch.arch_id}:{settings_key(self.settings)}"

    def stored(self, arch):
        """The stored measurement of an arch measured before with the same settings (None if gone since)."""
        (m,) = self.store.query(device=self.profile.name, space=self.space.name, runtime=self.profile.runtime,
                                arch_id=arch.arch_id, settings=self.settings) or [None]
        return m

    def measure_one(self, arch, failed: list, on_error):
        """The arch exported, run and made a Measurement; None after recording a failure (``failed``, the
        store, ``on_error``). An unreachable device raises."""
        space, profile = self.space, self.profile
        arch_text = space.to_string(arch)
        try:
            if not space.has_path(arch):  # a constant: nothing to export, no worker to start
                raise HwnasError(NO_PATH)
            path = export.export_arch(space, arch, self.es, cache_dir=self.cache_dir)
            r = self.runner.run(path, profile, self.protocol, op_profile=self.op_profile, **self.run_kw)
        except DeviceUnreachable:
            raise
        except HwnasError as exc:
            self.store.add_failure(space.name, arch.arch_id, arch_text, profile.name, profile.runtime, self.settings,
                                   str(exc))
            failed.append((arch_text, str(exc)))
            if on_error:
                on_error(arch, str(exc))
            return None
        return self.measurement(arch, arch_text, r)

    def _drift(self, r) -> tuple[float | None, dict | None]:
        """(latency_corrected_ms, reference) of a run timed against the drift reference; (None, None) without."""
        if r.reference is None:
            return None, None
        ref_text = self.space.to_string(self.ref_arch)
        long_run = self.store.add_reference_median(self.profile.name, self.ref_key, ref_text, r.reference["median_ms"])
        return r.reference["ratio"] * long_run, {"arch": ref_text, "arch_id": self.ref_arch.arch_id,
                                                  "key": self.ref_key, "long_run_median_ms": long_run, **r.reference}

    def measurement(self, arch, arch_text: str, r) -> Measurement:
        fp = dict(r.fingerprint)
        fp["protocol"] = r.protocol
        corrected, ref = self._drift(r)
        return Measurement(space=self.space.name, arch_id=arch.arch_id, arch=arch_text, device=self.profile.name,
                           runtime=r.runtime, runtime_version=r.runtime_version, settings=self.settings,
                           source="measured", latency_ms=r.latency_ms, latency_p90_ms=r.latency_p90_ms,
                           latency_iqr_ms=r.latency_iqr_ms, latency_cv=r.latency_cv, n_runs=r.n_runs,
                           first_inference_ms=r.first_inference_ms, unstable=r.unstable, energy_mj=r.energy_mj,
                           energy_source=r.energy_source, peak_power_w=r.peak_power_w,
                           peak_power_source=r.peak_power_source, fingerprint=fp, op_profile=r.op_profile,
                           latency_corrected_ms=corrected, reference=ref, estimator=r.protocol.get("estimator"),
                           thermal=r.thermal, throttled=None if r.thermal is None else r.thermal.get("throttled"))


__all__ = ["measure_archs", "measurement_settings"]
