import numpy as np
import pytest

from hwnas.measure.device_profile import load_profile
from hwnas.errors import HwnasError
from hwnas.measure.campaign import measure_archs, measurement_settings
from hwnas.measure.protocol import (DeviceUnreachable, MeasurementFailed, ProtocolSettings, RunResult, median_ci,
                                    run_protocol, summarize)
from hwnas.spaces import create_space
from hwnas.store import MeasurementStore


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def sampler(rng, clock, centre=2.0, sd=0.02, drift=None):
    """Synthetic latencies (ms); the fake clock advances by the time they would take."""
    calls = {"n": 0}

    def sample(n):
        base = centre if drift is None else drift(calls["n"])
        calls["n"] += n
        x = np.abs(rng.normal(base, sd * base, n)).tolist()
        clock.t += sum(x) / 1e3
        return x

    return sample


def test_summarize_and_median_ci():
    x = list(range(1, 101))  # 1..100
    s = summarize(x)
    assert s.median_ms == pytest.approx(50.5) and s.n_runs == 100
    assert s.p90_ms == pytest.approx(90.1) and s.iqr_ms == pytest.approx(49.5)
    assert s.cv == pytest.approx(np.std(x, ddof=1) / np.mean(x))
    lo, hi = median_ci(sorted(x))
    assert lo < 50.5 < hi and 38 <= lo <= 42 and 59 <= hi <= 63


def test_protocol_converges_on_stable_timings(rng):
    clock = FakeClock()
    res = run_protocol(sampler(rng, clock), ProtocolSettings(), first_inference_ms=9.0, clock=clock)
    assert res.converged and not res.unstable and res.warmup_stable
    assert res.stats.median_ms == pytest.approx(2.0, rel=0.01)
    assert res.stats.ci_rel <= 0.02 and res.stats.n_runs >= 20
    assert res.first_inference_ms == 9.0


def test_protocol_flags_noisy_timings_as_unstable(rng):
    clock = FakeClock()
    s = ProtocolSettings(max_time_s=0.5, rel_ci=0.005)
    res = run_protocol(sampler(rng, clock, sd=0.6), s, clock=clock)
    assert not res.converged and res.unstable
    assert "CI of the median" in res.report(s)["unstable_reason"]
    assert res.timed_s >= 0.5


def test_drift_between_rounds_is_caught_by_the_round_median_ci(rng):
    clock = FakeClock()
    levels = iter(2.0 * (1 + 0.06 * rng.standard_normal(10_000)))

    def drifting(n):  # each call (round) sits at its own level: a load that comes and goes
        level = next(levels)
        x = (level * (1 + 0.001 * rng.standard_normal(n))).tolist()
        clock.t += sum(x) / 1e3
        return x

    s = ProtocolSettings(max_time_s=3.0, warmup_max_s=0.2)
    res = run_protocol(drifting, s, clock=clock)
    assert res.unstable and res.round_ci_rel > 0.02
    assert res.report(s)["round_ci_rel"] > 0.02


def test_warmup_runs_until_stable(rng):
    clock = FakeClock()
    # first 300 runs are slow and settling (cold caches), then steady at 2 ms
    res = run_protocol(sampler(rng, clock, sd=0.005, drift=lambda n: 2.0 + 3.0 * max(0, 300 - n) / 300),
                       ProtocolSettings(), clock=clock)
    assert res.warmup_runs > 100 and res.warmup_stable
    assert res.stats.median_ms == pytest.approx(2.0, rel=0.02)


def test_protocol_settings_validation():
    with pytest.raises(HwnasError, match="rel_ci"):
        ProtocolSettings(rel_ci=0)
    with pytest.raises(HwnasError, match="min_runs"):
        ProtocolSettings(min_runs=2)


class ScriptedRunner:
    """A runner double for the store/resume logic (the real runners have their own tests)."""

    def __init__(self, fail_on=(), unreachable_after=None):
        self.calls = 0
        self.fail_on = set(fail_on)
        self.unreachable_after = unreachable_after

    def reachable(self, profile):
        return True, "scripted"

    def run(self, path, profile, protocol=None, op_profile=True, reference=None):
        self.calls += 1
        if self.unreachable_after is not None and self.calls > self.unreachable_after:
            raise DeviceUnreachable("device host: gone")
        if self.calls in self.fail_on:
            raise HwnasError("worker for x.onnx died (exit code -11)")
        return RunResult(latency_ms=1.0 + self.calls, latency_p90_ms=2.0, latency_iqr_ms=0.1, latency_cv=0.01,
                         n_runs=50, first_inference_ms=3.0, unstable=False, runtime=profile.runtime,
                         runtime_version="x", threads=1, delegate=None, protocol={"ci_rel": 0.01})


@pytest.fixture
def tiny(tmp_path, shared_export_cache):
    sp = create_space("nb201", C=4, N=1)
    return sp, sp.sample_distinct(3, np.random.default_rng(1)), MeasurementStore(tmp_path / "m.db"), shared_export_cache


def test_measure_archs_stores_resumes_and_records_failures(tiny, tmp_path):
    sp, archs, store, cache = tiny
    runner = ScriptedRunner(fail_on={2})
    errors = []
    out = measure_archs(sp, archs, "host", store, runner=runner, cache_dir=cache,
                        on_error=lambda a, msg: errors.append((a, msg)))
    assert len(out) == 2 and len(store) == 2 and errors[0][0] == archs[1]
    assert "died" in store.failures()[0]["error"]
    m = out[0]
    assert (m.source, m.device, m.space, m.runtime) == ("measured", "host", "nb201", "onnxruntime")
    assert m.settings == measurement_settings(sp, load_profile("host"))
    assert m.settings["space"] == {"C": 4, "N": 1, "input_size": 32, "num_classes": 10}
    assert m.fingerprint["protocol"] == {"ci_rel": 0.01}
    # resume: only the failed arch is measured again
    runner2 = ScriptedRunner()
    out2 = measure_archs(sp, archs, "host", store, runner=runner2, cache_dir=cache)
    assert runner2.calls == 1 and len(out2) == 3 and len(store) == 3
    assert [m.arch_id for m in out2] == [a.arch_id for a in archs]


def test_failures_raise_at_the_end_without_on_error(tiny):
    sp, archs, store, cache = tiny
    with pytest.raises(MeasurementFailed, match="1 of 3 archs could not be measured on host .the rest are stored"):
        measure_archs(sp, archs, "host", store, runner=ScriptedRunner(fail_on={1}), cache_dir=cache)
    assert len(store) == 2


def test_unreachable_device_stops_but_keeps_results(tiny, tmp_path):
    sp, archs, store, cache = tiny
    with pytest.raises(DeviceUnreachable):
        measure_archs(sp, archs, "host", store, runner=ScriptedRunner(unreachable_after=2), cache_dir=cache)
    assert len(store) == 2


def test_interrupt_keeps_results(tiny, tmp_path):
    sp, archs, store, cache = tiny

    class Interrupting(ScriptedRunner):
        def run(self, *a, **k):
            if self.calls == 2:
                raise KeyboardInterrupt
            return super().run(*a, **k)

    with pytest.raises(KeyboardInterrupt):
        measure_archs(sp, archs, "host", store, runner=Interrupting(), cache_dir=cache)
    assert len(store) == 2


@pytest.mark.slow
def test_local_runner_measures_a_real_onnx_model(tmp_path, shared_export_cache):
    cache = shared_export_cache
    sp = create_space("nb201", C=4, N=1)
    store = MeasurementStore(tmp_path / "m.db")
    archs = [sp.from_index(1)]
    from hwnas.measure.runners.local import LocalRunner

    # energy from a fake RAPL tree (the sysfs root is injectable): a counter that does not move -> 0 mJ, measured
    rapl = tmp_path / "sys/class/powercap/intel-rapl:0"
    rapl.mkdir(parents=True)
    (rapl / "energy_uj").write_text("123456\n")
    (m,) = measure_archs(sp, archs, "host", store, ProtocolSettings.quick(), cache_dir=cache,
                         runner=LocalRunner(sysfs_root=tmp_path))
    assert m.energy_source == "measured:rapl" and m.energy_mj == 0.0
    assert m.latency_ms > 0 and m.n_runs >= 10 and m.first_inference_ms > 0
    assert m.latency_p90_ms >= m.latency_ms and m.latency_iqr_ms >= 0 and m.latency_cv >= 0
    assert m.runtime == "onnxruntime" and m.runtime_version.count(".") >= 1
    assert m.fingerprint["cores"] and m.fingerprint["protocol"]["rel_ci_target"] == 0.02
    ops = m.op_profile
    assert ops and {"Conv"} <= {o["op_type"] for o in ops} and all(o["ms"] >= 0 for o in ops)
    assert store.query()[0].op_profile == ops


@pytest.mark.slow
def test_crashing_model_is_recorded_and_the_run_goes_on(tmp_path, monkeypatch, shared_export_cache):
    cache = shared_export_cache
    from hwnas.measure.runners.local import LocalRunner

    sp = create_space("nb201", C=4, N=1)
    archs = [sp.from_index(1), sp.from_index(2)]
    import hwnas.export as export_mod

    real = export_mod.export_arch

    def export_with_a_broken_file(space, arch, settings, **kw):
        path = real(space, arch, settings, **kw)
        if arch == archs[0]:
            bad = tmp_path / "broken.onnx"
            bad.write_bytes(b"\x08\x07garbage")
            return bad
        return path

    monkeypatch.setattr(export_mod, "export_arch", export_with_a_broken_file)
    store = MeasurementStore(tmp_path / "m.db")
    errors = []
    out = measure_archs(sp, archs, "host", store, ProtocolSettings.quick(), runner=LocalRunner(),
                        cache_dir=cache, op_profile=False, on_error=lambda a, e: errors.append(e))
    assert [m.arch_id for m in out] == [archs[1].arch_id]
    assert len(errors) == 1 and "cannot load" in errors[0]
