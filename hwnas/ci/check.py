"""The CI check: exact gates + latency for every model, Holm across models, the suite's geometric mean, and
the verdict / exit code (0 pass, 1 regression, 3 inconclusive; usage errors raise HwnasError: exit 2)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import HwnasError, ParameterError, ParametersError
from ..fileio import now_iso, sha256_file
from ..measure.device_profile import DeviceProfile
from ..measure.protocol import host_fingerprint
from .ab import MeasureSettings, PairResult, device_settings, measure
from .baseline import find_noise, machine_problem
from .gates import GATES, compare_gates, model_gates
from .inputs import ModelSpec
from .stats import FAIL, INCONCLUSIVE, PASS, RatioEstimate, Thresholds, compare_rounds, decide, holm, suite_verdict

REPORT_FORMAT = "hwnas-ci-check/1"
INCONCLUSIVE_POLICIES = ("exit3", "pass", "fail")
STATISTICS = ("ratio of medians = exp(Hodges-Lehmann estimate of the log ratio of per-round medians); "
              "percentile bootstrap CI over rounds (seeded) combined with the signed-rank interval; Holm correction "
              "across models; noise floor = max(A/A spread of the baseline's rounds at this many rounds, timer tick)")


@dataclass
class ModelResult:
    """One model's verdict, reason, gates, latency statistics and raw measurement (``to_dict``: its JSON)."""

    name: str
    candidate: str  # a label: the file, or the canonical arch string
    baseline: str | None
    candidate_sha256: str
    runtime: str
    runtime_version: str
    notes: list[str] = field(default_factory=list)
    gates: dict[str, dict] = field(default_factory=dict)
    candidate_facts: dict = field(default_factory=dict)  # every gate's value for the candidate
    op_types: dict = field(default_factory=dict)
    baseline_sha256: str | None = None
    noise: dict | None = None  # the calibrated A/A noise of this model on this device
    mode: str = ""
    verdict: str = INCONCLUSIVE  # pass | fail | inconclusive | under_floor | new
    reason: str = ""
    latency: dict | None = None  # RatioEstimate.to_dict() + Holm-adjusted p-value + thresholds
    measurement: dict | None = None  # PairResult.to_dict(): raw samples of every round

    def to_dict(self) -> dict:
        d = {"name": self.name, "candidate": self.candidate, "baseline": self.baseline,
             "candidate_sha256": self.candidate_sha256, "runtime": self.runtime,
             "runtime_version": self.runtime_version, "notes": list(self.notes), "gates": self.gates,
             "latency": self.latency}
        if self.baseline_sha256 is not None:
            d["baseline_sha256"] = self.baseline_sha256
        d.update(candidate_facts=self.candidate_facts, op_types=self.op_types)
        if self.noise is not None:
            d["noise"] = self.noise
        d["mode"] = self.mode
        verdict = {"verdict": self.verdict, "reason": self.reason}
        meas = {"measurement": self.measurement} if self.measurement is not None else {}
        # keys in the order the verdict was reached: compared models get theirs after measuring
        if self.latency is not None:
            d.update(**meas, **verdict)
        else:
            d.update(**verdict, **meas)
        return d


@dataclass
class CheckReport:
    """Everything one check found; ``to_dict()`` is the ``--json`` report (format ``hwnas-ci-check/1``)."""

    device: dict  # name, threads, delegate, affinity, fingerprint
    thresholds: Thresholds
    settings: MeasureSettings
    gates: list[str]
    models: list[ModelResult]
    suite: dict | None = None
    hwnas_version: str = ""
    created_at: str = ""
    inconclusive_policy: str | None = None  # set by conclude()

    @property
    def verdict(self) -> str:
        """fail if anything failed (latency, a gate, the suite), else inconclusive if anything was, else pass
        (a model UNDER_FLOOR passes by the user's explicit floor; its own verdict says so)."""
        verdicts = [m.verdict for m in self.models] + [g["verdict"] for m in self.models for g in m.gates.values()]
        if self.suite:
            verdicts.append(self.suite["verdict"])
        if FAIL in verdicts:
            return FAIL
        if INCONCLUSIVE in verdicts:
            return INCONCLUSIVE
        return PASS

    def exit_code(self, inconclusive: str = "exit3") -> int:
        """0 pass, 1 regression, 3 inconclusive (or 0 / 1 with ``inconclusive`` = pass / fail)."""
        check_policy(inconclusive)
        v = self.verdict
        if v == FAIL:
            return 1
        if v == INCONCLUSIVE:
            return {"exit3": 3, "pass": 0, "fail": 1}[inconclusive]
        return 0

    def conclude(self, inconclusive: str = "exit3") -> int:
        """Fix the inconclusive policy (the JSON then carries verdict, exit code and policy); the exit code."""
        code = self.exit_code(inconclusive)
        self.inconclusive_policy = inconclusive
        return code

    def to_dict(self) -> dict:
        d = {"format": REPORT_FORMAT, "hwnas_version": self.hwnas_version, "created_at": self.created_at,
             "device": self.device, "thresholds": asdict(self.thresholds),
             "measurement_settings": asdict(self.settings), "gates": list(self.gates), "source": "measured",
             "models": [m.to_dict() for m in self.models], "suite": self.suite, "statistics": STATISTICS}
        if self.inconclusive_policy is not None:
            d.update(verdict=self.verdict, exit_code=self.exit_code(self.inconclusive_policy),
                     inconclusive_policy=self.inconclusive_policy)
        return d


def check_policy(inconclusive: str) -> str:
    if inconclusive not in INCONCLUSIVE_POLICIES:
        raise ParameterError("inconclusive", f"{inconclusive!r}: expected one of {', '.join(INCONCLUSIVE_POLICIES)}")
    return inconclusive


def _hwnas_version() -> str:
    try:
        from .. import __version__

        return str(__version__)
    except ImportError:  # pragma: no cover
        return "unknown"


def _check_inputs(specs: Sequence[ModelSpec], gates: Sequence[str]) -> None:
    if not specs:
        raise ParametersError("nothing to check: give model files, a directory, or arch strings with `space`")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise HwnasError(f"two inputs share the name {dup[0]!r}; give distinct file names")
    for g in gates:
        if g not in GATES:
            raise HwnasError(f"unknown gate {g!r}; known: {', '.join(GATES)}")


def _check_stored_shape(stored: dict | None, ms: MeasureSettings) -> None:
    """A stored baseline counted and timed its models at one input shape; a check at another compares apples
    with oranges, so it is refused."""
    if stored is None:
        return
    then = stored.get("input_shape")
    now = None if ms.input_shape is None else list(ms.input_shape)
    if then != now:
        shown = "none" if then is None else "x".join(map(str, then))
        raise ParametersError(f"the stored baseline was measured with `input_shape` {shown}; this check has "
                              f"{'none' if now is None else 'x'.join(map(str, now))}: give the same, or record a new "
                              "baseline")


class _Check:
    """The settings one check shares across its models, and the steps for one model."""

    def __init__(self, device: DeviceProfile, th: Thresholds, ms: MeasureSettings, gates: Sequence[str],
                 stored: dict | None, noise: list[dict] | None, measure_all: bool, n_compared: int,
                 fingerprint: dict):
        self.device, self.th, self.ms, self.gates = device, th, ms, list(gates)
        self.stored, self.noise, self.measure_all, self.n_compared = stored, noise, measure_all, n_compared
        # the stopping checks (every few rounds) use fewer bootstrap replicates than the final verdict, but
        # enough to resolve the Bonferroni-level p-value alpha / (2 m)
        self.stop_boot = int(min(ms.n_boot, max(1000, math.ceil(4 * n_compared / (th.alpha / 2)))))
        self.rng = np.random.default_rng(ms.seed)
        self.machine_problem = machine_problem(stored, device, fingerprint) if stored is not None else None

    def facts(self, spec: ModelSpec) -> tuple[ModelResult, dict | None]:
        """The model's result with its exact gates and noise note filled in; its stored-baseline entry."""
        from ..runtimes import runtime_for, runtime_version

        cand_path = Path(spec.candidate)
        runtime = runtime_for(cand_path)
        cand_gates = self.gates_of(cand_path)
        res = ModelResult(name=spec.name, candidate=spec.candidate_label or str(cand_path),
                          baseline=spec.baseline_label if spec.baseline is not None else None,
                          candidate_sha256=sha256_file(cand_path), runtime=runtime,
                          runtime_version=runtime_version(runtime), notes=[spec.note] if spec.note else [],
                          candidate_facts={g: cand_gates[g] for g in GATES}, op_types=cand_gates["op_types"])
        stored_entry = self.stored["models"].get(spec.name) if self.stored is not None and spec.baseline is None \
            else None
        base_gates = None
        if spec.baseline is not None:
            if runtime_for(spec.baseline) != runtime:
                raise HwnasError(f"{spec.name}: baseline {spec.baseline_label} and candidate use different runtimes")
            base_gates = self.gates_of(Path(spec.baseline))
            res.baseline_sha256 = sha256_file(Path(spec.baseline))
        elif stored_entry is not None:
            base_gates = stored_entry.get("gates")
            res.baseline = f"stored: {self.stored.get('source', 'baseline file')}"
        if base_gates is not None or spec.baseline is not None:
            res.gates = compare_gates(base_gates, cand_gates, self.gates)
        else:
            res.gates = {g: {"baseline": None, "candidate": cand_gates[g], "verdict": "new",
                             "reason": "no baseline"} for g in self.gates}
        self._note_noise(res)
        return res, stored_entry

    def gates_of(self, path: Path) -> dict:
        """The model's exact facts at the settings' input shape; a dynamic H, W without one says so."""
        from ..graphs import DynamicShapeError

        try:
            return model_gates(path, self.ms.input_shape)
        except DynamicShapeError as exc:
            raise ParametersError(f"{exc}, or give its `input_shape` (batch first, e.g. 1x3x224x224)") from None

    def _note_noise(self, res: ModelResult) -> None:
        nz = find_noise(self.noise, self.device.name, res.candidate_sha256, res.name) if self.noise else None
        if nz is None:
            return
        res.noise = {k: nz.get(k) for k in ("noise_pct", "rounds", "created_at", "ratio")}
        if nz["noise_pct"] / 100.0 >= self.th.delta:
            res.notes.append(f"delta {self.th.delta * 100:.1f}% is below this model's calibrated A/A noise "
                             f"±{nz['noise_pct']:.1f}% on {self.device.name}: expect inconclusive results "
                             "(raise `delta` or `budget_s`)")

    def compare(self, candidate: Path, baseline: Path | None, base_rounds: Sequence[float] | None,
                on_round) -> tuple[PairResult, RatioEstimate]:
        """Measure until the verdict is clear (the one stop rule): paired against ``baseline`` measured now,
        or unpaired against stored ``base_rounds``."""
        th, ms, paired = self.th, self.ms, baseline is not None

        def estimate(res: PairResult, n_boot: int) -> RatioEstimate:
            base = res.medians("baseline") if paired else base_rounds
            return compare_rounds(base, res.medians("candidate"), th.delta, paired, np.random.default_rng(ms.seed),
                                  n_boot=n_boot)

        def clear(res: PairResult) -> bool:  # decisive even at the strictest (Bonferroni) step of Holm
            # a cheap bootstrap first; confirmed with the final one (same seed and size as the reported estimate),
            # so a check never stops on a verdict that its final statistics then call inconclusive
            for n_boot in dict.fromkeys((self.stop_boot, ms.n_boot)):
                st = estimate(res, n_boot)
                if decide(st, th, p_regression_adjusted=min(1.0, st.p_regression * self.n_compared))[0] == INCONCLUSIVE:
                    return False
            return True

        pr = measure(candidate, baseline, self.device, ms, self.rng, should_stop=clear, check_from=th.min_rounds,
                     on_round=on_round)
        return pr, estimate(pr, ms.n_boot)

    def latency(self, spec: ModelSpec, res: ModelResult, stored_entry: dict | None,
                on_round) -> RatioEstimate | None:
        """Measure one model (as its baseline allows) and fill in mode, measurement and -- when nothing is
        compared -- its verdict; the estimate when compared."""
        cand_path = Path(spec.candidate)
        pr: PairResult | None = None
        est: RatioEstimate | None = None
        if spec.baseline is not None:  # same job, paired ABBA
            pr, est = self.compare(cand_path, Path(spec.baseline), None, on_round)
            res.mode = "paired (same job)"
        elif stored_entry is not None:
            problem = self._stored_problem(stored_entry, res)
            if problem:
                res.mode = "stored baseline"
                res.verdict, res.reason = INCONCLUSIVE, f"inconclusive: different machine ({problem})"
            else:
                pr, est = self.compare(cand_path, None, stored_entry.get("round_medians_ms") or [], on_round)
                res.mode = "stored baseline (unpaired)"
        else:
            res.mode = "no baseline"
            res.verdict = "new"
            res.reason = spec.note or ("not in the baseline file" if self.stored is not None
                                       else "no baseline to compare against")
        if pr is None and est is None and self.measure_all:  # only measured: for --update-baseline
            pr = measure(cand_path, None, self.device, self.ms, self.rng, n_rounds=self.ms.baseline_rounds,
                         on_round=on_round)
        if pr is not None:
            res.measurement = pr.to_dict(self.ms.block_warmup)
            res.runtime_version = pr.runtime_version or res.runtime_version
        return est

    def _stored_problem(self, stored_entry: dict, res: ModelResult) -> str:
        rt_problem = None
        if stored_entry.get("runtime_version") != res.runtime_version:
            rt_problem = f"runtime version {stored_entry.get('runtime_version')!r} != {res.runtime_version!r}"
        return "; ".join(p for p in (self.machine_problem, rt_problem) if p)


def _conclude_latency(models: list[ModelResult], estimates: list[RatioEstimate | None], th: Thresholds) -> dict | None:
    """Holm across the compared models, their final verdicts, and the suite's geometric mean."""
    compared = [i for i, s in enumerate(estimates) if s is not None]
    adjusted = holm([estimates[i].p_regression for i in compared])
    for i, p_adj in zip(compared, adjusted):
        st = estimates[i]
        models[i].verdict, models[i].reason = decide(st, th, p_regression_adjusted=float(p_adj))
        models[i].latency = {**st.to_dict(), "p_regression_holm": float(p_adj), "delta": th.delta,
                             "floor_ms": th.floor_ms, "noise_floor_ms": st.noise_floor.get("floor_ms"),
                             "ci_level": 1 - th.alpha}
    return suite_verdict([estimates[i] for i in compared], th)


def run_check(specs: Sequence[ModelSpec], device: DeviceProfile, th: Thresholds = Thresholds(),
              ms: MeasureSettings = MeasureSettings(), gates: Sequence[str] = GATES, stored: dict | None = None,
              noise: list[dict] | None = None, measure_all: bool = False,
              progress: Callable[[int, str, int], None] | None = None) -> CheckReport:
    """Check every model; return the report.

    ``stored``: a loaded ``--baseline`` file (used for models without a baseline file in ``specs``).
    ``measure_all``: also measure models that have nothing to compare against (for --update-baseline).
    ``progress``: an optional ``(model_index, model_name, rounds_done)`` callback.
    """
    _check_inputs(specs, gates)
    _check_stored_shape(stored, ms)
    fingerprint = host_fingerprint()
    n_compared = max(1, sum(1 for s in specs if s.baseline is not None or (stored and s.name in stored["models"])))
    check = _Check(device, th, ms, gates, stored, noise, measure_all, n_compared, fingerprint)
    models: list[ModelResult] = []
    estimates: list[RatioEstimate | None] = []
    for idx, spec in enumerate(specs):
        on_round = (lambda r, _i=idx, _n=spec.name: progress(_i, _n, r)) if progress else None
        res, stored_entry = check.facts(spec)
        estimates.append(check.latency(spec, res, stored_entry, on_round))
        models.append(res)
    suite = _conclude_latency(models, estimates, th)
    return CheckReport(device={"name": device.name, **device_settings(device), "fingerprint": fingerprint},
                       thresholds=th, settings=ms, gates=list(gates), models=models, suite=suite,
                       hwnas_version=_hwnas_version(), created_at=now_iso())
