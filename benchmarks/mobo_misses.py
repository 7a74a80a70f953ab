"""Which exact-front points does ``mobo`` miss, at which budget, and what does each miss cost? (issue 26)

One run per seed at the largest budget; a smaller budget is its prefix (mobo's picks do not depend on the budget
until the last batch). Per run below ``--thresh``: each exact-front point not evaluated whose addition would raise
the HV ratio by >= 0.002, with how many cells share its latency, how many of those were evaluated, the best
error found there, and whether any functionally identical cell (same ``equivalence_key``) was evaluated.
``--quiet``: one ``RUN|instance|seed|budget|ratio`` line per run (for per-family aggregation), then the summary.

    python benchmarks/mobo_misses.py --problem constrained --device pixel2 --seeds 10 --budgets 100,300
    python benchmarks/mobo_misses.py --device gold_6226 --budgets 100 --param residual=gp --param ell=0.5
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import search as S  # benchmarks/search.py: the same problems, exact fronts and score
from hwnas.pareto import non_dominated_mask
from hwnas.strategies import create_strategy


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problem", default="constrained", choices=S.PROBLEMS)
    ap.add_argument("--device", action="append", help="repeatable (default: the five FULL_DEVICES)")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budgets", default="100,300")
    ap.add_argument("--param", action="append", default=[], help="mobo option KEY=VALUE, repeatable")
    ap.add_argument("--thresh", type=float, default=0.98, help="explain runs below this HV ratio")
    ap.add_argument("--quiet", action="store_true")
    return ap.parse_args(argv)


def explain(p, order, got, klass) -> None:
    """Print the exact-front points the first ``len(got)`` evaluations missed that cost >= 0.002 each."""
    V = p.values
    ok = np.all(np.isfinite(V), axis=1) & p.feasible(V)
    idx = np.flatnonzero(ok)
    found, base, seen = V[got], p.hv(V[got]), set(got.tolist())
    for i in idx[non_dominated_mask(V[idx])]:
        loss = (p.hv(np.vstack([found, V[i]])) - base) / p.exact_hv
        if i in seen or loss < 0.002:
            continue
        lat = V[i, 1:]
        same = np.flatnonzero(ok & np.all(V[:, 1:] == lat, axis=1))
        there = [j for j in got if np.all(V[j, 1:] == lat)]
        best = f"{min(V[there, 0]):.2f}" if there else "-"
        later = order.index(i) + 1 if i in order else "never"
        print(f"   missed error {V[i, 0]:.2f} at latency {np.round(lat, 3).tolist()}: costs {loss:.4f}; "
              f"{len(same)} cells at this latency, {len(there)} evaluated (best {best}); functional class "
              f"evaluated: {bool(np.isin(klass[i], klass[got]))}; evaluated as number {later} of {len(order)}")


def main(argv=None) -> int:
    a = parse_args(argv)
    params = {k: S.parse_value(v) for k, _, v in (x.partition("=") for x in a.param)}
    space = S.create_space("nb201")
    archs = space.all_archs()
    accuracy = S.TableSource(S.DATA / "accuracy_cifar10.csv")
    budgets = sorted(int(b) for b in a.budgets.split(","))
    problems = S.make_problems(a.problem, space, accuracy, S.DATA, a.device or list(S.FULL_DEVICES), archs,
                               "front", a.seeds)
    _, klass = np.unique([space.equivalence_key(x) for x in archs], return_inverse=True)
    position = {x.arch_id: i for i, x in enumerate(archs)}
    ratios = {b: [] for b in budgets}
    for p in problems:
        for seed in p.seeds:
            res = create_strategy("mobo", **params).run(space, p.evaluator(), budgets[-1], np.random.default_rng(seed))
            order = [position[e.arch.arch_id] for e in res.evaluations]
            for b in budgets:
                got = np.array(order[:b])
                r = p.hv(p.values[got]) / p.exact_hv
                ratios[b].append(r)
                if a.quiet:
                    print(f"RUN|{p.device}|{seed}|{b}|{r:.6f}", flush=True)
                elif r < a.thresh:
                    print(f"{p.device} seed {seed} budget {b}: HV ratio {r:.4f}")
                    explain(p, order, got, klass)
    for b in budgets:
        print(f"{a.problem} mobo {params or ''} budget {b}: mean {np.mean(ratios[b]):.4f} worst "
              f"{np.min(ratios[b]):.4f} ({len(ratios[b])} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
