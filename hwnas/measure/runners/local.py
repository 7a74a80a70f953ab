"""The local runner: measures a model file on this host through ONNX Runtime or LiteRT.

Timing happens in a ``ModelWorker`` child process (one per model), pinned to the profile's cores with
its thread count, so a model that crashes the runtime raises ``WorkerCrashed`` here and the run goes on.
Energy comes from a sensor (RAPL / NVML / INA3221 / battery) read around the timed rounds, else from the
profile's power model (labelled ``estimated:<model>``).

Op-level profiles (ONNX Runtime only: the LiteRT Python interpreter offers no op profiler; the adb runner
gets LiteRT's from benchmark_model) come from ONNX Runtime's profiling JSON: every node's kernel time,
averaged over runs after the first. They are taken after the worker has timed the model successfully.
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ...errors import HwnasError
from ..protocol import (Interleaved, ProtocolSettings, RunResult, SampledRounds, host_fingerprint,
                        interleaved_reference, run_rounds)
from .. import thermal as thermal_mod
from .energy import SensorError, estimate, open_meter, peak_power
from .worker import ModelWorker


def parse_ort_profile(events: list[dict]) -> list[dict]:
    """ONNX Runtime profiling events -> [{name, op_type, ms, calls, provider}] in execution order.

    Each node's kernel time is averaged over all runs but the first (which includes allocation)."""
    per_node: "OrderedDict[str, dict]" = OrderedDict()
    for e in sorted((e for e in events if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time")),
                    key=lambda e: e.get("ts", 0)):
        name = e["name"][: -len("_kernel_time")]
        args = e.get("args") or {}
        rec = per_node.setdefault(name, {"name": name, "op_type": args.get("op_name", "?"),
                                         "provider": args.get("provider"), "durs_us": []})
        rec["durs_us"].append(float(e.get("dur", 0)))
    out = []
    for rec in per_node.values():
        d = rec.pop("durs_us")
        steady = d[1:] if len(d) > 1 else d
        rec["ms"] = float(np.mean(steady)) / 1e3
        rec["calls"] = len(steady)
        out.append(rec)
    return out


def ort_op_profile(path: Path, threads: int = 1, provider: str | None = None, runs: int = 10, seed: int = 0) -> list[dict]:
    from ...runtimes.onnxruntime import OrtSession

    with tempfile.TemporaryDirectory(prefix="hwnas-ortprof-") as tmp:
        s = OrtSession(Path(path), threads=threads, provider=provider, profile_dir=Path(tmp))
        s.set_input(np.random.default_rng(seed).standard_normal(s.input_shape).astype(np.float32))
        for _ in range(runs + 1):
            s.invoke()
        prof = s.end_profiling()
        events = json.loads(Path(prof).read_text())
    return parse_ort_profile(events)


def measure_local(path: Path, runtime: str, threads: int = 1, delegate: str | None = None, affinity=None,
                  protocol: ProtocolSettings | None = None, energy: dict | None = None, op_profile: bool = True,
                  sysfs_root: Path | None = None, timeout_s: float = 300.0, reference: Path | None = None,
                  thermal: dict | None = None) -> RunResult:
    """Measure one model file here (also what the agent runs on a board).

    With ``reference`` (a model file of the same format), the reference is loaded in the same worker and a
    round of it is timed before every round of the candidate (ABAB, ``protocol.Interleaved``);
    ``RunResult.reference`` then holds the reference's median and the median candidate/reference ratio over
    the timed rounds. ``thermal`` is the profile's thermal policy (``measure.thermal``): temperatures are read
    from sysfs before (after an optional cooldown) and after the timed rounds.
    """
    protocol = protocol or ProtocolSettings()
    policy = thermal or {}
    before, waited, cooled = thermal_mod.cool_down(lambda: thermal_mod.read_sysfs(sysfs_root), policy)
    thermal_mod.stop_if_hot(platform.node() or "host", before, waited, cooled, policy)
    meter = open_meter(energy, root=sysfs_root)
    started = []

    def start_meter() -> None:  # a sensor that fails now costs the energy figure, never the latency
        if not meter:
            return
        try:
            meter.start()
            started.append(True)
        except SensorError:
            pass

    with ModelWorker(path, runtime=runtime, threads=threads, delegate=delegate, affinity=affinity,
                     timeout_s=timeout_s, reference=reference) as w:
        rounds = SampledRounds(w.time)
        clock = time.monotonic
        if reference is not None:
            rounds = Interleaved(rounds, SampledRounds(lambda n: w.time(n, reference=True)), protocol)
            clock = rounds.clock  # the caps count the candidate's time: a reference doubles the wall time only
        res = run_rounds(rounds, protocol, first_inference_ms=w.first_inference_ms, on_timed_start=start_meter,
                         clock=clock)
        joules = None
        if started:
            try:
                joules = meter.stop()
            except SensorError:
                joules = None
        info = w.info
    heat = thermal_mod.thermal_record(before, thermal_mod.read_sysfs(sysfs_root), policy, waited, cooled)
    ref = interleaved_reference(rounds.ref_centres, res.round_medians) if reference is not None else None
    return _result(path, res, protocol, info, meter, joules, energy, threads, delegate, op_profile, ref, heat)


def _result(path: Path, res, protocol: ProtocolSettings, info: dict, meter, joules, energy, threads: int,
            delegate, op_profile: bool, ref: dict | None, heat) -> RunResult:
    """The RunResult of a local measurement: energy (measured, else estimated), op profile, protocol report."""
    stats = res.stats
    latency = res.estimate(protocol)
    if joules is not None and stats.n_runs:
        energy_mj, energy_source = joules * 1e3 / stats.n_runs, meter.label
    else:
        energy_mj, energy_source = estimate(energy, latency, threads)
    peak_w, peak_source = peak_power(meter if joules is not None else None, energy, threads)
    ops = None
    if op_profile and info["runtime"] == "onnxruntime":
        try:
            ops = ort_op_profile(path, threads=threads, provider=delegate)
        except HwnasError:
            ops = None
    report = res.report(protocol)
    report["pinned"] = info.get("pinned")
    return RunResult(latency_ms=latency, latency_p90_ms=stats.p90_ms, latency_iqr_ms=stats.iqr_ms,
                     latency_cv=stats.cv, n_runs=stats.n_runs, first_inference_ms=res.first_inference_ms,
                     unstable=res.unstable, runtime=info["runtime"], runtime_version=str(info["version"]),
                     threads=int(info["threads"]), delegate=info.get("delegate"), energy_mj=energy_mj,
                     energy_source=energy_source, peak_power_w=peak_w, peak_power_source=peak_source,
                     fingerprint=host_fingerprint(), op_profile=ops,
                     protocol=report, reference=ref, thermal=heat)


class LocalRunner:
    """Runs models on this host (connection type ``local``)."""

    def __init__(self, sysfs_root: Path | None = None, timeout_s: float = 300.0):
        self.sysfs_root = sysfs_root
        self.timeout_s = timeout_s

    def reachable(self, profile) -> tuple[bool, str]:
        return True, "this host"

    def run(self, path: Path, profile, protocol: ProtocolSettings | None = None, op_profile: bool = True,
            reference: Path | None = None) -> RunResult:
        return measure_local(path, profile.runtime, threads=profile.threads, delegate=profile.delegate,
                             affinity=profile.affinity, protocol=protocol, energy=profile.energy,
                             op_profile=op_profile, sysfs_root=self.sysfs_root, timeout_s=self.timeout_s,
                             reference=reference, thermal=profile.thermal)
