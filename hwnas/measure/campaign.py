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
    protocol = protocol or ProtocolSettings()
    runner = runner or get_runner(profile)
    es = export.ExportSettings(format=profile.format, precision=profile.precision)
    settings = measurement_settings(space, profile, es)
    done = store.measured_ids(profile.name, space.name, profile.runtime, settings) if skip_measured else set()
    todo = [a for a in archs if space.check(a).arch_id not in done and space.has_path(a)]
    if todo:  # fail before exporting anything
        ok, why = runner.reachable(profile)
        if not ok:
            raise DeviceUnreachable(f"device {profile.name} is not reachable: {why}")
    ref_arch = reference_arch(space, profile.reference if reference == "profile" else reference) if todo else None
    run_kw = {}
    if ref_arch is not None and profile.connection_type == "agent":
        raise HwnasError(f"device {profile.name}: a drift reference is not supported over the agent (use reference: none)")
    if ref_arch is not None:
        run_kw["reference"] = export.export_arch(space, ref_arch, es, cache_dir=cache_dir)
        ref_key = f"{space.name}:{ref_arch.arch_id}:{settings_key(settings)}"
    out, failed = [], []
    for arch in archs:
        arch = space.check(arch)
        arch_text = space.to_string(arch)
        if arch.arch_id in done:
            (m,) = store.query(device=profile.name, space=space.name, runtime=profile.runtime,
                               arch_id=arch.arch_id, settings=settings) or [None]
            if m is not None:
                out.append(m)
            if on_skip:
                on_skip(arch, m)
            continue
        try:
            if not space.has_path(arch):  # a constant: nothing to export, no worker to start
                raise HwnasError(NO_PATH)
            path = export.export_arch(space, arch, es, cache_dir=cache_dir)
            r = runner.run(path, profile, protocol, op_profile=op_profile, **run_kw)
        except DeviceUnreachable:
            raise
        except HwnasError as exc:
            store.add_failure(space.name, arch.arch_id, arch_text, profile.name, profile.runtime, settings, str(exc))
            failed.append((arch_text, str(exc)))
            if on_error:
                on_error(arch, str(exc))
            continue
        fp = dict(r.fingerprint)
        fp["protocol"] = r.protocol
        corrected, ref = None, None
        if r.reference is not None:
            long_run = store.add_reference_median(profile.name, ref_key, space.to_string(ref_arch),
                                                  r.reference["median_ms"])
            corrected = r.reference["ratio"] * long_run
            ref = {"arch": space.to_string(ref_arch), "arch_id": ref_arch.arch_id, "key": ref_key,
                   "long_run_median_ms": long_run, **r.reference}
        m = Measurement(space=space.name, arch_id=arch.arch_id, arch=arch_text, device=profile.name,
                        runtime=r.runtime, runtime_version=r.runtime_version, settings=settings, source="measured",
                        latency_ms=r.latency_ms, latency_p90_ms=r.latency_p90_ms, latency_iqr_ms=r.latency_iqr_ms,
                        latency_cv=r.latency_cv, n_runs=r.n_runs, first_inference_ms=r.first_inference_ms,
                        unstable=r.unstable, energy_mj=r.energy_mj, energy_source=r.energy_source,
                        peak_power_w=r.peak_power_w, peak_power_source=r.peak_power_source,
                        fingerprint=fp, op_profile=r.op_profile, latency_corrected_ms=corrected, reference=ref,
                        estimator=r.protocol.get("estimator"), thermal=r.thermal,
                        throttled=None if r.thermal is None else r.thermal.get("throttled"))
        store.add(m, if_absent=skip_measured)  # a concurrent profile may have stored it meanwhile
        done.add(arch.arch_id)
        out.append(m)
        if on_result:
            on_result(arch, m)
    if failed and on_error is None:
        raise MeasurementFailed(f"{len(failed)} of {len(archs)} archs could not be measured on {profile.name} "
                                f"(the rest are stored); first: {failed[0][0]}: {failed[0][1]}")
    return out


__all__ = ["measure_archs", "measurement_settings"]
