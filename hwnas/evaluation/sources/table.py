"""``table:FILE``: values imported from a CSV with an ``arch`` column."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np

from ...contracts import Arch
from ...errors import HwnasError
from .base import Source

# the column that holds a quantity, and how the quantity follows from it
_COLUMNS = {"error": "test_accuracy"}


class MissingArchError(HwnasError):
    """A table does not hold an architecture the search asked for."""


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
            raise HwnasError(f"cost source for {device}: table:FILE needs a file" if device
                             else "--accuracy table:FILE needs a file")
        return cls(arg)

    def describe(self) -> str:
        return f"imported:table:{self.path.name}"

    def _table(self) -> dict[str, dict[str, str]]:
        cached = getattr(self, "_rows", None)
        if cached is not None:
            return cached
        if not self.path.is_file():
            raise HwnasError(f"table {self.path} does not exist")
        try:
            with self.path.open(newline="") as fh:
                reader = csv.DictReader(fh)
                fields = reader.fieldnames or []
                if "arch" not in fields:
                    raise HwnasError(f"table {self.path}: no 'arch' column (columns: {', '.join(fields) or 'none'})")
                rows = {r["arch"].strip(): r for r in reader if r.get("arch")}
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise HwnasError(f"table {self.path} is unreadable: {exc}") from None
        self._rows = rows
        self._fields = fields
        return rows

    def check(self, space, quantity: str) -> None:
        """Read the table now (fail before a search starts, not in the middle)."""
        column = _COLUMNS.get(quantity, quantity)
        self._table()
        if column not in self._fields:
            raise HwnasError(f"table {self.path}: no {column!r} column (columns: {', '.join(self._fields)})")

    def column_values(self, space, archs: Sequence[Arch], column: str) -> np.ndarray:
        """The raw numbers of one column for ``archs``."""
        rows = self._table()
        self.check(space, column)
        out = np.empty(len(archs))
        for i, arch in enumerate(archs):
            key = space.to_string(arch)
            row = rows.get(key)
            if row is None:
                raise MissingArchError(f"table {self.path} has no row for arch {key}")
            try:
                out[i] = float(row[column])
            except (TypeError, ValueError):
                raise HwnasError(f"table {self.path}: {column} of arch {key} is not a number: {row[column]!r}") from None
        return out

    def values(self, space, archs: Sequence[Arch], quantity: str) -> tuple[np.ndarray, list[str]]:
        raw = self.column_values(space, archs, _COLUMNS.get(quantity, quantity))
        return (100.0 - raw if quantity == "error" else raw), [self.describe()] * len(archs)

    def __getstate__(self):  # do not ship the parsed table to remote workers
        return {"path": self.path}
