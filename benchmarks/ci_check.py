"""Does `hwnas ci-check` catch a 5% regression on any model size, without crying wolf? A self-calibrating benchmark.

    PYTHONPATH=$PWD python benchmarks/ci_check.py --checks 40 --budget-s 30

Three model sizes (NAS-Bench-201 cell networks exported to ONNX, run by ONNX Runtime, 1 thread, in worker
processes): ``small`` C=4 N=1 (~0.2 ms here), ``medium`` C=16 N=3 (~1.5-2 ms), ``large`` C=48 N=2 (~16-20 ms); the
times move with the machine's load.

Planted slowdowns, calibrated on this machine: the same network plus one extra op whose cost is a knob --
a 3x3 convolution of ``c`` output channels over the first ``h`` rows of the input, folded into the output
(``y + 1e-6 * mean(conv(x[:, :, :h]))``) so no runtime can drop it; its cost grows with ``c * h`` ("work").
Before any check, for each size and each target (+5%, +10%) the script measures the pair directly (as
ci-check does: two workers each holding both models -- three fresh pairs, ~``--calib-s`` seconds of ABBA
rounds of ~25 ms blocks each; the paired Hodges-Lehmann ratio, the estimator ci-check uses) and moves the
knob along a straight line fitted to every point so far until the measured slowdown is within
``--tolerance`` (1 percentage point) of the target, and prints what it reached.

Then ``--checks`` rounds; in each, for each size: an A/A check (the same file both sides: false alarms),
and an A/B check at each calibrated slowdown (detections), one after the other so all see the same noise.
Checks use ci-check's statistics with ``--delta`` (default 0.025: a delta is the *tolerated* slowdown, so
catching a +5% regression needs a delta below 5%; at delta = 5% a +5% slowdown is on the boundary and
detected by chance) and no explicit floor (the noise floor only), ``--budget-s`` per check. The exact gates
are on for the A/A checks (they must not fire either) and off for the A/B ones (they flag the extra op
deterministically; this benchmark is about the latency statistics).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"
SIZES = {"small": (4, 1), "medium": (16, 3), "large": (48, 2)}  # nb201 (C, N): ~0.2, ~2, ~20 ms on the host
TARGETS = (0.05, 0.10)


def knob(work: int) -> tuple[int, int]:
    """(channels, rows) of the planted conv for ``work`` units (~ channels x rows, rows <= 32)."""
    work = max(1, int(work))
    c = math.ceil(work / 32)
    return c, max(1, min(32, round(work / c)))


def planted(space, arch, path: Path, work: int) -> Path:
    """The same network plus one extra 3x3 convolution on the input's first rows (its result feeds the output)."""
    import torch

    from hwnas.export import ExportSettings, build_model, export_model

    c, h = knob(work)

    class WithExtraOp(torch.nn.Module):
        def __init__(self, base):
            super().__init__()
            self.base = base
            self.extra = torch.nn.Conv2d(3, c, 3, padding=1)

        def forward(self, x):
            return self.base(x) + 1e-6 * self.extra(x[:, :, :h, :]).mean()

    torch.manual_seed(0)
    model = WithExtraOp(build_model(space, arch)).eval()
    return export_model(model, space.input_shape(), path, ExportSettings(format="onnx"), what="planted slowdown")


def direct_ratio(base: Path, slow: Path, seconds: float, pairs: int = 3) -> dict:
    """Plain paired measurement, no ci-check decision: ``pairs`` fresh pairs of workers measured as ci-check
    does (both models in each worker, a round's two blocks in one worker, ABBA pairs alternating between the
    workers), each for ~``seconds`` of rounds of ~25 ms blocks; the Hodges-Lehmann ratio of all per-round
    medians (ci-check's estimator)."""
    from hwnas.ci.ab import MeasureSettings, local_profile, measure
    from hwnas.ci.stats import hl_one_sample

    device = local_profile("host")
    ma, mb, k = [], [], 0
    for pair in range(pairs):
        res = measure(slow, base, device, MeasureSettings(budget_s=seconds, warmup_s=0.1, seed=pair),
                      np.random.default_rng(pair))
        ma += res.medians("baseline")
        mb += res.medians("candidate")
        k = res.per_block
    ratio = math.exp(hl_one_sample(np.log(mb) - np.log(ma)))
    return {"base_ms": float(np.median(ma)), "slow_ms": float(np.median(mb)), "ratio": ratio, "rounds": len(ma),
            "worker_pairs": pairs, "per_block": k}


def next_work(tried: list[dict], target: float, max_work: int = 32 * 4000) -> int:
    """The next knob setting from a least-squares line slowdown = a + b * work through every point so far
    (one noisy point moves it little); through the origin while there are fewer than three points, and a
    4x step up while no point shows a slowdown."""
    w = np.array([p["work"] for p in tried], dtype=float)
    y = np.array([p["slowdown"] for p in tried], dtype=float)
    if not len(w):
        return 32
    if len(w) >= 3 and np.ptp(w) > 0:
        b, a = np.polyfit(w, y, 1)
    else:
        a, b = 0.0, float(np.dot(w, y) / np.dot(w, w))
    if b <= 0:
        return int(min(4 * w.max(), max_work))
    guess = (target - a) / b
    return int(np.clip(round(guess), 1, min(4 * w.max(), max_work)))


def calibrate_slowdown(space, arch, base: Path, target: float, out_dir: Path, tol: float, seconds: float,
                       tried: list[dict], max_tries: int = 6) -> dict:
    """Move the planted op's work until the directly measured slowdown is within ``tol`` of ``target``.

    ``tried`` holds earlier (work, slowdown) points of the same size (shared by the targets); returns the
    best attempt (``reached`` says whether it is within tolerance)."""
    best = min(tried, key=lambda p: abs(p["slowdown"] - target)) if tried else None
    for attempt in range(max_tries):
        if best is not None and abs(best["slowdown"] - target) <= tol:
            break
        work = next_work(tried, target)
        path = out_dir / f"planted-{work}.onnx"
        if not path.exists():  # a repeated setting is measured again (one more point on the line)
            planted(space, arch, path, work)
        d = direct_ratio(base, path, seconds)
        point = {"work": work, "channels_rows": knob(work), "slowdown": d["ratio"] - 1.0, "path": str(path),
                 "direct": d}
        tried.append(point)
        print(f"    target {target * 100:+.0f}%: work {work:6d} (conv 3->{knob(work)[0]} over {knob(work)[1]} rows) "
              f"-> {point['slowdown'] * 100:+.2f}%  (base {d['base_ms']:.3f} ms, {d['rounds']} rounds)", flush=True)
        if best is None or abs(point["slowdown"] - target) < abs(best["slowdown"] - target):
            best = point
    return {**best, "target": target, "reached": abs(best["slowdown"] - target) <= tol}


def loadavg() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover
        return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checks", type=int, default=40, help="checks of each kind (A/A, +5%%, +10%%) per size")
    ap.add_argument("--budget-s", type=float, default=30.0, help="ci-check time budget per check")
    ap.add_argument("--delta", type=float, default=0.025, help="ci-check --delta (the tolerated slowdown)")
    ap.add_argument("--sizes", default=",".join(SIZES), help="comma list of: " + ", ".join(SIZES))
    ap.add_argument("--tolerance", type=float, default=0.01, help="planted slowdown within target +- this")
    ap.add_argument("--calib-s", type=float, default=3.0,
                    help="seconds per worker pair (three pairs) per direct measurement while calibrating")
    ap.add_argument("--out", type=Path, default=None, help="also write every check as JSON here")
    args = ap.parse_args()

    from hwnas.ci.ab import MeasureSettings, local_profile
    from hwnas.ci.check import run_check
    from hwnas.ci.gates import GATES
    from hwnas.ci.inputs import ModelSpec
    from hwnas.ci.stats import Thresholds
    from hwnas.export import ExportSettings, export_arch
    from hwnas.measure.protocol import host_fingerprint
    from hwnas.runtimes import runtime_version
    from hwnas.spaces import create_space

    os.environ.setdefault("HWNAS_HOME", tempfile.mkdtemp(prefix="hwnas-bench-"))
    work_dir = Path(os.environ["HWNAS_HOME"])
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    fp = host_fingerprint()
    print(f"host: {fp['cpu']}, {fp['cores']} cores; onnxruntime {runtime_version('onnxruntime')}, 1 thread; "
          f"load average {loadavg()}; delta {args.delta}, no explicit floor, budget {args.budget_s:g} s, "
          f"{args.checks} checks of each kind", flush=True)

    t0 = time.perf_counter()
    models: dict[str, dict] = {}
    for size in sizes:
        C, N = SIZES[size]
        sp = create_space("nb201", C=C, N=N)
        arch = sp.from_string(ARCH)
        base = export_arch(sp, arch, ExportSettings(format="onnx"))
        out_dir = work_dir / size
        out_dir.mkdir(parents=True, exist_ok=True)
        print(f"calibrating {size} (nb201 C={C} N={N}):", flush=True)
        tried: list[dict] = []
        models[size] = {"base": base, "C": C, "N": N,
                        "planted": {t: calibrate_slowdown(sp, arch, base, t, out_dir, args.tolerance, args.calib_s,
                                                          tried) for t in TARGETS}}
    print(f"calibration took {time.perf_counter() - t0:.0f} s; planted slowdowns reached:")
    for size, m in models.items():
        for t, p in m["planted"].items():
            print(f"  {size:6s} base {p['direct']['base_ms']:7.3f} ms  target {t * 100:+.0f}% -> measured "
                  f"{p['slowdown'] * 100:+.2f}% ({'within' if p['reached'] else 'NOT within'} "
                  f"+-{args.tolerance * 100:g} pt)", flush=True)

    device = local_profile("host")
    th = Thresholds(delta=args.delta)
    kinds = [("aa", None)] + [(f"+{round(t * 100)}%", t) for t in TARGETS]
    rows: list[dict] = []
    for i in range(args.checks):
        for size in sizes:
            m = models[size]
            for kind, t in kinds:
                cand = m["base"] if t is None else Path(m["planted"][t]["path"])
                ms = MeasureSettings(budget_s=args.budget_s, seed=1000 * i + len(rows))
                t1 = time.perf_counter()
                rep = run_check([ModelSpec(size, cand, m["base"], kind, "base")], device, th, ms,
                                gates=GATES if t is None else ()).to_dict()
                wall = time.perf_counter() - t1
                mod = rep["models"][0]
                lat = mod["latency"]
                rows.append({"size": size, "kind": kind, "check": i, "verdict": mod["verdict"], "reason": mod["reason"],
                             "ratio": lat["ratio"], "ci": [lat["ci_low"], lat["ci_high"]], "rounds": lat["n_rounds"],
                             "baseline_ms": lat["baseline_ms"], "noise_floor_ms": lat["noise_floor_ms"],
                             "wall_s": wall, "load": loadavg(),
                             "gates_fired": [g for g, r in mod["gates"].items() if r["verdict"] != "pass"]})
                print(f"  #{i + 1:2d} {size:6s} {kind:4s} {mod['verdict']:12s} ratio {lat['ratio']:.3f} "
                      f"[{lat['ci_low']:.3f}, {lat['ci_high']:.3f}] {lat['n_rounds']:3d} rounds {wall:5.1f} s "
                      f"load {rows[-1]['load']:.2f}", flush=True)

    print(f"\nsize x slowdown ({args.checks} checks each; delta {args.delta}, budget {args.budget_s:g} s; "
          f"total {time.perf_counter() - t0:.0f} s):")
    print(f"{'size':8s} {'base ms':>8s} {'kind':>14s} {'detected':>9s} {'false alarms':>13s} {'inconcl.':>9s} "
          f"{'median s':>9s} {'max s':>6s} {'ratio in checks':>16s}")
    for size in sizes:
        for kind, t in kinds:
            r = [x for x in rows if x["size"] == size and x["kind"] == kind]
            if not r:
                continue
            v = [x["verdict"] for x in r]
            w = [x["wall_s"] for x in r]
            label = "A/A" if t is None else f"{kind} ({models[size]['planted'][t]['slowdown'] * 100:+.1f}%)"
            det = "" if t is None else f"{v.count('fail')}/{len(r)}"
            fa = f"{v.count('fail') + sum(bool(x['gates_fired']) for x in r)}/{len(r)}" if t is None else ""
            print(f"{size:8s} {np.median([x['baseline_ms'] for x in r]):8.3f} {label:>14s} {det:>9s} {fa:>13s} "
                  f"{v.count('inconclusive'):9d} {np.median(w):9.1f} {max(w):6.1f} "
                  f"{np.median([x['ratio'] for x in r]):16.3f}")  # the planted slowdown as the checks saw it
    loads = [x["load"] for x in rows]
    if loads:
        print(f"1-min load average during the checks: median {np.median(loads):.2f}, max {max(loads):.2f} "
              f"on {fp['cores']} cores")
    if args.out:
        planted_info = {s: {str(t): {k: v for k, v in p.items() if k != "path"} for t, p in m["planted"].items()}
                        for s, m in models.items()}
        args.out.write_text(json.dumps({"host": fp, "args": {k: str(v) for k, v in vars(args).items()},
                                        "planted": planted_info, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
