"""`hwnas report`: re-render the plots and HTML report of a search results directory, or compare several runs."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import EXIT_CODES


def register(app: typer.Typer) -> None:
    @app.command("report", epilog=EXIT_CODES)
    def report(
        directories: List[Path] = typer.Argument(..., help="results directories written by pareto-search (one: "
                                                 "re-render its report; several: compare them)"),
        out: Optional[Path] = typer.Option(None, "--out", help="the page to write (one run: default "
                                           "DIR/report.html; several: default compare.html)"),
        store: Optional[str] = typer.Option(None, "--store", help="measurement store (a SQLite file or a "
                                            "postgresql:// URL) whose measurements of the runs' archs the report "
                                            "sets beside predicted latencies (default $HWNAS_STORE, else "
                                            "$HWNAS_HOME/measurements.db, if it exists)"),
    ) -> None:
        """Re-render pareto.png and report.html from a results directory (also after an interrupted run), or
        compare several runs on one page: fronts overlaid, hypervolume on one normalisation, a warning when the
        runs do not solve the same problem.

        Example: hwnas report runs/pixel2

        Example: hwnas report runs/nsga2 runs/mobo --out compare.html
        """
        from ..errors import HwnasError
        from ..search import load_result, write_report
        from ..search.compare import write_compare

        for d in directories:
            if not d.is_dir():
                raise HwnasError(f"{d} is not a directory (a results directory written by pareto-search)")
        if out is not None and out.is_dir():
            raise HwnasError(f"--out {out} is a directory: name the page to write, e.g. {out / 'report.html'}")
        if len(directories) == 1:
            result = load_result(directories[0])
            png, page = write_report(result, directories[0], out, store)
            typer.echo(f"wrote {png} and {page} ({len(result.evaluations)} evaluations, "
                       f"{len(result.pareto())} on the front)")
            return
        page = write_compare(directories, out or Path("compare.html"), store)
        typer.echo(f"wrote {page} (comparison of {len(directories)} runs)")
