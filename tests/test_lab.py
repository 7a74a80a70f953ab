"""A device lab: several devices measured at once (hwnas.measure.lab), on fake adb phones (tests/fakes) with real
exports, real ONNX models and a real SQLite store; on real local Ray with one custom resource per device."""

import threading
import time

import pytest

from hwnas.errors import HwnasError
from hwnas.measure.device_profile import load_profile
from hwnas.measure.lab import RetryPolicy, check_lab, measure_devices_here, measure_devices_on_ray
from hwnas.measure.protocol import ProtocolSettings
from hwnas.spaces import create_space
from hwnas.store import MeasurementStore

from lab_fixtures import fake_lab, offline, online

SPACE = create_space("nb201", C=8, N=1)
ARCHS = [SPACE.from_index(i) for i in (1, 2, 3, 5)]
PROTO = ProtocolSettings.quick()


@pytest.fixture
def lab(tmp_path, monkeypatch, shared_export_cache):
    env, paths = fake_lab(tmp_path, {"p1": (1500, 0.0), "p2": (3000, 0.0), "p3": (4500, 0.0)})
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    profs = {name: load_profile(p) for name, p in paths.items()}
    return tmp_path, profs, MeasurementStore(tmp_path / "m.db"), {"cache_dir": shared_export_cache,
                                                                   "op_profile": False}


def _order(store, device):
    return [m.arch_id for m in store.query(device=device, latest=False)]


@pytest.mark.slow
def test_every_device_measures_the_same_archs_in_order_and_a_lost_one_is_reported(lab):
    root, profs, store, kw = lab
    offline(root, "p3")
    events = []
    runs = measure_devices_here(SPACE, ARCHS, list(profs.values()), store, PROTO,
                                retry=RetryPolicy(tries=2, first_wait_s=0.05),
                                on_event=lambda d, k, i: events.append((d, k)), **kw)
    assert [(r.device, r.ok, r.count("measured"), r.tries) for r in runs] == [
        ("p1", True, 4, 1), ("p2", True, 4, 1), ("p3", False, 0, 2)]
    assert "adb device p3 not connected" in runs[2].error and "gave up after 2 tries" in runs[2].error
    assert ("p3", "retry") in events and events.count(("p1", "measured")) == 4
    want = [a.arch_id for a in ARCHS]
    assert _order(store, "p1") == _order(store, "p2") == want  # comparable columns
    lat = {m.device: m.latency_ms for m in store.query()}
    assert lat["p1"] == pytest.approx(1.5, rel=0.01) and lat["p2"] == pytest.approx(3.0, rel=0.01)
    online(root, "p3")  # a rerun resumes every device where it stopped: p1, p2 skip, p3 measures
    again = measure_devices_here(SPACE, ARCHS, list(profs.values()), store, PROTO, **kw)
    assert [(r.count("measured"), r.count("skipped")) for r in again] == [(0, 4), (0, 4), (4, 0)]
    assert len(store.query(latest=False)) == 12 and _order(store, "p3") == want


def test_a_device_that_drops_off_midway_is_retried_and_resumes(lab):
    root, profs, store, kw = lab
    events = []

    def on_event(device, kind, info):
        events.append((device, kind))
        if (device, kind) == ("p1", "measured") and events.count(("p1", "measured")) == 2:
            offline(root, "p1")  # gone after its second arch, back a moment later
            threading.Timer(0.3, online, (root, "p1")).start()

    (run,) = measure_devices_here(SPACE, ARCHS, [profs["p1"]], store, PROTO,
                                  retry=RetryPolicy(tries=4, first_wait_s=0.2), on_event=on_event, **kw)
    assert run.ok and run.tries >= 2 and run.count("measured") == 4 and ("p1", "retry") in events
    assert _order(store, "p1") == [a.arch_id for a in ARCHS]  # none twice, none lost


def test_bad_lab_input():
    with pytest.raises(HwnasError, match="device host is named twice"):
        check_lab([load_profile("host"), load_profile("host")])
    assert [RetryPolicy(first_wait_s=2, max_wait_s=5).wait_s(n) for n in (1, 2, 3)] == [2, 4, 5]


@pytest.mark.slow
def test_devices_on_real_ray_each_on_its_own_resource(lab):
    ray = pytest.importorskip("ray")
    root, profs, store, kw = lab
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=1, resources={"device:p1": 1, "device:p2": 1}, include_dashboard=False, log_to_driver=False)
    try:
        with pytest.raises(HwnasError, match="no node of the Ray cluster declares device p3"):
            measure_devices_on_ray(SPACE, ARCHS, [profs["p1"], profs["p3"]], str(store.path), PROTO, **kw)
        events, held = [], []

        def on_event(device, kind, info):
            events.append((device, kind))
            if kind == "measured":  # while a device's worker runs, its one unit is taken: no second worker fits
                held.append(ray.available_resources().get(f"device:{device}", 0))

        started = time.monotonic()
        runs = measure_devices_on_ray(SPACE, ARCHS, [profs["p1"], profs["p2"]], str(store.path), PROTO,
                                      on_event=on_event, **kw)
        assert time.monotonic() - started < 120
        assert [(r.device, r.ok, r.count("measured")) for r in runs] == [("p1", True, 4), ("p2", True, 4)]
        assert events.count(("p1", "measured")) == 4 and ("p2", "end") in events  # progress reached the driver
        want = [a.arch_id for a in ARCHS]
        assert _order(store, "p1") == _order(store, "p2") == want
        assert held and set(held) == {0}
        deadline = time.monotonic() + 30  # and free again once the run is over
        while ray.available_resources().get("device:p1") != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ray.available_resources().get("device:p1") == 1
    finally:
        ray.shutdown()


def test_a_ray_address_is_checked_before_ray_waits_for_it():
    import socket

    from hwnas.errors import ParameterError
    from hwnas.ray_cluster import check_reachable

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        check_reachable(f"127.0.0.1:{port}")  # something answers: Ray takes it from here
        check_reachable(f"ray://127.0.0.1:{port}")
    check_reachable("auto")  # not host:port: left to Ray
    with pytest.raises(ParameterError, match=rf"address ray://127.0.0.1:{port}: no Ray cluster answers there"):
        check_reachable(f"ray://127.0.0.1:{port}")  # closed now
