"""Journeys (issue 28): `hwnas profile --device A --device B ...` as docs/lab.md types it, on a lab of fake adb phones
(tests/fakes/fake_adb.py) and a loopback `hwnas agent serve`: one progress line per device, a device off the bus
retried then reported (exit 1) while the others finish, a rerun that resumes each device where it stopped, and a
`kill -9` that loses nothing stored."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest

from hwnas.spaces import create_space
from hwnas.store import MeasurementStore

from journeys import HWNAS, run_hwnas, user_env
from lab_fixtures import agent_profile, fake_lab, free_port, knob, offline, online, start_agent

pytestmark = pytest.mark.journey

OPTS = ["--space-opt", "C=8", "--space-opt", "N=1", "--space-opt", "input_size=8"]
SPACE = create_space("nb201", C=8, N=1, input_size=8)


def _archs(tmp_path, indices):
    path = tmp_path / "archs.txt"
    path.write_text("\n".join(SPACE.to_string(SPACE.from_index(i)) for i in indices) + "\n")
    return path, [SPACE.from_index(i).arch_id for i in indices]


def _rows(store, device):
    return [m.arch_id for m in MeasurementStore(store).query(device=device, latest=False)]


def test_many_devices_one_command_a_lost_one_reported_then_resumed(tmp_path):
    env, phones = fake_lab(tmp_path, {"p1": (1200, 0.0), "p2": (2400, 0.0), "p3": (3600, 0.0)})
    port = free_port()
    agent = start_agent(port)
    offline(tmp_path, "p3")
    archs, want = _archs(tmp_path, [1, 2, 3])
    store = tmp_path / "m.db"
    devices = [a for p in (phones["p1"], phones["p2"], agent_profile(tmp_path, "board", port), phones["p3"])
               for a in ("--device", p)]
    cmd = ["profile", *devices, "--archs", archs, *OPTS, "--quick", "--no-op-profile", "--retries", "2",
           "--retry-wait-s", "0.1", "--store", store]
    try:
        ran = run_hwnas(cmd, cwd=tmp_path, mode="tty", env=env, columns=120, timeout=120)
    finally:
        agent.kill()
        agent.wait()
    assert ran.rc == 1, ran.text[-3000:]
    assert "error: 1 of 4 devices failed: p3: device p3 is not reachable: adb device p3 not connected" in ran.out
    assert "Traceback" not in ran.out
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", ran.out)
    for device, done in (("p1", 3), ("p2", 3), ("board", 3), ("p3", 0)):  # a progress line, a summary row each
        assert re.search(rf"{device} +[━╺╸ ]*{done}/3 .*(done|FAILED)", text), (device, text[-3000:])
        assert re.search(rf"│ {device} +│ (done|failed) ", text), device
    assert _rows(store, "p1") == _rows(store, "p2") == _rows(store, "board") == want  # comparable columns
    assert _rows(store, "p3") == []

    online(tmp_path, "p3")  # back on the bus: the rerun measures p3 only, everything else is skipped
    again = run_hwnas(["profile", "--device", phones["p1"], "--device", phones["p3"], "--archs", archs, *OPTS,
                       "--quick", "--no-op-profile", "--store", store], cwd=tmp_path, env=env, timeout=120)
    assert again.rc == 0, again.text[-3000:]
    assert _rows(store, "p3") == want and _rows(store, "p1") == want  # none twice


def test_kill_9_loses_nothing_stored_and_a_rerun_resumes(tmp_path):
    env, phones = fake_lab(tmp_path, {"p1": (1200, 0.02), "p2": (2400, 0.02)})
    archs, want = _archs(tmp_path, [1, 2, 3, 5, 6, 7])
    store = tmp_path / "m.db"
    cmd = [HWNAS, "profile", "--device", str(phones["p1"]), "--device", str(phones["p2"]), "--archs", str(archs),
           *OPTS, "--quick", "--no-op-profile", "--store", str(store)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=user_env(env), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (store.exists() and len(MeasurementStore(store)) >= 3):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = {d: _rows(store, d) for d in ("p1", "p2")}
    assert 3 <= sum(map(len, kept.values())) < 12
    for d, rows in kept.items():
        assert rows == want[: len(rows)]  # each device's prefix of the same order
    again = run_hwnas(cmd[1:], cwd=tmp_path, env=env, timeout=120)
    assert again.rc == 0, again.text[-3000:]
    assert _rows(store, "p1") == _rows(store, "p2") == want  # resumed: none lost, none twice


@pytest.mark.slow
def test_executor_ray_places_each_device_on_its_own_resource(tmp_path):
    pytest.importorskip("ray")
    env, phones = fake_lab(tmp_path, {"p1": (1200, 0.0), "p2": (2400, 0.0)})
    archs, want = _archs(tmp_path, [1, 2, 3])
    store = tmp_path / "m.db"
    ran = run_hwnas(["profile", "--executor", "ray", "--device", phones["p1"], "--device", phones["p2"], "--archs",
                     archs, *OPTS, "--quick", "--no-op-profile", "--store", store], cwd=tmp_path, env=env,
                    timeout=180)
    assert ran.rc == 0, ran.text[-3000:]
    assert "p1, p2; Ray actors" in ran.err and re.search(r"│ p2 +│ done +│ +3 │", ran.out)
    assert _rows(store, "p1") == _rows(store, "p2") == want


def test_ctrl_c_stops_every_device_and_keeps_what_was_stored(tmp_path):
    env, phones = fake_lab(tmp_path, {"p1": (1200, 0.02), "p2": (2400, 0.02)})
    archs, want = _archs(tmp_path, [1, 2, 3, 5, 6, 7])
    store = tmp_path / "m.db"
    cmd = ["profile", "--device", phones["p1"], "--device", phones["p2"], "--archs", archs, *OPTS, "--quick",
           "--no-op-profile", "--store", store]
    stopped = run_hwnas(cmd, cwd=tmp_path, env=env, timeout=120,
                        interrupt_when=lambda: store.exists() and len(MeasurementStore(store)) >= 2)
    assert stopped.rc == 130 and "everything finished so far is kept" in stopped.err, stopped.text[-2000:]
    kept = {d: _rows(store, d) for d in ("p1", "p2")}
    assert 2 <= sum(map(len, kept.values())) < 12 and all(rows == want[: len(rows)] for rows in kept.values())


def test_a_phone_too_hot_to_cool_down_is_a_thermal_stop_the_others_go_on(tmp_path):
    """A profile with `thermal: {on_timeout: stop}` whose phone stays above cooldown_c is a drop-off: nothing is
    measured hot, it is retried, then reported (exit 1) while the other phone finishes; cooled, a rerun measures it."""
    env, phones = fake_lab(tmp_path, {"p1": (1200, 0.0), "p2": (2400, 0.0)})
    with open(phones["p2"], "a") as f:
        f.write("thermal: {cooldown_c: 40, cooldown_timeout_s: 0.5, on_timeout: stop}\n")
    env[knob("FAKE_ADB_TEMPS", "p2")] = "61.5"
    archs, want = _archs(tmp_path, [1, 2, 3])
    store = tmp_path / "m.db"
    cmd = ["profile", "--device", phones["p1"], "--device", phones["p2"], "--archs", archs, *OPTS, "--quick",
           "--no-op-profile", "--retries", "2", "--retry-wait-s", "0.1", "--store", store]
    ran = run_hwnas(cmd, cwd=tmp_path, env=env, timeout=120)
    assert ran.rc == 1, ran.text[-3000:]
    assert ("error: 1 of 2 devices failed: p2: device p2: thermal stop: the hottest zone is 61.5 C, still above "
            "cooldown_c 40 C") in ran.err, ran.text[-3000:]
    assert "(gave up after 2 tries)" in ran.err and "Traceback" not in ran.text
    assert _rows(store, "p1") == want and _rows(store, "p2") == []  # nothing measured on the hot phone
    env[knob("FAKE_ADB_TEMPS", "p2")] = "38.0"  # cooled down: the rerun measures p2 only
    again = run_hwnas(cmd, cwd=tmp_path, env=env, timeout=120)
    assert again.rc == 0, again.text[-3000:]
    assert _rows(store, "p2") == want and _rows(store, "p1") == want


def test_a_ray_address_nothing_answers_is_one_line_at_once(tmp_path):
    """`--executor ray --address HOST:PORT` where no Ray head listens: exit 2 and one line naming the address within
    seconds (Ray itself retries for minutes), nothing measured."""
    pytest.importorskip("ray")
    env, phones = fake_lab(tmp_path, {"p1": (1200, 0.0)})
    archs, _ = _archs(tmp_path, [1])
    address = f"127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    ran = run_hwnas(["profile", "--executor", "ray", "--address", address, "--device", phones["p1"], "--archs",
                     archs, *OPTS, "--quick", "--store", tmp_path / "m.db"], cwd=tmp_path, env=env, timeout=60)
    assert ran.rc == 2 and time.monotonic() - t0 < 30, ran.text[-2000:]
    assert f"error: --address {address}: no Ray cluster answers there (Connection refused)" in ran.err
    assert "Traceback" not in ran.text and _rows(tmp_path / "m.db", "p1") == []
