"""Statistics of the CI gate, all on the log scale so effects are ratios (candidate / baseline).

* paired (same job, ``--against``): ``d_r = log(cand_r) - log(base_r)`` per round; the estimate is the
  one-sample Hodges-Lehmann estimator (median of the Walsh averages of ``d``), i.e. the ratio of medians
  ``exp(HL)``. Rounds are resampled with replacement (seeded bootstrap) for a percentile 95% CI and for
  one-sided bootstrap p-values against the threshold ``log(1 + delta)``; these are combined
  conservatively with the exact signed-rank interval / test of the same estimator (wider CI, larger p).
* unpaired (stored ``--baseline``): the two-sample Hodges-Lehmann shift (median of all pairwise
  differences of the round medians), with a stratified bootstrap and the Mann-Whitney interval / test.

Verdict per model: FAIL if the (Holm-adjusted across models) one-sided p-value of "ratio <= 1 + delta" is
below alpha/2 -- for a single model exactly "the lower bound of the 95% CI exceeds 1 + delta" -- *and* the
estimated absolute slowdown exceeds the *noise floor* (what this measurement can resolve: the A/A spread of
the baseline's own rounds, and the timer resolution; see :func:`noise_floor`). A slowdown whose CI is above
``1 + delta`` never passes silently: under an explicit user ``floor_ms`` it gets its own verdict
UNDER_FLOOR (exit 0, but named in every report); under the noise floor it is INCONCLUSIVE. PASS if the
upper bound is below ``1 + delta``; otherwise INCONCLUSIVE. Fewer than ``min_rounds`` rounds never give a
PASS or FAIL.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from ..errors import ParameterError

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
UNDER_FLOOR = "under_floor"  # a real slowdown (CI above 1 + delta) under the user's explicit --floor-ms: exit 0
# the clock the workers time inferences with (time.perf_counter_ns): one tick, in ms
TIMER_RESOLUTION_MS = time.get_clock_info("perf_counter").resolution * 1e3


def _chunks(n_boot: int, width: int, cells: int = 2_000_000):
    step = max(1, cells // max(1, width))
    for start in range(0, n_boot, step):
        yield start, min(n_boot, start + step)


def _walsh_index(n: int):
    return np.triu_indices(n)


def hl_one_sample(d: np.ndarray) -> float:
    """One-sample Hodges-Lehmann estimator: the median of the Walsh averages (d_i + d_j) / 2, i <= j."""
    d = np.asarray(d, dtype=float)
    i, j = _walsh_index(len(d))
    return float(np.median((d[i] + d[j]) / 2.0))


def hl_two_sample(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sample Hodges-Lehmann shift of ``y`` over ``x``: the median of all differences y_j - x_i."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return float(np.median(y[None, :] - x[:, None]))


def bootstrap_hl(base: Sequence[float], cand: Sequence[float], rng: np.random.Generator, paired: bool = True,
                 n_boot: int = 4000) -> tuple[float, np.ndarray]:
    """HL estimate of ``log(cand / base)`` and ``n_boot`` bootstrap replicates of it.

    Paired: ``base[r]`` and ``cand[r]`` come from the same round; rounds are resampled together.
    Unpaired: each group is resampled on its own (stratified bootstrap).
    """
    lb, lc = np.log(np.asarray(base, dtype=float)), np.log(np.asarray(cand, dtype=float))
    if paired:
        if len(lb) != len(lc):
            raise ValueError("paired samples need equal lengths")
        d = lc - lb
        n = len(d)
        est = hl_one_sample(d)
        i, j = _walsh_index(n)
        boot = np.empty(n_boot)
        for a, b in _chunks(n_boot, len(i)):
            D = d[rng.integers(0, n, size=(b - a, n))]
            boot[a:b] = np.median((D[:, i] + D[:, j]) / 2.0, axis=1)
        return est, boot
    est = hl_two_sample(lb, lc)
    nb, nc = len(lb), len(lc)
    boot = np.empty(n_boot)
    for a, b in _chunks(n_boot, nb * nc):
        X = lb[rng.integers(0, nb, size=(b - a, nb))]
        Y = lc[rng.integers(0, nc, size=(b - a, nc))]
        boot[a:b] = np.median((Y[:, None, :] - X[:, :, None]).reshape(b - a, -1), axis=1)
    return est, boot


def signed_rank_null(n: int) -> np.ndarray:
    """Exact null distribution of the Wilcoxon signed-rank statistic T+ for n values: P(T+ = t), t = 0..N."""
    dist = np.zeros(n * (n + 1) // 2 + 1)
    dist[0] = 1.0
    for k in range(1, n + 1):
        shifted = np.zeros_like(dist)
        shifted[k:] = dist[:-k]
        dist = 0.5 * (dist + shifted)
    return dist


def rank_interval(base_log: np.ndarray, cand_log: np.ndarray, paired: bool, level: float) -> tuple[float, float]:
    """Distribution-free CI of the HL shift: order statistics of the Walsh averages (exact signed-rank
    critical value) or of the pairwise differences (Mann-Whitney, normal approximation). Too few rounds
    for the level give an unbounded interval."""
    tail = (1.0 - level) / 2.0
    if paired:
        d = cand_log - base_log
        n = len(d)
        i, j = _walsh_index(n)
        w = np.sort((d[i] + d[j]) / 2.0)
        cdf = np.cumsum(signed_rank_null(n))
        c = int(np.searchsorted(cdf, tail, side="right"))  # number of t with P(T+ <= t) <= tail
        if c == 0:
            return -math.inf, math.inf
        return float(w[c - 1]), float(w[len(w) - c])
    nb, nc = len(base_log), len(cand_log)
    diffs = np.sort((cand_log[None, :] - base_log[:, None]).ravel())
    from statistics import NormalDist

    z = NormalDist().inv_cdf(1.0 - tail)
    c = int(math.floor(nb * nc / 2.0 - z * math.sqrt(nb * nc * (nb + nc + 1) / 12.0)))
    if c < 1:
        return -math.inf, math.inf
    return float(diffs[c - 1]), float(diffs[len(diffs) - c])


def rank_p_values(base_log: np.ndarray, cand_log: np.ndarray, thr: float, paired: bool) -> tuple[float, float]:
    """One-sided p-values of H0 "shift <= thr" and H0 "shift >= thr" (signed-rank exact / Mann-Whitney approx)."""
    if paired:
        d = cand_log - base_log - thr
        n = len(d)
        ranks = np.argsort(np.argsort(np.abs(d))) + 1  # continuous data: ties have probability zero
        t_plus = int(ranks[d > 0].sum())
        dist = signed_rank_null(n)
        return float(dist[t_plus:].sum()), float(dist[: t_plus + 1].sum())
    from statistics import NormalDist

    nb, nc = len(base_log), len(cand_log)
    u = float(np.sum((cand_log[None, :] - thr) > base_log[:, None]))
    mean, sd = nb * nc / 2.0, math.sqrt(nb * nc * (nb + nc + 1) / 12.0)
    nd = NormalDist()
    return 1.0 - nd.cdf((u - 0.5 - mean) / sd), nd.cdf((u + 0.5 - mean) / sd)


def aa_spread(base: Sequence[float]) -> tuple[float, int]:
    """The A/A spread of one arm's own rounds: a robust SD of ``log x[2i+1] - log x[2i]``, and the pair count.

    Consecutive rounds form an ABBA pair (AB,BA or BA,AB), so the two baseline blocks of a pair are at most
    two blocks apart -- an A/A comparison under the same load as the A/B one, whose per-round difference
    ``d_r`` is also the log ratio of two nearby blocks. Robust SD = 1.4826 x median |difference| (an A/A
    difference is centred on 0); 0 when there are fewer than two pairs.
    """
    x = np.log(np.asarray(base, dtype=float))
    n_pairs = len(x) // 2
    if n_pairs < 2:
        return 0.0, n_pairs
    s = x[1: 2 * n_pairs: 2] - x[0: 2 * n_pairs: 2]
    return float(1.4826 * np.median(np.abs(s))), n_pairs


def noise_floor(base: Sequence[float], n_rounds: int, level: float = 0.95,
                timer_resolution_ms: float = TIMER_RESOLUTION_MS) -> dict:
    """The smallest absolute slowdown this measurement can resolve, in ms, and what it is made of.

    * ``aa_ms``: the half-width of the CI an A/A comparison of ``n_rounds`` rounds would have, given the A/A
      spread of the baseline's own rounds (:func:`aa_spread`): ``z * sd / sqrt(n_rounds)`` on the log scale,
      converted with the baseline median. It shrinks as rounds are added, like the A/B interval does.
    * ``timer_ms``: one tick of the clock that timed the inferences (block medians are multiples of it, so a
      difference under one tick is not measured at all -- coarse timers on boards make this term matter).

    The floor is the larger of the two. It replaces a fixed constant: a 0.2 ms edge model with a 5%
    regression (+0.01 ms) on a quiet timer is resolved, and flagged, if its A/A spread allows it.
    """
    from statistics import NormalDist

    sd, pairs = aa_spread(base)
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    base_ms = float(np.median(np.asarray(base, dtype=float)))
    aa_ms = base_ms * math.expm1(z * sd / math.sqrt(max(1, n_rounds)))
    return {"floor_ms": max(aa_ms, timer_resolution_ms), "aa_ms": aa_ms, "aa_sd_log": sd, "aa_pairs": pairs,
            "timer_ms": timer_resolution_ms}


@dataclass
class RatioEstimate:
    """The comparison of one model's baseline and candidate rounds (ratios are candidate / baseline).

    The CI and p-values are the *conservative* combination of a seeded percentile bootstrap and the
    distribution-free rank interval / test (the wider interval, the larger p-value): at few rounds the
    bootstrap alone is too narrow, and CI load bursts make that matter.
    """

    n_rounds: int
    paired: bool
    ratio: float  # exp(HL estimate of the log ratio)
    ci_low: float
    ci_high: float
    p_regression: float  # one-sided p-value of H0 "ratio <= 1 + delta" (small: a regression)
    p_within: float  # one-sided p-value of H0 "ratio >= 1 + delta" (small: within delta)
    baseline_ms: float  # median of the baseline round medians
    candidate_ms: float
    slowdown_ms: float  # (ratio - 1) * baseline_ms: the estimated absolute slowdown
    ci_bootstrap: tuple = (0.0, 0.0)
    ci_rank: tuple = (0.0, 0.0)
    noise_floor: dict = field(default_factory=dict)  # noise_floor(): floor_ms, aa_ms, aa_sd_log, aa_pairs, timer_ms
    boot_log_ratio: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("boot_log_ratio")
        d["ci_bootstrap"], d["ci_rank"] = list(self.ci_bootstrap), [x if math.isfinite(x) else None for x in self.ci_rank]
        return d


def compare_rounds(base: Sequence[float], cand: Sequence[float], delta: float = 0.05, paired: bool = True,
                   rng: np.random.Generator | None = None, n_boot: int = 4000, level: float = 0.95,
                   timer_resolution_ms: float = TIMER_RESOLUTION_MS) -> RatioEstimate:
    """Hodges-Lehmann ratio of medians with a seeded bootstrap + rank CI, threshold p-values and the noise
    floor of the baseline's rounds (``base`` in the order measured)."""
    base, cand = np.asarray(base, dtype=float), np.asarray(cand, dtype=float)
    if len(base) == 0 or len(cand) == 0:
        raise ValueError("need at least one round on each side")
    if np.any(base <= 0) or np.any(cand <= 0):
        raise ValueError("latencies must be positive")
    rng = rng if rng is not None else np.random.default_rng(0)
    est, boot = bootstrap_hl(base, cand, rng, paired=paired, n_boot=n_boot)
    thr = math.log1p(delta)
    tail = (1.0 - level) / 2.0
    b_lo, b_hi = (float(x) for x in np.quantile(boot, [tail, 1.0 - tail]))
    lb, lc = np.log(base), np.log(cand)
    r_lo, r_hi = rank_interval(lb, lc, paired, level)
    rp_reg, rp_within = rank_p_values(lb, lc, thr, paired)
    p_reg = max((1.0 + np.count_nonzero(boot <= thr)) / (n_boot + 1.0), rp_reg)
    p_within = max((1.0 + np.count_nonzero(boot >= thr)) / (n_boot + 1.0), rp_within)
    lo, hi = min(b_lo, r_lo), max(b_hi, r_hi)
    ratio = math.exp(est)
    base_ms = float(np.median(base))

    def ex(x):
        return math.exp(x) if math.isfinite(x) else (0.0 if x < 0 else math.inf)

    return RatioEstimate(n_rounds=int(min(len(base), len(cand))), paired=paired, ratio=ratio,
                         ci_low=ex(lo), ci_high=ex(hi), p_regression=float(p_reg),
                         p_within=float(p_within), baseline_ms=base_ms, candidate_ms=float(np.median(cand)),
                         slowdown_ms=(ratio - 1.0) * base_ms, ci_bootstrap=(ex(b_lo), ex(b_hi)),
                         ci_rank=(ex(r_lo), ex(r_hi)),
                         noise_floor=noise_floor(base, int(min(len(base), len(cand))), level, timer_resolution_ms),
                         boot_log_ratio=boot)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values (monotone, capped at 1)."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    adj = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        adj[idx] = running
    return adj


@dataclass(frozen=True)
class Thresholds:
    delta: float = 0.05  # a slowdown up to 5 % is tolerated
    # an explicit absolute floor: a real slowdown under it is UNDER_FLOOR (exit 0, reported as such). None:
    # only the measurement's own noise floor (A/A spread, timer resolution) applies
    floor_ms: float | None = None
    alpha: float = 0.05  # two-sided level of the CI (one-sided alpha/2 per decision)
    min_rounds: int = 12

    def __post_init__(self) -> None:
        if not 0 <= self.delta < 10:
            raise ParameterError("delta", f"{self.delta}: expected a fraction such as 0.05")
        if self.floor_ms is not None and self.floor_ms < 0:
            raise ParameterError("floor_ms", f"{self.floor_ms}: must be >= 0")
        if not 0 < self.alpha < 1:
            raise ParameterError("alpha", f"{self.alpha}: must be between 0 and 1")
        if self.min_rounds < 2:
            raise ParameterError("min_rounds", f"{self.min_rounds}: must be >= 2")


def decide(stats: RatioEstimate, th: Thresholds, p_regression_adjusted: float | None = None) -> tuple[str, str]:
    """PASS / FAIL / INCONCLUSIVE for one model, with the reason in words."""
    p_reg = stats.p_regression if p_regression_adjusted is None else p_regression_adjusted
    limit = 1.0 + th.delta
    ci = f"ratio {stats.ratio:.3f} [{stats.ci_low:.3f}, {stats.ci_high:.3f}]"
    if stats.n_rounds < th.min_rounds:
        return INCONCLUSIVE, f"too few rounds ({stats.n_rounds} < {th.min_rounds}); {ci}"
    if p_reg < th.alpha / 2:  # the CI is entirely above 1 + delta: never a silent pass
        nf = stats.noise_floor or {}
        if th.floor_ms is not None and stats.slowdown_ms <= th.floor_ms:
            return UNDER_FLOOR, (f"slower ({ci}, lower bound > {limit:.3f}) by {stats.slowdown_ms:+.4f} ms, under "
                                 f"the explicit {th.floor_ms:g} ms floor")
        if stats.slowdown_ms <= nf.get("floor_ms", 0.0):
            return INCONCLUSIVE, (f"slower ({ci}) by {stats.slowdown_ms:+.4f} ms, but that is within what this "
                                  f"measurement resolves ({_floor_text(nf)})")
        return FAIL, (f"{(stats.ratio - 1) * 100:+.1f}% (+{stats.slowdown_ms:.4f} ms): {ci}, "
                      f"lower bound > {limit:.3f}")
    if stats.p_within < th.alpha / 2:
        return PASS, f"{ci}, upper bound < {limit:.3f}"
    if stats.p_regression < th.alpha / 2:  # significant alone, not after Holm across the models
        return INCONCLUSIVE, f"{ci}: a regression for this model alone, not after Holm correction"
    return INCONCLUSIVE, f"{ci} straddles {limit:.3f}"


def _floor_text(nf: dict) -> str:
    return (f"noise floor {nf.get('floor_ms', 0.0):.4f} ms: A/A spread {nf.get('aa_ms', 0.0):.4f} ms, "
            f"timer {nf.get('timer_ms', 0.0):.2g} ms")


def suite_geomean(stats: Sequence[RatioEstimate], level: float = 0.95) -> dict | None:
    """Geometric mean of the models' ratios with a bootstrap CI (replicates combined index by index)."""
    stats = [s for s in stats if s is not None and len(s.boot_log_ratio)]
    if not stats:
        return None
    n = min(len(s.boot_log_ratio) for s in stats)
    boot = np.mean([s.boot_log_ratio[:n] for s in stats], axis=0)
    tail = (1 - level) / 2
    lo, hi = np.quantile(boot, [tail, 1 - tail])
    est = float(np.mean([math.log(s.ratio) for s in stats]))
    return {"models": len(stats), "ratio": math.exp(est), "ci_low": float(math.exp(lo)), "ci_high": float(math.exp(hi)),
            "boot_log_ratio": boot}




def suite_verdict(estimates: Sequence[RatioEstimate], th: Thresholds) -> dict | None:
    """The geometric mean of two or more models' ratios, its CI and its verdict (JSON-ready); None below two."""
    if len(estimates) < 2:
        return None
    g = suite_geomean(estimates, level=1 - th.alpha)
    limit = 1 + th.delta
    text = f"suite geometric mean {g['ratio']:.3f} [{g['ci_low']:.3f}, {g['ci_high']:.3f}]"
    if g["ci_low"] > limit:
        verdict, reason = FAIL, f"{text} > {limit:.3f}"
    elif g["ci_high"] < limit:
        verdict, reason = PASS, f"{text} < {limit:.3f}"
    else:
        verdict, reason = INCONCLUSIVE, text
    suite = {k: v for k, v in g.items() if k != "boot_log_ratio"}
    suite.update(verdict=verdict, reason=reason)
    return suite
