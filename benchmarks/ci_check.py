"""Does `hwnas ci-check` cry wolf? False-alarm rate (A/A), detection rate (planted ~10% slowdown), wall time.

    PYTHONPATH=$PWD python benchmarks/ci_check.py --checks 20

Models: a NAS-Bench-201 cell network at C=16, N=2 (32x32 input, ~1.2 ms here), exported to ONNX, run by ONNX Runtime
(1 thread) on this host in worker processes. The planted slowdown is the same network with one extra op: a
3x3 convolution with 48 output channels on the input, folded into the output (``y + 1e-6 * mean(conv(x))``)
so no runtime can drop it (~10% slower, though only ~2% more MACs: a 3-channel conv runs inefficiently).
The model is large enough that +10% (~0.12 ms) is well above the 0.05 ms floor, so the floor does not
mask detections. (A cheaper extra op such as an avg-pool on one cell
edge measured anywhere from +3% to +10% depending on the machine's load, too unstable to plant.) The script
first measures the pair directly (two workers, 40 ABBA blocks of 100 inferences, no ci-check statistics) to
show how much slower it really is. Then it runs A/A checks (the same model as
baseline and candidate) and A/B checks (baseline vs the slower cell) alternately, so both see the same
machine noise, with ci-check's defaults (delta 5 %, floor 0.05 ms, 95 % CIs) and a per-check time budget.
The exact gates are switched off for the A/B checks here: they flag the extra op deterministically, and
this benchmark is about the latency statistics.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

BASE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"


def planted(space, arch, path: Path, extra_channels: int = 48) -> Path:
    """The same network plus one extra 3x3 convolution on the input (its result feeds the output)."""
    import torch

    from hwnas.export import ExportSettings, build_model, export_model

    class WithExtraOp(torch.nn.Module):
        def __init__(self, base):
            super().__init__()
            self.base = base
            self.extra = torch.nn.Conv2d(3, extra_channels, 3, padding=1)

        def forward(self, x):
            return self.base(x) + 1e-6 * self.extra(x).mean()

    torch.manual_seed(0)
    model = WithExtraOp(build_model(space, arch)).eval()
    return export_model(model, space.input_shape(), path, ExportSettings(format="onnx"), what="planted slowdown")


def direct_ratio(base: Path, slow: Path, rounds: int = 40, per_block: int = 100) -> dict:
    """Plain measurement: medians of ABBA blocks of `per_block` inferences; ratio of the overall medians."""
    from hwnas.measure.runners.worker import ModelWorker

    with ModelWorker(base) as a, ModelWorker(slow) as b:
        a.time(300), b.time(300)
        ma, mb = [], []
        for r in range(rounds):
            pair = (a, b) if r % 4 in (0, 3) else (b, a)
            for w in pair:
                (ma if w is a else mb).append(float(np.median(w.time(per_block))))
    per_round = np.array(mb) / np.array(ma)
    return {"base_ms": float(np.median(ma)), "slow_ms": float(np.median(mb)),
            "ratio": float(np.median(mb) / np.median(ma)), "paired_median_ratio": float(np.median(per_round)),
            "per_round_ratio_p10_p90":
            [float(np.percentile(per_round, 10)), float(np.percentile(per_round, 90))], "rounds": rounds,
            "per_block": per_block}


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checks", type=int, default=20, help="A/A checks and A/B checks (each)")
    ap.add_argument("--budget-s", type=float, default=30.0, help="ci-check time budget per model")
    ap.add_argument("--C", type=int, default=16)
    ap.add_argument("--N", type=int, default=2)
    ap.add_argument("--extra-channels", type=int, default=48, help="width of the planted extra conv")
    ap.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
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
    sp = create_space("nb201", C=args.C, N=args.N)
    base = export_arch(sp, sp.from_string(BASE), ExportSettings(format="onnx"))
    slow = planted(sp, sp.from_string(BASE), Path(os.environ["HWNAS_HOME"]) / "planted.onnx", args.extra_channels)
    fp = host_fingerprint()
    print(f"host: {fp['cpu']}, {fp['cores']} cores; onnxruntime {runtime_version('onnxruntime')}, 1 thread; "
          f"load average at start {loadavg()}")
    t = time.perf_counter()
    d = direct_ratio(base, slow)
    print(f"direct measurement (40 ABBA blocks x 100 inferences, {time.perf_counter() - t:.0f} s): base "
          f"{d['base_ms']:.3f} ms, planted {d['slow_ms']:.3f} ms -> {100 * (d['ratio'] - 1):+.1f}% "
          f"(median of per-block ratios {100 * (d['paired_median_ratio'] - 1):+.1f}%; per-block ratio p10..p90 {d['per_round_ratio_p10_p90'][0]:.3f}..{d['per_round_ratio_p10_p90'][1]:.3f})")

    device = local_profile("host")
    th = Thresholds()
    rows = {"aa": [], "ab": []}
    loads = []
    for i in range(args.checks):
        for kind, cand in (("aa", base), ("ab", slow)):
            ms = MeasureSettings(budget_s=args.budget_s, seed=1000 * i + (kind == "ab"))
            t = time.perf_counter()
            rep = run_check([ModelSpec(kind, cand, base, kind, "base")], device, th, ms,
                            gates=() if kind == "ab" else GATES).to_dict()
            wall = time.perf_counter() - t
            m = rep["models"][0]
            lat = m["latency"]
            rows[kind].append({"verdict": m["verdict"], "reason": m["reason"], "slowdown_ms": lat["slowdown_ms"],
                               "baseline_ms": lat["baseline_ms"], "wall_s": wall, "rounds": lat["n_rounds"],
                               "ratio": lat["ratio"], "ci": [lat["ci_low"], lat["ci_high"]],
                               "gates": [g for g, r in m["gates"].items() if r["verdict"] != "pass"]})
            loads.append(os.getloadavg()[0])
            print(f"  {kind} #{i + 1:2d}: {m['verdict']:12s} ratio {lat['ratio']:.3f} [{lat['ci_low']:.3f}, "
                  f"{lat['ci_high']:.3f}] {lat['n_rounds']:3d} rounds {wall:5.1f} s  load {loads[-1]:.2f}", flush=True)

    def summary(kind):
        r = rows[kind]
        v = [x["verdict"] for x in r]
        w = np.array([x["wall_s"] for x in r])
        return {"checks": len(r), "fail": v.count("fail"), "pass": v.count("pass"),
                "inconclusive": v.count("inconclusive"), "wall_s_median": float(np.median(w)),
                "wall_s_max": float(w.max()), "rounds_median": float(np.median([x["rounds"] for x in r]))}

    aa, ab = summary("aa"), summary("ab")
    print()
    print(f"A/A (same model, {aa['checks']} checks): false alarms {aa['fail']}/{aa['checks']} "
          f"({100 * aa['fail'] / aa['checks']:.0f}%, target 0); pass {aa['pass']}, inconclusive {aa['inconclusive']}; "
          f"gate false alarms {sum(bool(x['gates']) for x in rows['aa'])}")
    print(f"A/B (planted {100 * (d['ratio'] - 1):+.1f}%, {ab['checks']} checks): detected {ab['fail']}/{ab['checks']} "
          f"({100 * ab['fail'] / ab['checks']:.0f}%, target >= 95%); pass {ab['pass']}, inconclusive {ab['inconclusive']}")
    for kind, s in (("A/A", aa), ("A/B", ab)):
        print(f"wall time per check ({kind}): median {s['wall_s_median']:.1f} s, max {s['wall_s_max']:.1f} s "
              f"(budget {args.budget_s:g} s; median {s['rounds_median']:.0f} rounds)")
    print(f"noise: 1-min load average during the checks median {np.median(loads):.2f}, max {max(loads):.2f} "
          f"on {fp['cores']} cores (other jobs were running on this machine)")
    if args.out:
        args.out.write_text(json.dumps({"host": fp, "direct": d, "aa": aa, "ab": ab, "rows": rows,
                                        "loadavg": loads, "budget_s": args.budget_s}, indent=1))


if __name__ == "__main__":
    main()
