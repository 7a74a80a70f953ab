"""The agent for real on loopback: a real HTTP server, a real ONNX model, measured through the agent."""

import json
import urllib.request
from dataclasses import replace

import pytest

from hwnas.measure.runners.agent import AgentRunner, AgentServer
from hwnas.measure.device_profile import load_profile
from hwnas.errors import HwnasError
from hwnas.measure.campaign import measure_archs
from hwnas.measure.protocol import DeviceUnreachable, ProtocolSettings
from hwnas.spaces import create_space
from hwnas.store import MeasurementStore


def _profile_for(server, **kw):
    # the shipped raspberry-pi-4 profile, pointed at the loopback agent and switched to onnxruntime (no
    # TFLite conversion in this test) with its power model, like a board without a sensor
    p = load_profile("raspberry-pi-4").with_runtime("onnxruntime")
    return replace(p, threads=1, connection={"type": "agent", "host": "127.0.0.1", "port": server.port,
                                             "timeout_s": 120}, **kw)


def test_unreachable_agent_is_a_clear_error(tmp_path):
    with AgentServer("127.0.0.1", 0) as server:
        port = server.port
    p = _profile_for(server)
    ok, why = AgentRunner().reachable(p)
    assert not ok and "no answer from the agent" in why
    model = tmp_path / "x.onnx"
    model.write_bytes(b"x")
    with pytest.raises(DeviceUnreachable, match=f"agent at http://127.0.0.1:{port}/measure is not reachable"):
        AgentRunner().run(model, p)


def test_agent_rejects_bad_requests_and_tokens():
    with AgentServer("127.0.0.1", 0, token="s3cret") as server:
        req = urllib.request.Request(server.url + "/info")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=5)
        assert info.value.code == 401
        p = _profile_for(server)
        assert AgentRunner(token="s3cret").reachable(p)[0]
        bad = urllib.request.Request(server.url + "/measure", data=json.dumps({"format": "pb"}).encode(),
                                     headers={"X-Hwnas-Token": "s3cret"}, method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(bad, timeout=5)
        assert info.value.code == 400 and "bad request" in json.loads(info.value.read())["error"]


@pytest.mark.slow
def test_profile_through_loopback_agent_matches_local(tmp_path, shared_export_cache):
    sp = create_space("nb201", C=4, N=1)
    arch = sp.from_index(7)
    proto = ProtocolSettings.quick()
    with AgentServer("127.0.0.1", 0) as server:
        prof = _profile_for(server)
        ok, why = AgentRunner().reachable(prof)
        assert ok and "agent http://127.0.0.1" in why
        store = MeasurementStore(tmp_path / "m.db")
        (via_agent,) = measure_archs(sp, [arch], prof, store, proto, cache_dir=shared_export_cache)
        # a model the agent cannot load comes back as a per-arch error, the agent keeps serving
        broken = tmp_path / "broken.onnx"
        broken.write_bytes(b"garbage")
        with pytest.raises(HwnasError, match="cannot load"):
            AgentRunner().run(broken, prof, proto)
        assert AgentRunner().reachable(prof)[0]
    (local,) = measure_archs(sp, [arch], "host", store, proto, cache_dir=shared_export_cache)
    assert via_agent.device == "raspberry-pi-4" and via_agent.source == "measured"
    assert via_agent.fingerprint["via"].startswith("agent http://127.0.0.1")
    assert via_agent.runtime == local.runtime == "onnxruntime" and via_agent.runtime_version == local.runtime_version
    assert via_agent.energy_source == "estimated:rpi4-board" and via_agent.energy_mj > 0
    assert via_agent.op_profile and via_agent.n_runs >= 10
    # same model, same host: the agent adds HTTP around the measurement, not into it
    assert 0.5 < via_agent.latency_ms / local.latency_ms < 2.0
