"""`hwnas import latency` and `hwnas export-measurements`: measurements in and out of the store as CSV
(the reading and writing live beside the store: hwnas/store_csv.py)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import EXIT_CODES, device_name


def register(app: typer.Typer) -> None:
    imp = typer.Typer(help="Import external data into hwnas.\n\n"
                           "Example: hwnas import latency pixel2.csv --device pixel2 --space nb201",
                      no_args_is_help=True)

    @imp.command("latency", epilog=EXIT_CODES)
    def latency(
        file: Path = typer.Argument(..., help="CSV with columns arch,latency_ms[,energy_mj]"),
        device: str = typer.Option(..., "--device", callback=device_name, help="device name to file the measurements under"),
        space: str = typer.Option("nb201", "--space", help="search space of the arch strings"),
        space_opt: Optional[List[str]] = typer.Option(None, "--space-opt", help="space setting KEY=VALUE"),
        runtime: str = typer.Option("unknown", "--runtime", help="runtime the figures came from, if known"),
        store: Optional[str] = typer.Option(None, "--store", help="measurement store: a SQLite file or a postgresql:// URL (default $HWNAS_STORE, else $HWNAS_HOME/measurements.db)"),
    ) -> None:
        """Import latency (and energy) measured elsewhere, labelled 'imported' (all rows or none).

        Example: hwnas import latency ../shared/data/nb201/latency/pixel2.csv --device pixel2 --space nb201
        """
        from ..store import MeasurementStore
        from ..store_csv import import_latency_csv
        from .common import make_space

        sp = make_space(space, space_opt)
        st = MeasurementStore(store)
        n = import_latency_csv(file, device, sp, st, runtime=runtime)
        if n == 0:
            typer.echo(f"{file} was already imported for {device} ({sp.name}) into {st.path} (same sha256): "
                       "nothing added")
        else:
            typer.echo(f"imported {n} measurements for {device} ({sp.name}) into {st.path}")

    app.add_typer(imp, name="import")

    @app.command("export-measurements", epilog=EXIT_CODES)
    def export_measurements(
        device: str = typer.Option(..., "--device", callback=device_name, help="device name"),
        out: Path = typer.Option(..., "--out", help="CSV file to write"),
        space: Optional[str] = typer.Option(None, "--space", help="only this space"),
        runtime: Optional[str] = typer.Option(None, "--runtime", help="only this runtime"),
        source: Optional[str] = typer.Option(None, "--source", help="measured | imported"),
        all_rows: bool = typer.Option(False, "--all", help="every row, not only the latest per arch and settings"),
        store: Optional[str] = typer.Option(None, "--store", help="measurement store: a SQLite file or a postgresql:// URL (default $HWNAS_STORE, else $HWNAS_HOME/measurements.db)"),
    ) -> None:
        """Write a device's measurements as CSV (arch,latency_ms,energy_mj,... with how each was obtained).

        Example: hwnas export-measurements --device host --out host.csv
        """
        from ..errors import HwnasError
        from ..fileio import check_writable
        from ..store import SOURCES, MeasurementStore
        from ..store_csv import write_measurements_csv

        if source is not None and source not in SOURCES:
            raise HwnasError(f"--source {source!r}: expected one of {', '.join(SOURCES)}")
        check_writable(out)
        st = MeasurementStore(store)
        rows = st.query(device=device, space=space, runtime=runtime, source=source, latest=not all_rows)
        if not rows:
            known = ", ".join(st.devices()) or "(none)"
            raise HwnasError(f"no measurements for device {device!r} in {st.path} with these filters; devices there: {known}")
        write_measurements_csv(rows, out)
        typer.echo(f"wrote {len(rows)} measurements of {device} to {out}")
