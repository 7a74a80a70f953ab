"""A/B measurement of the CI check: two long-lived workers, each holding both models; randomised ABBA rounds.

The baseline (A) and candidate (B) models are *both* loaded in each of two worker processes
(:class:`hwnas.measure.runners.worker.ModelWorker`). They are measured in *rounds*; a round is one block of A
and one block of B back to back, **in the same worker**, so a per-process speed offset (memory layout,
scheduling of that process on a loaded host -- up to 15-20% for minutes on a 2-core VM) hits both blocks of
the round alike and cancels in the round's ratio. Consecutive rounds come in randomised ABBA pairs (AB,BA or
BA,AB, chosen by a seeded generator) so that a slow drift of the machine's load hits both models alike; the
two rounds of a pair run in one worker, and the pairs alternate between the workers (worker 0, 1, 0, 1, ...:
see :func:`worker_schedule`), so an offset of one model *within* one process (a model x process interaction)
is sampled on two processes and enters the round-to-round variance instead of biasing every round. Worker 0
holds A as its model and B as its second ("reference") model, worker 1 the other way round. Each block runs a few discarded warm-up inferences and then ``k``
timed inferences; the block's median is the round's value. The first inference after loading is recorded
apart and never mixed into the rounds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import HwnasError, ParameterError
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
    # the models' input shape (batch first, e.g. (1, 3, 32, 32); "1x3x32x32" is read too) where a model's H, W are
    # dynamic: the gates count MACs and the workers feed inputs of this shape; None: the shape the model declares
    input_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        from ..graphs import parse_input_shape

        object.__setattr__(self, "input_shape", parse_input_shape(self.input_shape))  # frozen: set once, here
        if self.budget_s <= 0:
            raise ParameterError("budget_s", f"{self.budget_s}: must be > 0")
        if self.max_rounds < 2:
            raise ParameterError("max_rounds", f"{self.max_rounds}: must be >= 2")
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


def worker_schedule(n_rounds: int, n_workers: int = 2) -> list[int]:
    """Which worker serves round ``r`` (both of its blocks): the two rounds of an ABBA pair share a worker,
    and the pairs take turns, 0, 0, 1, 1, 0, 0, 1, 1, ... -- every ``round_step`` of 4 rounds has each of
    two workers serving one (AB, BA) pair."""
    return [(r // 2) % n_workers for r in range(n_rounds)]


def _open_worker(path: Path, device: DeviceProfile, seed: int, timeout_s: float = 300.0,
                 reference: Path | None = None, input_shape: tuple[int, ...] | None = None):
    """A worker process holding ``path`` (and ``reference``: a second model in the same process, timed with
    ``time(n, reference=True)``), pinned as the profile says; ``input_shape`` for a model with a dynamic H, W."""
    from ..measure.runners.worker import ModelWorker
    from ..runtimes import runtime_for

    runtime = runtime_for(path)
    if reference is not None and runtime_for(reference) != runtime:
        raise HwnasError(f"{Path(path).name} ({runtime}) and {Path(reference).name} ({runtime_for(reference)}): "
                         "ci-check compares models of the same runtime (both are loaded in each worker)")
    # model files bring their own runtime (by suffix); the profile's delegate belongs to the profile's runtime
    delegate = device.delegate if runtime == device.runtime else None
    return ModelWorker(path, runtime=runtime, threads=device.threads, delegate=delegate,
                       affinity=list(device.affinity) if device.affinity else None, seed=seed, timeout_s=timeout_s,
                       reference=reference, input_shape=input_shape)


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


SCHEDULE = ("both models in each of 2 worker processes; a round = one block of each model in the same worker "
            "(its 'worker' field); ABBA pairs, pairs alternate between the workers")


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
    first_by_worker: list[dict] | None = None  # each worker's first inference of its own model


    def medians(self, side: str) -> list[float]:
        return [r[f"{side}_median_ms"] for r in self.rounds if f"{side}_median_ms" in r]

    def to_dict(self, block_warmup: int) -> dict:
        """The ``measurement`` block of a report (raw samples of every block of every round)."""
        return {"rounds": self.rounds, "first_inference_ms": self.first_inference_ms, "per_block": self.per_block,
                "block_warmup": block_warmup, "stop": self.stop, "seconds": round(self.seconds, 3),
                "n_rounds": len(self.rounds), "workers": len(self.first_by_worker or [None]),
                "first_inference_ms_by_worker": self.first_by_worker or [self.first_inference_ms],
                "schedule": SCHEDULE}


class _Workers:
    """The workers of one measurement, which model each holds as its own (False) and as its reference (True) --
    a worker's model is the one it loaded first -- and the deadline every wait on them ends at."""

    NAMES = {"A": "baseline", "B": "candidate"}

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.workers: list = []
        self.holds: list[dict[str, bool]] = []

    def left(self) -> float:
        return max(0.5, self.deadline - time.perf_counter())

    def open(self, open_worker: Callable, candidate: Path, baseline: Path | None, device, seed: int) -> None:
        """One worker for the candidate alone; with a baseline, worker 0 holds A as its model (loaded first)
        and worker 1 holds B, each with the other as its reference."""
        if baseline is None:
            self.workers.append(open_worker(candidate, device, seed=seed, timeout_s=self.left()))
            self.holds.append({"B": False})
            return
        self.workers.append(open_worker(baseline, device, seed=seed, timeout_s=self.left(), reference=candidate))
        self.holds.append({"A": False, "B": True})
        self.workers.append(open_worker(candidate, device, seed=seed, timeout_s=self.left(), reference=baseline))
        self.holds.append({"B": False, "A": True})

    def timed(self, w: int, side: str, n: int) -> list[float]:
        wk = self.workers[w]
        wk.timeout_s = self.left()
        return wk.time(n, reference=True) if self.holds[w][side] else wk.time(n)

    def first_inference(self) -> tuple[list[dict], dict]:
        """(per worker, per model): each model's first inference in the worker that holds it as its own model
        (as in a fresh process)."""
        by_worker = [{self.NAMES[side]: wk.first_inference_ms for side, ref in h.items() if not ref}
                     for wk, h in zip(self.workers, self.holds)]
        return by_worker, {k: v for d in reversed(by_worker) for k, v in d.items()}

    def close(self) -> None:
        for wk in self.workers:
            wk.close()


def measure(candidate: Path, baseline: Path | None, device: DeviceProfile, ms: MeasureSettings,
            rng: np.random.Generator, should_stop: Callable[[PairResult], bool] | None = None, check_from: int = 8,
            n_rounds: int | None = None, on_round: Callable[[int], None] | None = None,
            open_worker: Callable | None = None) -> PairResult:
    """Measure ``candidate`` (and ``baseline`` when given: both in each of two workers, ABBA) in rounds.

    Stops when ``should_stop`` says so (checked after ``check_from`` rounds, then every ``round_step``), when
    ``n_rounds`` (if given) or ``max_rounds`` rounds are done, or when ``budget_s`` has passed. A model that
    hangs (loading or running) cannot hold the check longer than ``budget_s + startup_s``: every wait on a
    worker ends at that deadline with ``WorkerCrashed`` naming the budget. ``open_worker`` makes a worker
    as :func:`_open_worker` does (tests pass fakes).
    """
    from ..measure.runners.worker import WorkerCrashed

    t0 = time.perf_counter()
    pool = _Workers(t0 + ms.budget_s + ms.startup_s)
    try:
        opener = open_worker or partial(_open_worker, input_shape=ms.input_shape)
        pool.open(opener, candidate, baseline, device, ms.seed)
        by_worker, first_ms = pool.first_inference()
        warm = [_warm(lambda n, w=w, side=side: pool.timed(w, side, n), ms.warmup_s)
                for w in range(len(pool.workers)) for side in pool.holds[w]]
        k = _per_block(max(float(np.median(v)) for v in warm), ms)
        limit = n_rounds if n_rounds is not None else ms.max_rounds
        orders = abba_orders(limit, rng) if baseline is not None else ["B"] * limit
        info = pool.workers[-1].info  # the candidate's own worker
        res = PairResult(rounds=[], first_inference_ms=first_ms, per_block=k, stop="", seconds=0.0,
                         runtime=info.get("runtime", ""), runtime_version=str(info.get("version", "")),
                         first_by_worker=by_worker)
        stop_check = should_stop if n_rounds is None else None
        res.stop = _rounds(pool, res, orders, ms, stop_check, check_from, on_round)
        res.seconds = time.perf_counter() - t0
        return res
    except WorkerCrashed as exc:
        if time.perf_counter() < pool.deadline - 0.25:
            raise
        raise WorkerCrashed(f"{Path(candidate).name}: no result within budget_s {ms.budget_s:g} s "
                            f"(+{ms.startup_s:g} s to start the workers); the model may hang ({exc})") from None
    finally:
        pool.close()


def _rounds(pool: _Workers, res: PairResult, orders: list[str], ms: MeasureSettings,
            should_stop: Callable[[PairResult], bool] | None, check_from: int,
            on_round: Callable[[int], None] | None) -> str:
    """Time the rounds into ``res.rounds`` (round r on worker ``worker_schedule``[r], its sides in ``orders``[r]);
    returns why they stopped."""
    serving = worker_schedule(len(orders), len(pool.workers))
    t_start = time.perf_counter()
    for r, order in enumerate(orders):
        w = serving[r]
        rec: dict = {"order": order}
        for side in order:
            if ms.block_warmup:
                pool.timed(w, side, ms.block_warmup)
            samples = pool.timed(w, side, res.per_block)
            rec[f"{pool.NAMES[side]}_ms"] = samples
            rec[f"{pool.NAMES[side]}_median_ms"] = float(np.median(samples))
        rec["worker"] = w
        res.rounds.append(rec)
        if on_round:
            on_round(r + 1)
        done = r + 1
        if should_stop is not None and done >= check_from and (done - check_from) % ms.round_step == 0 \
                and should_stop(res):
            return "verdict reached"
        if time.perf_counter() - t_start > ms.budget_s and done % 2 == 0:
            return f"time budget ({ms.budget_s:g} s) spent"
    return f"{len(orders)} rounds done"

