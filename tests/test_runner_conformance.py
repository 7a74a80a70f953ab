"""One protocol for every runner: the same planted round timings, driven through the local runner (a planted
worker), the adb runner (the fake `adb` on PATH, real code path) and the agent (a loopback ``AgentServer`` in this
process, over HTTP, measuring with the planted worker), give the same warm-up decision, the same number of rounds,
the same convergence and flags, and the same latency: ``measure.protocol.run_rounds`` decides them all."""

import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from hwnas.measure.device_profile import load_profile
from hwnas.measure.protocol import ProtocolSettings
from hwnas.measure.runners import local as local_mod
from hwnas.measure.runners.adb import AdbRunner
from hwnas.measure.runners.agent import AgentRunner, AgentServer
from hwnas.measure.runners.local import LocalRunner

FAKE = Path(__file__).parent / "fakes" / "fake_adb.py"
NONE = {"sensor": "none", "power_model": None}
BASE = ProtocolSettings(min_runs=10, min_rounds=3, round_ms=20.0, max_rounds=12, max_time_s=60.0, warmup_max_s=60.0)

# planted round centres (ms): round 0 is the probe, then warm-up rounds, then timed rounds (the last repeats);
# expected: (warm-up rounds, warm-up stable, timed rounds, converged, latency_ms)
SCENARIOS = {
    "settles after a slow start": ([3.0, 2.6, 2.2, 2.0, 2.0] + [2.0], BASE, (4, True, 3, True, 2.0)),
    # one slow timed round: the CI of the round medians holds it until 11 rounds push it out of the CI's ranks
    "one outlier round": ([2.0, 2.0, 2.0, 2.6] + [2.0], BASE, (2, True, 11, True, 2.0)),
    "noisy: never converges": ([2.0, 2.0, 2.0] + [2.0, 2.6] * 8, BASE, (2, True, 12, False, 2.3)),
    "warm-up cut by its cap": ([2.0, 2.5] + [2.0], replace(BASE, warmup_max_s=0.0), (1, False, 3, True, 2.0)),
}


class PlantedWorker:
    """Stands in for ``ModelWorker``: the kth call of ``time(n)`` returns n runs at the kth planted centre."""

    plan: list[float] = []

    def __init__(self, path, **kw):
        self.calls = 0
        self.first_inference_ms = 5.0
        self.info = {"runtime": "onnxruntime", "version": "planted", "threads": 1, "delegate": None, "pinned": None}

    def time(self, n: int, reference: bool = False) -> list[float]:
        v = self.plan[min(self.calls, len(self.plan) - 1)]
        self.calls += 1
        return [v] * int(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def _local(tmp_path, plan, proto, monkeypatch):
    monkeypatch.setattr(PlantedWorker, "plan", plan)
    monkeypatch.setattr(local_mod, "ModelWorker", PlantedWorker)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"onnx")
    prof = replace(load_profile("host"), energy=NONE, thermal={})
    return LocalRunner(sysfs_root=tmp_path / "nosys").run(model, prof, proto, op_profile=False)


def _agent(tmp_path, plan, proto, monkeypatch):
    monkeypatch.setattr(PlantedWorker, "plan", plan)
    monkeypatch.setattr(local_mod, "ModelWorker", PlantedWorker)  # the agent measures with measure_local
    model = tmp_path / "m.onnx"
    model.write_bytes(b"onnx")
    with AgentServer("127.0.0.1", 0, sysfs_root=tmp_path / "nosys") as server:
        p = load_profile("raspberry-pi-4").with_runtime("onnxruntime")
        p = replace(p, threads=1, energy=NONE, thermal={},
                    connection={"type": "agent", "host": "127.0.0.1", "port": server.port, "timeout_s": 60})
        return AgentRunner().run(model, p, proto, op_profile=False)


def _adb(tmp_path, plan, proto, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "adb").write_text(f"#!/bin/sh\nexec {sys.executable} {FAKE} \"$@\"\n")
    (bin_dir / "adb").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_ROOT", str(tmp_path / "phone"))
    monkeypatch.setenv("FAKE_ADB_PLAN_US", ",".join(str(int(v * 1000)) for v in plan))
    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3")
    prof = replace(load_profile("pixel"), energy=NONE, thermal={})
    return AdbRunner().run(model, prof, proto, op_profile=False)


RUNNERS = {"local": _local, "adb": _adb, "agent": _agent}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("runner", list(RUNNERS))
def test_every_runner_follows_the_same_protocol(runner, scenario, tmp_path, monkeypatch):
    plan, proto, (warm_rounds, warm_stable, rounds, converged, latency) = SCENARIOS[scenario]
    r = RUNNERS[runner](tmp_path, plan, proto, monkeypatch)
    p = r.protocol
    assert (p["warmup_rounds"], p["rounds"]) == (warm_rounds, rounds), p
    assert r.unstable == (not (warm_stable and converged))
    assert ("warm-up did not settle" in (p["unstable_reason"] or "")) == (not warm_stable)
    assert ("at the cap" in (p["unstable_reason"] or "")) == (not converged)
    assert r.latency_ms == pytest.approx(latency, rel=1e-9)
