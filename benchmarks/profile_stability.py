"""Run-to-run stability of `hwnas profile`, quiet and under a noisy neighbour, with and without each measure.

The same archs are profiled in PAIRS pairs of separate `hwnas profile` processes (fresh processes, each with
its own store; the two runs of a pair are minutes apart because the other conditions run in between), for

- condition ``quiet`` (nothing started by this script; the machine may still be shared: say so) and
  ``neighbour`` (a seeded CPU + memory-bandwidth load this script starts itself, pinned to the last core, the
  same duty pattern every time),
- setup ``unpinned`` (the OS places the worker) and ``pinned`` (the worker pinned to core 0, so the neighbour
  and the measurement do not share a core).

Every run times a drift reference ABAB between candidate rounds (the host profile's default), so one run
yields every measure at once: the raw latency under each estimator (median of all runs, median of round
medians, p10, 10 %-trimmed mean; all kept in the row's protocol report) and the drift-corrected latency.

Printed per (condition, setup, measure): the median and p90 of the run-to-run relative difference
|a - b| / mean(a, b) over all archs of all pairs, the same over archs of >= 0.5 ms (the target: median
<= 2 %, p90 <= 5 %), and the mean Spearman rank correlation between the runs of a pair.

    python benchmarks/profile_stability.py                         # 6 archs, 3 pairs, ~15 min on 2 cores
    python benchmarks/profile_stability.py --n 4 --pairs 2 --max-time-s 1.5   # quicker
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NEIGHBOUR = r"""
import os, sys, time
import numpy as np
core = int(sys.argv[1])
try:
    os.sched_setaffinity(0, {core})
except (AttributeError, OSError):
    pass
rng = np.random.default_rng(1234)                      # the same load pattern every time
a = rng.standard_normal(8 * 2 ** 20 // 8 * 4)           # 32 MB: larger than the caches -> memory bandwidth
b = np.empty_like(a)
period = 0.1
while True:
    duty = 0.5 + 0.4 * rng.random()                     # busy 50-90 % of each 100 ms period
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < duty * period:
        np.multiply(a, 1.0001, out=b)                    # streams 64 MB through memory
        a, b = b, a
    time.sleep(max(0.0, period - (time.perf_counter() - t0)))
"""

MEASURES = ("median", "median_of_rounds", "p10", "trimmed_mean", "corrected")


def start_neighbour(core: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", NEIGHBOUR, str(core)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def value(m, measure: str) -> float | None:
    if measure == "corrected":
        return m.latency_corrected_ms
    return ((m.fingerprint.get("protocol") or {}).get("estimates") or {}).get(measure)


def spearman(x, y) -> float:
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1]) if len(x) > 2 else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=6, help="archs (default 6: keeps the run near 15 min on 2 cores)")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--space", default="nb201")
    ap.add_argument("--space-opt", action="append", default=None, help="KEY=VALUE (default C=16, N=5: >= 0.5 ms)")
    ap.add_argument("--runtime", default="onnxruntime")
    ap.add_argument("--max-time-s", type=float, default=2.0)
    ap.add_argument("--conditions", default="quiet,neighbour")
    ap.add_argument("--setups", default="unpinned,pinned")
    ap.add_argument("--home", default="/tmp/hwnas-bench", help="HWNAS_HOME for the runs (export cache)")
    args = ap.parse_args(argv)
    space_opts = args.space_opt if args.space_opt is not None else ["C=16", "N=5"]
    conditions = [c for c in args.conditions.split(",") if c]
    setups = [s for s in args.setups.split(",") if s]

    os.environ["HWNAS_HOME"] = args.home
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    import yaml

    from hwnas.cli.common import make_space
    from hwnas.export import ExportSettings, export_arch
    from hwnas.measure.campaign import reference_arch
    from hwnas.measure.device_profile import load_profile
    from hwnas.runtimes import format_for
    from hwnas.store import MeasurementStore

    sp = make_space(args.space, space_opts)
    archs = sp.sample_distinct(args.n, np.random.default_rng(args.seed))
    work = Path(tempfile.mkdtemp(prefix="hwnas-stability-"))
    arch_file = work / "archs.txt"
    arch_file.write_text("\n".join(sp.to_string(a) for a in archs) + "\n")
    host = load_profile("host").to_dict()
    cores = sorted(os.sched_getaffinity(0))
    profiles = {"unpinned": work / "host-unpinned.yaml", "pinned": work / "host-pinned.yaml"}
    profiles["unpinned"].write_text(yaml.safe_dump({**host, "name": "host", "affinity": None, "reference": "auto"}))
    profiles["pinned"].write_text(yaml.safe_dump({**host, "name": "host", "affinity": [cores[0]], "reference": "auto"}))
    t0 = time.perf_counter()
    es = ExportSettings(format=format_for(args.runtime), precision="fp32")
    for a in list(archs) + [reference_arch(sp)]:
        export_arch(sp, a, es)
    print(f"profile_stability: {len(archs)} {sp.name} archs {sp.config()}, {args.runtime}, {args.pairs} pairs, "
          f"conditions {conditions}, setups {setups}, max_time_s {args.max_time_s}, cores {cores}, "
          f"load average at start {os.getloadavg()[0]:.1f}; exports {time.perf_counter() - t0:.0f} s")

    stores: dict[tuple, Path] = {}
    loads = []
    t_all = time.perf_counter()
    for pair in range(args.pairs):
        for rep in (0, 1):
            for cond in conditions:
                for setup in setups:
                    store = work / f"{cond}-{setup}-p{pair}-r{rep}.db"
                    cmd = [sys.executable, "-m", "hwnas", "profile", "--device", str(profiles[setup]), "--runtime",
                           args.runtime, "--archs", str(arch_file), "--store", str(store), "--space", args.space,
                           "--max-time-s", str(args.max_time_s), "--no-op-profile"]
                    for o in space_opts:
                        cmd += ["--space-opt", o]
                    nb = start_neighbour(cores[-1]) if cond == "neighbour" else None
                    try:
                        t0 = time.perf_counter()
                        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
                    finally:
                        if nb is not None:
                            nb.kill()
                            nb.wait()
                    loads.append(os.getloadavg()[0])
                    if proc.returncode != 0:
                        print(proc.stdout[-2000:], proc.stderr[-2000:])
                        return proc.returncode
                    stores[(cond, setup, pair, rep)] = store
                    print(f"  pair {pair} run {rep} {cond:<9} {setup:<8} {time.perf_counter() - t0:5.1f} s "
                          f"(load {loads[-1]:.1f})", flush=True)
    print(f"total {(time.perf_counter() - t_all) / 60:.1f} min, load average during the runs "
          f"{min(loads):.1f}..{max(loads):.1f}\n")

    header = (f"{'condition':<10} {'setup':<9} {'measure':<17} {'median |d|':>10} {'p90 |d|':>8} "
              f"{'>=0.5ms med':>11} {'>=0.5ms p90':>11} {'rank corr':>9} {'median ms':>9}")
    print(header)
    print("-" * len(header))
    for cond in conditions:
        for setup in setups:
            pairs = []
            for pair in range(args.pairs):
                a = {m.arch_id: m for m in MeasurementStore(stores[(cond, setup, pair, 0)]).query()}
                b = {m.arch_id: m for m in MeasurementStore(stores[(cond, setup, pair, 1)]).query()}
                pairs.append((a, b))
            for measure in MEASURES:
                diffs, big, rhos, lats = [], [], [], []
                for a, b in pairs:
                    keys = [k for k in sorted(set(a) & set(b))
                            if value(a[k], measure) is not None and value(b[k], measure) is not None]
                    x = np.array([value(a[k], measure) for k in keys])
                    y = np.array([value(b[k], measure) for k in keys])
                    if not keys:
                        continue
                    d = np.abs(x - y) / ((x + y) / 2)
                    diffs += list(d)
                    big += [di for di, xi, yi in zip(d, x, y) if (xi + yi) / 2 >= 0.5]
                    rhos.append(spearman(x, y))
                    lats += list((x + y) / 2)
                if not diffs:
                    continue
                fmt = lambda v: f"{v:.2%}" if v == v else "n/a"  # noqa: E731
                bm = np.median(big) if big else float("nan")
                bp = np.percentile(big, 90) if big else float("nan")
                print(f"{cond:<10} {setup:<9} {measure:<17} {fmt(np.median(diffs)):>10} "
                      f"{fmt(np.percentile(diffs, 90)):>8} {fmt(bm):>11} {fmt(bp):>11} {np.nanmean(rhos):>9.3f} "
                      f"{np.median(lats):>9.3f}")
    print(f"\nstores: {work}; target for >= 0.5 ms models: median |d| <= 2 %, p90 <= 5 %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
