"""The adb runner (Android): push the model, run the runtime's official benchmark tool on the phone, parse it.

LiteRT: TFLite's ``benchmark_model`` (``connection.benchmark_model``, default
``/data/local/tmp/benchmark_model``; delegates ``xnnpack`` | ``none`` | ``gpu`` | ``nnapi``). ONNX Runtime:
``onnxruntime_perf_test`` (``connection.perf_test``, default ``/data/local/tmp/onnxruntime_perf_test``;
execution providers ``cpu`` | ``xnnpack`` | ``nnapi`` | ``qnn``, provider options from
``connection.ep_options``, e.g. ``backend_path|libQnnHtp.so``). The user pushes either binary (see
docs/profiling.md). Runner (how to reach the phone) and parsers (how to read each tool's output) are
separate: ``parse_benchmark_output`` and ``parse_perf_test_output`` are pure functions.

Protocol on the phone: the protocol is ``measure.protocol.run_rounds``, as on the host; this runner only runs
rounds (``ToolRounds``): one ``benchmark_model`` run of ``--num_runs`` per round (``--warmup_runs=1``: the tool
warms up for at least 0.5 s anyway; the warm-up until stable is the protocol's, in whole rounds). Each round
reports count / avg / std and, in recent versions, p5 / median / p95, not each run's time, so the round's median
(its average on older versions) is one sample (``tool_round``) and a round is ``AGGREGATE_ROUND_SCALE`` times
``round_ms`` long. Reported: latency_ms = the protocol's estimator over the round medians (their median by
default), CV pooled from the rounds' std, n_runs = all timed inferences; p90 and IQR stay empty because
benchmark_model does not print per-inference times (its p95 is kept in the protocol report). A final run with
``--enable_op_profiling=true`` gives the op-level profile (not timed: profiling adds overhead).

Energy: ``current_now`` / ``voltage_now`` of ``/sys/class/power_supply/battery`` sampled over adb during
a sustained benchmark_model run of ``connection.energy_duration_s`` seconds; energy per inference =
mean power x median latency, labelled ``measured:battery``. A phone charging over USB draws from the
cable, not the battery: unplug power (or use a USB power-delivery switch) for meaningful figures.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from ...errors import HwnasError
from ..protocol import (DeviceUnreachable, Interleaved, ProtocolSettings, Round, RunResult, interleaved_reference,
                        run_rounds)
from .. import thermal as thermal_mod
from .energy import BatteryReader, SampledMeter, SensorError, estimate, peak_power

_NUM = r"([-+]?[\d.]+(?:[eE][-+]?\d+)?)"
_STATS_RE = re.compile(r"count=(\d+)(?P<rest>.*)")
_KV_RE = re.compile(r"(\w+)=" + _NUM)
_SUMMARY_RE = re.compile(r"Inference timings in us: Init: " + _NUM + r", First inference: " + _NUM
                         + r", Warmup \(avg\): " + _NUM + r", Inference \(avg\): " + _NUM)
_INIT_RE = re.compile(r"Initialized session in " + _NUM + r"\s*ms")
_MEM_DELTA_RE = re.compile(r"(?:Memory footprint delta from the start of the tool|Peak memory footprint) \(MB\): "
                           r"init=" + _NUM + r" overall=" + _NUM)
_PEAK_RE = re.compile(r"Overall peak memory footprint \(MB\) via periodic monitoring: " + _NUM)
TOOL_WARMUP_RUNS = 1  # --warmup_runs of every round (the protocol's warm-up is in whole rounds)
_PREFIX_RE = re.compile(r"^\s*(?:INFO:|I tflite\s*:)\s?")


def _strip(line: str) -> str:
    return _PREFIX_RE.sub("", line.rstrip("\r"))


def parse_benchmark_output(text: str) -> dict:
    """benchmark_model's stdout -> dict (times in ms).

    Keys: ``avg_ms``, ``std_ms``, ``min_ms``, ``max_ms``, ``count`` (the timed run), ``median_ms``, ``p5_ms``,
    ``p95_ms`` (None on older versions), ``first_inference_ms``, ``warmup_avg_ms``, ``init_ms``,
    ``memory_init_mb``, ``memory_overall_mb``, ``peak_memory_mb``, ``op_profile`` (list or None).
    Raises HwnasError when the output has no timing summary (the message quotes its last lines).
    """
    lines = [_strip(ln) for ln in text.splitlines()]
    out: dict = {"median_ms": None, "p5_ms": None, "p95_ms": None, "memory_init_mb": None,
                 "memory_overall_mb": None, "peak_memory_mb": None, "init_ms": None, "op_profile": None}
    stats_lines = []
    for ln in lines:
        m = _STATS_RE.match(ln.strip())
        if m and "avg=" in ln:
            stats_lines.append(dict((k, float(v)) for k, v in _KV_RE.findall(ln)))
    summary = None
    for ln in lines:
        s = _SUMMARY_RE.search(ln)
        if s:
            summary = [float(x) for x in s.groups()]
        m = _INIT_RE.search(ln)
        if m:
            out["init_ms"] = float(m.group(1))
        m = _MEM_DELTA_RE.search(ln)
        if m:
            out["memory_init_mb"], out["memory_overall_mb"] = float(m.group(1)), float(m.group(2))
        m = _PEAK_RE.search(ln)
        if m:
            out["peak_memory_mb"] = float(m.group(1))
    if summary is None or not stats_lines:
        tail = " | ".join(ln.strip() for ln in lines if ln.strip())[-300:]
        raise HwnasError(f"benchmark_model printed no timing summary; its output ended: {tail or '(nothing)'}")
    # the timed run's statistics line is the last 'count=... avg=...' before the summary (not the op
    # profiler's 'Timings (microseconds): count=...' line, which comes after it)
    timed = None
    for ln in lines:
        if _SUMMARY_RE.search(ln):
            break
        m = _STATS_RE.match(ln.strip())
        if m and "avg=" in ln:
            timed = dict((k, float(v)) for k, v in _KV_RE.findall(ln))
    timed = timed or stats_lines[-1]
    init_us, first_us, warm_us, avg_us = summary
    out.update({"avg_ms": avg_us / 1e3, "std_ms": timed.get("std", 0.0) / 1e3, "min_ms": timed.get("min", avg_us) / 1e3,
                "max_ms": timed.get("max", avg_us) / 1e3, "count": int(timed["count"]),
                "first_inference_ms": first_us / 1e3, "warmup_avg_ms": warm_us / 1e3})
    out["init_ms"] = out["init_ms"] if out["init_ms"] is not None else init_us / 1e3
    for key in ("median", "p5", "p95"):
        if key in timed:
            out[f"{key}_ms"] = timed[key] / 1e3
    out["op_profile"] = parse_op_profile(lines)
    return out


def parse_op_profile(lines: list[str]) -> list[dict] | None:
    """The 'Run Order' table of 'Operator-wise Profiling Info for Regular Benchmark Runs', or None."""
    start = None
    for i, ln in enumerate(lines):
        if "Operator-wise Profiling Info for Regular Benchmark Runs" in ln:
            start = i
            break
    if start is None:
        return None
    ops = []
    in_table = False
    for ln in lines[start + 1:]:
        s = ln.strip()
        if "Run Order" in s:
            in_table = True
            continue
        if not in_table:
            continue
        if s.startswith("[node type]"):
            continue
        if not s or s.startswith("====="):
            break
        cols = [c.strip() for c in ln.split("\t") if c.strip()]
        if len(cols) < 9:
            continue
        try:
            ops.append({"name": cols[8], "op_type": cols[0], "ms": float(cols[3]), "first_ms": float(cols[2]),
                        "start_ms": float(cols[1]), "calls": int(float(cols[7]))})
        except ValueError:
            continue
    return ops


# -- onnxruntime_perf_test ---------------------------------------------------------------------------------
# Execution providers the adb runner passes to `onnxruntime_perf_test -e` (profile delegate -> -e value).
PERF_TEST_EPS = {"cpu": "cpu", "cpuexecutionprovider": "cpu", "xnnpack": "xnnpack",
                 "xnnpackexecutionprovider": "xnnpack", "nnapi": "nnapi", "nnapiexecutionprovider": "nnapi",
                 "qnn": "qnn", "qnnexecutionprovider": "qnn"}
BENCHMARK_MODEL_DELEGATES = ("xnnpack", "cpu", "none", "builtin", "gpu", "nnapi")
_PT_LAT_RE = re.compile(r"^(Min|Max|P50|P90|P95|P99|P999) Latency(?::| is)\s*" + _NUM + r"\s*s(?:ec)?\b")
_PT_KV = {
    "init_s": re.compile(r"^Session creation time cost:\s*" + _NUM + r"\s*s"),
    "first_ms": re.compile(r"^First inference time cost:\s*" + _NUM + r"\s*ms"),
    "count": re.compile(r"^(?:Total inference requests|Total iterations|Runs):\s*" + _NUM),
    "avg_ms": re.compile(r"^(?:Average inference time cost|Average time cost):\s*" + _NUM + r"\s*ms"),
    "peak_bytes": re.compile(r"^Peak working set size:\s*" + _NUM),
}


def parse_perf_test_output(text: str) -> dict:
    """onnxruntime_perf_test's stdout (run with ``-s``) -> dict (times in ms).

    Keys as ``parse_benchmark_output``: ``avg_ms``, ``min_ms``, ``max_ms``, ``count``, ``median_ms`` (its
    P50), ``p90_ms``, ``p95_ms``, ``p99_ms``, ``first_inference_ms``, ``init_ms`` (session creation),
    ``peak_memory_mb``; ``std_ms`` and ``op_profile`` are None (the tool prints neither). Reads the current
    format (``P50 Latency: 0.0021 s``) and the older one (``P50 Latency is 0.0021sec``). Raises HwnasError
    when the output has no latency statistics (the message quotes its last lines).
    """
    out: dict = {"std_ms": None, "op_profile": None, "init_ms": None, "first_inference_ms": None,
                 "peak_memory_mb": None, "memory_overall_mb": None, "count": None, "avg_ms": None}
    lat: dict = {}
    for raw in text.splitlines():
        ln = raw.strip()
        m = _PT_LAT_RE.match(ln)
        if m:
            lat[m.group(1).lower()] = float(m.group(2)) * 1e3
            continue
        for key, rx in _PT_KV.items():
            m = rx.match(ln)
            if m and out.get(key) is None:
                out[key] = float(m.group(1))
    if "p50" not in lat or out["avg_ms"] is None:
        tail = " | ".join(ln.strip() for ln in text.splitlines() if ln.strip())[-300:]
        raise HwnasError(f"onnxruntime_perf_test printed no latency statistics (run with -s); "
                         f"its output ended: {tail or '(nothing)'}")
    init_s, first_ms, peak = out.pop("init_s", None), out.pop("first_ms", None), out.pop("peak_bytes", None)
    out.update({"min_ms": lat.get("min"), "max_ms": lat.get("max"), "median_ms": lat["p50"], "p5_ms": None,
                "p90_ms": lat.get("p90"), "p95_ms": lat.get("p95"), "p99_ms": lat.get("p99"),
                "count": int(out["count"] or 0), "first_inference_ms": first_ms,
                "init_ms": None if init_s is None else init_s * 1e3,
                "peak_memory_mb": None if peak is None else peak / 2 ** 20})
    return out


class AdbRunner:
    """Measures .tflite files on an Android phone through adb and benchmark_model (connection type ``adb``)."""

    def __init__(self, adb: str | None = None, sample_interval_s: float = 0.2, thermal_poll_s: float = 2.0):
        self.adb = adb
        self.sample_interval_s = sample_interval_s
        self.thermal_poll_s = thermal_poll_s  # how often a cooldown re-reads the phone's temperatures

    # -- adb plumbing --------------------------------------------------------------------------------------
    def _exe(self, profile) -> str:
        name = self.adb or profile.connection.get("adb") or "adb"
        exe = shutil.which(name)
        if exe is None:
            raise DeviceUnreachable(f"device {profile.name}: adb not found ({name!r} is not on PATH); "
                                    f"install Android platform-tools")
        return exe

    def _cmd(self, profile, *args: str) -> list[str]:
        cmd = [self._exe(profile)]
        serial = profile.connection.get("serial")
        if serial:
            cmd += ["-s", str(serial)]
        return cmd + list(args)

    def _run(self, profile, *args: str, timeout: float = 600.0, check: bool = True) -> str:
        cmd = self._cmd(profile, *args)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise HwnasError(f"device {profile.name}: `adb {' '.join(args[:2])}` timed out after {timeout:.0f} s") from None
        if check and proc.returncode != 0:
            msg = (proc.stderr.strip() or proc.stdout.strip() or f"exit code {proc.returncode}").splitlines()[-1]
            if any(k in msg for k in ("no devices", "device offline", "not found", "unauthorized")) and "adb:" in msg:
                raise DeviceUnreachable(f"device {profile.name}: {msg}")
            raise HwnasError(f"device {profile.name}: adb {' '.join(args[:2])} failed: {msg}")
        return proc.stdout

    def devices(self, profile) -> list[str]:
        """Serials that `adb devices` lists as ready."""
        exe = self._exe(profile)
        try:
            proc = subprocess.run([exe, "devices"], capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            raise DeviceUnreachable(f"device {profile.name}: `adb devices` timed out") from None
        if proc.returncode != 0:
            msg = (proc.stderr.strip() or f"exit code {proc.returncode}").splitlines()[-1]
            raise DeviceUnreachable(f"device {profile.name}: `adb devices` failed: {msg}")
        serials = []
        for ln in proc.stdout.splitlines()[1:]:
            parts = ln.split()
            if len(parts) >= 2 and parts[1] == "device":
                serials.append(parts[0])
        return serials

    def reachable(self, profile) -> tuple[bool, str]:
        try:
            serials = self.devices(profile)
        except HwnasError as exc:
            return False, str(exc).split(": ", 1)[-1]
        want = profile.connection.get("serial")
        if want:
            return (want in serials), (f"adb device {want}" if want in serials else f"adb device {want} not connected")
        if len(serials) == 1:
            return True, f"adb device {serials[0]}"
        if not serials:
            return False, "no adb device connected"
        return False, f"{len(serials)} adb devices connected: set connection.serial in the profile"

    def _check_device(self, profile) -> None:
        ok, why = self.reachable(profile)
        if not ok:
            raise DeviceUnreachable(f"device {profile.name}: {why}")

    def shell(self, profile, command: str, timeout: float = 600.0) -> str:
        return self._run(profile, "shell", command, timeout=timeout)

    # -- the benchmark tools ---------------------------------------------------------------------------
    @staticmethod
    def tool(profile) -> tuple[str, str]:
        """(tool name, its path on the phone) for the profile's runtime."""
        c = profile.connection
        if profile.runtime == "onnxruntime":
            return "onnxruntime_perf_test", c.get("perf_test") or "/data/local/tmp/onnxruntime_perf_test"
        return "benchmark_model", c.get("benchmark_model") or "/data/local/tmp/benchmark_model"

    def _taskset(self, profile) -> str | None:
        taskset = profile.connection.get("taskset")
        if taskset is None and profile.affinity:
            taskset = format(sum(1 << int(i) for i in profile.affinity), "x")
        if taskset is not None and not re.fullmatch(r"(0x)?[0-9a-fA-F]{1,16}", str(taskset)):
            # it goes into a phone-side shell line: a CPU mask only, never anything a shell would interpret
            raise HwnasError(f"device {profile.name}: connection.taskset must be a hex CPU mask such as f0, "
                             f"got {taskset!r}")
        return taskset

    def _bench_cmd(self, profile, remote: str, num_runs: int, warmup_runs: int, op_profiling: bool = False,
                   min_secs: float = 0.0, max_secs: float = 150.0) -> str:
        """The shell command for one round (``min_secs`` > 0 with a huge ``num_runs``: a sustained run)."""
        name, exe = self.tool(profile)
        delegate = (profile.delegate or ("cpu" if name == "onnxruntime_perf_test" else "xnnpack")).lower()
        if name == "onnxruntime_perf_test":
            ep = PERF_TEST_EPS.get(delegate)
            if ep is None:
                raise HwnasError(f"device {profile.name}: execution provider {profile.delegate!r} is not known to "
                                 f"onnxruntime_perf_test here (known: cpu, xnnpack, nnapi, qnn)")
            args = [exe, "-I", "-s", "-e", ep, "-x", str(profile.threads), "-y", "1"]
            args += ["-m", "duration", "-t", f"{max(1, round(min_secs))}"] if num_runs > 100_000 and min_secs > 0 \
                else ["-m", "times", "-r", str(num_runs)]
            if profile.connection.get("ep_options"):
                args += ["-i", str(profile.connection["ep_options"])]
            args.append(remote)
        else:
            args = [exe, f"--graph={remote}", f"--num_threads={profile.threads}", f"--num_runs={num_runs}",
                    f"--warmup_runs={warmup_runs}", f"--min_secs={min_secs:g}", f"--max_secs={max_secs:g}",
                    f"--enable_op_profiling={'true' if op_profiling else 'false'}"]
            if delegate in ("xnnpack", "cpu"):
                args.append("--use_xnnpack=true")
            elif delegate in ("none", "builtin"):
                args.append("--use_xnnpack=false")
            elif delegate == "gpu":
                args.append("--use_gpu=true")
            elif delegate == "nnapi":
                args.append("--use_nnapi=true")
            else:
                raise HwnasError(f"device {profile.name}: delegate {profile.delegate!r} is not known to benchmark_model "
                                 f"(known: xnnpack, none, gpu, nnapi)")
        cmd = " ".join(shlex.quote(a) for a in args)
        taskset = self._taskset(profile)
        return f"taskset {taskset} {cmd}" if taskset else cmd

    def _bench(self, profile, remote: str, **kw) -> dict:
        text = self.shell(profile, self._bench_cmd(profile, remote, **kw))
        if self.tool(profile)[0] == "onnxruntime_perf_test":
            return parse_perf_test_output(text)
        return parse_benchmark_output(text)

    @staticmethod
    def _energy_seconds(profile, max_s: float | None = None) -> float:
        """Length of the sustained run the battery is sampled over: the profile's, capped by the protocol's."""
        duration = float(profile.connection.get("energy_duration_s") or 5.0)
        return min(duration, max_s) if max_s else duration

    def _battery_energy(self, profile, remote: str, median_ms: float, max_s: float | None = None):
        """(energy_mj, source, the meter for its peak power) from sampled battery power, or (None, None, None)."""
        duration = self._energy_seconds(profile, max_s)

        def read(name: str) -> str:
            try:
                return self.shell(profile, f"cat /sys/class/power_supply/battery/{name}", timeout=30)
            except HwnasError as exc:
                raise SensorError(str(exc)) from None

        reader = BatteryReader(read=read)
        if not reader.available():
            return None, None, None
        cmd = self._cmd(profile, "shell", self._bench_cmd(profile, remote, num_runs=1_000_000, warmup_runs=1,
                                                          min_secs=duration, max_secs=duration))
        meter = SampledMeter(reader.power_w, "battery", interval_s=self.sample_interval_s)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(min(0.5, duration / 4))  # past model load
            meter.start()
            proc.wait(timeout=duration + 120)
            meter.stop()
        except (subprocess.TimeoutExpired, SensorError):
            return None, None, None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        p = meter.mean_power_w
        if p is None:
            return None, None, None
        return p * median_ms, meter.label, meter

    def temperatures(self, profile) -> dict:
        """Thermal zones, battery temperature and CPU frequency caps over adb (``measure.thermal``)."""
        try:
            return thermal_mod.parse_thermal_lines(self.shell(profile, thermal_mod.ADB_THERMAL_CMD, timeout=30))
        except HwnasError:
            return {"zones": {}, "capped_cpus": []}

    # -- the runner ------------------------------------------------------------------------------------
    def _facts(self, profile) -> dict:
        """Make the model folder, look for the benchmark tool, read its sha1 and the build properties: one
        `adb shell` round trip per arch (it was eight). Each answer is a tagged line (``parse_facts``)."""
        text = self.shell(profile, facts_command(self._remote_dir(profile), self.tool(profile)[1]), timeout=60)
        return parse_facts(text)

    def _prepare(self, path: Path, profile) -> tuple[str, dict]:
        """Check the model's format, the phone and its benchmark tool; push the model; (its path on the phone,
        the phone's facts: ``_facts``)."""
        tool, bm = self.tool(profile)
        want = ".onnx" if tool == "onnxruntime_perf_test" else ".tflite"
        if path.suffix != want:
            raise HwnasError(f"device {profile.name}: {tool} runs {want} models (profile runtime {profile.runtime!r}, "
                             f"file {path.name})")
        self._check_device(profile)
        facts = self._facts(profile)
        if facts["dir"] != "ok":
            raise HwnasError(f"device {profile.name}: cannot make {self._remote_dir(profile)} on the phone: "
                             f"{facts['dir'] or 'no answer'}")
        if bm not in facts["tool"] or "No such file" in facts["tool"]:
            raise DeviceUnreachable(f"device {profile.name}: {tool} not found at {bm} on the phone; "
                                    f"push the official {tool} binary there (see docs/profiling.md)")
        return self._push(profile, path), facts

    @staticmethod
    def _remote_dir(profile) -> str:
        return profile.connection.get("remote_dir") or "/data/local/tmp/hwnas"

    def _push(self, profile, path: Path, prefix: str = "") -> str:
        remote = f"{self._remote_dir(profile)}/{prefix}{Path(path).name}"
        self._run(profile, "push", str(path), remote, timeout=600)
        return remote

    def run(self, path: Path, profile, protocol: ProtocolSettings | None = None, op_profile: bool = True,
            reference: Path | None = None) -> RunResult:
        """Measure ``path``: ``measure.protocol.run_rounds`` over rounds of the phone's tool (``ToolRounds``);
        with ``reference`` (a model of the same format) a round of the reference runs before every round of
        the candidate (ABAB, ``protocol.Interleaved``) and ``RunResult.reference`` holds the drift ratio."""
        protocol = protocol or ProtocolSettings()
        path = Path(path)
        tool = self.tool(profile)[0]
        remote, facts = self._prepare(path, profile)
        ref_remote = None
        policy = profile.thermal or {}
        before, waited, cooled = thermal_mod.cool_down(lambda: self.temperatures(profile), policy,
                                                       poll_s=self.thermal_poll_s)
        thermal_mod.stop_if_hot(profile.name, before, waited, cooled, policy)
        try:
            rounds = ToolRounds(self, profile, remote)
            clock = time.monotonic
            if reference is not None:
                ref_remote = self._push(profile, Path(reference), "ref-")
                rounds = Interleaved(rounds, ToolRounds(self, profile, ref_remote), protocol)
                clock = rounds.clock  # the caps count the candidate's rounds only
            res = run_rounds(rounds, protocol, first_inference_ms=None, clock=clock)
            heat = thermal_mod.thermal_record(before, self.temperatures(profile), policy, waited, cooled)
            latency = res.estimate(protocol)
            ops = None
            if op_profile and tool == "benchmark_model":
                ops = self._bench(profile, remote, num_runs=max(10, protocol.min_runs), warmup_runs=1,
                                  op_profiling=True)["op_profile"]
            energy = self._energy(profile, remote, latency, protocol.energy_max_s)
        finally:
            for f in (remote, ref_remote):
                if f is not None:
                    self._run(profile, "shell", f"rm -f {shlex.quote(f)}", check=False, timeout=60)
        ref = interleaved_reference(rounds.ref_centres, res.round_medians) if reference is not None else None
        return self._result(profile, facts, res, protocol, latency, ops, energy, ref, heat)

    def _energy(self, profile, remote: str, latency_ms: float, max_s: float | None = None) -> tuple:
        """(energy_mj, its source, peak_w, its source): the battery if it can be read, else the power model;
        ``max_s``: the protocol's cap on the sustained run (ProtocolSettings.energy_max_s)."""
        energy_mj, energy_source, meter = None, None, None
        if profile.energy.get("sensor") in ("battery", "auto"):
            energy_mj, energy_source, meter = self._battery_energy(profile, remote, latency_ms, max_s)
        if energy_mj is None:
            energy_mj, energy_source = estimate(profile.energy, latency_ms, profile.threads)
        return (energy_mj, energy_source) + tuple(peak_power(meter, profile.energy, profile.threads))

    def _result(self, profile, facts: dict, res, protocol: ProtocolSettings, latency: float, ops, energy: tuple, ref,
                heat) -> RunResult:
        tool, bm = self.tool(profile)
        timed = [r.stats for r in res.timed_rounds]
        first = res.probe.stats

        def med_of(key):
            vals = [r.get(key) for r in timed if r.get(key) is not None]
            return float(np.median(vals)) if vals else None

        label = "onnxruntime_perf_test round P50s" if tool == "onnxruntime_perf_test" else (
            "benchmark_model round medians" if timed[0]["median_ms"] is not None else "benchmark_model round averages")
        report = {**res.report(protocol), "sample": label, "p95_ms": med_of("p95_ms"), "p99_ms": med_of("p99_ms"),
                  "init_ms": first["init_ms"], "memory_overall_mb": first.get("memory_overall_mb"),
                  "peak_memory_mb": first["peak_memory_mb"],
                  "pinned": {"taskset": self._taskset(profile), "cores": profile.affinity, "threads": profile.threads}}
        fp = {"android": facts["props"], "serial": profile.connection.get("serial"), "via": "adb", tool: bm}
        digest = facts["sha1"].split()
        version = f"{tool} sha1:{digest[0][:12]}" if digest and re.fullmatch(r"[0-9a-f]{40}", digest[0]) \
            else f"{tool} ({bm})"
        default_delegate = "cpu" if tool == "onnxruntime_perf_test" else "xnnpack"
        energy_mj, energy_source, peak_w, peak_source = energy
        if str(energy_source).startswith("measured"):  # how long the battery was sampled
            report["energy_run_s"] = self._energy_seconds(profile, protocol.energy_max_s)
        return RunResult(latency_ms=latency, latency_p90_ms=med_of("p90_ms"), latency_iqr_ms=None,
                         latency_cv=pooled_cv(timed), n_runs=res.n_runs,
                         first_inference_ms=first["first_inference_ms"], unstable=res.unstable,
                         runtime=profile.runtime, runtime_version=version, threads=profile.threads,
                         delegate=profile.delegate or default_delegate, energy_mj=energy_mj,
                         energy_source=energy_source, peak_power_w=peak_w, peak_power_source=peak_source,
                         fingerprint=fp, op_profile=ops, protocol=report, reference=ref, thermal=heat)


FACT_PROPS = ("ro.product.model", "ro.product.manufacturer", "ro.soc.model", "ro.build.fingerprint",
              "ro.build.version.release")


def facts_command(remote_dir: str, tool_path: str) -> str:
    """The phone-side line behind ``AdbRunner._facts`` (both paths shell-quoted here): tagged answers `dir ok` (or
    mkdir's error), `tool <ls of the tool>`, `sha1 <sha1sum of the tool>`, `prop <key> <value>`."""
    folder, tool = shlex.quote(remote_dir), shlex.quote(tool_path)
    return (f'echo "dir $(mkdir -p {folder} 2>&1 && echo ok)"; '
            f'echo "tool $(ls {tool} 2>&1)"; echo "sha1 $(sha1sum {tool} 2>/dev/null)"; '
            f'for k in {" ".join(FACT_PROPS)}; do echo "prop $k $(getprop $k)"; done')


def parse_facts(text: str) -> dict:
    """``facts_command``'s answer: {"dir", "tool", "sha1", "props": {key: value}}; a property the phone does
    not set is "" (as `getprop` answers), one missing from the answer None."""
    facts = {"dir": "", "tool": "", "sha1": "", "props": dict.fromkeys(FACT_PROPS)}
    for line in text.splitlines():
        tag, _, rest = line.strip().partition(" ")
        if tag == "prop":
            key, _, value = rest.partition(" ")
            facts["props"][key] = value.strip()
        elif tag in ("dir", "tool", "sha1") and not facts[tag]:
            facts[tag] = rest.strip()
    return facts


def tool_round(parsed: dict) -> Round:
    """One run of the phone's tool (parsed output) as a protocol round: the tool prints a round's statistics,
    not each run's time, so the round's figure is its median (P50; the mean on old benchmark_model versions
    that print no median) and the protocol counts it as one sample (``Round.samples``)."""
    figure = parsed["median_ms"] if parsed["median_ms"] is not None else parsed["avg_ms"]
    return Round(runs=int(parsed["count"]), figure=float(figure), stats=parsed)


def pooled_cv(rounds: list[dict]) -> float | None:
    """CV (std / mean) of all timed runs, pooled from the rounds' counts, means and stds; None where the tool
    prints no std (onnxruntime_perf_test): left empty rather than guessed."""
    counts = np.array([r["count"] for r in rounds], dtype=float)
    means = np.array([r["avg_ms"] for r in rounds])
    mean = float(np.sum(counts * means) / np.sum(counts))
    if not all(r["std_ms"] is not None for r in rounds):
        return None
    stds = np.array([r["std_ms"] for r in rounds])
    var = float(np.sum(counts * (stds ** 2 + (means - mean) ** 2)) / np.sum(counts))
    return float(np.sqrt(var) / mean) if mean > 0 else 0.0


class ToolRounds:
    """A ``protocol.RoundRunner`` on the phone: every round is one run of benchmark_model / onnxruntime_perf_test
    on the pushed model. Each run loads the model again; the tool's own warm-up before its timed runs is
    ``TOOL_WARMUP_RUNS`` (benchmark_model also warms up for at least its ``--warmup_min_secs``, 0.5 s by
    default); the warm-up until stable is the protocol's, in whole rounds."""

    aggregate = True

    def __init__(self, runner: AdbRunner, profile, remote: str):
        self.runner, self.profile, self.remote = runner, profile, remote

    def round(self, runs: int, warmup: bool) -> Round:
        return tool_round(self.runner._bench(self.profile, self.remote, num_runs=runs, warmup_runs=TOOL_WARMUP_RUNS))
