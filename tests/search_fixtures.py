"""Synthetic NB201 tables for search tests (tests never read ../shared)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwnas.spaces import create_space


def write_nb201_tables(directory: Path, seed: int = 0, drop: int | None = None) -> tuple[Path, Path]:
    """accuracy.csv (arch,test_accuracy) and latency.csv (arch,latency_ms,energy_mj) for all 15,625 cells:
    more and bigger convolutions = more accurate and slower, plus noise. ``drop``: leave that index out."""
    space = create_space("nb201")
    rng = np.random.default_rng(seed)
    acc_lines, lat_lines = ["arch,test_accuracy"], ["arch,latency_ms,energy_mj"]
    for i in range(15625):
        if i == drop:
            continue
        a = space.from_index(i)
        g = np.array(a.genes)
        work = 2.0 * (g == 3).sum() + (g == 2).sum() + 0.3 * (g == 4).sum()
        text = space.to_string(a)
        acc_lines.append(f"{text},{55 + 3.2 * work + rng.normal(0, 1.5):.4f}")
        lat = 1 + work + rng.normal(0, 0.2)
        lat_lines.append(f"{text},{lat:.4f},{2.5 * lat:.4f}")
    directory = Path(directory)
    (directory / "accuracy.csv").write_text("\n".join(acc_lines) + "\n")
    (directory / "latency.csv").write_text("\n".join(lat_lines) + "\n")
    return directory / "accuracy.csv", directory / "latency.csv"


def table_args(tables, budget: int = 40, population: int = 10) -> list[str]:
    """`hwnas pareto-search` arguments for a quick table-driven search (error vs latency on device dev)."""
    acc, lat = tables
    return ["pareto-search", "--objective", "error", "--objective", "latency_ms@dev", "--accuracy", f"table:{acc}",
            "--latency", f"dev=table:{lat}", "--budget", str(budget), "--strategy-opt", f"population_size={population}",
            "--no-progress"]
