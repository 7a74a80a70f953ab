"""The A/B measurement design of ci-check (hwnas.ci.ab) with fake workers: which worker measures which model in
each round, and that a constant per-process speed offset cancels (issue 15 follow-up)."""

from pathlib import Path

import numpy as np
import pytest

from hwnas.ci.ab import MeasureSettings, abba_orders, measure, worker_schedule
from hwnas.ci.stats import FAIL, PASS, Thresholds, compare_rounds, decide
from hwnas.measure.device_profile import load_profile

A, B = Path("base.onnx"), Path("cand.onnx")


class FakeWorker:
    """A process holding ``paths``: latency = the model's own ms x this process's bias x shared load x noise."""

    def __init__(self, farm, wid: int, paths, timeout_s: float):
        self.farm, self.wid, self.paths, self.timeout_s = farm, wid, list(paths), timeout_s
        self.info = {"runtime": "fake", "version": "0"}
        self.first_inference_ms = 10.0 + wid
        self.closed = False

    def time(self, n: int, reference: bool = False) -> list[float]:
        farm, path = self.farm, self.paths[1 if reference else 0]
        farm.calls.append((self.wid, path, n))
        farm.load *= float(np.exp(farm.rng.normal(0.0, 0.02)))  # slow drift of the machine's load
        farm.load = min(max(farm.load, 0.8), 1.25)
        noise = np.exp(farm.rng.normal(0.0, 0.03, n))
        return list(farm.ms[path] * farm.bias[self.wid] * farm.load * noise)

    def close(self) -> None:
        self.closed = True


class FakeFarm:
    """Opens fake workers in order (worker 0, 1, ...), each with a fixed speed bias."""

    def __init__(self, ms: dict, bias=(1.0, 1.15), seed: int = 0):
        self.ms, self.bias = ms, bias
        self.rng = np.random.default_rng(seed)
        self.load = 1.0
        self.calls: list[tuple[int, Path, int]] = []
        self.workers: list[FakeWorker] = []

    def open(self, path, device, seed, timeout_s=300.0, reference=None):
        w = FakeWorker(self, len(self.workers), [path] + ([reference] if reference is not None else []), timeout_s)
        self.workers.append(w)
        return w


@pytest.fixture(scope="module")
def host():
    return load_profile("host")


SETTINGS = MeasureSettings(warmup_s=0.0, block_warmup=2, budget_s=1e6, n_boot=1000, seed=3)


def test_worker_schedule_alternates_abba_pairs():
    assert worker_schedule(10) == [0, 0, 1, 1, 0, 0, 1, 1, 0, 0]
    assert worker_schedule(4, n_workers=1) == [0, 0, 0, 0]
    s = worker_schedule(40)
    for i in range(0, 40, 4):  # every step of 4 rounds: each worker serves one ABBA pair
        assert sorted(s[i:i + 4]) == [0, 0, 1, 1]


def test_each_round_measures_both_models_in_one_worker(host):
    farm = FakeFarm({A: 2.0, B: 2.0})
    res = measure(B, A, host, SETTINGS, np.random.default_rng(7), n_rounds=12, open_worker=farm.open)
    # both workers hold both models; worker 0 has A as its own model (B as reference), worker 1 B
    assert [w.paths for w in farm.workers] == [[A, B], [B, A]]
    assert all(w.closed for w in farm.workers)
    orders = abba_orders(12, np.random.default_rng(7))
    assert [r["order"] for r in res.rounds] == orders
    assert [r["worker"] for r in res.rounds] == worker_schedule(12)
    # first each worker warms up each model (one call of 3 inferences at warmup_s=0), then the rounds
    assert [(c[0], c[1], c[2]) for c in farm.calls[:4]] == [(0, A, 3), (0, B, 3), (1, B, 3), (1, A, 3)]
    timed = farm.calls[4:][1::2]
    assert all(c[2] == res.per_block for c in timed)
    expected = [(w, {"A": A, "B": B}[side]) for order, w in zip(orders, worker_schedule(12)) for side in order]
    assert [(c[0], c[1]) for c in timed] == expected
    # every timed block is preceded by its discarded warm-up block on the same worker and model
    blocks = farm.calls[4:]
    assert [(c[0], c[1]) for c in blocks[0::2]] == [(c[0], c[1]) for c in blocks[1::2]]
    assert all(c[2] == 2 for c in blocks[0::2])
    # first inferences: each model in the worker that holds it as its own; every worker's in the report
    assert res.first_inference_ms == {"baseline": 10.0, "candidate": 11.0}
    d = res.to_dict(SETTINGS.block_warmup)
    assert d["workers"] == 2 and len(d["first_inference_ms_by_worker"]) == 2 and "schedule" in d


def _verdict(base, cand, delta):
    st = compare_rounds(base, cand, delta, True, np.random.default_rng(0), n_boot=1000)
    return decide(st, Thresholds(delta=delta))[0], st


@pytest.mark.parametrize("seed", range(5))
def test_a_constant_process_offset_is_no_false_alarm(host, seed):
    # the same model in both workers, worker 1 15% slower for the whole check
    farm = FakeFarm({A: 2.0, B: 2.0}, bias=(1.0, 1.15), seed=seed)
    res = measure(B, A, host, SETTINGS, np.random.default_rng(seed), n_rounds=24, open_worker=farm.open)
    verdict, st = _verdict(res.medians("baseline"), res.medians("candidate"), 0.025)
    assert verdict == PASS, st
    assert abs(st.ratio - 1.0) < 0.02
    # the old design (baseline in worker 0, candidate in worker 1) sees the offset as a 15% regression
    old = FakeFarm({A: 2.0, B: 2.0}, bias=(1.0, 1.15), seed=seed)
    wa, wb = old.open(A, host, 0), old.open(B, host, 0)
    base = [float(np.median(wa.time(10))) for _ in range(24)]
    cand = [float(np.median(wb.time(10))) for _ in range(24)]
    assert _verdict(base, cand, 0.025)[0] == FAIL


def test_a_real_slowdown_is_still_caught_under_the_offset(host):
    farm = FakeFarm({A: 2.0, B: 2.2}, bias=(1.15, 1.0), seed=1)
    res = measure(B, A, host, SETTINGS, np.random.default_rng(1), n_rounds=24, open_worker=farm.open)
    verdict, st = _verdict(res.medians("baseline"), res.medians("candidate"), 0.025)
    assert verdict == FAIL and 1.07 < st.ratio < 1.13, st


def test_candidate_only_uses_one_worker(host):
    farm = FakeFarm({B: 1.0})
    res = measure(B, None, host, SETTINGS, np.random.default_rng(0), n_rounds=4, open_worker=farm.open)
    assert len(farm.workers) == 1 and [r["worker"] for r in res.rounds] == [0, 0, 0, 0]
    assert res.first_inference_ms == {"candidate": 10.0} and "baseline_median_ms" not in res.rounds[0]
