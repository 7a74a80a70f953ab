"""Check hwnas's NAS-Bench-201 index order and string format against a benchmark table.

    .venv/bin/python benchmarks/verify_nb201_index.py [../shared/data/nb201/accuracy_cifar10.csv]

Every row i of the table must be the arch string hwnas gives for index i, and parse back to index i.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from hwnas.spaces import create_space


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nb201" / "accuracy_cifar10.csv")
    sp = create_space("nb201")
    rows = [r["arch"] for r in csv.DictReader(path.open())]
    bad = [i for i, s in enumerate(rows) if sp.to_string(sp.from_index(i)) != s or sp.index(sp.from_string(s)) != i]
    print(f"rows: {len(rows)}  mismatches: {len(bad)}" + (f"  first: {bad[:5]}" if bad else ""))
    return 1 if bad or len(rows) != 15625 else 0


if __name__ == "__main__":
    sys.exit(main())
