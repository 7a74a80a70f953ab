"""CI latency regression checks that don't cry wolf (``hwnas ci-check``): statistics, measurement, reports.

Measurement: the baseline (A) and candidate (B) models live in two long-lived worker processes
(:class:`hwnas.measure.runners.worker.ModelWorker`). They are measured in *rounds*; a round is one block of A and
one block of B back to back, and consecutive rounds come in randomised ABBA pairs (AB,BA or BA,AB, chosen
by a seeded generator) so that a slow drift of the machine's load hits both models alike. Each block runs
a few discarded warm-up inferences and then ``k`` timed inferences; the block's median is the round's
value. The first inference after loading is recorded apart and never mixed into the rounds.

Statistics (all on the log scale, so effects are ratios):

* paired (same job, ``--against``): ``d_r = log(cand_r) - log(base_r)`` per round; the estimate is the
  one-sample Hodges-Lehmann estimator (median of the Walsh averages of ``d``), i.e. the ratio of medians
  ``exp(HL)``. Rounds are resampled with replacement (seeded bootstrap) for a percentile 95% CI and for
  one-sided bootstrap p-values against the threshold ``log(1 + delta)``; these are combined
  conservatively with the exact signed-rank interval / test of the same estimator (wider CI, larger p).
* unpaired (stored ``--baseline``): the two-sample Hodges-Lehmann shift (median of all pairwise
  differences of the round medians), with a stratified bootstrap and the Mann-Whitney interval / test.

Verdict per model: FAIL if the (Holm-adjusted across models) one-sided p-value of "ratio <= 1 + delta" is
below alpha/2 -- for a single model exactly "the lower bound of the 95% CI exceeds 1 + delta" -- *and* the
estimated absolute slowdown exceeds ``floor_ms``; PASS if the upper bound is below ``1 + delta`` (or the
slowdown is real but under the floor); otherwise more rounds are measured until the time budget is spent,
then INCONCLUSIVE. Fewer than ``min_rounds`` rounds never give a PASS or FAIL.

Deterministic gates (exact, counted from the model files themselves): MACs, parameters, file size in
bytes and operator count, read from the ONNX graph or the TFLite flatbuffer (through LiteRT's interpreter).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .errors import HwnasError
from .io import now_iso, sha256_file
from .spaces import parse_arch_table

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
INCONCLUSIVE_POLICIES = ("exit3", "pass", "fail")
GATES = ("macs", "params", "size_bytes", "op_count")
REPORT_FORMAT = "hwnas-ci-check/1"
BASELINE_FORMAT = "hwnas-ci-baseline/1"


# =====================================================================================================
# statistics
# =====================================================================================================
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


@dataclass
class LatencyStats:
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
    boot_log_ratio: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("boot_log_ratio")
        d["ci_bootstrap"], d["ci_rank"] = list(self.ci_bootstrap), [x if math.isfinite(x) else None for x in self.ci_rank]
        return d


def compare_rounds(base: Sequence[float], cand: Sequence[float], delta: float = 0.05, paired: bool = True,
                   rng: np.random.Generator | None = None, n_boot: int = 4000, level: float = 0.95) -> LatencyStats:
    """Hodges-Lehmann ratio of medians with a seeded bootstrap + rank CI and threshold p-values."""
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

    return LatencyStats(n_rounds=int(min(len(base), len(cand))), paired=paired, ratio=ratio,
                        ci_low=ex(lo), ci_high=ex(hi), p_regression=float(p_reg),
                        p_within=float(p_within), baseline_ms=base_ms, candidate_ms=float(np.median(cand)),
                        slowdown_ms=(ratio - 1.0) * base_ms, ci_bootstrap=(ex(b_lo), ex(b_hi)),
                        ci_rank=(ex(r_lo), ex(r_hi)), boot_log_ratio=boot)


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
    floor_ms: float = 0.05  # ... and so is any slowdown under 0.05 ms
    alpha: float = 0.05  # two-sided level of the CI (one-sided alpha/2 per decision)
    min_rounds: int = 12

    def __post_init__(self) -> None:
        if not 0 <= self.delta < 10:
            raise HwnasError(f"--delta {self.delta}: expected a fraction such as 0.05")
        if self.floor_ms < 0:
            raise HwnasError(f"--floor-ms {self.floor_ms}: must be >= 0")
        if not 0 < self.alpha < 1:
            raise HwnasError(f"--alpha {self.alpha}: must be between 0 and 1")
        if self.min_rounds < 2:
            raise HwnasError(f"--min-rounds {self.min_rounds}: must be >= 2")


def decide(stats: LatencyStats, th: Thresholds, p_regression_adjusted: float | None = None) -> tuple[str, str]:
    """PASS / FAIL / INCONCLUSIVE for one model, with the reason in words."""
    p_reg = stats.p_regression if p_regression_adjusted is None else p_regression_adjusted
    limit = 1.0 + th.delta
    ci = f"ratio {stats.ratio:.3f} [{stats.ci_low:.3f}, {stats.ci_high:.3f}]"
    if stats.n_rounds < th.min_rounds:
        return INCONCLUSIVE, f"too few rounds ({stats.n_rounds} < {th.min_rounds}); {ci}"
    if p_reg < th.alpha / 2:
        if stats.slowdown_ms > th.floor_ms:
            return FAIL, (f"{(stats.ratio - 1) * 100:+.1f}% (+{stats.slowdown_ms:.3f} ms): {ci}, "
                          f"lower bound > {limit:.3f}")
        return PASS, (f"slower ({ci}) but only {stats.slowdown_ms:+.3f} ms, under the {th.floor_ms:g} ms floor")
    if stats.p_within < th.alpha / 2:
        return PASS, f"{ci}, upper bound < {limit:.3f}"
    if stats.p_regression < th.alpha / 2:  # significant alone, not after Holm across the models
        return INCONCLUSIVE, f"{ci}: a regression for this model alone, not after Holm correction"
    return INCONCLUSIVE, f"{ci} straddles {limit:.3f}"


def suite_geomean(stats: Sequence[LatencyStats], level: float = 0.95) -> dict | None:
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


# =====================================================================================================
# deterministic gates: counted from the model file
# =====================================================================================================
def _onnx_gates(path: Path) -> dict:
    import onnx
    from onnx import numpy_helper, shape_inference

    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise HwnasError(f"cannot read ONNX model {path}: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    try:
        model = shape_inference.infer_shapes(model)
    except Exception:
        pass
    g = model.graph
    inits = {t.name: tuple(t.dims) for t in g.initializer}
    params = sum(int(np.prod(d)) if d else 1 for d in inits.values())
    shapes: dict[str, tuple] = dict(inits)
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dims = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim)
        shapes[vi.name] = dims
    for node in g.node:  # Constant nodes hold weights too (some exporters)
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    arr = numpy_helper.to_array(a.t)
                    params += int(arr.size)
                    shapes[node.output[0]] = arr.shape
    macs = 0
    for node in g.node:
        out = shapes.get(node.output[0]) if node.output else None
        if node.op_type in ("Conv", "ConvInteger", "QLinearConv"):
            w = shapes.get(node.input[3] if node.op_type == "QLinearConv" else node.input[1])
            if out and w and len(w) >= 2:
                macs += int(np.prod(out)) * int(np.prod(w[1:]))
        elif node.op_type in ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul"):
            a = shapes.get(node.input[0])
            if out and a:
                k = a[-1]
                if node.op_type == "Gemm":
                    trans_a = next((at.i for at in node.attribute if at.name == "transA"), 0)
                    k = a[0] if trans_a else a[-1]
                macs += int(np.prod(out)) * int(k)
    ops: dict[str, int] = {}
    for node in g.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return {"macs": int(macs), "params": int(params), "size_bytes": path.stat().st_size,
            "op_count": len(g.node), "op_types": dict(sorted(ops.items()))}


def _tflite_gates(path: Path) -> dict:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover
        from tflite_runtime.interpreter import Interpreter  # type: ignore
    try:
        interp = Interpreter(model_path=str(path))
        ops = interp._get_ops_details()
        tensors = {t["index"]: t for t in interp.get_tensor_details()}
    except Exception as exc:
        raise HwnasError(f"cannot read TFLite model {path}: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    model_inputs = {d["index"] for d in interp.get_input_details()}
    produced = {int(o) for op in ops for o in op["outputs"]}
    consumed = {int(i) for op in ops for i in op["inputs"] if int(i) >= 0}
    const = consumed - produced - model_inputs
    params = sum(int(np.prod(tensors[i]["shape"])) if len(tensors[i]["shape"]) else 1 for i in const if i in tensors)

    def shape(i):
        return tuple(int(s) for s in tensors[int(i)]["shape"]) if int(i) in tensors else ()

    macs = 0
    types: dict[str, int] = {}
    for op in ops:
        name = op["op_name"]
        types[name] = types.get(name, 0) + 1
        out = shape(op["outputs"][0]) if len(op["outputs"]) else ()
        if not out:
            continue
        if name == "CONV_2D":
            w = shape(op["inputs"][1])  # [O, H, W, I]
            macs += int(np.prod(out)) * int(np.prod(w[1:]))
        elif name == "DEPTHWISE_CONV_2D":
            w = shape(op["inputs"][1])  # [1, H, W, O]
            macs += int(np.prod(out)) * int(w[1] * w[2])
        elif name == "FULLY_CONNECTED":
            w = shape(op["inputs"][1])  # [O, I]
            macs += int(np.prod(out)) * int(w[-1])
        elif name == "BATCH_MATMUL":
            a = shape(op["inputs"][0])
            macs += int(np.prod(out)) * int(a[-1])
    return {"macs": int(macs), "params": int(params), "size_bytes": path.stat().st_size,
            "op_count": len(ops), "op_types": dict(sorted(types.items()))}


def model_gates(path: Path) -> dict:
    """Exact, machine-independent facts of a model file: MACs, params, size in bytes, operator count."""
    path = Path(path)
    if path.suffix == ".onnx":
        return _onnx_gates(path)
    if path.suffix == ".tflite":
        return _tflite_gates(path)
    raise HwnasError(f"cannot count the ops of {path}: expected a .onnx or .tflite file")


def compare_gates(base: dict | None, cand: dict, which: Sequence[str] = GATES) -> dict[str, dict]:
    """Exact comparison; growth fails, equality or shrinkage passes."""
    out = {}
    for g in which:
        c = cand.get(g)
        b = None if base is None else base.get(g)
        if b is None:
            out[g] = {"baseline": None, "candidate": c, "verdict": PASS, "reason": "no baseline value"}
        elif c > b:
            out[g] = {"baseline": b, "candidate": c, "verdict": FAIL,
                      "reason": f"{g} grew {b:,} -> {c:,} ({(c - b) / b * 100 if b else float('inf'):+.2f}%)"}
        else:
            out[g] = {"baseline": b, "candidate": c, "verdict": PASS,
                      "reason": "unchanged" if c == b else f"{g} shrank {b:,} -> {c:,}"}
    return out


# =====================================================================================================
# measurement: two long-lived workers, randomised ABBA rounds
# =====================================================================================================
@dataclass(frozen=True)
class MeasureSettings:
    budget_s: float = 60.0  # per model: rounds are added until a verdict or this much time has passed
    max_rounds: int = 200
    round_step: int = 4  # rounds added at a time after the first min_rounds (two ABBA pairs)
    target_block_ms: float = 25.0  # each block of timed inferences lasts about this long ...
    min_per_block: int = 5  # ... but has at least / at most this many inferences
    max_per_block: int = 200
    warmup_s: float = 0.2  # discarded inferences per worker after loading (after the first inference)
    block_warmup: int = 2  # discarded inferences at the start of every block
    baseline_rounds: int = 20  # rounds when only measuring (for --update-baseline without a comparison)
    n_boot: int = 4000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.budget_s <= 0:
            raise HwnasError(f"--budget-s {self.budget_s}: must be > 0")
        if self.max_rounds < 2:
            raise HwnasError(f"--max-rounds {self.max_rounds}: must be >= 2")
        if self.round_step < 2 or self.round_step % 2:
            raise HwnasError(f"round step {self.round_step}: must be an even number >= 2 (ABBA pairs)")


@dataclass(frozen=True)
class Device:
    """Where a check runs: a local device profile plus the facts that make stored baselines comparable."""

    name: str
    threads: int = 1
    delegate: str | None = None
    affinity: tuple[int, ...] | None = None
    runtime: str | None = None  # the profile's runtime; model files bring their own (by suffix)
    precision: str = "fp32"

    @classmethod
    def from_profile(cls, name_or_path, runtime: str | None = None) -> "Device":
        from .measure.device_profile import load_profile

        p = load_profile(name_or_path).with_runtime(runtime)
        if p.connection_type != "local":
            raise HwnasError(f"ci-check measures on this machine only; device {p.name!r} is reached over "
                             f"{p.connection_type} (run ci-check on the device itself, or use a local profile)")
        return cls(name=p.name, threads=p.threads, delegate=p.delegate,
                   affinity=tuple(p.affinity) if p.affinity else None, runtime=p.runtime, precision=p.precision)

    def delegate_for(self, runtime: str) -> str | None:
        return self.delegate if runtime == self.runtime else None

    @property
    def format(self) -> str:
        return {"onnxruntime": "onnx", "litert": "tflite"}.get(self.runtime or "onnxruntime", "onnx")


# the fingerprint keys that identify a machine (not its software: python / hwnas versions may change)
MACHINE_KEYS = ("host", "machine", "cpu", "cores", "usable_cores", "os")


def host_fingerprint() -> dict:
    """This machine's fingerprint (hwnas.measure.protocol.host_fingerprint: host, CPU model, cores, OS, ...)."""
    from .measure.protocol import host_fingerprint as fingerprint

    return fingerprint()


def fingerprint_mismatch(stored: dict, current: dict) -> list[str]:
    """What differs between two machines' fingerprints (only the keys in MACHINE_KEYS count)."""
    return [f"{k}: {stored.get(k)!r} != {current.get(k)!r}" for k in MACHINE_KEYS if stored.get(k) != current.get(k)]


def abba_orders(n_rounds: int, rng: np.random.Generator) -> list[str]:
    """Round orders in randomised ABBA pairs: each pair is (AB, BA) or (BA, AB), chosen by ``rng``."""
    out: list[str] = []
    while len(out) < n_rounds:
        out.extend(("AB", "BA") if rng.random() < 0.5 else ("BA", "AB"))
    return out[:n_rounds]


def _open_worker(path: Path, device: Device, seed: int):
    from .measure.runners.worker import ModelWorker
    from .runtimes import runtime_for

    runtime = runtime_for(path)
    return ModelWorker(path, runtime=runtime, threads=device.threads, delegate=device.delegate_for(runtime),
                       affinity=list(device.affinity) if device.affinity else None, seed=seed)


def _warm(worker, warmup_s: float) -> list[float]:
    out: list[float] = []
    t_end = time.perf_counter() + warmup_s
    while time.perf_counter() < t_end or len(out) < 3:
        out.extend(worker.time(3))
        if len(out) > 5000:
            break
    return out


def _per_block(est_ms: float, ms: MeasureSettings) -> int:
    return int(np.clip(round(ms.target_block_ms / max(est_ms, 1e-3)), ms.min_per_block, ms.max_per_block))


@dataclass
class PairResult:
    """What measuring one model produced: rounds of raw samples, first inferences, why it stopped."""

    rounds: list[dict]
    first_inference_ms: dict
    per_block: int
    stop: str
    seconds: float
    runtime: str = ""
    runtime_version: str = ""

    def medians(self, side: str) -> list[float]:
        return [r[f"{side}_median_ms"] for r in self.rounds if f"{side}_median_ms" in r]


def measure(candidate: Path, baseline: Path | None, device: Device, ms: MeasureSettings, rng: np.random.Generator,
            should_stop: Callable[[PairResult], bool] | None = None, check_from: int = 8,
            n_rounds: int | None = None, on_round: Callable[[int], None] | None = None) -> PairResult:
    """Measure ``candidate`` (and ``baseline`` when given, interleaved ABBA) in rounds.

    Stops when ``should_stop`` says so (checked after ``check_from`` rounds, then every ``round_step``), when
    ``n_rounds`` (if given) or ``max_rounds`` rounds are done, or when ``budget_s`` has passed.
    """
    t0 = time.perf_counter()
    workers = {}
    try:
        workers["B"] = _open_worker(candidate, device, seed=ms.seed)
        if baseline is not None:
            workers["A"] = _open_worker(baseline, device, seed=ms.seed)
        first = {("candidate" if k == "B" else "baseline"): w.first_inference_ms for k, w in workers.items()}
        warm = {k: _warm(w, ms.warmup_s) for k, w in workers.items()}
        est = max(float(np.median(v)) for v in warm.values())
        k = _per_block(est, ms)
        limit = n_rounds if n_rounds is not None else ms.max_rounds
        orders = abba_orders(limit, rng) if baseline is not None else ["B"] * limit
        info = workers["B"].info
        res = PairResult(rounds=[], first_inference_ms=first, per_block=k, stop="", seconds=0.0,
                         runtime=info.get("runtime", ""), runtime_version=str(info.get("version", "")))
        t_start = time.perf_counter()
        for r, order in enumerate(orders):
            rec: dict = {"order": order}
            for side in order:
                w = workers[side]
                if ms.block_warmup:
                    w.time(ms.block_warmup)
                samples = w.time(k)
                name = "candidate" if side == "B" else "baseline"
                rec[f"{name}_ms"] = samples
                rec[f"{name}_median_ms"] = float(np.median(samples))
            res.rounds.append(rec)
            if on_round:
                on_round(r + 1)
            done = r + 1
            if n_rounds is None and should_stop is not None and done >= check_from and \
                    (done - check_from) % ms.round_step == 0 and should_stop(res):
                res.stop = "verdict reached"
                break
            if time.perf_counter() - t_start > ms.budget_s and done % 2 == 0:
                res.stop = f"time budget ({ms.budget_s:g} s) spent"
                break
        else:
            res.stop = f"{len(orders)} rounds done"
        res.seconds = time.perf_counter() - t0
        return res
    finally:
        for w in workers.values():
            w.close()


# =====================================================================================================
# the check: gates + latency for every model, Holm across models, suite geometric mean
# =====================================================================================================
@dataclass
class ModelSpec:
    """One model to check: the candidate file and, when measured in the same job, the baseline file."""

    name: str
    candidate: Path
    baseline: Path | None = None
    candidate_label: str = ""
    baseline_label: str | None = None
    note: str = ""  # e.g. why there is no baseline


def noise_path() -> Path:
    from .paths import hwnas_home

    return hwnas_home() / "ci-check" / "noise.json"


def load_noise(path: Path | None = None) -> list[dict]:
    path = Path(path) if path else noise_path()
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise HwnasError(f"noise file {path} is unreadable ({exc}); delete it and run `hwnas ci-check calibrate`") from None
    return list(data.get("models", []))


def find_noise(entries: list[dict], device: str, sha256: str, name: str) -> dict | None:
    same_device = [e for e in entries if e.get("device") == device]
    for e in reversed(same_device):
        if e.get("sha256") == sha256:
            return e
    for e in reversed(same_device):
        if e.get("name") == name:
            return e
    return None


def _hwnas_version() -> str:
    try:
        from . import __version__

        return str(__version__)
    except ImportError:  # pragma: no cover
        return "unknown"


def load_baseline_file(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise HwnasError(f"baseline file {path} does not exist (write one with --update-baseline {path})")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise HwnasError(f"baseline file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT or not isinstance(data.get("models"), dict):
        raise HwnasError(f"baseline file {path} is not an hwnas ci-check baseline (format {BASELINE_FORMAT}); "
                         "write one with --update-baseline")
    return data


def _device_settings(device: Device) -> dict:
    return {"threads": device.threads, "delegate": device.delegate,
            "affinity": list(device.affinity) if device.affinity else None}


def run_check(specs: Sequence[ModelSpec], device: Device, th: Thresholds = Thresholds(),
              ms: MeasureSettings = MeasureSettings(), gates: Sequence[str] = GATES, stored: dict | None = None,
              noise: list[dict] | None = None, measure_all: bool = False, progress=None) -> dict:
    """Check every model; return the report (a JSON-ready dict, bootstrap replicates kept apart).

    ``stored``: a loaded ``--baseline`` file (used for models without a baseline file in ``specs``).
    ``measure_all``: also measure models that have nothing to compare against (for --update-baseline).
    ``progress``: an optional ``(model_index, model_name, rounds_done)`` callback.
    """
    from .runtimes import runtime_for, runtime_version

    if not specs:
        raise HwnasError("nothing to check: give model files, a directory, or arch strings with --space")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise HwnasError(f"two inputs share the name {dup[0]!r}; give distinct file names")
    for g in gates:
        if g not in GATES:
            raise HwnasError(f"unknown gate {g!r}; known: {', '.join(GATES)}")
    fingerprint = host_fingerprint()
    m_compared = sum(1 for s in specs if s.baseline is not None or (stored and s.name in stored["models"]))
    m_compared = max(1, m_compared)
    # the stopping checks (every few rounds) use fewer bootstrap replicates than the final verdict, but
    # enough to resolve the Bonferroni-level p-value alpha / (2 m)
    stop_boot = int(min(ms.n_boot, max(1000, math.ceil(4 * m_compared / (th.alpha / 2)))))
    rng = np.random.default_rng(ms.seed)
    machine_problem = None
    if stored is not None:
        problems = fingerprint_mismatch(stored.get("fingerprint", {}), fingerprint)
        if stored.get("device") != device.name:
            problems.insert(0, f"device: {stored.get('device')!r} != {device.name!r}")
        now_settings = _device_settings(device)
        for k, v in (stored.get("device_settings") or {}).items():
            if now_settings.get(k) != v:
                problems.append(f"{k}: {v!r} != {now_settings.get(k)!r}")
        machine_problem = "; ".join(problems) if problems else None
    models: list[dict] = []
    stats_list: list[LatencyStats | None] = []
    for idx, spec in enumerate(specs):
        cand_path = Path(spec.candidate)
        runtime = runtime_for(cand_path)
        cand_gates = model_gates(cand_path)
        sha = sha256_file(cand_path)
        entry: dict = {"name": spec.name, "candidate": spec.candidate_label or str(cand_path),
                       "baseline": spec.baseline_label if spec.baseline is not None else None,
                       "candidate_sha256": sha, "runtime": runtime, "runtime_version": runtime_version(runtime),
                       "notes": [spec.note] if spec.note else [], "gates": {}, "latency": None}
        stored_entry = stored["models"].get(spec.name) if stored is not None and spec.baseline is None else None
        base_gates = None
        if spec.baseline is not None:
            if runtime_for(spec.baseline) != runtime:
                raise HwnasError(f"{spec.name}: baseline {spec.baseline_label} and candidate use different runtimes")
            base_gates = model_gates(Path(spec.baseline))
            entry["baseline_sha256"] = sha256_file(Path(spec.baseline))
        elif stored_entry is not None:
            base_gates = stored_entry.get("gates")
            entry["baseline"] = f"stored: {stored.get('source', 'baseline file')}"
        if base_gates is not None or spec.baseline is not None:
            entry["gates"] = compare_gates(base_gates, cand_gates, gates)
        else:
            entry["gates"] = {g: {"baseline": None, "candidate": cand_gates[g], "verdict": "new",
                                  "reason": "no baseline"} for g in gates}
        entry["candidate_facts"] = {g: cand_gates[g] for g in GATES}
        entry["op_types"] = cand_gates["op_types"]
        if noise:
            nz = find_noise(noise, device.name, sha, spec.name)
            if nz is not None:
                entry["noise"] = {k: nz.get(k) for k in ("noise_pct", "rounds", "created_at", "ratio")}
                if nz["noise_pct"] / 100.0 >= th.delta:
                    entry["notes"].append(
                        f"delta {th.delta * 100:.1f}% is below this model's calibrated A/A noise "
                        f"±{nz['noise_pct']:.1f}% on {device.name}: expect inconclusive results "
                        "(raise --delta or --budget-s)")
        cb = (lambda r, _i=idx, _n=spec.name: progress(_i, _n, r)) if progress else None
        stats: LatencyStats | None = None
        pr: PairResult | None = None

        if spec.baseline is not None:  # same job, paired ABBA
            def stop(res: PairResult) -> bool:
                st = compare_rounds(res.medians("baseline"), res.medians("candidate"), th.delta, True,
                                    np.random.default_rng(ms.seed), n_boot=stop_boot)
                return decide(st, th, p_regression_adjusted=min(1.0, st.p_regression * m_compared))[0] != INCONCLUSIVE

            pr = measure(cand_path, Path(spec.baseline), device, ms, rng, should_stop=stop, check_from=th.min_rounds,
                         on_round=cb)
            stats = compare_rounds(pr.medians("baseline"), pr.medians("candidate"), th.delta, True,
                                   np.random.default_rng(ms.seed), n_boot=ms.n_boot)
            entry["mode"] = "paired (same job)"
        elif stored_entry is not None:
            base_rounds = stored_entry.get("round_medians_ms") or []
            rt_problem = None
            if stored_entry.get("runtime_version") != entry["runtime_version"]:
                rt_problem = (f"runtime version {stored_entry.get('runtime_version')!r} != "
                              f"{entry['runtime_version']!r}")
            problem = "; ".join(p for p in (machine_problem, rt_problem) if p)
            if problem:
                entry["mode"] = "stored baseline"
                entry["verdict"], entry["reason"] = INCONCLUSIVE, f"inconclusive: different machine ({problem})"
                if measure_all:
                    pr = measure(cand_path, None, device, ms, rng, n_rounds=ms.baseline_rounds, on_round=cb)
            else:
                def stop(res: PairResult) -> bool:
                    st = compare_rounds(base_rounds, res.medians("candidate"), th.delta, False,
                                        np.random.default_rng(ms.seed), n_boot=stop_boot)
                    return decide(st, th, min(1.0, st.p_regression * m_compared))[0] != INCONCLUSIVE

                pr = measure(cand_path, None, device, ms, rng, should_stop=stop, check_from=th.min_rounds, on_round=cb)
                stats = compare_rounds(base_rounds, pr.medians("candidate"), th.delta, False,
                                       np.random.default_rng(ms.seed), n_boot=ms.n_boot)
                entry["mode"] = "stored baseline (unpaired)"
        else:
            entry["mode"] = "no baseline"
            why = spec.note or ("not in the baseline file" if stored is not None else "no baseline to compare against")
            entry["verdict"], entry["reason"] = "new", why
            if measure_all:
                pr = measure(cand_path, None, device, ms, rng, n_rounds=ms.baseline_rounds, on_round=cb)
        if pr is not None:
            entry["measurement"] = {"rounds": pr.rounds, "first_inference_ms": pr.first_inference_ms,
                                    "per_block": pr.per_block, "block_warmup": ms.block_warmup, "stop": pr.stop,
                                    "seconds": round(pr.seconds, 3), "n_rounds": len(pr.rounds)}
            entry["runtime_version"] = pr.runtime_version or entry["runtime_version"]
        models.append(entry)
        stats_list.append(stats)

    # Holm across the models that were compared, then the final verdicts
    compared = [i for i, s in enumerate(stats_list) if s is not None]
    adjusted = holm([stats_list[i].p_regression for i in compared])
    for i, p_adj in zip(compared, adjusted):
        st = stats_list[i]
        verdict, reason = decide(st, th, p_regression_adjusted=float(p_adj))
        models[i]["latency"] = {**st.to_dict(), "p_regression_holm": float(p_adj), "delta": th.delta,
                                "floor_ms": th.floor_ms, "ci_level": 1 - th.alpha}
        models[i]["verdict"], models[i]["reason"] = verdict, reason
    suite = None
    if len(compared) >= 2:
        g = suite_geomean([stats_list[i] for i in compared], level=1 - th.alpha)
        limit = 1 + th.delta
        if g["ci_low"] > limit:
            sv, sr = FAIL, f"suite geometric mean {g['ratio']:.3f} [{g['ci_low']:.3f}, {g['ci_high']:.3f}] > {limit:.3f}"
        elif g["ci_high"] < limit:
            sv, sr = PASS, f"suite geometric mean {g['ratio']:.3f} [{g['ci_low']:.3f}, {g['ci_high']:.3f}] < {limit:.3f}"
        else:
            sv, sr = INCONCLUSIVE, f"suite geometric mean {g['ratio']:.3f} [{g['ci_low']:.3f}, {g['ci_high']:.3f}]"
        suite = {k: v for k, v in g.items() if k != "boot_log_ratio"}
        suite.update(verdict=sv, reason=sr)
    return {
        "format": REPORT_FORMAT, "hwnas_version": _hwnas_version(), "created_at": now_iso(),
        "device": {"name": device.name, **_device_settings(device), "fingerprint": fingerprint},
        "thresholds": asdict(th), "measurement_settings": asdict(ms), "gates": list(gates),
        "source": "measured", "models": models, "suite": suite,
        "statistics": ("ratio of medians = exp(Hodges-Lehmann estimate of the log ratio of per-round medians); "
                       "percentile bootstrap CI over rounds (seeded); Holm correction across models"),
    }


def overall_verdict(report: dict) -> str:
    verdicts = [m.get("verdict") for m in report["models"]]
    verdicts += [g["verdict"] for m in report["models"] for g in m["gates"].values()]
    if report.get("suite"):
        verdicts.append(report["suite"]["verdict"])
    if FAIL in verdicts:
        return FAIL
    if INCONCLUSIVE in verdicts:
        return INCONCLUSIVE
    return PASS


def exit_code(report: dict, inconclusive: str = "exit3") -> int:
    """0 pass, 1 regression, 3 inconclusive (or 0 / 1 with ``inconclusive`` = pass / fail)."""
    if inconclusive not in INCONCLUSIVE_POLICIES:
        raise HwnasError(f"--inconclusive {inconclusive!r}: expected one of {', '.join(INCONCLUSIVE_POLICIES)}")
    v = overall_verdict(report)
    if v == FAIL:
        return 1
    if v == INCONCLUSIVE:
        return {"exit3": 3, "pass": 0, "fail": 1}[inconclusive]
    return 0


def baseline_from_report(report: dict, source: str = "") -> dict:
    """A ``--baseline`` file from the candidates' measurements of a report."""
    models = {}
    for m in report["models"]:
        meas = m.get("measurement")
        if not meas:
            continue
        models[m["name"]] = {
            "candidate": m["candidate"], "sha256": m["candidate_sha256"], "runtime": m["runtime"],
            "runtime_version": m["runtime_version"],
            "round_medians_ms": [r["candidate_median_ms"] for r in meas["rounds"]],
            "samples_ms": [r["candidate_ms"] for r in meas["rounds"]],
            "first_inference_ms": meas["first_inference_ms"].get("candidate"), "per_block": meas["per_block"],
            "gates": dict(m["candidate_facts"]),
        }
    return {"format": BASELINE_FORMAT, "created_at": now_iso(), "hwnas_version": report.get("hwnas_version"),
            "device": report["device"]["name"], "fingerprint": report["device"]["fingerprint"],
            "device_settings": {k: report["device"].get(k) for k in ("threads", "delegate", "affinity")},
            "source": source or "measured", "models": models}


def write_json(data: dict, path: Path) -> Path:
    from .io import atomic_path, check_writable

    path = check_writable(Path(path))
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, default=float) + "\n")
    return path


# =====================================================================================================
# reports: JUnit XML, Markdown, terminal table
# =====================================================================================================
def _latency_line(m: dict) -> str:
    lat = m.get("latency")
    if not lat:
        return m.get("reason", "")
    return (f"{lat['baseline_ms']:.3f} -> {lat['candidate_ms']:.3f} ms, ratio {lat['ratio']:.3f} "
            f"[{lat['ci_low']:.3f}, {lat['ci_high']:.3f}], {lat['n_rounds']} rounds")


def junit_xml(report: dict, inconclusive: str = "exit3") -> str:
    """One testcase per model and metric (latency + each gate); fail -> <failure>, inconclusive -> <skipped>
    (or <failure> with ``--inconclusive fail``), new models -> <skipped>."""
    import xml.etree.ElementTree as ET

    suite = ET.Element("testsuite", name="hwnas-ci-check")
    counts = {"tests": 0, "failures": 0, "skipped": 0}

    def case(classname: str, name: str, verdict: str, message: str, details: str = "", seconds: float = 0.0):
        tc = ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{seconds:.3f}")
        counts["tests"] += 1
        if verdict == FAIL or (verdict == INCONCLUSIVE and inconclusive == "fail"):
            el = ET.SubElement(tc, "failure", message=message, type=verdict)
            el.text = details or message
            counts["failures"] += 1
        elif verdict in (INCONCLUSIVE, "new"):
            ET.SubElement(tc, "skipped", message=f"{verdict}: {message}")
            counts["skipped"] += 1
        elif details:
            ET.SubElement(tc, "system-out").text = details

    for m in report["models"]:
        meas = m.get("measurement") or {}
        details = _latency_line(m) + "".join(f"\nnote: {n}" for n in m.get("notes", []))
        case(m["name"], "latency", m.get("verdict", INCONCLUSIVE), m.get("reason", ""), details,
             float(meas.get("seconds", 0.0)))
        for g, res in m["gates"].items():
            case(m["name"], g, res["verdict"], res["reason"])
    if report.get("suite"):
        s = report["suite"]
        case("suite", "geomean_latency", s["verdict"], s["reason"])
    for k, v in counts.items():
        suite.set(k, str(v))
    suite.set("errors", "0")
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


_ICON = {PASS: "✅ pass", FAIL: "❌ FAIL", INCONCLUSIVE: "⚠️ inconclusive", "new": "🆕 new"}


def markdown(report: dict, inconclusive: str = "exit3") -> str:
    dev = report["device"]
    th = report["thresholds"]
    lines = [f"### hwnas ci-check: {_ICON.get(overall_verdict(report), overall_verdict(report))}", "",
             f"Measured on `{dev['name']}` ({dev['fingerprint'].get('cpu', '?')}, {dev['threads']} thread(s)); "
             f"regression = ratio CI lower bound > {1 + th['delta']:.2f} and slowdown > {th['floor_ms']:g} ms.", "",
             "| model | verdict | baseline ms | candidate ms | ratio [95% CI] | rounds | gates |",
             "|---|---|---:|---:|---|---:|---|"]
    for m in report["models"]:
        lat = m.get("latency")
        failed = [g for g, r in m["gates"].items() if r["verdict"] == FAIL]
        gates = "❌ " + ", ".join(failed) if failed else "ok"
        if lat:
            cells = (f"{lat['baseline_ms']:.3f}", f"{lat['candidate_ms']:.3f}",
                     f"{lat['ratio']:.3f} [{lat['ci_low']:.3f}, {lat['ci_high']:.3f}]", str(lat["n_rounds"]))
        else:
            cells = ("", "", m.get("reason", ""), str((m.get("measurement") or {}).get("n_rounds", "")))
        lines.append(f"| `{m['name']}` | {_ICON.get(m.get('verdict'), m.get('verdict'))} | " + " | ".join(cells)
                     + f" | {gates} |")
    if report.get("suite"):
        s = report["suite"]
        lines += ["", f"Suite geometric mean over {s['models']} models: **{s['ratio']:.3f}** "
                      f"[{s['ci_low']:.3f}, {s['ci_high']:.3f}] ({s['verdict']})."]
    notes = [(m["name"], n) for m in report["models"] for n in m.get("notes", [])]
    notes += [(m["name"], r["reason"]) for m in report["models"] for r in m["gates"].values() if r["verdict"] == FAIL]
    if notes:
        lines += [""] + [f"- `{name}`: {n}" for name, n in notes]
    if overall_verdict(report) == INCONCLUSIVE:
        lines += ["", f"Inconclusive results are treated as: `{inconclusive}`."]
    return "\n".join(lines) + "\n"


def print_table(report: dict, console=None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    style = {PASS: "green", FAIL: "bold red", INCONCLUSIVE: "yellow", "new": "cyan"}
    t = Table(title=f"ci-check on {report['device']['name']} (delta {report['thresholds']['delta'] * 100:g}%, "
                    f"floor {report['thresholds']['floor_ms']:g} ms)")
    t.add_column("model", overflow="fold", min_width=24, ratio=3)
    for col in ("verdict", "baseline ms", "candidate ms", "ratio [95% CI]", "rounds", "gates"):
        t.add_column(col, overflow="fold", ratio=1)
    for m in report["models"]:
        lat = m.get("latency")
        v = m.get("verdict", "")
        failed = [g for g, r in m["gates"].items() if r["verdict"] == FAIL]
        gates = f"[red]{', '.join(failed)} grew[/]" if failed else "ok"
        if lat:
            row = (f"{lat['baseline_ms']:.3f}", f"{lat['candidate_ms']:.3f}",
                   f"{lat['ratio']:.3f} [{lat['ci_low']:.3f}, {lat['ci_high']:.3f}]", str(lat["n_rounds"]))
        else:
            row = ("", "", m.get("reason", ""), str((m.get("measurement") or {}).get("n_rounds", "")))
        t.add_row(escape(m["name"]), f"[{style.get(v, '')}]{v}[/]", *row, gates)
    console.print(t)
    for m in report["models"]:
        if m.get("verdict") in (FAIL, INCONCLUSIVE) and m.get("latency"):
            console.print(f"  {escape(m['name'])}: {escape(m['reason'])}")
        for n in m.get("notes", []):
            console.print(f"  [yellow]note[/] {escape(m['name'])}: {escape(n)}")
    if report.get("suite"):
        console.print(f"  {escape(report['suite']['reason'])} -> {report['suite']['verdict']}")


# =====================================================================================================
# inputs: model files / directories / arch strings, and what to compare them against
# =====================================================================================================
MODEL_SUFFIXES = (".onnx", ".tflite")


def _git(args: list[str], cwd: Path, binary: bool = False):
    import subprocess

    try:
        return subprocess.run(["git", *args], cwd=str(cwd), capture_output=True, text=not binary, timeout=120)
    except FileNotFoundError:
        raise HwnasError("git is not installed, so --against cannot read a git ref") from None


def is_git_ref(ref: str, cwd: Path) -> bool:
    if ref.startswith("-"):
        return False
    proc = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd)
    return proc.returncode == 0


def git_file_at(ref: str, path: Path, dest: Path) -> Path | None:
    """Write ``path`` (a file in a git work tree) as it was at ``ref`` to ``dest``; None if it did not exist."""
    path = Path(path).resolve()
    top = _git(["rev-parse", "--show-toplevel"], path.parent)
    if top.returncode != 0:
        raise HwnasError(f"--against {ref}: {path} is not inside a git repository")
    rel = path.relative_to(Path(top.stdout.strip()).resolve()).as_posix()
    proc = _git(["show", f"{ref}:{rel}"], path.parent, binary=True)
    if proc.returncode != 0:
        return None
    data = proc.stdout
    if data.startswith(b"version https://git-lfs"):
        raise HwnasError(f"--against {ref}: {rel} is a Git LFS pointer at that ref; fetch LFS objects first "
                         "(git lfs fetch origin <ref>) or pass the baseline files as a directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return dest


def _expand_models(inputs: Sequence[str]) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix in MODEL_SUFFIXES and q.is_file())
            if not found:
                raise HwnasError(f"directory {p} holds no .onnx or .tflite files")
            out += [(q.relative_to(p).as_posix(), q) for q in found]
        elif p.is_file():
            if p.suffix not in MODEL_SUFFIXES:
                raise HwnasError(f"{p}: expected a .onnx or .tflite model file")
            out.append((p.name, p))
        else:
            raise HwnasError(f"model file {p} does not exist (to check arch strings, pass --space)")
    return out


def resolve_model_files(inputs: Sequence[str], against: str | None, workdir: Path) -> list[ModelSpec]:
    """Model files / directories as candidates, paired with a baseline file, directory or git ref."""
    cands = _expand_models(inputs)
    if against is None:
        return [ModelSpec(name=n, candidate=p, candidate_label=str(p)) for n, p in cands]
    ref_path = Path(against)
    specs: list[ModelSpec] = []
    if ref_path.is_file():
        if len(cands) != 1:
            raise HwnasError(f"--against {against} is one file but {len(cands)} candidates were given; "
                             "pass a directory or a git ref to compare several models")
        n, p = cands[0]
        return [ModelSpec(name=n, candidate=p, baseline=ref_path, candidate_label=str(p), baseline_label=str(ref_path))]
    if ref_path.is_dir():
        for n, p in cands:
            b = ref_path / n
            if not b.is_file() and (ref_path / p.name).is_file():
                b = ref_path / p.name
            if b.is_file():
                specs.append(ModelSpec(n, p, b, str(p), str(b)))
            else:
                specs.append(ModelSpec(n, p, None, str(p), None, note=f"new model: no {n} in {against}"))
        return specs
    if not is_git_ref(against, Path(cands[0][1]).resolve().parent):
        raise HwnasError(f"--against {against!r} is not a file, a directory or a git ref")
    for i, (n, p) in enumerate(cands):
        b = git_file_at(against, p, Path(workdir) / "against" / f"{i}" / p.name)
        if b is None:
            specs.append(ModelSpec(n, p, None, str(p), None, note=f"new model: {p} does not exist at {against}"))
        else:
            specs.append(ModelSpec(n, p, b, str(p), f"{against}:{p}"))
    return specs


def resolve_archs(space, archs: Sequence[str], arch_file: Path | None, against: str | None, settings) -> list[ModelSpec]:
    """Arch strings of ``space`` (exported with ``settings``), paired with baseline arch strings.

    ``against``: one arch string (one candidate), an arch-list file, or a git ref at which ``arch_file`` is
    read; rows pair by their ``name`` column when there is one, else by position.
    """
    from .export import export_arch
    from .spaces import arch_from_text

    rows: list[tuple[str | None, str]] = [(None, a) for a in archs]
    if arch_file is not None:
        if not Path(arch_file).is_file():
            raise HwnasError(f"arch file {arch_file} does not exist")
        rows += parse_arch_table(Path(arch_file).read_text())
    if not rows:
        raise HwnasError("nothing to check: give arch strings or --arch-file with --space")
    base_rows: list[tuple[str | None, str]] | None = None
    where = against
    if against is not None:
        if Path(against).is_file():
            base_rows = parse_arch_table(Path(against).read_text())
        elif arch_file is not None and is_git_ref(against, Path(arch_file).resolve().parent):
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                got = git_file_at(against, Path(arch_file), Path(tmp) / "archs.txt")
                base_rows = parse_arch_table(got.read_text()) if got else []
            where = f"{arch_file} at {against}"
        else:
            if len(rows) != 1:
                raise HwnasError(f"--against {against!r}: one baseline arch for {len(rows)} candidates; pass an "
                                 "arch-list file or a git ref with --arch-file")
            base_rows = [(None, against)]

    def export(text: str) -> tuple[Path, str]:
        a = arch_from_text(space, text)
        return export_arch(space, a, settings), space.to_string(a)

    named = {n: a for n, a in (base_rows or []) if n}
    specs = []
    for i, (name, text) in enumerate(rows):
        path, canon = export(text)
        label = name or canon
        base_text = None
        if base_rows is not None:
            if name and named:
                base_text = named.get(name)
            elif i < len(base_rows):
                base_text = base_rows[i][1]
        if base_text is None:
            note = f"new model: no baseline arch in {where}" if against is not None else ""
            specs.append(ModelSpec(label, path, None, canon, None, note=note))
        else:
            bpath, bcanon = export(base_text)
            specs.append(ModelSpec(label, path, bpath, canon, bcanon))
    return specs


# =====================================================================================================
# calibrate: A/A comparisons give each model's noise
# =====================================================================================================
def calibrate(specs: Sequence[ModelSpec], device: Device, ms: MeasureSettings = MeasureSettings(),
              rounds: int = 20, progress=None) -> list[dict]:
    """A/A check of every candidate (the same file in two workers, ABBA, ``rounds`` rounds).

    A model's noise is the largest distance of its A/A 95% CI from 1 (in percent): a delta below it
    cannot be told apart from the machine's own variation at this many rounds.
    """
    from .runtimes import runtime_for

    rng = np.random.default_rng(ms.seed)
    fp = host_fingerprint()
    out = []
    for idx, spec in enumerate(specs):
        cb = (lambda r, _i=idx, _n=spec.name: progress(_i, _n, r)) if progress else None
        pr = measure(Path(spec.candidate), Path(spec.candidate), device, ms, rng, n_rounds=rounds, on_round=cb)
        st = compare_rounds(pr.medians("baseline"), pr.medians("candidate"), 0.0, True,
                            np.random.default_rng(ms.seed), n_boot=ms.n_boot)
        noise = max(abs(st.ci_low - 1.0), abs(st.ci_high - 1.0)) * 100.0
        out.append({"name": spec.name, "model": str(spec.candidate), "sha256": sha256_file(Path(spec.candidate)),
                    "device": device.name, "runtime": runtime_for(Path(spec.candidate)),
                    "runtime_version": pr.runtime_version, "fingerprint": fp, "rounds": len(pr.rounds),
                    "per_block": pr.per_block, "median_ms": st.baseline_ms, "ratio": st.ratio,
                    "ci_low": st.ci_low, "ci_high": st.ci_high, "noise_pct": noise, "created_at": now_iso(),
                    "source": "measured (A/A)", "round_medians_ms": {"a": pr.medians("baseline"),
                                                                      "b": pr.medians("candidate")}})
    return out


def save_noise(entries: Sequence[dict], path: Path | None = None) -> Path:
    """Merge calibration entries into the noise file (newest entry per device + model wins)."""
    path = Path(path) if path else noise_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    old = load_noise(path)
    keys = {(e["device"], e["sha256"]) for e in entries}
    merged = [e for e in old if (e.get("device"), e.get("sha256")) not in keys] + list(entries)
    return write_json({"format": "hwnas-ci-noise/1", "models": merged}, path)
