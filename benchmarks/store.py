"""Store benchmark (issue 28): N processes write M measurements each, at once, into PostgreSQL and into SQLite;
prints rows/s and the rows lost and duplicated (target: 0 and 0), per engine, in one run.

Writer p writes the measurements of keys [p * step, p * step + M) with ``add_many(batch, if_absent=True)``
(``hwnas profile``'s write: "store it unless that key is stored"), step = M x (1 - overlap): with the default
overlap 0.5 every key but those at the ends is written by two processes at once, so a write that is not atomic
shows up as a duplicated row, and a lost transaction as a missing key. All writers start together (a gate).

    python benchmarks/store.py                          # 8 processes x 5,000 rows, both engines
    python benchmarks/store.py --procs 8 --rows 1000 --batch 1
    python benchmarks/store.py --pg-url postgresql://alice@db.lab/hwnas_bench   # an existing (empty) database

Without --pg-url a durable PostgreSQL server (fsync on) is started in a temporary directory on a unix socket
(tests/pg_server.py), so PostgreSQL here runs on the same disk as SQLite. The figures depend on the machine and
its load: the output says the CPU time used as well as the wall time.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

WRITER = r"""
import sys, time
from pathlib import Path
from hwnas.store import Measurement, MeasurementStore

target, gate, me, first, n, batch, procs = sys.argv[1], Path(sys.argv[2]), sys.argv[3], *map(int, sys.argv[4:8])
store = MeasurementStore(target)
ms = [Measurement(space="nb201", arch_id=f"a{i}", arch=f"|a{i}|", device="bench", runtime="onnxruntime",
                  runtime_version="1", settings={"threads": 1}, source="measured", latency_ms=1.0 + i % 97,
                  n_runs=20, fingerprint={"host": "bench"}) for i in range(first, first + n)]
(gate / me).touch()
while len(list(gate.iterdir())) < procs:
    time.sleep(0.001)
t = time.perf_counter()
for k in range(0, n, batch):
    store.add_many(ms[k:k + batch], if_absent=True)
print(time.perf_counter() - t)
"""


def run_engine(target: str, procs: int, rows: int, batch: int, overlap: float) -> dict:
    from hwnas.store import MeasurementStore

    MeasurementStore(target).close()  # create the schema before the clock starts
    step = max(1, int(rows * (1 - overlap)))
    gate = Path(tempfile.mkdtemp(prefix="hwnas-bench-gate-"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    ps = [subprocess.Popen([sys.executable, "-c", WRITER, target, str(gate), str(p), str(p * step), str(rows),
                            str(batch), str(procs)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True) for p in range(procs)]
    outs = [p.communicate() for p in ps]
    wall_all = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    failed = [(p.returncode, o[1][-400:]) for p, o in zip(ps, outs) if p.returncode != 0]
    if failed:
        raise SystemExit(f"a writer failed: {failed[0]}")
    write_s = max(float(o[0].strip()) for o in outs)  # from the gate's opening to the last writer's end
    expected = set(range((procs - 1) * step + rows))
    stored = [int(m.arch_id[1:]) for m in MeasurementStore(target).query(latest=False, device="bench")]
    return {"writes": procs * rows, "write_s": write_s, "wall_s": wall_all,
            "cpu_s": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
            "keys": len(expected), "rows": len(stored), "lost": len(expected - set(stored)),
            "duplicated": len(stored) - len(set(stored))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=8, help="writer processes (default 8)")
    ap.add_argument("--rows", type=int, default=5000, help="measurements each process writes (default 5000)")
    ap.add_argument("--batch", type=int, default=1, help="measurements per write transaction (default 1, as "
                                                        "hwnas profile writes)")
    ap.add_argument("--overlap", type=float, default=0.5, help="share of a writer's keys its neighbour also writes")
    ap.add_argument("--engines", default="postgresql,sqlite", help="postgresql,sqlite (default both)")
    ap.add_argument("--pg-url", default=None, help="an empty PostgreSQL database to write into (default: start a "
                                                   "temporary server)")
    args = ap.parse_args()
    sys.path[:0] = [str(REPO), str(REPO / "tests")]
    from hwnas.store import mask_url

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    print(f"{args.procs} processes x {args.rows} rows, batch {args.batch}, overlap {args.overlap:g}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    server = None
    tmp = Path(tempfile.mkdtemp(prefix="hwnas-bench-"))
    try:
        for engine in engines:
            if engine == "sqlite":
                target, where = str(tmp / "bench.db"), f"SQLite {tmp / 'bench.db'} (WAL)"
            else:
                target = args.pg_url
                if target is None:
                    from pg_server import start_server

                    server = start_server(durable=True)
                    if isinstance(server, str):
                        print(f"postgresql: skipped ({server})")
                        server = None
                        continue
                    target = server.new_database()
                where = f"PostgreSQL {mask_url(target)}" + (" (temporary server, fsync on)" if server else "")
            r = run_engine(target, args.procs, args.rows, args.batch, args.overlap)
            print(f"{engine:10s} {r['writes'] / r['write_s']:8.0f} rows/s ({r['writes']} writes in {r['write_s']:.1f} s;"
                  f" writers' CPU {r['cpu_s']:.1f} s)  stored {r['rows']} rows of {r['keys']} keys: lost {r['lost']},"
                  f" duplicated {r['duplicated']}  [{where}]")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
