"""`hwnas import latency` and `hwnas export-measurements`: measurements in and out of the store as CSV."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

EXPORT_COLUMNS = ("arch", "latency_ms", "energy_mj", "energy_source", "source", "space", "arch_id", "device", "runtime",
                  "runtime_version", "latency_p90_ms", "latency_iqr_ms", "latency_cv", "n_runs", "first_inference_ms",
                  "unstable", "created_at", "settings", "latency_corrected_ms", "estimator", "throttled")


def import_latency_csv(path: Path, device: str, space, store, runtime: str = "unknown") -> int:
    """Read ``arch,latency_ms[,energy_mj]`` rows and store them labelled ``imported`` in one transaction
    (a bad row aborts the import, naming its line, and nothing is written). Returns the rows added: 0 when
    a file with the same sha256 was already imported for this device and space (re-importing is a no-op)."""
    import csv
    import math

    from ..errors import HwnasError
    from ..spaces import arch_from_text
    from ..store import Measurement

    import io as _io

    from ..io import read_text, sha256_file

    path = Path(path)
    if not path.is_file():
        raise HwnasError(f"{path} does not exist")
    digest = sha256_file(path)
    reader = csv.DictReader(_io.StringIO(read_text(path, "CSV file"), newline=""))
    cols = [c.strip() for c in (reader.fieldnames or [])]
    if "arch" not in cols or "latency_ms" not in cols:
        raise HwnasError(f"{path}: expected columns arch,latency_ms[,energy_mj]; found {', '.join(cols) or 'none'}")
    settings = {"imported_from": path.name, "space": space.config()}
    rows = []
    for i, row in enumerate(reader, start=2):
        where = f"{path}, line {i}"
        if None in row:  # more fields than the header: an arch string with commas, unquoted
            raise HwnasError(f"{where}: {len(cols) + len(row[None])} fields but the header has {len(cols)}; "
                             f'quote arch strings that contain commas, e.g. "genes:0,1,2"')
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        if not row.get("arch"):
            continue
        try:
            arch = arch_from_text(space, row["arch"])
        except HwnasError as exc:
            raise HwnasError(f"{where}: {exc}") from None
        try:
            lat = float(row["latency_ms"])
            energy = float(row["energy_mj"]) if row.get("energy_mj") else None
        except ValueError:
            raise HwnasError(f"{where}: latency_ms / energy_mj must be numbers, got "
                             f"{row.get('latency_ms')!r} / {row.get('energy_mj')!r}") from None
        if not (math.isfinite(lat) and lat > 0) or (energy is not None and not (math.isfinite(energy) and energy >= 0)):
            raise HwnasError(f"{where}: latency_ms must be > 0 and energy_mj >= 0, got {lat} / {energy}")
        rows.append(Measurement(space=space.name, arch_id=arch.arch_id, arch=space.to_string(arch), device=device,
                                runtime=runtime, runtime_version="unknown", settings=settings, source="imported",
                                latency_ms=lat, n_runs=0, energy_mj=energy,
                                energy_source="imported" if energy is not None else None,
                                fingerprint={"imported_from": str(path.resolve()), "sha256": digest}))
    if not rows:
        raise HwnasError(f"{path}: no rows to import")
    if store.has_import(digest, device=device, space=space.name):
        return 0  # the same file (same sha256) was imported before: importing is idempotent
    store.add_many(rows)
    return len(rows)


def register(app: typer.Typer) -> None:
    imp = typer.Typer(help="Import external data into hwnas.\n\n"
                           "Example: hwnas import latency pixel2.csv --device pixel2 --space nb201",
                      no_args_is_help=True)

    @imp.command("latency")
    def latency(
        file: Path = typer.Argument(..., help="CSV with columns arch,latency_ms[,energy_mj]"),
        device: str = typer.Option(..., "--device", help="device name to file the measurements under"),
        space: str = typer.Option("nb201", "--space", help="search space of the arch strings"),
        space_opt: Optional[List[str]] = typer.Option(None, "--space-opt", help="space setting KEY=VALUE"),
        runtime: str = typer.Option("unknown", "--runtime", help="runtime the figures came from, if known"),
        store: Optional[Path] = typer.Option(None, "--store", help="measurement store (default $HWNAS_HOME/measurements.db)"),
    ) -> None:
        """Import latency (and energy) measured elsewhere, labelled 'imported' (all rows or none).

        Example: hwnas import latency ../shared/data/nb201/latency/pixel2.csv --device pixel2 --space nb201
        """
        from ..store import MeasurementStore
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

    @app.command("export-measurements")
    def export_measurements(
        device: str = typer.Option(..., "--device", help="device name"),
        out: Path = typer.Option(..., "--out", help="CSV file to write"),
        space: Optional[str] = typer.Option(None, "--space", help="only this space"),
        runtime: Optional[str] = typer.Option(None, "--runtime", help="only this runtime"),
        source: Optional[str] = typer.Option(None, "--source", help="measured | imported"),
        all_rows: bool = typer.Option(False, "--all", help="every row, not only the latest per arch and settings"),
        store: Optional[Path] = typer.Option(None, "--store", help="measurement store (default $HWNAS_HOME/measurements.db)"),
    ) -> None:
        """Write a device's measurements as CSV (arch,latency_ms,energy_mj,... with how each was obtained).

        Example: hwnas export-measurements --device host --out host.csv
        """
        import csv
        import json

        from ..errors import HwnasError
        from ..io import atomic_path, check_writable
        from ..store import SOURCES, MeasurementStore

        if source is not None and source not in SOURCES:
            raise HwnasError(f"--source {source!r}: expected one of {', '.join(SOURCES)}")
        check_writable(out)
        st = MeasurementStore(store)
        rows = st.query(device=device, space=space, runtime=runtime, source=source, latest=not all_rows)
        if not rows:
            known = ", ".join(st.devices()) or "(none)"
            raise HwnasError(f"no measurements for device {device!r} in {st.path} with these filters; devices there: {known}")
        with atomic_path(out) as tmp:
            with open(tmp, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(EXPORT_COLUMNS)
                for m in rows:
                    d = m.to_dict()
                    d["settings"] = json.dumps(m.settings, sort_keys=True)
                    d["unstable"] = int(m.unstable)
                    w.writerow(["" if d[c] is None else d[c] for c in EXPORT_COLUMNS])
        typer.echo(f"wrote {len(rows)} measurements of {device} to {out}")
