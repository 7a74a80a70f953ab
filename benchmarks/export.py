"""Median export time per format for N random architectures of each space (fresh cache, so every export
is a real conversion), plus the cost of a cache hit.

    .venv/bin/python benchmarks/export.py [--n 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from hwnas.export import ExportSettings, export_arch
from hwnas.spaces import create_space


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--spaces", default="nb201,mobilenet")
    ap.add_argument("--formats", default="onnx,tflite")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        print(f"{'space':<10} {'format':<7} {'n':>3} {'median_s':>9} {'p90_s':>7} {'max_s':>7} {'cache_hit_ms':>12} {'median_MB':>9}")
        for name in args.spaces.split(","):
            sp = create_space(name)
            rng = np.random.default_rng(args.seed)
            archs = [sp.sample(rng) for _ in range(args.n)]
            for fmt in args.formats.split(","):
                settings = ExportSettings(format=fmt)
                times, sizes = [], []
                for a in archs:
                    t0 = time.perf_counter()
                    p = export_arch(sp, a, settings, cache_dir=Path(cache))
                    times.append(time.perf_counter() - t0)
                    sizes.append(p.stat().st_size / 1e6)
                t0 = time.perf_counter()
                export_arch(sp, archs[0], settings, cache_dir=Path(cache))
                hit_ms = (time.perf_counter() - t0) * 1e3
                q = np.quantile(times, [0.5, 0.9])
                print(f"{name:<10} {fmt:<7} {len(times):>3} {q[0]:>9.2f} {q[1]:>7.2f} {max(times):>7.2f} {hit_ms:>12.1f} "
                      f"{statistics.median(sizes):>9.2f}", flush=True)


if __name__ == "__main__":
    main()
