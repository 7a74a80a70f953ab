"""`hwnas import latency` and `hwnas export-measurements`: measurements in and out of the store as CSV."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import EXIT_CODES, device_name

EXPORT_COLUMNS = ("arch", "latency_ms", "energy_mj", "energy_source", "source", "space", "arch_id", "device", "runtime",
                  "runtime_version", "latency_p90_ms", "latency_iqr_ms", "latency_cv", "n_runs", "first_inference_ms",
                  "unstable", "created_at", "settings", "latency_corrected_ms", "estimator", "throttled")


def import_latency_csv(path: Path, device: str, space, store, runtime: str = "unknown") -> int:
    """Read ``arch,latency_ms[,energy_mj]`` rows and store them labelled ``imported``, all or none (a bad row
    aborts the import, naming its line, and nothing is written). The file is read as a stream, a batch of rows
    at a time, so memory does not grow with it. Returns the rows added: 0 when a file with the same sha256 was
    already imported for this device and space (re-importing is a no-op, also when two imports run at once)."""
    from ..errors import HwnasError
    from ..io import sha256_file

    path = Path(path)
    if not path.is_file():
        raise HwnasError(f"{path} does not exist")
    digest = sha256_file(path)
    return store.add_import(_imported_rows(path, device, space, runtime, digest), digest, device=device,
                            space=space.name)


def _canonical(space, text: str) -> tuple[str, str]:
    """(arch id, the space's arch string) of an arch string of ``space``."""
    from ..spaces import arch_from_text

    arch = arch_from_text(space, text)
    return arch.arch_id, space.to_string(arch)


def _imported_rows(path: Path, device: str, space, runtime: str, digest: str):
    """The Measurements of an import file, one row at a time; the first bad row is a HwnasError naming its line
    (values must be numbers in the range every source obeys: ``hwnas.store.VALUE_RANGES``)."""
    import csv
    from functools import lru_cache

    from ..errors import HwnasError
    from ..io import now_iso, text_lines
    from ..store import Measurement, value_problem

    reader = csv.DictReader(text_lines(path, "CSV file"))
    settings = {"imported_from": path.name, "space": space.config()}
    fingerprint = {"imported_from": str(path.resolve()), "sha256": digest}
    created = now_iso()  # one import, one time
    parse = lru_cache(maxsize=1 << 16)(lambda text: _canonical(space, text))  # tables repeat archs
    n = 0
    try:
        cols = [c.strip() for c in (reader.fieldnames or [])]
        if "arch" not in cols or "latency_ms" not in cols:
            raise HwnasError(f"{path}: expected columns arch,latency_ms[,energy_mj]; found {', '.join(cols) or 'none'}")
        for row in reader:
            where = f"{path}, line {reader.line_num}"
            if None in row:  # more fields than the header: an arch string with commas, unquoted
                raise HwnasError(f"{where}: {len(cols) + len(row[None])} fields but the header has {len(cols)}; "
                                 f'quote arch strings that contain commas, e.g. "genes:0,1,2"')
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            if not row.get("arch"):
                continue
            try:
                arch_id, arch = parse(row["arch"])
            except HwnasError as exc:
                raise HwnasError(f"{where}: {exc}") from None
            try:
                lat = float(row["latency_ms"])
                energy = float(row["energy_mj"]) if row.get("energy_mj") else None
            except ValueError:
                raise HwnasError(f"{where}: latency_ms / energy_mj must be numbers, got "
                                 f"{row.get('latency_ms')!r} / {row.get('energy_mj')!r}") from None
            problem = value_problem("latency_ms", lat) or (None if energy is None else value_problem("energy_mj", energy))
            if problem:
                raise HwnasError(f"{where}: {problem}")
            n += 1
            yield Measurement(space=space.name, arch_id=arch_id, arch=arch, device=device, runtime=runtime,
                              runtime_version="unknown", settings=settings, source="imported", latency_ms=lat,
                              n_runs=0, energy_mj=energy, energy_source="imported" if energy is not None else None,
                              fingerprint=fingerprint, created_at=created)
    except csv.Error as exc:
        raise HwnasError(f"{path}, line {reader.line_num}: not a CSV row ({exc})") from None
    if not n:
        raise HwnasError(f"{path}: no rows to import")


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
