"""``table:FILE``: values imported from a CSV with an ``arch`` column.

Values are validated when the table is first read for a quantity, by the rule ``hwnas import latency`` and the
store use (``hwnas.store.VALUE_RANGES``): NaN, inf or text, a latency <= 0 or over an hour, a negative energy or
count, an accuracy outside 0-100 or a whole accuracy column given as 0-1 fractions is a ``HwnasError`` naming
the table, its line and the arch. An arch the table
lacks (public NB201 latency tables lack the 341 cells with no path from input to output) is an unknown value:
``nan`` with provenance ``missing:table <file>``; the evaluator makes it infeasible, so it is never on a front.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ...contracts import Arch
from ...errors import HwnasError, ParameterError
from ...store import VALUE_RANGES, value_problem
from .base import Source

# the column that holds a quantity, and how the quantity follows from it
_COLUMNS = {"error": "test_accuracy"}
ACCURACY_COLUMNS = ("test_accuracy",)


class MissingArchError(HwnasError):
    """A table does not hold an architecture (kept for callers that want to refuse missing rows)."""


def missing_provenance(path: Path) -> str:
    return f"missing:table {Path(path).name}"


def check_column(path: Path, column: str, rows: dict[str, dict[str, str]], lines: dict[str, int]) -> dict[str, float]:
    """The validated numbers of one column, arch string -> value; the first bad row is a HwnasError."""
    out: dict[str, float] = {}
    for arch, row in rows.items():
        where = f"table {path}, line {lines[arch]} (arch {arch})"
        text = (row.get(column) or "").strip()
        try:
            v = float(text)
        except ValueError:
            raise HwnasError(f"{where}: {column} is not a number: {text!r}") from None
        if not math.isfinite(v):
            raise HwnasError(f"{where}: {column} is {text!r}; give a finite number or leave the arch out")
        problem = value_problem(column, v) if column in VALUE_RANGES else None
        if problem:  # the rule every source obeys (hwnas.store.VALUE_RANGES: import, store, replayed logs)
            raise HwnasError(f"{where}: {problem}")
        if column not in VALUE_RANGES and v < 0:
            raise HwnasError(f"{where}: {column} must be >= 0, got {v}")
        out[arch] = v
    if column in ACCURACY_COLUMNS and out and max(out.values()) <= 1.0:
        first = next(iter(out))
        raise HwnasError(f"table {path}: every {column} is in 0-1 (line {lines[first]}, arch {first}: "
                         f"{out[first]}); accuracies are percentages in 0-100: multiply the column by 100")
    return out


class TableSource(Source):
    """Values imported from a CSV with an ``arch`` column (arch strings of the space) and value columns:
    ``test_accuracy`` for ``error`` (100 - accuracy), else a column named like the quantity (``latency_ms``)."""

    kind = "table"
    cheap = True

    def __init__(self, path):
        self.path = Path(path)

    @classmethod
    def from_spec(cls, arg, device, settings):
        if not arg:
            if device:
                raise HwnasError(f"cost source for {device}: table:FILE needs a file")
            raise ParameterError("accuracy", "table:FILE needs a file")
        return cls(arg)

    def describe(self) -> str:
        return f"imported:table:{self.path.name}"

    def _table(self) -> dict[str, dict[str, str]]:
        cached = getattr(self, "_rows", None)
        if cached is not None:
            return cached
        if not self.path.is_file():
            raise HwnasError(f"table {self.path} does not exist")
        rows: dict[str, dict[str, str]] = {}
        lines: dict[str, int] = {}
        try:
            with self.path.open(newline="", encoding="utf-8-sig") as fh:
                reader = csv.DictReader(fh)
                fields = [(f or "").strip() for f in (reader.fieldnames or [])]
                reader.fieldnames = fields
                if "arch" not in fields:
                    raise HwnasError(f"table {self.path}: no 'arch' column (columns: {', '.join(fields) or 'none'})")
                for r in reader:
                    key = (r.get("arch") or "").strip()
                    if key:
                        rows[key] = r
                        lines[key] = reader.line_num
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise HwnasError(f"table {self.path} is unreadable: {exc}") from None
        self._rows, self._lines, self._fields, self._columns = rows, lines, fields, {}
        return rows

    def _column(self, column: str) -> dict[str, float]:
        rows = self._table()
        if column not in self._fields:
            raise HwnasError(f"table {self.path}: no {column!r} column (columns: {', '.join(self._fields)})")
        if column not in self._columns:
            self._columns[column] = check_column(self.path, column, rows, self._lines)
        return self._columns[column]

    def check(self, space, quantity: str) -> None:
        """Read and validate the table now (fail before a search starts, not in the middle)."""
        self._column(_COLUMNS.get(quantity, quantity))

    def column_values(self, space, archs: Sequence[Arch], column: str) -> tuple[np.ndarray, np.ndarray]:
        """The numbers of one column for ``archs`` (nan where the table has no row) and a found-mask."""
        col = self._column(column)
        out = np.array([col.get(space.to_string(a), np.nan) for a in archs], dtype=float)
        return out, np.isfinite(out)

    def values(self, space, archs: Sequence[Arch], quantity: str) -> tuple[np.ndarray, list[str]]:
        raw, found = self.column_values(space, archs, _COLUMNS.get(quantity, quantity))
        have, missing = self.describe(), missing_provenance(self.path)
        return (100.0 - raw if quantity == "error" else raw), [have if f else missing for f in found]

    def __getstate__(self):  # do not ship the parsed table to remote workers
        return {"path": self.path}
