"""The measurement protocol: settings, statistics, what a runner returns, who measured (a leaf module:
errors, numpy and the standard library only; the loop that exports, runs and stores is ``measure.campaign``).

Protocol (``run_rounds``; parameters in ``ProtocolSettings``). A runner only executes rounds: a ``RoundRunner``
runs ``n`` inferences when asked and returns a ``Round`` (each run's latency, or, where the device tool reports a
round's statistics only, the round's figure: one sample). Everything below is decided here, for every runner:

1. The first inference after loading is recorded apart (it includes lazy initialisation).
2. A short probe sizes a *round* to about ``round_ms`` of work (``round_runs``; a round that is one sample is
   ``AGGREGATE_ROUND_SCALE`` times longer).
3. Warm-up: rounds until the median of one chunk is within ``warmup_tol`` of the previous chunk's
   (or ``warmup_max_s`` passes: then the measurement is flagged unstable).
4. Timed rounds until the 95% confidence interval of the median (distribution-free, from order
   statistics) is within +-``rel_ci`` of the median with at least ``min_runs`` runs and ``min_rounds``
   rounds, both over all runs and over the rounds' medians (which catches drift between rounds that
   the pooled runs hide), or until ``max_time_s`` / ``max_rounds`` is hit: then the result is kept and
   flagged ``unstable``.
5. Reported: the chosen estimator (``ProtocolSettings.estimator``: ``median`` of all timed runs,
   ``median_of_rounds``, a low quantile ``p10``, a 10 %-``trimmed_mean``; every one of them is kept in the
   report's ``estimates``), p90, IQR, CV (std / mean), the number of timed runs, the first inference.

Every measurement records the runtime, its version, threads, delegate, the host/device fingerprint and
the time (``RunResult``, ``host_fingerprint``).
"""

from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from ..errors import HwnasError

Z95 = 1.959963984540054


def _trimmed_mean(a: np.ndarray, cut: float = 0.1) -> float:
    k = int(len(a) * cut)
    return float(np.mean(a[k:len(a) - k])) if len(a) > 2 * k else float(np.mean(a))


# Point estimators of "the" latency from one arch's timed runs (``times``) and its rounds' medians.
ESTIMATORS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "median": lambda times, rounds: float(np.median(times)),
    "median_of_rounds": lambda times, rounds: float(np.median(rounds)),
    "p10": lambda times, rounds: float(np.percentile(times, 10)),
    "trimmed_mean": lambda times, rounds: _trimmed_mean(np.sort(times)),
}


def estimates(times: Sequence[float], round_medians: Sequence[float]) -> dict[str, float]:
    """Every estimator in ``ESTIMATORS`` over the same runs (ms)."""
    t, r = np.asarray(times, dtype=np.float64), np.asarray(round_medians, dtype=np.float64)
    return {name: round(f(t, r), 6) for name, f in ESTIMATORS.items()}


@dataclass(frozen=True)
class ProtocolSettings:
    rel_ci: float = 0.02  # stop when the 95% CI of the median is within +-2% of it
    min_runs: int = 20
    min_rounds: int = 5  # the CI is also taken over round medians, so slow drifts widen it
    round_ms: float = 100.0  # a round is about this much inference time
    max_rounds: int = 200
    max_time_s: float = 10.0  # cap on the timed phase of one arch
    warmup_tol: float = 0.02
    warmup_max_s: float = 3.0
    warmup_min_runs: int = 3
    max_round_runs: int = 1000
    estimator: str = "median"  # which of ESTIMATORS becomes latency_ms (all are kept in the report)
    energy_max_s: float | None = None  # cap on a sustained energy run (a profile's energy_duration_s); None: no cap

    def __post_init__(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise HwnasError(f"unknown estimator {self.estimator!r}; known: {', '.join(ESTIMATORS)}")
        if not 0 < self.rel_ci < 1:
            raise HwnasError(f"rel_ci must be in (0, 1), got {self.rel_ci}")
        if self.min_runs < 5:
            raise HwnasError(f"min_runs must be >= 5 (a median CI needs a few runs), got {self.min_runs}")
        if self.min_rounds < 1:
            raise HwnasError(f"min_rounds must be >= 1, got {self.min_rounds}")
        if self.max_time_s <= 0 or self.warmup_max_s < 0 or self.round_ms <= 0:
            raise HwnasError("max_time_s and round_ms must be > 0, warmup_max_s >= 0")
        if self.energy_max_s is not None and self.energy_max_s <= 0:
            raise HwnasError(f"energy_max_s must be > 0, got {self.energy_max_s}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def quick(cls) -> "ProtocolSettings":
        """Short caps for tests and smoke runs (same rules, smaller budgets; a sustained energy run of 1 s)."""
        return cls(min_runs=10, min_rounds=3, round_ms=20.0, max_time_s=1.0, warmup_max_s=0.3, max_rounds=30,
                   energy_max_s=1.0)


@dataclass
class LatencyStats:
    median_ms: float
    p90_ms: float
    iqr_ms: float
    cv: float
    n_runs: int
    ci_low_ms: float
    ci_high_ms: float

    @property
    def ci_rel(self) -> float:
        return (self.ci_high_ms - self.ci_low_ms) / 2 / self.median_ms if self.median_ms > 0 else math.inf


def median_ci(sorted_times: Sequence[float], z: float = Z95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics (normal approx. of the
    binomial): ranks n/2 -+ z*sqrt(n)/2."""
    n = len(sorted_times)
    if n == 0:
        raise ValueError("no samples")
    lo = max(int(math.floor(n / 2 - z * math.sqrt(n) / 2)), 0)
    hi = min(int(math.ceil(n / 2 + z * math.sqrt(n) / 2)), n - 1)
    return float(sorted_times[lo]), float(sorted_times[hi])


def summarize(times: Sequence[float]) -> LatencyStats:
    a = np.sort(np.asarray(times, dtype=np.float64))
    if a.size == 0:
        raise ValueError("no samples")
    q25, med, q75, p90 = np.percentile(a, [25, 50, 75, 90])
    mean = float(a.mean())
    cv = float(a.std(ddof=1) / mean) if a.size > 1 and mean > 0 else 0.0
    lo, hi = median_ci(a)
    return LatencyStats(float(med), float(p90), float(q75 - q25), cv, int(a.size), lo, hi)


# -- rounds: what a runner executes -------------------------------------------------------------------------
PROBE_RUNS = 3  # the probe of a runner that reports each run
# A round from a tool that reports only a round's statistics (benchmark_model, onnxruntime_perf_test on a phone) is
# ONE sample, and every round is a new process that loads the model again: such a round is sized to this many times
# round_ms (about 1 s by default) and at least min_runs runs, so that its figure is steady on its own.
AGGREGATE_ROUND_SCALE = 10


@dataclass
class Round:
    """One round as a runner executed it: ``runs`` inferences; ``times`` holds each one's latency (ms) where the
    runner sees them, else ``figure`` is the round's own centre as the device tool reported it (its median, or
    its mean where it prints no median). ``stats`` keeps whatever else the tool reported (runner-specific)."""

    runs: int
    times: list[float] = field(default_factory=list)
    figure: float | None = None
    stats: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.times) == 0 and self.figure is None:
            raise ValueError("a round needs its runs' times or the tool's figure for it")

    @property
    def samples(self) -> list[float]:
        """What the protocol pools: every run's latency, or the round's figure as ONE sample where the tool
        reports aggregates only (the one place where a round's figure stands for its runs)."""
        return list(self.times) if len(self.times) else [float(self.figure)]

    @property
    def centre(self) -> float:
        return float(np.median(self.times)) if len(self.times) else float(self.figure)


class RoundRunner(Protocol):
    """What a runner gives the protocol: ``round(runs, warmup)`` executes ``runs`` inferences (``warmup``: the
    protocol will discard them) and returns a ``Round``. ``aggregate``: its rounds carry a figure, not times."""

    aggregate: bool

    def round(self, runs: int, warmup: bool) -> Round: ...


class SampledRounds:
    """A ``RoundRunner`` over ``sample(n) -> n latencies in ms`` (e.g. ``ModelWorker.time``)."""

    aggregate = False

    def __init__(self, sample: Callable[[int], Sequence[float]]):
        self.sample = sample

    def round(self, runs: int, warmup: bool) -> Round:
        times = list(self.sample(runs))
        return Round(runs=len(times), times=times)


def probe_runs(s: ProtocolSettings, aggregate: bool) -> int:
    """Runs in the probe that sizes the rounds."""
    return s.min_runs if aggregate else PROBE_RUNS


def round_runs(per_run_ms: float, s: ProtocolSettings, aggregate: bool = False) -> int:
    """Runs per round: about ``round_ms`` of inference (``AGGREGATE_ROUND_SCALE`` times that, and at least
    ``min_runs``, for a round that is one sample), at most ``max_round_runs``."""
    est = max(per_run_ms, 1e-3)
    if aggregate:
        return int(min(max(round(s.round_ms * AGGREGATE_ROUND_SCALE / est), s.min_runs), s.max_round_runs))
    return int(min(max(round(s.round_ms / est), 1), s.max_round_runs))


class Interleaved:
    """Drift reference (ABAB): a round of ``reference`` right before every round of ``candidate`` (the probe and
    warm-up included; both runners of the same kind). The reference is probed and sized once, like the
    candidate; ``ref_centres`` keeps the reference's centre before each timed round; ``clock`` leaves out the
    time spent on the reference, so the caps (``warmup_max_s``, ``max_time_s``) count the candidate's time."""

    def __init__(self, candidate: RoundRunner, reference: RoundRunner, settings: ProtocolSettings,
                 clock: Callable[[], float] = time.monotonic):
        self.candidate, self.reference, self.settings = candidate, reference, settings
        self.aggregate = candidate.aggregate
        self.ref_centres: list[float] = []
        self.ref_s = 0.0
        self._runs: int | None = None
        self._clock = clock

    def clock(self) -> float:
        return self._clock() - self.ref_s

    def round(self, runs: int, warmup: bool) -> Round:
        if self._runs is None:
            probe = self.reference.round(probe_runs(self.settings, self.aggregate), True)
            self._runs = round_runs(probe.centre, self.settings, self.aggregate)
        t0 = self._clock()
        ref = self.reference.round(self._runs, warmup)
        self.ref_s += self._clock() - t0
        if not warmup:
            self.ref_centres.append(ref.centre)
        return self.candidate.round(runs, warmup)


@dataclass
class ProtocolResult:
    stats: LatencyStats
    first_inference_ms: float | None
    warmup_runs: int
    warmup_stable: bool
    rounds: int
    converged: bool
    timed_s: float
    times: list[float] = field(repr=False, default_factory=list)  # the pooled samples (see Round.samples)
    round_ci_rel: float | None = None
    round_medians: list[float] = field(repr=False, default_factory=list)
    warmup_rounds: int = 0  # the probe not counted
    probe: Round | None = field(repr=False, default=None)
    timed_rounds: list[Round] = field(repr=False, default_factory=list)

    def estimate(self, settings: "ProtocolSettings") -> float:
        return ESTIMATORS[settings.estimator](np.asarray(self.times), np.asarray(self.round_medians))

    @property
    def n_runs(self) -> int:
        """Timed inferences (a round that is one sample still counts all its runs)."""
        return sum(r.runs for r in self.timed_rounds) if self.timed_rounds else self.stats.n_runs

    @property
    def unstable(self) -> bool:
        return not (self.converged and self.warmup_stable)

    def report(self, settings: ProtocolSettings) -> dict:
        """What goes into a measurement's fingerprint['protocol']."""
        reasons = []
        if not self.warmup_stable:
            reasons.append("warm-up did not settle")
        if not self.converged:
            worst = max(self.stats.ci_rel, self.round_ci_rel or 0.0)
            reasons.append(f"CI of the median +-{worst:.1%} > +-{settings.rel_ci:.0%} at the cap")
        return {"rel_ci_target": settings.rel_ci, "ci_rel": round(self.stats.ci_rel, 5),
                "round_ci_rel": None if self.round_ci_rel is None else round(self.round_ci_rel, 5),
                "ci_low_ms": self.stats.ci_low_ms, "ci_high_ms": self.stats.ci_high_ms,
                "warmup_runs": self.warmup_runs, "warmup_rounds": self.warmup_rounds, "rounds": self.rounds,
                "timed_s": round(self.timed_s, 3),
                "max_time_s": settings.max_time_s, "unstable_reason": "; ".join(reasons) or None,
                "estimator": settings.estimator, "estimates": estimates(self.times, self.round_medians)}


def _warm_up(runner: RoundRunner, s: ProtocolSettings, batch: int, clock: Callable[[], float]) -> tuple[list[Round], bool]:
    """Warm-up rounds until the centres of two consecutive ones agree within ``warmup_tol`` (stable) or
    ``warmup_max_s`` has passed (not stable)."""
    chunk = max(s.warmup_min_runs, batch)
    rounds: list[Round] = []
    prev = None
    t0 = clock()
    while True:
        w = runner.round(chunk, True)
        rounds.append(w)
        m = w.centre
        if prev is not None and abs(m - prev) <= s.warmup_tol * prev:
            return rounds, True
        prev = m
        if clock() - t0 >= s.warmup_max_s:
            return rounds, False


def _timed(runner: RoundRunner, s: ProtocolSettings, batch: int, clock: Callable[[], float]):
    """Timed rounds until the CI of the median, over the pooled samples and over the rounds' centres, is within
    ``rel_ci`` with at least ``min_runs`` runs and ``min_rounds`` rounds, or a cap is hit.
    Returns (rounds, samples, centres, converged, round_ci, timed_s)."""
    rounds: list[Round] = []
    samples: list[float] = []
    medians: list[float] = []
    converged, round_ci = False, None
    t0 = clock()
    while True:
        r = runner.round(batch, False)
        rounds.append(r)
        samples.extend(r.samples)
        medians.append(r.centre)
        if sum(x.runs for x in rounds) >= s.min_runs and len(rounds) >= s.min_rounds:
            st = summarize(samples)
            # the pooled CI sees only fast noise; the CI over round medians also sees drifts between rounds
            # (other load, clock changes), so both must be within the target
            lo, hi = median_ci(sorted(medians))
            mm = float(np.median(medians))
            round_ci = (hi - lo) / 2 / mm if len(rounds) >= 3 and mm > 0 else 0.0
            if st.ci_rel <= s.rel_ci and round_ci <= s.rel_ci:
                converged = True
                break
        if len(rounds) >= s.max_rounds or clock() - t0 >= s.max_time_s:
            break
    return rounds, samples, medians, converged, round_ci, clock() - t0


def run_rounds(runner: RoundRunner, settings: ProtocolSettings | None = None, first_inference_ms: float | None = None,
               clock: Callable[[], float] = time.monotonic,
               on_timed_start: Callable[[], None] | None = None) -> ProtocolResult:
    """Apply the protocol to a runner's rounds: probe, warm-up until stable, timed rounds until the CI target.

    ``on_timed_start`` is called right before the timed rounds (energy meters start there)."""
    s = settings or ProtocolSettings()
    probe = runner.round(probe_runs(s, runner.aggregate), True)
    batch = round_runs(probe.centre, s, runner.aggregate)
    warm, stable = _warm_up(runner, s, batch, clock)
    if on_timed_start is not None:
        on_timed_start()
    rounds, samples, medians, converged, round_ci, timed_s = _timed(runner, s, batch, clock)
    return ProtocolResult(summarize(samples), first_inference_ms, probe.runs + sum(w.runs for w in warm), stable,
                          len(rounds), converged, timed_s, samples, round_ci, medians, len(warm), probe, rounds)


def run_protocol(sample: Callable[[int], list[float]], settings: ProtocolSettings | None = None,
                 first_inference_ms: float | None = None, clock: Callable[[], float] = time.monotonic,
                 on_timed_start: Callable[[], None] | None = None) -> ProtocolResult:
    """``run_rounds`` over ``sample(n) -> n latencies in ms`` (e.g. ``ModelWorker.time``)."""
    return run_rounds(SampledRounds(sample), settings, first_inference_ms, clock, on_timed_start)


def interleaved_reference(ref_round_medians: list[float], cand_round_medians: list[float]) -> dict:
    """Drift compensation from ABAB rounds: the candidate's round medians over the reference's round medians
    taken right before each of them. The median of those ratios times the reference's long-run median
    (``measure.campaign``) is the drift-corrected latency."""
    pairs = [(c, r) for c, r in zip(cand_round_medians, ref_round_medians) if r > 0]
    if not pairs:
        raise HwnasError("no reference rounds to normalise by")
    ratios = np.array([c / r for c, r in pairs])
    return {"median_ms": float(np.median([r for _, r in pairs])), "ratio": float(np.median(ratios)),
            "rounds": len(pairs), "ratio_iqr": float(np.subtract(*np.percentile(ratios, [75, 25])))}


# -- what a runner returns -------------------------------------------------------------------------------
@dataclass
class RunResult:
    """One model measured by a runner (before it is tied to an arch and stored)."""

    latency_ms: float
    latency_p90_ms: float | None
    latency_iqr_ms: float | None
    latency_cv: float | None
    n_runs: int
    first_inference_ms: float | None
    unstable: bool
    runtime: str
    runtime_version: str
    threads: int
    delegate: str | None
    energy_mj: float | None = None
    energy_source: str | None = None
    peak_power_w: float | None = None
    peak_power_source: str | None = None
    fingerprint: dict = field(default_factory=dict)
    op_profile: list[dict] | None = None
    protocol: dict = field(default_factory=dict)
    # drift compensation (a reference model timed in rounds interleaved with this one's, ABAB):
    # {"median_ms": the reference's median here, "ratio": median of per-round candidate/reference ratios, ...}
    reference: dict | None = None
    thermal: dict | None = None  # temperatures before / after, cooldown, throttled flag

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunResult":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})


def host_fingerprint() -> dict:
    """Who measured: host name, CPU model, cores, OS, Python, hwnas version."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from .. import __version__

    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = None
    return {"host": platform.node(), "machine": platform.machine(), "cpu": cpu, "cores": os.cpu_count(),
            "usable_cores": len(affinity) if affinity else None, "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "hwnas": __version__}


# -- errors a runner raises --------------------------------------------------------------------------
class DeviceUnreachable(HwnasError):
    """The device cannot be reached (no adb device, agent not answering): stop the run."""


class MeasurementFailed(HwnasError):
    """Some archs could not be measured (conversion failed, the model crashed); the others were stored."""


__all__ = ["ProtocolSettings", "ESTIMATORS", "estimates", "interleaved_reference", "LatencyStats", "ProtocolResult", "RunResult", "run_protocol", "summarize",
           "median_ci", "DeviceUnreachable", "MeasurementFailed", "host_fingerprint", "Round", "RoundRunner",
           "SampledRounds", "Interleaved", "run_rounds", "round_runs", "probe_runs", "AGGREGATE_ROUND_SCALE"]
