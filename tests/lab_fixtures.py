"""A device lab on one machine for tests and benchmarks/lab.py: fake adb phones (tests/fakes/fake_adb.py, one
filesystem and one planted latency / delay per serial) and loopback agents (`hwnas agent serve`, a real one).

``fake_lab(root, phones={"p1": (latency_us, delay_s), ...})`` writes the `adb` wrapper and one profile YAML per
phone and returns (env, {name: yaml path}); ``offline(root, serial)`` / ``online(...)`` take a phone off the bus
and back. ``agent_profile(root, name, port)`` writes a profile for an agent on 127.0.0.1:port;
``start_agent(port)`` starts one (a process: kill -9 it to take the device down)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

FAKE = Path(__file__).resolve().parent / "fakes" / "fake_adb.py"
HWNAS = str(Path(sys.executable).with_name("hwnas"))

PHONE = """name: {name}
description: fake adb phone {name} (tests/fakes/fake_adb.py)
runtime: onnxruntime
threads: 1
delegate: cpu
precision: fp32
affinity: null
reference: none
connection:
  type: adb
  serial: {name}
  perf_test: /data/local/tmp/onnxruntime_perf_test
  remote_dir: /data/local/tmp/hwnas
  energy_duration_s: 0.1
energy:
  sensor: none
  power_model: {{name: fake-phone, idle_w: 0.0, active_w: 1.0, cores: 1}}
"""

AGENT = """name: {name}
description: loopback agent {name} (hwnas agent serve on 127.0.0.1:{port})
runtime: onnxruntime
threads: 1
precision: fp32
affinity: null
reference: none
connection: {{type: agent, host: 127.0.0.1, port: {port}, timeout_s: 60}}
energy:
  sensor: none
  power_model: {{name: fake-board, idle_w: 1.0, active_w: 2.0, cores: 1}}
"""


def fake_lab(root: Path, phones: dict) -> tuple[dict, dict]:
    """Phones ``{serial: (median latency us, seconds per tool run)}`` behind one fake `adb` on PATH."""
    root = Path(root)
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    wrapper = bin_dir / "adb"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {FAKE} \"$@\"\n")
    wrapper.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_ADB_ROOT": str(root / "bus"),
           "FAKE_ADB_PER_SERIAL": "1", "FAKE_ADB_DEVICES": ",".join(phones)}
    paths = {}
    for name, (latency_us, delay_s) in phones.items():
        env[knob("FAKE_ADB_LATENCY_US", name)] = str(latency_us)
        env[knob("FAKE_ADB_DELAY_S", name)] = str(delay_s)
        paths[name] = root / f"{name}.yaml"
        paths[name].write_text(PHONE.format(name=name))
    return env, paths


def knob(name: str, serial: str) -> str:
    """The environment variable of one phone's knob (tests/fakes/fake_adb.py)."""
    return f"{name}_{re.sub(r'[^A-Za-z0-9]', '_', serial)}"


def offline(root: Path, serial: str) -> None:
    (Path(root) / "bus" / "offline").mkdir(parents=True, exist_ok=True)
    (Path(root) / "bus" / "offline" / serial).touch()


def online(root: Path, serial: str) -> None:
    (Path(root) / "bus" / "offline" / serial).unlink(missing_ok=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def agent_profile(root: Path, name: str, port: int) -> Path:
    path = Path(root) / f"{name}.yaml"
    path.write_text(AGENT.format(name=name, port=port))
    return path


def start_agent(port: int, timeout: float = 60.0) -> subprocess.Popen:
    """A real `hwnas agent serve` on 127.0.0.1:port, answering /info before this returns."""
    import urllib.request

    proc = subprocess.Popen([HWNAS, "agent", "serve", "--port", str(port), "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/info", timeout=1).read()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"hwnas agent serve --port {port} exited with {proc.returncode}")
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"hwnas agent serve --port {port} did not answer in {timeout:g} s")
