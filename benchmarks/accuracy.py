"""Accuracy benchmark: how much can a short `train` accuracy be trusted?

On scikit-learn's bundled digits (offline), ``--archs`` distinct random architectures (seeded) of a search space
are each trained from scratch with ``hwnas.accuracy.training.train_arch`` on the train split, for ``--seeds``
seeds, on the CPU (1 thread). By default the space and recipe are those of the embedded demo
(``hwnas.search.config.DEFAULT_RECIPE``: what ``hwnas pareto-search`` runs with no arguments: its weight EMA, and
its ``train_seeds`` K give ``--seeds 2K --mean-of K``, the tau of the values the demo's search uses); ``--space``,
``--space-opt``, ``--epochs``, ``--max-train``, ``--lr``, ``--batch-size``, ``--ema`` (0 = off) change them. Printed:

- seed-to-seed Kendall tau of validation accuracy for every pair of seeds (median, mean, worst): the noise floor that
  any accuracy estimate of this recipe lives under; the target for the demo is >= 0.7 on >= 30 archs;
- val vs test Kendall tau (per seed): does selecting on validation rank archs the way the held-out test split does?
- the spread of accuracies, the median |difference| between two seeds of the same arch;
- seconds per candidate (one training + val and test evaluation), wall and CPU: mean, p90, max.

    python benchmarks/accuracy.py                        # the demo's space and recipe, 30 archs, 8 seeds, mean of 4
    python benchmarks/accuracy.py --archs-from runs/search-X --archs 100   # the archs a demo run evaluated
    python benchmarks/accuracy.py --space nb201 --space-opt C=8 --space-opt N=1 --space-opt input_size=8 \\
        --epochs 2 --seeds 2 --ema 0 --mean-of           # the demo before issue #22 (one training, no EMA)
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hwnas.accuracy.datasets import load_splits  # noqa: E402
from hwnas.accuracy.retrain import kendall_tau  # noqa: E402
from hwnas.accuracy.training import Recipe, train_arch  # noqa: E402
from hwnas.search.config import DEFAULT_RECIPE  # noqa: E402
from hwnas.spaces import create_space, parse_space_options  # noqa: E402


def sample_archs(space, n: int, seed: int) -> list:
    """``n`` distinct random archs (fewer only if the space is smaller)."""
    return space.sample_distinct(n, np.random.default_rng(seed))


def disjoint_groups(seeds: int, k: int) -> list[tuple[tuple, tuple]]:
    """Every unordered pair of disjoint ``k``-seed groups out of ``range(seeds)``."""
    groups = list(itertools.combinations(range(seeds), k))
    return [(a, b) for a, b in itertools.combinations(groups, 2) if not set(a) & set(b)]


def print_mean_of(val: np.ndarray, k: int, tau) -> None:
    """Seed-to-seed tau of the mean val accuracy of ``k`` seeds: what a candidate trained ``k`` times would rank."""
    pairs = disjoint_groups(val.shape[0], k)
    taus = [tau(val[list(a)].mean(0), val[list(b)].mean(0)) for a, b in pairs]
    shown = ", ".join(f"{''.join(map(str, a))}-{''.join(map(str, b))} {t:+.3f}" for (a, b), t in zip(pairs, taus))
    if len(pairs) > 10:
        shown = f"{len(pairs)} pairs, p10 {np.percentile(taus, 10):+.3f}"
    print(f"Kendall tau mean of {k} seeds vs mean of {k} other seeds (val; {len(pairs)} disjoint pairs): {shown}; "
          f"median {np.median(taus):+.3f}, mean {np.mean(taus):+.3f}, worst {np.min(taus):+.3f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=None, help="default: twice the demo's train_seeds (8)")
    ap.add_argument("--sample-seed", type=int, default=0, help="which random archs")
    ap.add_argument("--archs-from", type=Path, default=None,
                    help="a search's results directory: its evaluated archs (evaluations.csv) instead of random ones")
    ap.add_argument("--space", default=None, help="default: the demo's space (DEFAULT_RECIPE)")
    ap.add_argument("--space-opt", action="append", default=None, help="KEY=VALUE (default: the demo's)")
    ap.add_argument("--epochs", type=int, default=None, help="default: the demo's")
    ap.add_argument("--max-train", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--ema", type=float, default=None, metavar="D",
                    help="score an exponential moving average of the weights, decay D per step (Recipe.ema); "
                         "default: the demo's (0.9); 0 = off")
    ap.add_argument("--ema-bn", type=int, default=0, metavar="N",
                    help="with --ema: re-estimate batch norm of the averaged weights on N train images")
    ap.add_argument("--mean-of", type=int, nargs="*", default=None, metavar="K",
                    help="also print Kendall tau between the mean val accuracy of K seeds and that of K other "
                         "seeds (every disjoint pair of K-seed groups; needs --seeds >= 2K); several K allowed; "
                         "default: the demo's train_seeds (4); given alone: none")
    args = ap.parse_args(argv)

    demo = DEFAULT_RECIPE
    per = int(demo.get("train_seeds", 1))  # the headline: the tau of the values the demo's search uses
    args.seeds = args.seeds if args.seeds is not None else max(2, 2 * per)
    args.mean_of = args.mean_of if args.mean_of is not None else ([per] if per > 1 and args.seeds >= 2 * per else [])
    ema = demo.get("ema") if args.ema is None else (args.ema or None)
    name = args.space or demo["space"]
    if args.space_opt is not None:
        options = parse_space_options(args.space_opt)
    else:
        options = dict(demo.get("space_opt") or {}) if name == demo["space"] else {}
    space = create_space(name, **options)
    recipe = Recipe(epochs=args.epochs or demo.get("epochs", 3),
                    batch_size=args.batch_size or demo.get("batch_size", 64),
                    lr=args.lr or demo.get("lr", 0.05),
                    max_train=args.max_train if args.max_train is not None else demo.get("max_train"),
                    ema=ema, ema_bn_images=args.ema_bn)
    for k in args.mean_of:
        if not 1 <= k <= args.seeds // 2:
            ap.error(f"--mean-of {k} needs --seeds >= {2 * k}")
    splits = load_splits("digits", space.input_shape(), seed=0).unlock_test()
    if args.archs_from is not None:
        import csv

        with open(args.archs_from / "evaluations.csv", newline="") as f:
            archs = [space.from_string(r["arch"]) for r in csv.DictReader(f)][: args.archs]
    else:
        archs = sample_archs(space, args.archs, args.sample_seed)
    print(f"digits: {len(splits.train)} train / {len(splits.val)} val / {len(splits.test())} test images; "
          f"{name} {options}; {len(archs)} archs ({f'from {args.archs_from}' if args.archs_from else f'sample seed {args.sample_seed}'}) x {args.seeds} seeds; {recipe}")
    train_arch(space, archs[0], splits, Recipe(epochs=1, max_train=64), device="cpu")  # warm-up (not timed)
    val = np.zeros((args.seeds, len(archs)))
    test = np.zeros_like(val)
    wall, cpu = [], []
    for i, a in enumerate(archs):
        for s in range(args.seeds):
            t0, c0 = time.perf_counter(), time.process_time()
            r = train_arch(space, a, splits, recipe, device="cpu", seed=s, test=True)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            val[s, i], test[s, i] = r.val_accuracy, r.test_accuracy
        print(f"  [{i + 1:2d}/{len(archs)}] val {' '.join(f'{v:5.1f}' for v in val[:, i])}  "
              f"test {' '.join(f'{v:5.1f}' for v in test[:, i])}  {space.to_string(a)}", flush=True)
    def tau(a, b) -> float:  # undefined (nan) when one side is constant, e.g. every arch at chance
        t = kendall_tau(a, b)
        return float("nan") if t is None else t

    print(f"source: {r.source.replace(f'seed {s}', 'seeds 0-' + str(args.seeds - 1))}")
    print(f"accuracy range: val {val.min():.1f}-{val.max():.1f} % (mean {val.mean():.1f}), "
          f"test {test.min():.1f}-{test.max():.1f} %; mean |val - test| (same model) {np.abs(val - test).mean():.2f} points")
    for s in range(args.seeds):
        print(f"Kendall tau val vs test (seed {s}): {tau(val[s], test[s]):+.3f}")
    if args.seeds > 1:
        pairs = list(itertools.combinations(range(args.seeds), 2))
        taus = [tau(val[a], val[b]) for a, b in pairs]
        taus_test = [tau(test[a], test[b]) for a, b in pairs]
        diffs = np.concatenate([np.abs(val[a] - val[b]) for a, b in pairs])
        print("Kendall tau seed vs seed (val):  " + ", ".join(f"{a}-{b} {t:+.3f}" for (a, b), t in zip(pairs, taus))
              + f"; median {np.median(taus):+.3f}, mean {np.mean(taus):+.3f}, worst {np.min(taus):+.3f}")
        print("Kendall tau seed vs seed (test): " + ", ".join(f"{a}-{b} {t:+.3f}" for (a, b), t in zip(pairs, taus_test))
              + f"; mean {np.mean(taus_test):+.3f}")
        print(f"|val difference| between two seeds of one arch: median {np.median(diffs):.2f}, p90 "
              f"{np.percentile(diffs, 90):.2f}, max {diffs.max():.2f} points")
        print(f"Kendall tau mean-of-seeds val vs test: {tau(val.mean(0), test.mean(0)):+.3f}")
    for k in args.mean_of:
        print_mean_of(val, k, tau)
    print(f"seconds per candidate (train {recipe.epochs} epochs + val/test eval, 1 CPU thread): wall mean "
          f"{np.mean(wall):.2f}, p90 {np.percentile(wall, 90):.2f}, max {np.max(wall):.2f}; CPU mean {np.mean(cpu):.2f}, "
          f"p90 {np.percentile(cpu, 90):.2f}, max {np.max(cpu):.2f}; total wall {np.sum(wall):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
