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

Seed-to-seed check of the supernet itself (issue #22: can the demo rank on one shared supernet?): with
``--supernet-seeds K`` one supernet is trained per seed ``seed .. seed+K-1`` for every length in
``--supernet-epochs`` (several lengths allowed), each scoring the same archs on the same splits; printed per
length: the Kendall tau between the supernet seeds' rankings (every pair: median, p10, worst), the tau of each
supernet vs standalone training, and CPU seconds of one supernet training.

    python benchmarks/supernet.py --space nb201 --archs 30 --seeds 2 --standalone-epochs 2 \
        --supernet-seeds 2 --supernet-epochs 40 80 --out sn.json
"""

from __future__ import annotations

import argparse
import itertools
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


def ensemble_taus(values, k: int) -> list[float]:
    """Kendall tau between the mean accuracies of two disjoint groups of ``k`` supernets (rows of ``values``),
    for every such pair of groups: how far a ranking averaged over ``k`` supernets moves with their seeds."""
    n = len(values)
    taus = []
    for a in itertools.combinations(range(n), k):
        rest = [i for i in range(n) if i not in a]
        for b in itertools.combinations(rest, k):
            if a < b:
                taus.append(kendall(np.mean([values[i] for i in a], axis=0), np.mean([values[i] for i in b], axis=0)))
    return taus


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", choices=sorted(SETTINGS), default="nb201")
    ap.add_argument("--archs", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--standalone-epochs", type=int, default=3)
    ap.add_argument("--supernet-epochs", type=int, nargs="+", default=[80],
                    help="supernet training length(s) in epochs; several: one set of supernets per length")
    ap.add_argument("--supernet-seeds", type=int, default=1,
                    help="supernets trained per length (seeds seed .. seed+K-1): K >= 2 measures their seed-to-seed tau")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05, help="standalone training learning rate")
    ap.add_argument("--supernet-lr", type=float, default=0.05, help="supernet training learning rate")
    ap.add_argument("--n-random", type=int, default=2, help="mobilenet sandwich: random subnets per step")
    ap.add_argument("--input-size", type=int, default=None, help="override the space's input size (nb201: 8)")
    ap.add_argument("--seed", type=int, default=0, help="seed for the arch sample and the supernet")
    ap.add_argument("--bn-images", type=int, default=200, help="training images for batch-norm recalibration")
    ap.add_argument("--out", type=Path, default=None, help="write the figures and per-arch accuracies as JSON")
    ap.add_argument("--reuse", type=Path, default=None,
                    help="take the standalone accuracies from this earlier --out JSON (same space, archs, seeds, epochs)")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    settings = dict(SETTINGS[args.space])
    if args.input_size is not None:
        settings["input_size"] = args.input_size
    space = create_space(args.space, **settings)
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

    mean = standalone.mean(axis=0)
    res = {
        "space": args.space, "space_config": space.config(), "archs": len(archs), "seeds": args.seeds,
        "standalone_epochs": args.standalone_epochs, "supernet_epochs": args.supernet_epochs,
        "supernet_seeds": list(range(args.seed, args.seed + args.supernet_seeds)),
        "batch_size": args.batch_size, "lr": args.lr, "supernet_lr": args.supernet_lr, "n_random": args.n_random,
        "bn_images": args.bn_images, "sec_per_standalone_training": sec_standalone,
        "tau_seed_to_seed": [kendall(standalone[a], standalone[b]) for a in range(args.seeds)
                             for b in range(a + 1, args.seeds)],
        "standalone_val_acc_mean": float(mean.mean()),
        "arch_strings": names, "standalone_val_acc": standalone.tolist(), "by_epochs": {},
    }
    ceiling = float(np.mean(res["tau_seed_to_seed"])) if res["tau_seed_to_seed"] else float("nan")
    print(f"  Kendall tau standalone seed vs seed (ceiling): {', '.join(f'{t:.3f}' for t in res['tau_seed_to_seed'])}")
    for epochs in args.supernet_epochs:
        runs = []
        for sn_seed in res["supernet_seeds"]:
            with tempfile.TemporaryDirectory() as tmp:
                ckpt = Path(tmp) / "supernet.pt"
                t0 = time.process_time()
                meta = train_supernet(space, ckpt, recipe={"epochs": epochs, "batch_size": args.batch_size,
                                                           "seed": sn_seed, "n_random": args.n_random,
                                                           "lr": args.supernet_lr})
                sec_supernet = time.process_time() - t0
                t0 = time.process_time()
                values, sources = supernet_values(space, archs, ckpt, bn_images=args.bn_images)
                sec_eval = (time.process_time() - t0) / len(archs)
            r = {"seed": sn_seed, "supernet_hash": meta["hash"], "provenance": sources[0],
                 "sec_supernet_training": sec_supernet, "sec_per_subnet_eval": sec_eval,
                 "supernet_val_acc": values.tolist(), "supernet_val_acc_mean": float(values.mean()),
                 "tau_supernet_vs_seed": [kendall(values, standalone[s]) for s in range(args.seeds)],
                 "tau_supernet_vs_seed_mean": kendall(values, mean)}
            r["tau_ratio_to_ceiling"] = float(np.mean(r["tau_supernet_vs_seed"])) / ceiling if ceiling else float("nan")
            r["speedup_per_candidate"] = sec_standalone / sec_eval
            r["break_even_candidates"] = sec_supernet / max(sec_standalone - sec_eval, 1e-9)
            runs.append(r)
            print(f"  supernet {epochs} epochs, seed {sn_seed}: {sec_supernet:.1f} CPU s to train, "
                  f"{sec_eval:.3f} CPU s per subnet eval; val acc {values.min():.1f}-{values.max():.1f} % "
                  f"(mean {values.mean():.1f}); tau vs standalone per seed "
                  f"{', '.join(f'{t:.3f}' for t in r['tau_supernet_vs_seed'])}, vs seed mean "
                  f"{r['tau_supernet_vs_seed_mean']:.3f}", flush=True)
        pairs = list(itertools.combinations(range(len(runs)), 2))
        taus = [kendall(runs[a]["supernet_val_acc"], runs[b]["supernet_val_acc"]) for a, b in pairs]
        summary = {"runs": runs, "tau_supernet_seed_to_seed": taus}
        if taus:
            summary.update({"tau_supernet_seed_median": float(np.median(taus)),
                            "tau_supernet_seed_p10": float(np.percentile(taus, 10)),
                            "tau_supernet_seed_worst": float(np.min(taus))})
            diffs = np.concatenate([np.abs(np.subtract(runs[a]["supernet_val_acc"], runs[b]["supernet_val_acc"]))
                                    for a, b in pairs])
            listed = ", ".join(f"{runs[a]['seed']}-{runs[b]['seed']} {t:+.3f}" for (a, b), t in zip(pairs, taus))
            print(f"  supernet {epochs} epochs: Kendall tau supernet seed vs seed {listed}; "
                  f"median {np.median(taus):+.3f}, p10 {np.percentile(taus, 10):+.3f}, worst {np.min(taus):+.3f}; "
                  f"|val difference| median {np.median(diffs):.2f}, p90 {np.percentile(diffs, 90):.2f} points",
                  flush=True)
        for k in range(2, len(runs) // 2 + 1):  # a ranking averaged over k supernets (k times the training cost)
            et = ensemble_taus([r["supernet_val_acc"] for r in runs], k)
            summary[f"tau_mean_of_{k}_seed_to_seed"] = et
            print(f"  supernet {epochs} epochs, mean of {k} supernets ({k} x the training): Kendall tau between "
                  f"disjoint groups, {len(et)} pairs: median {np.median(et):+.3f}, p10 {np.percentile(et, 10):+.3f}, "
                  f"worst {np.min(et):+.3f}", flush=True)
        vs = [t for r in runs for t in r["tau_supernet_vs_seed"]]
        if vs:
            print(f"  supernet {epochs} epochs vs standalone {args.standalone_epochs} epochs: tau median "
                  f"{np.median(vs):+.3f}, worst {np.min(vs):+.3f} over {len(vs)} (supernet seed, standalone seed) "
                  f"pairs; training CPU s mean {np.mean([r['sec_supernet_training'] for r in runs]):.1f}", flush=True)
        res["by_epochs"][str(epochs)] = summary
    print(f"  mean val acc standalone {res['standalone_val_acc_mean']:.1f} %; {sec_standalone:.2f} CPU s per "
          f"standalone training")
    if args.out:
        args.out.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
