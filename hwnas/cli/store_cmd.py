"""`hwnas store copy SRC DST`: measurements from one store to another (SQLite file <-> PostgreSQL team store)."""

from __future__ import annotations

import typer

from .common import EXIT_CODES


def register(app: typer.Typer) -> None:
    store_app = typer.Typer(help="The measurement store (a SQLite file or a PostgreSQL team store).\n\n"
                                 "Example: hwnas store copy ~/.hwnas/measurements.db postgresql://alice@db.lab/hwnas",
                            no_args_is_help=True)

    @store_app.command("copy", epilog=EXIT_CODES)
    def copy(
        src: str = typer.Argument(..., help="store to copy from: a SQLite file or a postgresql:// URL"),
        dst: str = typer.Argument(..., help="store to copy into (created if new): a SQLite file or a postgresql:// URL"),
    ) -> None:
        """Copy the measurements (and failures, reference medians) of SRC that DST does not hold yet, all in one
        transaction. A row DST already holds (equal in every column but its id) is not copied again, so running
        the copy twice adds nothing the second time.

        Example: hwnas store copy ~/.hwnas/measurements.db postgresql://alice@db.lab/hwnas
        """
        from pathlib import Path

        from ..errors import HwnasError
        from ..store import MeasurementStore, is_store_url, store_target

        a, b = store_target(src), store_target(dst)
        if not is_store_url(a) and not Path(a).is_file():
            raise HwnasError(f"store {src} does not exist")
        if a == b or (not is_store_url(a) and not is_store_url(b) and Path(b).exists()
                      and Path(a).resolve() == Path(b).resolve()):
            raise HwnasError("SRC and DST are the same store")
        with MeasurementStore(src) as s, MeasurementStore(dst) as d:
            counts = d.copy_from(s)
            added, held = counts["measurements"]
            others = "; ".join(f"{t.replace('_', ' ')}: {n} copied, {k} already there"
                               for t, (n, k) in counts.items() if t != "measurements" and n + k)
            typer.echo(f"copied {added} measurements from {s.path} to {d.path} ({held} already there)"
                       + (f"; {others}" if others else ""))

    app.add_typer(store_app, name="store")
