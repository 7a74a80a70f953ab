"""A device lab on one machine: 6 devices (4 fake adb phones, 2 loopback agents), the same archs on each, measured
one device after another and then all at once (one `hwnas profile --device ... x6`), with one agent killed
(`kill -9`) a third of the way into the parallel run and restarted a few seconds later.

The phones are tests/fakes/fake_adb.py: each has its own planted per-op latencies (an NB201 cell's latency on a
phone = its base + the sum of its six edges' op latencies, written per model file) and a planted delay (seconds
each run of onnxruntime_perf_test takes on the "phone"); the agents are real `hwnas agent serve` processes timing
the real ONNX models on this host. Both runs use the installed `hwnas` command, each into a fresh store, after one
export pass (so neither run pays for exports).

Prints: wall seconds one after another vs in parallel, the speed-up, rows stored (target: devices x archs), rows
stored twice, rows lost, and how many phone rows differ from their planted latency by more than 1 %.

    python benchmarks/lab.py                 # 6 devices x 120 archs (the issue's figure; long: about an hour here)
    python benchmarks/lab.py --archs 24      # a shorter run
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from lab_fixtures import HWNAS, agent_profile, fake_lab, free_port, knob, start_agent  # noqa: E402

OPS_US = {  # per phone: base, then per op (us): none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3
    "phone-a": (300, {"none": 0, "skip_connect": 5, "nor_conv_1x1": 120, "nor_conv_3x3": 410, "avg_pool_3x3": 60}),
    "phone-b": (500, {"none": 0, "skip_connect": 8, "nor_conv_1x1": 200, "nor_conv_3x3": 700, "avg_pool_3x3": 90}),
    "phone-c": (250, {"none": 0, "skip_connect": 4, "nor_conv_1x1": 90, "nor_conv_3x3": 300, "avg_pool_3x3": 45}),
    "phone-d": (800, {"none": 0, "skip_connect": 12, "nor_conv_1x1": 350, "nor_conv_3x3": 1200, "avg_pool_3x3": 150}),
}
SPACE_OPTS = ["--space-opt", "C=8", "--space-opt", "N=1", "--space-opt", "input_size=8"]
COMMON = ["--quick", "--no-op-profile", "--max-time-s", "0.3", "--retries", "5", "--retry-wait-s", "1"]


def planted_us(arch_text: str, phone: str) -> float:
    base, ops = OPS_US[phone]
    return base + sum(ops[op] for op in re.findall(r"\|(\w+)~\d", arch_text))


def setup(work: Path, n_archs: int, delay_s: float):
    """Archs (exported once), the phones with their planted latencies, two agents' ports and profiles."""
    import numpy as np

    from hwnas import export
    from hwnas.spaces import create_space

    sp = create_space("nb201", C=8, N=1, input_size=8)
    archs = [a for a in sp.sample_distinct(3 * n_archs, np.random.default_rng(0)) if sp.has_path(a)][:n_archs]
    (work / "archs.txt").write_text("".join(sp.to_string(a) + "\n" for a in archs))
    settings = export.ExportSettings(format="onnx", precision="fp32")
    env, paths = fake_lab(work, {p: (1000, delay_s) for p in OPS_US})
    for phone in OPS_US:
        folder = work / "planted" / phone
        folder.mkdir(parents=True, exist_ok=True)
        env[knob("FAKE_ADB_OP_PROFILES", phone)] = str(folder)
        for a in archs:
            model = export.export_arch(sp, a, settings)
            (folder / (model.name + ".us")).write_text(str(planted_us(sp.to_string(a), phone)))
    ports = {"board-a": free_port(), "board-b": free_port()}
    for name, port in ports.items():
        paths[name] = agent_profile(work, name, port)
    return sp, archs, env, paths, ports


def profile(devices, store: Path, env: dict, work: Path, show: bool = False) -> float:
    argv = [HWNAS, "profile", *(a for d in devices for a in ("--device", str(d))), "--archs", str(work / "archs.txt"),
            *SPACE_OPTS, *COMMON, "--store", str(store)]
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=work, env={**os.environ, **env}, capture_output=True, text=True)
    took = time.monotonic() - started
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"hwnas profile exited {proc.returncode}")
    if show:  # its summary: one row per device, with the tries each took
        print(proc.stdout.rstrip())
    return took


def kill_midway(agents: dict, name: str, port: int, store: Path, target: int, down_s: float, log: list) -> None:
    """Once ``target`` of its rows are stored: kill -9 the agent ``name``, start it again ``down_s`` later."""
    from hwnas.store import MeasurementStore

    while not (store.exists() and len(MeasurementStore(store).query(device=name, latest=False)) >= target):
        time.sleep(0.2)
    agents[name].kill()
    agents[name].wait()
    log.append(f"killed agent {name} (kill -9) once it had {target} rows ({len(MeasurementStore(store))} in all)")
    time.sleep(down_s)
    agents[name] = start_agent(port)
    log.append(f"restarted agent {name} {down_s:g} s later")


def count(store: Path, sp, archs, devices) -> dict:
    from hwnas.store import MeasurementStore

    rows = MeasurementStore(store).query(latest=False)
    keys = [(m.device, m.arch_id) for m in rows]
    want = {(d, a.arch_id) for d in devices for a in archs}
    text = {a.arch_id: sp.to_string(a) for a in archs}
    off = sum(abs(m.latency_ms * 1000 / planted_us(text[m.arch_id], m.device) - 1) > 0.01
              for m in rows if m.device in OPS_US)
    return {"rows": len(rows), "twice": len(keys) - len(set(keys)), "lost": len(want - set(keys)), "off": off}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", type=int, default=120, help="archs per device (default 120)")
    ap.add_argument("--delay-s", type=float, default=0.5, help="seconds each benchmark-tool run takes on a phone")
    ap.add_argument("--down-s", type=float, default=3.0, help="seconds the killed agent stays down")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hwnas-lab-"))
    os.environ["HWNAS_HOME"] = str(work / "home")
    sp, archs, env, paths, ports = setup(work, args.archs, args.delay_s)
    devices = list(paths)
    agents = {name: start_agent(port) for name, port in ports.items()}
    log: list[str] = []
    load = os.getloadavg()[0]
    try:
        one_by_one = sum(profile([paths[d]], work / "sequential.db", env, work) for d in devices)
        seq = count(work / "sequential.db", sp, archs, devices)
        killer = threading.Thread(target=kill_midway, args=(agents, "board-b", ports["board-b"], work / "lab.db",
                                                            max(1, len(archs) // 3), args.down_s, log))
        killer.start()
        together = profile([paths[d] for d in devices], work / "lab.db", env, work, show=True)
        killer.join()
        par = count(work / "lab.db", sp, archs, devices)
    finally:
        for proc in agents.values():
            proc.kill()
    print(f"{len(devices)} devices (4 fake adb phones, {args.delay_s:g} s per tool run; 2 loopback agents) x "
          f"{len(archs)} nb201 archs (C=8, N=1, input_size=8), quick protocol; {os.cpu_count()} CPUs, load "
          f"{load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print(f"one device after another: {one_by_one:.1f} s, rows {seq['rows']}, twice {seq['twice']}, lost "
          f"{seq['lost']}, phone rows off their planted latency {seq['off']}")
    print(f"all at once (one agent killed and restarted): {together:.1f} s, rows {par['rows']}, twice "
          f"{par['twice']}, lost {par['lost']}, phone rows off their planted latency {par['off']}")
    print(f"speed-up: {one_by_one / together:.2f}x; " + "; ".join(log))


if __name__ == "__main__":
    main()
