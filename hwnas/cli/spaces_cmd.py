"""`hwnas spaces`: list the search spaces with their sizes."""

from __future__ import annotations

import sys

import typer

from rich.table import Table

from .common import EXIT_CODES, out_console


def register(app: typer.Typer) -> None:
    @app.command("spaces", epilog=EXIT_CODES)
    def spaces() -> None:
        """List the search spaces, their gene counts and sizes.

        Example: hwnas spaces
        """
        from ..spaces import SPACES, create_space

        table = Table(title="search spaces")
        for col in ("name", "genes", "architectures", "input", "about"):
            table.add_column(col, overflow="fold")
        for name in SPACES:
            space = create_space(name)
            doc = (sys.modules[type(space).__module__].__doc__ or "").strip().split("\n")[0]
            size = space.size()
            table.add_row(name, str(len(space.cardinalities())), f"{size:,}" if size < 10**9 else f"{size:.2e}",
                          "x".join(map(str, space.input_shape())), doc)
        out_console().print(table)
