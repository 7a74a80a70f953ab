"""Parallel batches (issue 26): what `--executor ray --workers N` buys in wall time, and what mobo's batch costs.

(a) wall time: `hwnas pareto-search` (the installed command, as a subprocess) with mobo on NB201 cells (C=8, N=1,
    8x8 input, like search/default.yaml) trained for ``--epochs`` on scikit-learn's digits (1 torch intra-op thread
    per training), objectives error + params (a cheap cost, so `auto` picks mobo), ``--evals`` unique archs,
    trust_archs 0: in-process (1 worker) vs a local Ray of 2 and 4 workers (mobo's batch then follows the workers:
    10 and 8). Runs are interleaved (A B C A B C ...) because the machine is shared; the time includes starting Ray.
    Reported: median and worst wall time per setting, speed-up of the medians, and whether the evaluations were the
    same archs. A machine with K cores cannot speed up past K: check `nproc`.
(b) what the batch costs: mobo with batch_size q on the NB201 table problem of benchmarks/search.py (CIFAR-10 error
    vs a device's latency table, HV ratio against the exact front), ``--seeds`` seeds x ``--devices``, per budget.
    No timing there: q only changes which archs are picked between surrogate refits.

    python benchmarks/batch.py                       # both parts: 3 repeats x (1, 2, 4 workers); q = 1,2,4,10
    python benchmarks/batch.py --part time --repeats 3 --evals 24 --epochs 1
    python benchmarks/batch.py --part time --repeats 2 --epochs 4 --channels 32 --workers 1,2   # longer trainings
    python benchmarks/batch.py --part hv --qs 1,2,4,10 --budgets 100,300 --seeds 10 --devices pixel2,gold_6226
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
sys.path.insert(0, str(ROOT / "benchmarks"))
HWNAS = str(Path(sys.executable).with_name("hwnas"))


def one_search(workers: int, evals: int, epochs: int, out: Path, channels: int = 8) -> float:
    cmd = [HWNAS, "pareto-search", "--space", "nb201", "--space-opt", f"C={channels}", "--space-opt", "N=1", "--space-opt",
           "input_size=8", "--accuracy", "train", "--dataset", "digits", "--epochs", str(epochs), "--objective",
           "error", "--objective", "params", "--strategy", "mobo", "--budget", str(evals), "--trust-archs", "0",
           "--seed", "0", "--no-progress", "--out", str(out)]
    if workers > 1:
        cmd += ["--executor", "ray", "--workers", str(workers)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    return time.perf_counter() - t0


def part_time(args) -> None:
    settings = [int(w) for w in args.workers.split(",")]
    print(f"(a) wall time of {args.evals} evaluations, mobo, nb201 C={args.channels} N=1 8x8 trained {args.epochs} epoch(s) on "
          f"digits; {args.repeats} interleaved repeats; this machine has {os.cpu_count()} cores", flush=True)
    times: dict[int, list[float]] = {w: [] for w in settings}
    archs: dict[int, set] = {w: set() for w in settings}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for w in settings:
                out = Path(tmp) / f"w{w}-r{r}"
                times[w].append(one_search(w, args.evals, args.epochs, out, args.channels))
                rows = (out / "evaluations.csv").read_text().splitlines()[1:]
                archs[w].add(frozenset(row.split(",")[0] for row in rows))
                print(f"  repeat {r} workers {w}: {times[w][-1]:.1f} s", flush=True)
    base = float(np.median(times[settings[0]]))
    for w in settings:
        t = np.array(times[w])
        print(f"  workers {w}: median {np.median(t):.1f} s, worst {t.max():.1f} s, speed-up (medians) "
              f"{base / np.median(t):.2f}x; same archs every repeat: {len(archs[w]) == 1}")


def part_hv(args) -> None:
    from hwnas.evaluation import TableSource
    from hwnas.spaces import create_space
    from hwnas.strategies import create_strategy
    from search import DATA, Problem

    space = create_space("nb201")
    all_archs = space.all_archs()
    accuracy = TableSource(DATA / "accuracy_cifar10.csv")
    devices = args.devices.split(",")
    problems = [Problem(space, accuracy, DATA / "latency" / f"{d}.csv", d, all_archs) for d in devices]
    print(f"(b) HV ratio of mobo by batch size q; {args.seeds} seeds x {devices}", flush=True)
    for budget in [int(b) for b in args.budgets.split(",")]:
        for q in [int(q) for q in args.qs.split(",")]:
            t0, vals = time.perf_counter(), []
            for p in problems:
                for seed in range(args.seeds):
                    result = create_strategy("mobo", batch_size=q).run(space, p.evaluator(), budget,
                                                                      np.random.default_rng(seed))
                    vals.append(p.hv(np.array([e.values for e in result.pareto()])) / p.exact_hv)
            print(f"  budget {budget:4d} q {q:3d}: mean {np.mean(vals):.4f}  worst {np.min(vals):.4f}  "
                  f"({len(vals)} runs, {time.perf_counter() - t0:.0f} s)", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("time", "hv", "both"), default="both")
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--evals", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--channels", type=int, default=8, help="the cells' width C (training cost per evaluation)")
    ap.add_argument("--qs", default="1,2,4,10")
    ap.add_argument("--budgets", default="100,300")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--devices", default="pixel2,gold_6226")
    args = ap.parse_args(argv)
    if args.part in ("time", "both"):
        part_time(args)
    if args.part in ("hv", "both"):
        part_hv(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
