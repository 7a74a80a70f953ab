"""CSV in and out of the store, called as a library (no CLI): hwnas.store_csv."""

import csv

import pytest

from hwnas.errors import HwnasError
from hwnas.spaces import create_space
from hwnas.store import MeasurementStore
from hwnas.store_csv import EXPORT_COLUMNS, import_latency_csv, write_measurements_csv


def test_import_latency_csv_and_write_measurements_csv_round_trip_without_the_cli(tmp_path):
    sp = create_space("nb201")
    a, b = sp.to_string(sp.from_index(0)), sp.to_string(sp.from_index(1))
    src = tmp_path / "lat.csv"
    src.write_text(f"arch,latency_ms,energy_mj\n{a},9.0,12.5\n{b},17.0,\n")
    store = MeasurementStore(tmp_path / "m.db")
    assert import_latency_csv(src, "pixel2", sp, store) == 2
    assert import_latency_csv(src, "pixel2", sp, store) == 0  # same sha256: a no-op
    rows = store.query(device="pixel2")
    assert [(m.arch, m.source, m.latency_ms, m.energy_mj) for m in rows] == [
        (a, "imported", 9.0, 12.5), (b, "imported", 17.0, None)]
    out = tmp_path / "back.csv"
    write_measurements_csv(rows, out)
    with out.open() as fh:
        reader = csv.DictReader(fh)
        back = list(reader)
    assert tuple(reader.fieldnames) == EXPORT_COLUMNS
    assert [(r["arch"], r["latency_ms"], r["energy_mj"], r["source"]) for r in back] == [
        (a, "9.0", "12.5", "imported"), (b, "17.0", "", "imported")]


def test_import_latency_csv_names_the_bad_line_and_writes_nothing(tmp_path):
    sp = create_space("nb201")
    src = tmp_path / "lat.csv"
    src.write_text(f"arch,latency_ms\n{sp.to_string(sp.from_index(0))},9.0\n{sp.to_string(sp.from_index(1))},-1\n")
    store = MeasurementStore(tmp_path / "m.db")
    with pytest.raises(HwnasError, match="line 3"):
        import_latency_csv(src, "d", sp, store)
    assert store.query(device="d") == []
