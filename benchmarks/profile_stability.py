"""Run-to-run stability of `hwnas profile` on this host.

Profiles the same N archs (default 20) twice, each time in a separate `hwnas profile` process writing its
own store, for each runtime, and prints per runtime:

- the median relative difference of an arch's median latency between the two runs, |a - b| / mean(a, b)
  (target: <= 2 %),
- the median CV (std / mean of an arch's timed runs) and how many measurements were flagged unstable,
- archs profiled per minute (wall time of the `hwnas profile` process, exports already cached; the one-time
  export / conversion time is printed separately).

Defaults keep it quick: nb201 reduced to C=8, N=1, 20 archs, both runtimes. The benchmark's space:
`--space-opt C=16 --space-opt N=5` (slow: TFLite conversion takes ~15 s an arch here). Exports are cached
under --home (default /tmp/hwnas-bench), so a second invocation skips them.

    python benchmarks/profile_stability.py
    python benchmarks/profile_stability.py --n 10 --runtimes onnxruntime --space-opt C=4 --space-opt N=1 --max-time-s 2

The machine this runs on may be shared: other load shows up as run-to-run differences and unstable flags.
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--space", default="nb201")
    ap.add_argument("--space-opt", action="append", default=None, help="KEY=VALUE (default C=8, N=1)")
    ap.add_argument("--runtimes", default="onnxruntime,litert")
    ap.add_argument("--device", default="host")
    ap.add_argument("--max-time-s", type=float, default=5.0)
    ap.add_argument("--rel-ci", type=float, default=0.02)
    ap.add_argument("--home", default="/tmp/hwnas-bench", help="HWNAS_HOME for the runs (export cache)")
    ap.add_argument("--op-profile", action="store_true", help="also take op-level profiles (slower)")
    args = ap.parse_args(argv)
    space_opts = args.space_opt if args.space_opt is not None else ["C=8", "N=1"]

    os.environ["HWNAS_HOME"] = args.home
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    from hwnas.cli.common import make_space
    from hwnas.measure.device_profile import load_profile
    from hwnas.export import ExportSettings, export_arch
    from hwnas.runtimes import format_for
    from hwnas.store import MeasurementStore

    sp = make_space(args.space, space_opts)
    archs = sp.sample_distinct(args.n, np.random.default_rng(args.seed))
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    work = Path(tempfile.mkdtemp(prefix="hwnas-stability-"))
    arch_file = work / "archs.txt"
    arch_file.write_text("\n".join(sp.to_string(a) for a in archs) + "\n")
    prof = load_profile(args.device)
    print(f"profile_stability: {len(archs)} {sp.name} archs {sp.config()}, device {prof.name} "
          f"({prof.threads} thread(s)), runtimes {', '.join(runtimes)}, rel_ci {args.rel_ci}, max_time_s {args.max_time_s}")

    export_s = {}
    for rt in runtimes:
        t0 = time.perf_counter()
        for a in archs:
            export_arch(sp, a, ExportSettings(format=format_for(rt), precision=prof.precision))
        export_s[rt] = time.perf_counter() - t0

    wall: dict[tuple[str, int], float] = {}
    for run in (1, 2):
        for rt in runtimes:
            store = work / f"run{run}.db"
            cmd = [sys.executable, "-m", "hwnas", "profile", "--device", args.device, "--runtime", rt, "--archs",
                   str(arch_file), "--store", str(store), "--space", args.space, "--max-time-s", str(args.max_time_s),
                   "--rel-ci", str(args.rel_ci), "--op-profile" if args.op_profile else "--no-op-profile"]
            for o in space_opts:
                cmd += ["--space-opt", o]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            wall[(rt, run)] = time.perf_counter() - t0
            if proc.returncode != 0:
                print(proc.stdout[-2000:], proc.stderr[-2000:])
                return proc.returncode
            print(f"  run {run} {rt}: {wall[(rt, run)]:.1f} s")

    print()
    header = f"{'runtime':<12} {'archs':>5} {'median |diff|':>14} {'p90 |diff|':>11} {'median CV':>10} " \
             f"{'unstable':>9} {'archs/min':>10} {'export s':>9}"
    print(header)
    print("-" * len(header))
    for rt in runtimes:
        a = {m.arch_id: m for m in MeasurementStore(work / "run1.db").query(runtime=rt)}
        b = {m.arch_id: m for m in MeasurementStore(work / "run2.db").query(runtime=rt)}
        common = sorted(set(a) & set(b))
        diffs = np.array([abs(a[k].latency_ms - b[k].latency_ms) / ((a[k].latency_ms + b[k].latency_ms) / 2)
                          for k in common])
        cvs = [m.latency_cv for m in list(a.values()) + list(b.values()) if m.latency_cv is not None]
        unstable = sum(m.unstable for m in list(a.values()) + list(b.values()))
        per_min = len(archs) * 2 / ((wall[(rt, 1)] + wall[(rt, 2)]) / 60)
        version = next(iter(a.values())).runtime_version if a else "?"
        print(f"{rt:<12} {len(common):>5} {np.median(diffs):>13.2%} {np.percentile(diffs, 90):>10.2%} "
              f"{np.median(cvs):>10.3f} {unstable:>4}/{2 * len(common):<4} {per_min:>10.1f} {export_s[rt]:>9.1f}"
              f"   ({version})")
        med_lat = np.median([m.latency_ms for m in a.values()])
        both = [k for k in common if not a[k].unstable and not b[k].unstable]
        stable_diff = (f"{np.median([abs(a[k].latency_ms - b[k].latency_ms) / ((a[k].latency_ms + b[k].latency_ms) / 2) for k in both]):.2%}"
                       if both else "n/a")
        print(f"{'':<12} median latency {med_lat:.3f} ms; median |diff| over the {len(both)} archs stable in both "
              f"runs: {stable_diff}")
    print(f"\nstores: {work}/run1.db, {work}/run2.db; target: median |diff| <= 2%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
