"""Benchmark of the latency predictors on NAS-Bench-201 latency tables (measured by third parties).

For every device CSV in ../shared/data/nb201/latency (or --data) and every training size N, N cells are drawn
at random (seeded), every predictor kind is trained on them and scored on *all the remaining cells* of that
device. ``reference`` is the baseline named in the issue: plain LightGBM on a one-hot of the 6 edges, log target.
``transfer`` uses the other devices of the table as prior: a kernel-level predictor is fitted on all cells
of each other device, and the target's N cells fit the transfer model on top (see hwnas/predictors/transfer.py).
``ceiling`` estimates the best reachable score: the arch predictor trained on half of the cells, scored on
the other half, with the noise of the measurements left in. ``dup-ceiling``: cells that execute the same
pruned graph are the same network on a runtime that drops dead edges, so the spread among them is pure
measurement noise: the leave-one-out median of the others is scored like a predictor.

Devices from a measurement store (e.g. the host profiled with `hwnas profile`) join with --store PATH.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/predictors.py                       # full table (~30 min, 2 cores)
    PYTHONPATH=$PWD .venv/bin/python benchmarks/predictors.py --sizes 200 --devices gold_6226
    PYTHONPATH=$PWD .venv/bin/python benchmarks/predictors.py --sizes 200 --path-only --no-ceiling \
        --kinds lut kernel arch auto                                                # auto composes <best>+lut
    PYTHONPATH=$PWD .venv/bin/python benchmarks/predictors.py --few-shot --holdout device family \
        --shot-sizes 10 --shot-cells proposed --seeds 0 1 2                         # device- and family-out
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

from hwnas.predictors import create_predictor
from hwnas.predictors.metrics import score
from hwnas.spaces import create_space

def _default_data() -> Path:
    """../shared/data/nb201/latency, looked up from the checkout upwards (worktrees sit one level deeper)."""
    for parent in Path(__file__).resolve().parents:
        cand = parent / "shared" / "data" / "nb201" / "latency"
        if cand.is_dir():
            return cand
    return Path("../shared/data/nb201/latency")


DEFAULT_DATA = _default_data()
KINDS = ("reference", "lut", "kernel", "arch", "auto", "transfer")

# Hardware families of the dev devices, for leave-one-family-out (issue 24, gap 3). A family is a kind of
# processor: leaving it out must leave no sibling of the target in the priors. The three HELP phones (pixel2 and
# essential_ph_1: Snapdragon 835 Kryo 280; samsung_s7: Exynos 8890 / Snapdragon 820 Kryo) run TFLite on ARM
# big cores, as do BRP-NAS' Snapdragon 450 (Cortex-A53) and 675 (Kryo 460) CPUs: one family (mobile CPU), or
# removing the phones would keep the Snapdragon CPUs as their siblings. The two Xeons are server CPUs; the
# Adreno 506 / 612 mobile GPUs; the Hexagon 685 DSP is its own family (family-out = device-out for it).
FAMILIES = {
    "pixel2": "mobile-cpu", "essential_ph_1": "mobile-cpu", "samsung_s7": "mobile-cpu",
    "mobile-cpu-snapdragon-450-cortex-a53-int8": "mobile-cpu", "mobile-cpu-snapdragon-675-kryo-460-int8": "mobile-cpu",
    "gold_6226": "server-cpu", "silver_4114": "server-cpu",
    "mobile-gpu-snapdragon-450-adreno-506-int8": "mobile-gpu", "mobile-gpu-snapdragon-675-adreno-612-int8": "mobile-gpu",
    "mobile-dsp-snapdragon-675-hexagon-685-int8": "dsp",
}


def load_csv(path: Path, space) -> tuple[list, np.ndarray]:
    archs, ys = [], []
    with open(path) as fh:
        for row in csv.DictReader(fh):
            archs.append(space.from_string(row["arch"]))
            ys.append(float(row["latency_ms"]))
    return archs, np.array(ys)


def load_store(path: Path, space, min_rows: int = 60) -> dict:
    from hwnas.store import MeasurementStore

    out = {}
    store = MeasurementStore(path)
    for device in store.devices():
        rows = [m for m in store.query(device=device, space=space.name)]
        if len(rows) >= min_rows:
            out[device] = ([space.from_string(m.arch) for m in rows], np.array([m.latency_ms for m in rows]))
    return out


def duplicate_ceiling(archs, y) -> tuple[float, float, int]:
    """Noise ceiling from cells that execute the same pruned graph (equal live edges): for a runtime that prunes
    dead edges they are the same network, so the leave-one-out median of the others is the best any predictor
    can do. Returns (within +-10%, Kendall tau, cells scored); only meaningful for pruning runtimes."""
    from hwnas.spaces.nb201 import NB201Space
    from hwnas.predictors.metrics import kendall_tau, within

    groups: dict = {}
    for i, a in enumerate(archs):
        key = tuple(g if live else 0 for g, live in zip(a.genes, NB201Space.live_edges(a.genes)))
        groups.setdefault(key, []).append(i)
    t, p = [], []
    for ix in groups.values():
        if len(ix) > 2:
            for j in ix:
                t.append(y[j])
                p.append(np.median([y[k] for k in ix if k != j]))
    if len(t) < 10:
        return float("nan"), float("nan"), len(t)
    return within(t, p, 0.10), kendall_tau(t, p), len(t)


def order_drift(archs, y, space) -> tuple[float, float]:
    """Lag-1 autocorrelation (in file order) of the relative residuals of a kernel model fitted on every cell,
    and the std of their 50-cell moving average. Tables measured in index order with drift show large values;
    shuffled tables ~0. Drift is noise no architecture feature can predict."""
    p = create_predictor("kernel", space=space, n_boot=0).fit(archs, y)
    res = y / p.predict(archs)[0] - 1
    ac = float(np.corrcoef(res[:-1], res[1:])[0, 1])
    smooth = np.convolve(res, np.ones(50) / 50, mode="valid")
    return ac, float(smooth.std())


class Reference:
    """The issue's reference: LightGBM on the 6-edge one-hot, 200 trees, log target."""

    def __init__(self, space):
        from hwnas.predictors.features import featurizer_for

        self.f = featurizer_for(space)

    def fit(self, archs, y):
        import lightgbm as lgb

        self.m = lgb.LGBMRegressor(n_estimators=200, learning_rate=0.05, num_leaves=15,
                                   min_child_samples=max(2, min(20, len(y) // 20)), verbose=-1, n_jobs=1)
        self.m.fit(self.f.tokens(archs), np.log(y))
        return self

    def predict(self, archs):
        return np.exp(self.m.predict(self.f.tokens(archs))), None


def few_shot(data: dict, targets, seeds, sizes=(10, 50), pool_size: int = 2000, markdown: Path | None = None,
             cells=("proposed", "random")) -> int:
    """Leave one device out: the other devices' kernel predictors (fitted on all their cells) are the prior, as
    `hwnas fit-predictor` builds it from a store holding them; N cells of the target are measured -- proposed
    by `propose_next` with the prior (covering design + max-min spread on the transfer features) among the cells
    the device's table holds (BRP-NAS' tables lack disconnected cells), or random --
    `auto` is fitted on them with the prior and predicts every other cell. A failure is a predict that raises.
    ``all_cells``: Spearman of the transfer model fitted on *every* cell of the target (in-sample): how well a
    weighting of these sources fitted on all the data ranks this device. Not a bound: the fit minimizes Huber log
    error, not rank error, and ten well-placed cells can rank better."""
    from hwnas.predictors.active import propose_next
    from hwnas.predictors.metrics import spearman_rho, within
    from hwnas.predictors.transfer import attach_measurements

    space = create_space("nb201")
    t0 = time.time()
    fitted = {d: attach_measurements(create_predictor("kernel", space=space, n_boot=0).fit(a, y).set_card(device=d),
                                     a, y) for d, (a, y) in data.items()}
    print(f"# few-shot: priors = kernel predictors on every cell of each device, carrying the measured cells "
          f"({time.time() - t0:.0f} s); "
          f"seeds {list(seeds)}", flush=True)
    header = ("device", "N", "cells", "spearman_mean", "spearman_worst", "all_cells", "within_10pct_mean",
              "failures", "picks", "fit_s")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header), flush=True)
    lines, summary = [], {}
    for device in targets:
        archs, y = data[device]
        index = {a.arch_id: i for i, a in enumerate(archs)}
        prior = {d: p for d, p in fitted.items() if d != device}
        full = create_predictor("transfer", space=space, sources=prior, n_boot=0).fit(archs, y)
        ok = np.array([u is None for u in full.unseen_ops(archs)])
        all_cells = spearman_rho(y[ok], full.predict([a for a, k in zip(archs, ok) if k])[0])
        for n in sizes:
            for how in cells:
                rhos, w10, fails, picks, secs = [], [], 0, {}, []
                for seed in seeds:
                    rng = np.random.default_rng(seed)
                    if how == "proposed":
                        tr = [index[pr.arch.arch_id] for pr in propose_next(space, [], n, rng, prior=prior,
                                                                             pool_size=pool_size, candidates=archs)]
                    else:
                        tr = list(rng.choice(len(y), n, replace=False))
                    te = np.setdiff1d(np.arange(len(y)), tr)
                    t1 = time.time()
                    try:
                        p = create_predictor("auto", space=space, seed=seed, sources=prior).fit(
                            [archs[i] for i in tr], y[tr])
                        pred = p.predict([archs[i] for i in te])[0]
                    except Exception as exc:  # noqa: BLE001 - a failure is counted and shown, never hidden
                        fails += 1
                        print(f"# {device} N={n} {how} seed {seed}: FAILED {exc}", flush=True)
                        continue
                    secs.append(time.time() - t1)
                    picks[p.chosen_] = picks.get(p.chosen_, 0) + 1
                    rhos.append(spearman_rho(y[te], pred))
                    w10.append(within(y[te], pred, 0.10))
                row = (device, n, how, np.mean(rhos) if rhos else float("nan"), np.min(rhos) if rhos else float("nan"),
                       all_cells, np.mean(w10) if w10 else float("nan"), fails,
                       " ".join(f"{k}x{v}" for k, v in sorted(picks.items())), np.mean(secs) if secs else 0.0)
                summary.setdefault((n, how), []).append(row)
                line = "| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |"
                lines.append(line)
                print(line, flush=True)
    print("\n| N | cells | devices | spearman mean (over devices) | worst device-seed | all_cells mean | "
          "within+-10% mean | failures |")
    print("|---|---|---|---|---|---|---|---|")
    for (n, how), rows in sorted(summary.items()):
        print(f"| {n} | {how} | {len(rows)} | {np.nanmean([r[3] for r in rows]):.4f} | "
              f"{np.nanmin([r[4] for r in rows]):.3f} | {np.nanmean([r[5] for r in rows]):.3f} | "
              f"{np.nanmean([r[6] for r in rows]):.3f} | {sum(r[7] for r in rows)} |")
    if markdown:
        markdown.write_text("| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n" + "\n".join(lines) + "\n")
    return 0


def few_shot_holdout(data: dict, targets, seeds, holdouts=("device", "family"), n: int = 10,
                     cells=("proposed",), pool_size: int = 2000) -> int:
    """Leave-one-device-out and leave-one-family-out (``FAMILIES``) with ``n`` target cells, three models on the
    same cells: ``transfer`` (the sources' fit, trusted; ``check_prior=False``), ``target-only`` (the monotone
    graph-cost fit on the target cells alone, ``few_sample.CostModel``) and ``gated`` (the library's default:
    transfer unless leave-one-out on the target cells says the sources do not explain them). The transfer
    models are fitted directly (``auto`` at 10 cells has only ``transfer`` as candidate), without bootstrap.
    Cells: ``proposed`` (``propose_next`` with the prior, graph costs among the D-optimal features),
    ``proposed-sources`` (the same on the source features only, as before) or ``random``."""
    from hwnas.predictors.active import propose_next
    from hwnas.predictors.metrics import spearman_rho
    from hwnas.predictors.transfer import attach_measurements

    unknown_fam = sorted(set(data) - set(FAMILIES))
    if "family" in holdouts and unknown_fam:
        print(f"# no family for {unknown_fam}: each is its own family", flush=True)
    fam = {d: FAMILIES.get(d, d) for d in data}
    space = create_space("nb201")
    t0, c0 = time.time(), time.process_time()
    fitted = {d: attach_measurements(create_predictor("kernel", space=space, n_boot=0).fit(a, y).set_card(device=d),
                                     a, y) for d, (a, y) in data.items()}
    print(f"# few-shot holdout: {n} cells, seeds {list(seeds)}, priors fitted in {time.time() - t0:.0f} s", flush=True)
    models = ("transfer", "target-only", "gated")
    header = ("holdout", "device", "family", "cells", "priors", *(f"{m} mean / worst" for m in models), "fell back",
              "failures")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header), flush=True)
    summary: dict = {}
    for how in holdouts:
        for device in targets:
            archs, y = data[device]
            index = {a.arch_id: i for i, a in enumerate(archs)}
            prior = {d: p for d, p in fitted.items() if (d != device if how == "device" else fam[d] != fam[device])}
            for cell in cells:
                rho = {m: [] for m in models}
                fell, fails = 0, 0
                for seed in seeds:
                    rng = np.random.default_rng(seed)
                    if cell.startswith("proposed"):
                        tr = [index[pr.arch.arch_id] for pr in propose_next(
                            space, [], n, rng, prior=prior, pool_size=pool_size, candidates=archs,
                            cost_features=cell == "proposed")]
                    else:
                        tr = list(rng.choice(len(y), n, replace=False))
                    te = np.setdiff1d(np.arange(len(y)), tr)
                    a_tr, a_te = [archs[i] for i in tr], [archs[i] for i in te]
                    try:
                        plain = create_predictor("transfer", space=space, seed=seed, sources=prior, n_boot=0,
                                                 check_prior=False).fit(a_tr, y[tr])
                        gated = create_predictor("transfer", space=space, seed=seed, sources=prior,
                                                 n_boot=0).fit(a_tr, y[tr])
                        ok = np.array([u is None for u in plain.unseen_ops(a_te)])
                        a_ok = [a for a, k in zip(a_te, ok) if k]
                        rho["transfer"].append(spearman_rho(y[te][ok], plain.predict(a_ok)[0]))
                        rho["target-only"].append(spearman_rho(y[te][ok], gated.predict_target_only(a_ok)[0]))
                        rho["gated"].append(spearman_rho(y[te][ok], gated.predict(a_ok)[0]))
                        fell += gated.target_only_
                    except Exception as exc:  # noqa: BLE001 - a failure is counted and shown, never hidden
                        fails += 1
                        print(f"# {how}-out {device} seed {seed}: FAILED {exc}", flush=True)
                row = [how, device, fam[device], cell, len(prior)]
                for m in models:
                    row.append(f"{np.mean(rho[m]):.3f} / {np.min(rho[m]):.3f}" if rho[m] else "-")
                    summary.setdefault((how, cell, m), []).append((np.mean(rho[m]), np.min(rho[m])) if rho[m]
                                                                   else (np.nan, np.nan))
                row += [f"{fell}/{len(seeds)}", fails]
                summary.setdefault((how, cell, "fails"), []).append(fails)
                print("| " + " | ".join(str(v) for v in row) + " |", flush=True)
    print("\n| holdout | cells | model | devices | Spearman mean (over devices) | worst device mean | worst device-seed "
          "| failures |\n|---|---|---|---|---|---|---|---|")
    for how in holdouts:
        for cell in cells:
            for m in models:
                r = np.array(summary[(how, cell, m)])
                print(f"| {how}-out | {cell} | {m} | {len(r)} | {np.nanmean(r[:, 0]):.4f} | {np.nanmin(r[:, 0]):.3f} | "
                      f"{np.nanmin(r[:, 1]):.3f} | {sum(summary[(how, cell, 'fails')])} |")
    print(f"# {time.time() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU", flush=True)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--store", type=Path, default=None, help="also benchmark the nb201 devices of this store")
    ap.add_argument("--devices", nargs="*", default=None)
    ap.add_argument("--sizes", nargs="*", type=int, default=[20, 50, 200, 1000])
    ap.add_argument("--kinds", nargs="*", default=list(KINDS))
    ap.add_argument("--no-ceiling", action="store_true")
    ap.add_argument("--path-only", action="store_true",
                    help="leave out cells without an input-output path (train and test), as a device's measured "
                         "store holds them; kernel / arch then never see fill_zeros and auto composes <best>+lut")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    ap.add_argument("--few-shot", action="store_true", help="leave-one-device-out with 10 / 50 cells (issue 13)")
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4], help="--few-shot seeds")
    ap.add_argument("--shot-sizes", nargs="*", type=int, default=[10, 50], help="--few-shot cell counts")
    ap.add_argument("--shot-cells", nargs="*", default=["proposed", "random"],
                    help="--few-shot: proposed, random (--holdout also: proposed-sources)")
    ap.add_argument("--holdout", nargs="*", default=None, choices=["device", "family"],
                    help="--few-shot: leave-one-device-out and/or leave-one-family-out (FAMILIES) with the first "
                         "--shot-sizes cell count: transfer, target-only and gated models side by side")
    args = ap.parse_args(argv)

    space = create_space("nb201")
    data = {}
    for p in sorted(Path(args.data).glob("*.csv")):
        data[p.stem] = load_csv(p, space)
    if args.store:
        data.update(load_store(args.store, space))
    if args.path_only:
        for d, (a, y) in data.items():
            ok = np.array([space.has_path(x) for x in a])
            data[d] = ([x for x, k in zip(a, ok) if k], y[ok])
    if args.devices:
        missing = set(args.devices) - set(data)
        if missing:
            print(f"unknown devices {sorted(missing)}; have {sorted(data)}", file=sys.stderr)
            return 2
        targets = list(args.devices)
    else:
        targets = list(data)
    if args.few_shot and args.holdout:
        return few_shot_holdout(data, targets, args.seeds, args.holdout, args.shot_sizes[0], cells=args.shot_cells)
    if args.few_shot:
        return few_shot(data, targets, args.seeds, args.shot_sizes, markdown=args.markdown, cells=args.shot_cells)
    print(f"# nb201 latency predictors; devices: {len(targets)}; sizes {args.sizes}; kinds {args.kinds}", flush=True)

    sources_all = {}
    if "transfer" in args.kinds:
        t0 = time.time()
        for d, (a, y) in data.items():
            sources_all[d] = create_predictor("kernel", space=space, n_boot=0).fit(a, y).set_card(device=d)
        print(f"# transfer sources: kernel predictors on every cell of {len(sources_all)} devices "
              f"({time.time() - t0:.0f} s)", flush=True)

    rows = []
    header = ("device", "N", "kind", "within_5pct", "within_10pct", "mape_pct", "rmse_ms", "kendall_tau",
              "spearman_rho", "fit_s", "note")
    print("| " + " | ".join(header) + " |", flush=True)
    print("|" + "---|" * len(header), flush=True)

    def emit(device, n, kind, m, fit_s, note=""):
        row = (device, n, kind, *(m[k] for k in header[3:9]), fit_s, note)
        rows.append(row)
        cells = [str(device), str(n), kind] + [f"{v:.3f}" if k != "mape_pct" else f"{v:.1f}"
                                               for k, v in zip(header[3:9], row[3:9])] + [f"{fit_s:.1f}", note]
        print("| " + " | ".join(cells) + " |", flush=True)

    for device in targets:
        archs, y = data[device]
        for n in args.sizes:
            if n >= len(y):
                continue
            rng = np.random.default_rng(args.seed)
            perm = rng.permutation(len(y))
            tr, te = perm[:n], perm[n:]
            a_tr, a_te = [archs[i] for i in tr], [archs[i] for i in te]
            for kind in args.kinds:
                t0 = time.time()
                note = ""
                if kind == "reference":
                    p = Reference(space).fit(a_tr, y[tr])
                elif kind == "transfer":
                    srcs = {d: s for d, s in sources_all.items() if d != device}
                    p = create_predictor("transfer", space=space, sources=srcs, seed=args.seed).fit(a_tr, y[tr])
                else:
                    p = create_predictor(kind, space=space, seed=args.seed).fit(a_tr, y[tr])
                    if kind == "auto":
                        note = f"picked {p.chosen_}"
                        share = p.cv_[p.chosen_].get("answered_share")
                        if share:
                            note += " (" + ", ".join(f"{k} {v:.1%}" for k, v in share.items()
                                                     if k not in ("probe", "none")) + " of the space probe)"
                    if kind == "kernel" or (kind == "auto" and p.chosen_ == "kernel"):
                        k = p if kind == "kernel" else p.best_
                        note = (note + " " if note else "") + f"graph {k.graph_}"
                fit_s = time.time() - t0
                try:
                    pred = p.predict(a_te)[0]
                except Exception as exc:  # an op never seen in N cells: reported, not hidden
                    print(f"| {device} | {n} | {kind} | (cannot predict: {exc}) |", flush=True)
                    continue
                emit(device, n, kind, score(y[te], pred), fit_s, note)
        if not args.no_ceiling:
            ac, sm = order_drift(archs, y, space)
            print(f"| {device} | - | drift | - | - | - | - | - | - | - | residual lag-1 autocorrelation {ac:.2f}, "
                  f"50-cell moving-average std {sm:.3f} |", flush=True)
            w, tau, n_dup = duplicate_ceiling(archs, y)
            print(f"| {device} | - | dup-ceiling | - | {w:.3f} | - | - | {tau:.3f} | - | - | LOO median of {n_dup} cells "
                  f"with the same pruned graph |", flush=True)
            rows.append((device, "-", "dup-ceiling", float("nan"), w, float("nan"), float("nan"), tau, float("nan"),
                         0.0, f"{n_dup} cells with the same pruned graph"))
            rng = np.random.default_rng(args.seed)
            perm = rng.permutation(len(y))
            half = len(y) // 2
            t0 = time.time()
            p = create_predictor("arch", space=space, seed=args.seed).fit([archs[i] for i in perm[:half]], y[perm[:half]])
            pred = p.predict([archs[i] for i in perm[half:]])[0]
            emit(device, half, "ceiling", score(y[perm[half:]], pred), time.time() - t0, "arch on half the cells")

    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write("| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n")
            for r in rows:
                fh.write("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r) + " |\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
