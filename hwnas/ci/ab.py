"""A/B measurement of the CI check: two long-lived workers, randomised ABBA rounds.

The baseline (A) and candidate (B) models live in two worker processes
(:class:`hwnas.measure.runners.worker.ModelWorker`). They are measured in *rounds*; a round is one block of A
and one block of B back to back, and consecutive rounds come in randomised ABBA pairs (AB,BA or BA,AB, chosen
by a seeded generator) so that a slow drift of the machine's load hits both models alike. Each block runs a
few discarded warm-up inferences and then ``k`` timed inferences; the block's median is the round's value.
The first inference after loading is recorded apart and never mixed into the rounds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import HwnasError
from ..measure.device_profile import DeviceProfile, load_profile


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
    startup_s: float = 30.0  # allowance beyond budget_s for starting the workers (spawn, runtime import, load)
    n_boot: int = 4000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.budget_s <= 0:
            raise HwnasError(f"--budget-s {self.budget_s}: must be > 0")
        if self.max_rounds < 2:
            raise HwnasError(f"--max-rounds {self.max_rounds}: must be >= 2")
        if self.round_step < 2 or self.round_step % 2:
            raise HwnasError(f"round step {self.round_step}: must be an even number >= 2 (ABBA pairs)")


def local_profile(name_or_path, runtime: str | None = None) -> DeviceProfile:
    """The device profile a check measures on; it must be this machine (connection ``local``)."""
    p = load_profile(name_or_path).with_runtime(runtime)
    if p.connection_type != "local":
        raise HwnasError(f"ci-check measures on this machine only; device {p.name!r} is reached over "
                         f"{p.connection_type} (run ci-check on the device itself, or use a local profile)")
    return p


def device_settings(device: DeviceProfile) -> dict:
    """The profile settings that make two measurements comparable (stored with a baseline)."""
    return {"threads": device.threads, "delegate": device.delegate,
            "affinity": list(device.affinity) if device.affinity else None}


def abba_orders(n_rounds: int, rng: np.random.Generator) -> list[str]:
    """Round orders in randomised ABBA pairs: each pair is (AB, BA) or (BA, AB), chosen by ``rng``."""
    out: list[str] = []
    while len(out) < n_rounds:
        out.extend(("AB", "BA") if rng.random() < 0.5 else ("BA", "AB"))
    return out[:n_rounds]


def _open_worker(path: Path, device: DeviceProfile, seed: int, timeout_s: float = 300.0):
    from ..measure.runners.worker import ModelWorker
    from ..runtimes import runtime_for

    runtime = runtime_for(path)
    # model files bring their own runtime (by suffix); the profile's delegate belongs to the profile's runtime
    delegate = device.delegate if runtime == device.runtime else None
    return ModelWorker(path, runtime=runtime, threads=device.threads, delegate=delegate,
                       affinity=list(device.affinity) if device.affinity else None, seed=seed, timeout_s=timeout_s)


def _warm(time_n: Callable[[int], list[float]], warmup_s: float) -> list[float]:
    out: list[float] = []
    t_end = time.perf_counter() + warmup_s
    while time.perf_counter() < t_end or len(out) < 3:
        out.extend(time_n(3))
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

    def to_dict(self, block_warmup: int) -> dict:
        """The ``measurement`` block of a report (raw samples of every block of every round)."""
        return {"rounds": self.rounds, "first_inference_ms": self.first_inference_ms, "per_block": self.per_block,
                "block_warmup": block_warmup, "stop": self.stop, "seconds": round(self.seconds, 3),
                "n_rounds": len(self.rounds)}


def measure(candidate: Path, baseline: Path | None, device: DeviceProfile, ms: MeasureSettings,
            rng: np.random.Generator, should_stop: Callable[[PairResult], bool] | None = None, check_from: int = 8,
            n_rounds: int | None = None, on_round: Callable[[int], None] | None = None) -> PairResult:
    """Measure ``candidate`` (and ``baseline`` when given, interleaved ABBA) in rounds.

    Stops when ``should_stop`` says so (checked after ``check_from`` rounds, then every ``round_step``), when
    ``n_rounds`` (if given) or ``max_rounds`` rounds are done, or when ``budget_s`` has passed. A model that
    hangs (loading or running) cannot hold the check longer than ``budget_s + startup_s``: every wait on a
    worker ends at that deadline with ``WorkerCrashed`` naming the budget.
    """
    from ..measure.runners.worker import WorkerCrashed

    t0 = time.perf_counter()
    deadline = t0 + ms.budget_s + ms.startup_s
    workers = {}

    def left() -> float:
        return max(0.5, deadline - time.perf_counter())

    def timed(side: str, n: int) -> list[float]:
        w = workers[side]
        w.timeout_s = left()
        return w.time(n)

    try:
        workers["B"] = _open_worker(candidate, device, seed=ms.seed, timeout_s=left())
        if baseline is not None:
            workers["A"] = _open_worker(baseline, device, seed=ms.seed, timeout_s=left())
        first = {("candidate" if k == "B" else "baseline"): w.first_inference_ms for k, w in workers.items()}
        warm = {k: _warm(lambda n, k=k: timed(k, n), ms.warmup_s) for k in workers}
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
                if ms.block_warmup:
                    timed(side, ms.block_warmup)
                samples = timed(side, k)
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
    except WorkerCrashed as exc:
        if time.perf_counter() < deadline - 0.25:
            raise
        raise WorkerCrashed(f"{Path(candidate).name}: no result within --budget-s {ms.budget_s:g} s "
                            f"(+{ms.startup_s:g} s to start the workers); the model may hang ({exc})") from None
    finally:
        for w in workers.values():
            w.close()
