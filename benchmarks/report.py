"""Report benchmark: how big is the report of a 1,000-evaluation search, and how long does headless Chromium take
to open it?

Runs real table searches with the installed command (``hwnas pareto-search --budget 1000``, three objectives:
CIFAR-10 error and the latency of two devices, so the page has its parallel coordinates too) on the NAS-Bench-201
tables of ``$NB201_DATA`` (default ../shared/data/nb201), or, where they are absent, on planted synthetic tables of
the same shape (said in the output). Then ``hwnas report`` renders report.html and a comparison of two seeds
(compare.html); each page is loaded ``--loads`` times in a fresh headless Chromium tab (Selenium; Debian's chromium
and chromedriver) and the load time read from the page itself: ``performance.timing`` loadEventEnd -
navigationStart (the inline script draws every plot before the load event, so this includes drawing).

    python benchmarks/report.py                       # budget 1000, 5 loads per page
    python benchmarks/report.py --budget 300 --loads 10 --keep runs/report-bench
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # tests/browser.py: the same headless Chromium the browser tests use

HWNAS = str(Path(sys.executable).with_name("hwnas"))
DEVICES = ("pixel2", "samsung_s7")


def tables(work: Path) -> tuple[Path, dict[str, Path], str]:
    """(accuracy table, {device: latency table}, where they come from)."""
    data = Path(os.environ.get("NB201_DATA") or ROOT.parent / "shared" / "data" / "nb201")
    lat = {d: data / "latency" / f"{d}.csv" for d in DEVICES}
    if (data / "accuracy_cifar10.csv").is_file() and all(p.is_file() for p in lat.values()):
        return data / "accuracy_cifar10.csv", lat, f"NAS-Bench-201 tables in {data}"
    from search_fixtures import write_nb201_tables

    lat = {}
    for k, d in enumerate(DEVICES):
        (work / d).mkdir(parents=True, exist_ok=True)
        acc, lat[d] = write_nb201_tables(work / d, seed=k)
    return acc, lat, "planted synthetic tables (no NB201 data found; set NB201_DATA)"


def search(acc: Path, lat: dict, budget: int, seed: int, out: Path) -> float:
    args = [HWNAS, "pareto-search", "--objective", "error", "--accuracy", f"table:{acc}", "--strategy", "nsga2",
            "--strategy-opt", "population_size=50", "--budget", str(budget), "--seed", str(seed), "--no-progress",
            "--out", str(out)]
    for d, path in lat.items():
        args += ["--objective", f"latency_ms@{d}", "--latency", f"{d}=table:{path}"]
    return timed(args, Path.cwd())


def timed(argv: list, cwd: Path) -> float:
    """Run a command, its output kept out of the figures (shown if it fails); its wall time in seconds."""
    started = time.perf_counter()
    ran = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if ran.returncode:
        sys.exit(f"{' '.join(map(str, argv))} failed ({ran.returncode}):\n{ran.stdout}{ran.stderr}")
    return time.perf_counter() - started


def render(args: list, cwd: Path) -> float:
    return timed([HWNAS, "report", *map(str, args)], cwd)


def load_times(driver, page: Path, loads: int) -> list[float]:
    """Milliseconds from navigationStart to loadEventEnd, one fresh navigation each."""
    out = []
    for _ in range(loads):
        driver.get("about:blank")
        driver.get(page.resolve().as_uri())
        assert driver.execute_script("return document.body.getAttribute('data-ready')") == "1", "the page's script failed"
        timing = driver.execute_script("var t = performance.timing; return [t.navigationStart, t.loadEventEnd]")
        out.append(float(timing[1] - timing[0]))
    errors = [m for m in driver.get_log("browser") if m.get("level") == "SEVERE"]
    assert not errors, errors
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--keep", type=Path, default=None, help="keep the runs and pages in this directory")
    a = ap.parse_args()
    from browser import missing, start_browser, stop_browser

    if missing():
        sys.exit("needs " + "; ".join(missing()))
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="hwnas-report-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    acc, lat, origin = tables(work / "tables")
    print(f"tables: {origin}")
    for seed in (0, 1):
        shutil.rmtree(work / f"seed{seed}", ignore_errors=True)
        s = search(acc, lat, a.budget, seed, work / f"seed{seed}")
        print(f"search seed {seed}: {a.budget} evaluations (nsga2, 3 objectives) in {s:.1f} s")
    pages = {"report.html": (work / "seed0" / "report.html", ["seed0"]),
             "compare.html (2 runs)": (work / "compare.html", ["seed0", "seed1", "--out", "compare.html"])}
    driver = start_browser()
    try:
        print(f"{'page':<24}{'size':>10}{'render s':>10}{'load median ms':>16}{'p90':>8}{'worst':>8}")
        for name, (page, args) in pages.items():
            rendered = render(args, work)
            times = load_times(driver, page, a.loads)
            print(f"{name:<24}{page.stat().st_size / 1e6:>8.2f}MB{rendered:>10.2f}{np.median(times):>16.0f}"
                  f"{np.percentile(times, 90):>8.0f}{max(times):>8.0f}")
    finally:
        stop_browser(driver)
    print(f"({a.loads} loads each in headless Chromium, performance.timing navigationStart -> loadEventEnd; "
          "render: `hwnas report` wall time incl. start-up" + (f"; files in {work})" if a.keep else ")"))
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
