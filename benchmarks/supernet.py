"""Supernet benchmark: does a weight-sharing supernet rank subnets like standalone training does, and how much cheaper?

On scikit-learn's digits (offline): draw ``--archs`` distinct architectures (seeded), train each standalone
from scratch with ``--seeds`` seeds (hwnas.accuracy.training.train_and_test on the supernet's own train split,
scored on its validation split), train one supernet (hwnas.accuracy.supernet.train_supernet), and score every
arch from it (inherit weights, batch-norm recalibration on 500 fixed training images, validation split).

Reported: Kendall tau between supernet accuracy and standalone accuracy (per seed, and vs the seed mean), the
seed-to-seed tau of standalone training (the ceiling any cheap estimate can reach), seconds per subnet evaluation
vs seconds per standalone training, and the supernet's training time. Everything runs on 1 CPU thread; seconds
are CPU seconds of this process (``time.process_time``), so other jobs on a shared machine do not inflate them.

    python benchmarks/supernet.py --space nb201                      # C=8, N=1, 8x8 input
    python benchmarks/supernet.py --space mobilenet --archs 30 --standalone-epochs 3 --lr 0.1 --supernet-epochs 20   # ~25 CPU min
    python benchmarks/supernet.py --space nb201 --archs 30 --seeds 2 --standalone-epochs 3 --supernet-epochs 80 --bn-images 200
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hwnas.accuracy.datasets import Dataset  # noqa: E402
from hwnas.accuracy.supernet import supernet_values, train_supernet  # noqa: E402
from hwnas.accuracy.supernet.data import splits_for  # noqa: E402
from hwnas.accuracy.training import train_and_test  # noqa: E402
from hwnas.spaces import create_space  # noqa: E402

SETTINGS = {"nb201": {"C": 8, "N": 1, "input_size": 8},
            "mobilenet": {"input_size": 32, "num_classes": 10, "width_mult": 0.25}}


def kendall(a, b) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", choices=sorted(SETTINGS), default="nb201")
    ap.add_argument("--archs", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--standalone-epochs", type=int, default=3)
    ap.add_argument("--supernet-epochs", type=int, default=80)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05, help="standalone training learning rate")
    ap.add_argument("--supernet-lr", type=float, default=0.05, help="supernet training learning rate")
    ap.add_argument("--n-random", type=int, default=2, help="mobilenet sandwich: random subnets per step")
    ap.add_argument("--seed", type=int, default=0, help="seed for the arch sample and the supernet")
    ap.add_argument("--bn-images", type=int, default=200, help="training images for batch-norm recalibration")
    ap.add_argument("--out", type=Path, default=None, help="write the figures and per-arch accuracies as JSON")
    ap.add_argument("--reuse", type=Path, default=None,
                    help="take the standalone accuracies from this earlier --out JSON (same space, archs, seeds, epochs)")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    space = create_space(args.space, **SETTINGS[args.space])
    splits = splits_for("digits", space.input_shape())
    as_dataset = Dataset("digits", splits.x_train, splits.y_train, splits.x_val, splits.y_val, splits.num_classes)
    archs = space.sample_distinct(args.archs, np.random.default_rng(args.seed))
    print(f"{args.space} {space.config()}: {len(archs)} archs, {len(splits.x_train)} train / {len(splits.x_val)} val images")

    names = [space.to_string(a) for a in archs]
    prior = json.loads(args.reuse.read_text()) if args.reuse else None
    if prior is not None:
        same = (prior["arch_strings"] == names and prior["seeds"] == args.seeds
                and prior["standalone_epochs"] == args.standalone_epochs and prior["batch_size"] == args.batch_size
                and prior["lr"] == args.lr)
        if not same:
            ap.error(f"--reuse {args.reuse}: its archs, seeds, epochs or batch size differ from this run's")
        standalone, sec_standalone = np.asarray(prior["standalone_val_acc"]), prior["sec_per_standalone_training"]
        print(f"  standalone accuracies reused from {args.reuse}")
    else:
        standalone = np.zeros((args.seeds, len(archs)))
        t0 = time.process_time()
        for s in range(args.seeds):
            for i, arch in enumerate(archs):
                standalone[s, i] = train_and_test(space, arch, as_dataset, epochs=args.standalone_epochs,
                                                  batch_size=args.batch_size, lr=args.lr, seed=s)
            print(f"  standalone seed {s}: mean val acc {standalone[s].mean():.1f} %", flush=True)
        sec_standalone = (time.process_time() - t0) / standalone.size

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "supernet.pt"
        t0 = time.process_time()
        meta = train_supernet(space, ckpt, recipe={"epochs": args.supernet_epochs, "batch_size": args.batch_size,
                                                   "seed": args.seed, "n_random": args.n_random,
                                                   "lr": args.supernet_lr})
        sec_supernet = time.process_time() - t0
        t0 = time.process_time()
        values, sources = supernet_values(space, archs, ckpt, bn_images=args.bn_images)
        sec_eval = (time.process_time() - t0) / len(archs)

    mean = standalone.mean(axis=0)
    res = {
        "space": args.space, "space_config": space.config(), "archs": len(archs), "seeds": args.seeds,
        "standalone_epochs": args.standalone_epochs, "supernet_epochs": args.supernet_epochs,
        "batch_size": args.batch_size, "lr": args.lr, "supernet_lr": args.supernet_lr, "n_random": args.n_random,
        "bn_images": args.bn_images,
        "supernet_hash": meta["hash"], "provenance": sources[0],
        "tau_supernet_vs_seed": [kendall(values, standalone[s]) for s in range(args.seeds)],
        "tau_supernet_vs_seed_mean": kendall(values, mean),
        "tau_seed_to_seed": [kendall(standalone[a], standalone[b]) for a in range(args.seeds)
                             for b in range(a + 1, args.seeds)],
        "supernet_val_acc_mean": float(values.mean()), "standalone_val_acc_mean": float(mean.mean()),
        "sec_per_subnet_eval": sec_eval, "sec_per_standalone_training": sec_standalone,
        "sec_supernet_training": sec_supernet,
    }
    res.update({"arch_strings": names, "standalone_val_acc": standalone.tolist(), "supernet_val_acc": values.tolist()})
    ceiling = float(np.mean(res["tau_seed_to_seed"])) if res["tau_seed_to_seed"] else float("nan")
    res["tau_ratio_to_ceiling"] = float(np.mean(res["tau_supernet_vs_seed"])) / ceiling if ceiling else float("nan")
    res["speedup_per_candidate"] = sec_standalone / sec_eval
    res["break_even_candidates"] = sec_supernet / max(sec_standalone - sec_eval, 1e-9)
    print(f"  Kendall tau supernet vs standalone (per seed): {', '.join(f'{t:.3f}' for t in res['tau_supernet_vs_seed'])};"
          f" vs seed mean {res['tau_supernet_vs_seed_mean']:.3f}")
    print(f"  Kendall tau standalone seed vs seed (ceiling): {', '.join(f'{t:.3f}' for t in res['tau_seed_to_seed'])};"
          f" supernet / ceiling = {res['tau_ratio_to_ceiling']:.2f}")
    print(f"  mean val acc: supernet {res['supernet_val_acc_mean']:.1f} %, standalone {res['standalone_val_acc_mean']:.1f} %")
    print(f"  seconds: {sec_eval:.2f} per subnet eval vs {sec_standalone:.2f} per standalone training "
          f"({res['speedup_per_candidate']:.0f}x); supernet training {sec_supernet:.1f} s "
          f"(pays off after {res['break_even_candidates']:.0f} candidates)")
    if args.out:
        args.out.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
