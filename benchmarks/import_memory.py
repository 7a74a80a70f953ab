"""Peak memory of `hwnas import latency` on a large CSV (issue 23 item 14).

Writes a CSV of real NB201 arch strings (the 15,625 cells over and over, each with a latency and an energy)
of about ``--mb`` MB in a temporary directory, imports it into a fresh store with the installed ``hwnas``
command, and prints the file size, the rows stored, the command's peak RSS (``getrusage`` of the child:
ru_maxrss), its CPU time (user + system) and its wall time.

    python benchmarks/import_memory.py                       # 200 MB, the code on PYTHONPATH
    python benchmarks/import_memory.py --mb 20               # a quick look
    python benchmarks/import_memory.py --pythonpath /tmp/old # another checkout of hwnas (before/after)
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_csv(path: Path, mb: float, seed: int = 0) -> int:
    """About ``mb`` MB of ``arch,latency_ms,energy_mj`` rows; returns the number of rows."""
    from hwnas.spaces import create_space

    space = create_space("nb201")
    archs = [space.to_string(space.from_index(i)) for i in range(space.size())]
    rng = np.random.default_rng(seed)
    target, written, rows = int(mb * 1e6), 0, 0
    with open(path, "w", newline="") as fh:
        fh.write("arch,latency_ms,energy_mj\n")
        while written < target:
            lat = rng.uniform(0.5, 50.0, len(archs))
            block = "".join(f"{a},{x:.4f},{2.5 * x:.4f}\n" for a, x in zip(archs, lat))
            fh.write(block)
            written += len(block)
            rows += len(archs)
    return rows


def run_import(csv: Path, store: Path, hwnas: str, pythonpath: str | None) -> dict:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    t0 = time.perf_counter()
    proc = subprocess.Popen([hwnas, "import", "latency", str(csv), "--device", "bench", "--store", str(store)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    rc = os.waitstatus_to_exitcode(status)
    return {"rc": rc, "out": out.strip(), "err": err.strip()[-500:], "peak_rss_mb": usage.ru_maxrss / 1024,
            "cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=200.0, help="size of the generated CSV in MB (default 200)")
    ap.add_argument("--hwnas", default=str(Path(sys.executable).with_name("hwnas")), help="the hwnas command")
    ap.add_argument("--pythonpath", default=None, help="PYTHONPATH for the command (a checkout of hwnas)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hwnas-import-bench-") as tmp:
        csv, store = Path(tmp) / "big.csv", Path(tmp) / "m.db"
        t0 = time.perf_counter()
        n = write_csv(csv, args.mb)
        size = csv.stat().st_size
        print(f"CSV: {size / 1e6:.1f} MB, {n:,} rows (written in {time.perf_counter() - t0:.1f} s)")
        r = run_import(csv, store, args.hwnas, args.pythonpath)
        if r["rc"] != 0:
            print(f"import failed (exit {r['rc']}): {r['err']}")
            sys.exit(1)
        with sqlite3.connect(store) as conn:
            stored = conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
        print(f"hwnas: {r['out']}")
        print(f"rows stored: {stored:,}")
        print(f"peak RSS: {r['peak_rss_mb']:.0f} MiB ({r['peak_rss_mb'] * 2**20 / size:.2f} x the file)")
        print(f"time: {r['cpu_s']:.1f} s CPU (user + system), {r['wall_s']:.1f} s wall")


if __name__ == "__main__":
    main()
