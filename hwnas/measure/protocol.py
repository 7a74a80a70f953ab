"""The measurement protocol: settings, statistics, what a runner returns, who measured (a leaf module:
errors, numpy and the standard library only; the loop that exports, runs and stores is ``measure.campaign``).

Protocol (``run_protocol``; parameters in ``ProtocolSettings``):

1. The first inference after loading is recorded apart (it includes lazy initialisation).
2. A short probe sizes a *round* to about ``round_ms`` of work.
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
from typing import Callable, Sequence

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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def quick(cls) -> "ProtocolSettings":
        """Short caps for tests and smoke runs (same rules, smaller budgets)."""
        return cls(min_runs=10, min_rounds=3, round_ms=20.0, max_time_s=1.0, warmup_max_s=0.3, max_rounds=30)


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


@dataclass
class ProtocolResult:
    stats: LatencyStats
    first_inference_ms: float | None
    warmup_runs: int
    warmup_stable: bool
    rounds: int
    converged: bool
    timed_s: float
    times: list[float] = field(repr=False, default_factory=list)
    round_ci_rel: float | None = None
    round_medians: list[float] = field(repr=False, default_factory=list)

    def estimate(self, settings: "ProtocolSettings") -> float:
        return ESTIMATORS[settings.estimator](np.asarray(self.times), np.asarray(self.round_medians))

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
                "warmup_runs": self.warmup_runs, "rounds": self.rounds, "timed_s": round(self.timed_s, 3),
                "max_time_s": settings.max_time_s, "unstable_reason": "; ".join(reasons) or None,
                "estimator": settings.estimator, "estimates": estimates(self.times, self.round_medians)}


def run_protocol(sample: Callable[[int], list[float]], settings: ProtocolSettings | None = None,
                 first_inference_ms: float | None = None, clock: Callable[[], float] = time.monotonic,
                 on_timed_start: Callable[[], None] | None = None) -> ProtocolResult:
    """Apply the protocol to ``sample(n) -> n latencies in ms`` (e.g. ``ModelWorker.time``).

    ``on_timed_start`` is called right before the timed rounds (energy meters start there).
    """
    s = settings or ProtocolSettings()
    probe = sample(3)
    est = max(float(np.median(probe)), 1e-3)
    batch = int(min(max(round(s.round_ms / est), 1), s.max_round_runs))

    # warm-up until two consecutive chunks agree
    chunk = max(s.warmup_min_runs, batch)
    prev = None
    warm_runs, stable = len(probe), False
    t0 = clock()
    while True:
        w = sample(chunk)
        warm_runs += len(w)
        m = float(np.median(w))
        if prev is not None and abs(m - prev) <= s.warmup_tol * prev:
            stable = True
            break
        prev = m
        if clock() - t0 >= s.warmup_max_s:
            break

    if on_timed_start is not None:
        on_timed_start()
    times: list[float] = []
    medians: list[float] = []
    rounds, converged, round_ci = 0, False, None
    t0 = clock()
    while True:
        chunk = sample(batch)
        times.extend(chunk)
        medians.append(float(np.median(chunk)))
        rounds += 1
        if len(times) >= s.min_runs and rounds >= s.min_rounds:
            st = summarize(times)
            # the pooled CI sees only fast noise; the CI over round medians also sees drifts between rounds
            # (other load, clock changes), so both must be within the target
            lo, hi = median_ci(sorted(medians))
            mm = float(np.median(medians))
            round_ci = (hi - lo) / 2 / mm if rounds >= 3 and mm > 0 else 0.0
            if st.ci_rel <= s.rel_ci and round_ci <= s.rel_ci:
                converged = True
                break
        if rounds >= s.max_rounds or clock() - t0 >= s.max_time_s:
            break
    timed_s = clock() - t0
    return ProtocolResult(summarize(times), first_inference_ms, warm_runs, stable, rounds, converged, timed_s,
                          times, round_ci, medians)


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
           "median_ci", "DeviceUnreachable", "MeasurementFailed", "host_fingerprint"]
