"""`hwnas report`: re-render the plots and HTML report of a search results directory."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import EXIT_CODES


def register(app: typer.Typer) -> None:
    @app.command("report", epilog=EXIT_CODES)
    def report(directory: Path = typer.Argument(..., help="a results directory written by pareto-search")) -> None:
        """Re-render pareto.png and report.html from a results directory (also after an interrupted run).

        Example: hwnas report runs/pixel2
        """
        from ..search import load_result, write_report

        result = load_result(directory)
        png, page = write_report(result, directory)
        typer.echo(f"wrote {png} and {page} ({len(result.evaluations)} evaluations, {len(result.pareto())} on the front)")
