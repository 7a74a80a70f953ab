"""Accuracy benchmark: how much can a short `train` accuracy be trusted?

On scikit-learn's bundled digits (offline), NB201 cells at C=8, N=1 on 8x8 inputs (the embedded default search
problem), ``--archs`` distinct random architectures (seeded) are each trained from scratch with
``hwnas.accuracy.training.train_arch`` on the train split, for ``--seeds`` seeds, on the CPU (1 thread). Printed:

- val vs test Kendall tau (seed 0): does selecting on validation rank archs the way the held-out test split does?
- seed-to-seed Kendall tau of standalone training (val, seed 0 vs seed 1; test likewise): the noise floor that
  any accuracy estimate of this recipe lives under;
- seconds per candidate (one training + val and test evaluation), mean and max, and the spread of accuracies.

    python benchmarks/accuracy.py                       # 30 archs, 2 epochs (the default search recipe), 2 seeds
    python benchmarks/accuracy.py --epochs 10 --archs 30
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hwnas.accuracy.datasets import load_splits  # noqa: E402
from hwnas.accuracy.retrain import kendall_tau  # noqa: E402
from hwnas.accuracy.training import Recipe, train_arch  # noqa: E402
from hwnas.spaces import create_space  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--sample-seed", type=int, default=0)
    args = ap.parse_args(argv)

    space = create_space("nb201", C=8, N=1, input_size=8)
    splits = load_splits("digits", space.input_shape(), seed=0).unlock_test()
    rng = np.random.default_rng(args.sample_seed)
    archs, seen = [], set()
    while len(archs) < args.archs:
        a = space.sample(rng)
        if a.arch_id not in seen:
            seen.add(a.arch_id)
            archs.append(a)
    recipe = Recipe(epochs=args.epochs)
    print(f"digits: {len(splits.train)} train / {len(splits.val)} val / {len(splits.test())} test images; "
          f"nb201 C=8 N=1 8x8; {args.archs} archs x {args.seeds} seeds; recipe {recipe}")
    train_arch(space, archs[0], splits, Recipe(epochs=1, max_train=64), device="cpu")  # warm-up (not timed)
    val = np.zeros((args.seeds, len(archs)))
    test = np.zeros_like(val)
    secs = []
    for i, a in enumerate(archs):
        for s in range(args.seeds):
            t0 = time.perf_counter()
            r = train_arch(space, a, splits, recipe, device="cpu", seed=s, test=True)
            secs.append(time.perf_counter() - t0)
            val[s, i], test[s, i] = r.val_accuracy, r.test_accuracy
        print(f"  [{i + 1:2d}/{len(archs)}] val {' '.join(f'{v:5.1f}' for v in val[:, i])}  "
              f"test {' '.join(f'{v:5.1f}' for v in test[:, i])}  {space.to_string(a)}", flush=True)
    print(f"source: {r.source.replace(f'seed {s}', 'seeds 0-' + str(args.seeds - 1))}")
    print(f"accuracy range: val {val.min():.1f}-{val.max():.1f} %, test {test.min():.1f}-{test.max():.1f} %; "
          f"mean |val - test| (same model) {np.abs(val - test).mean():.2f} points")
    for s in range(args.seeds):
        print(f"Kendall tau val vs test (seed {s}): {kendall_tau(val[s], test[s]):+.3f}")
    if args.seeds > 1:
        print(f"Kendall tau seed 0 vs seed 1 (val):  {kendall_tau(val[0], val[1]):+.3f}")
        print(f"Kendall tau seed 0 vs seed 1 (test): {kendall_tau(test[0], test[1]):+.3f}")
        print(f"Kendall tau mean-of-seeds val vs test: {kendall_tau(val.mean(0), test.mean(0)):+.3f}")
    print(f"seconds per candidate (train {args.epochs} epochs + val/test eval, 1 CPU thread): "
          f"mean {np.mean(secs):.2f}, max {np.max(secs):.2f}, total {np.sum(secs):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
