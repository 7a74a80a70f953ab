"""Multi-fidelity for trained accuracy (issue 26): moasha vs plain mobo and nsga2 at equal total training epochs.

NB201 cells (C=8, N=1, 8x8 input, as search/default.yaml) trained on scikit-learn's digits (offline; no CIFAR-10 on
this machine), objectives error (validation, full recipe) + params (counted). Every strategy gets the same budget
in training epochs: mobo / nsga2 spend the full recipe (``--epochs``) per arch, so ``budget // epochs`` archs;
moasha spends its rungs: warm (the default; a promoted arch goes on from its rung's checkpoint) and cold
(``moasha-cold``: ``warm_start=false``, each rung retrained from scratch with its own schedule).

Figures per strategy, over seeds (mean and worst):
- HV: hypervolume of each run's full-fidelity front, normalised by the ideal / nadir of the union of every run's
  full-fidelity evaluations (reference point 1.1 after scaling), at half the budget and at the whole budget;
- tau: Kendall tau between the front's validation errors (seed 0) and the same archs trained again with the full
  recipe and training seed 1 (how far the front's ranking holds under full retraining);
- for moasha, tau1: Kendall tau between the 1-epoch (rung 0, as that variant trains it) and the full-recipe errors
  of the archs it promoted to full.

    python benchmarks/fidelity.py --seeds 3 --epochs 4 --budget 48
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def run_one(name, strategy_name, seed, epochs, budget, opts):
    from hwnas.evaluation import EvaluatorSpec, build_evaluator
    from hwnas.spaces import create_space
    from hwnas.strategies import create_strategy

    space = create_space("nb201", C=8, N=1, input_size=8)
    ev = build_evaluator(space, EvaluatorSpec(objectives=["error", "params"], accuracy="train:digits", epochs=epochs))
    strategy = create_strategy(strategy_name, **opts)
    units = budget if strategy_name == "moasha" else budget // epochs
    rows: list[dict] = []
    t0 = time.perf_counter()
    result = strategy.run(space, ev, units, np.random.default_rng(seed), rows.append)
    wall = time.perf_counter() - t0
    evals = result.evaluations
    if strategy_name == "moasha":  # epochs spent when each full evaluation was made (history rows)
        spent = [next(r["epochs_spent"] for r in rows if r["n_evals"] >= i + 1) for i in range(len(evals))]
    else:
        spent = [epochs * (i + 1) for i in range(len(evals))]
    return {"name": name, "seed": seed, "space": space, "ev": ev, "result": result, "spent": spent, "wall": wall}


def hv_at(run, limit, ideal, nadir):
    from hwnas.pareto import hypervolume, non_dominated_mask

    F = np.array([e.values for e, s in zip(run["result"].evaluations, run["spent"]) if s <= limit], dtype=float)
    if len(F) == 0:
        return 0.0
    F = F[non_dominated_mask(F)]
    Z = (F - ideal) / np.where(nadir > ideal, nadir - ideal, 1.0)
    return hypervolume(Z, np.full(Z.shape[1], 1.1))


def tau_front(run):
    from scipy.stats import kendalltau

    front = run["result"].pareto()
    if len(front) < 2:
        return float("nan")
    again, _ = run["ev"].accuracy.seed_values(run["space"], [e.arch for e in front], "error", seed=1)
    return float(kendalltau([e.values[0] for e in front], again).statistic)


def tau_low(run):
    from scipy.stats import kendalltau

    evals = run["result"].evaluations
    if len(evals) < 2:
        return float("nan")
    source = run["ev"].accuracy
    warm = run["result"].config.get("warm_start") is True
    low, _ = source.fidelity_values(run["space"], [e.arch for e in evals], "error", 1, warm=warm)
    source.keep_checkpoints([])
    return float(kendalltau(low, [e.values[0] for e in evals]).statistic)


def main() -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--budget", type=int, default=48, help="total training epochs per run")
    p.add_argument("--only", action="append", help="run only these strategies (repeatable; default: all)")
    a = p.parse_args()
    torch.set_num_threads(1)
    plans = {"moasha": ("moasha", {"eta": 3}), "moasha-cold": ("moasha", {"eta": 3, "warm_start": False}),
             "mobo": ("mobo", {}), "nsga2": ("nsga2", {"population_size": 4})}
    plans = {k: v for k, v in plans.items() if not a.only or k in a.only}
    runs = [run_one(n, k, s, a.epochs, a.budget, o) for s in range(a.seeds) for n, (k, o) in plans.items()]
    union = np.array([e.values for r in runs for e in r["result"].evaluations], dtype=float)
    ideal, nadir = union.min(axis=0), union.max(axis=0)
    print(f"NB201 C=8 N=1 8x8 on digits, error+params, {a.epochs}-epoch recipe, {a.budget} training epochs per run, "
          f"{a.seeds} seeds; HV normalised by the union of all runs' full-fidelity evaluations ({len(union)})")
    print(f"{'strategy':11} {'full evals':>10} {'HV@half mean/worst':>19} {'HV@all mean/worst':>18} "
          f"{'tau(front, seed 1) mean/worst':>30} {'tau(1 ep, full)':>16} {'wall s':>7}")
    for name in plans:
        mine = [r for r in runs if r["name"] == name]
        half = [hv_at(r, a.budget // 2, ideal, nadir) for r in mine]
        full = [hv_at(r, a.budget, ideal, nadir) for r in mine]
        taus = [tau_front(r) for r in mine]
        low = f"{np.nanmean([tau_low(r) for r in mine]):+.2f}" if name.startswith("moasha") else "-"
        print(f"{name:11} {np.mean([len(r['result'].evaluations) for r in mine]):10.1f} "
              f"{np.mean(half):9.3f}/{min(half):.3f} {np.mean(full):11.3f}/{min(full):.3f} "
              f"{np.nanmean(taus):+20.2f}/{np.nanmin(taus):+.2f} {low:>16} "
              f"{np.mean([r['wall'] for r in mine]):7.1f}")


if __name__ == "__main__":
    main()
