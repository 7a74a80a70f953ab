"""Helpers shared by CLI commands (making a space from flags, reading arch lists)."""

from __future__ import annotations

from pathlib import Path

from ..errors import HwnasError

# the exit codes every command's --help lists (its epilog); a command with more says so in its own
EXIT_CODES = ("Exit codes: 0 done; 2 bad input or an error the user can fix (one line on stderr, nothing "
              "finished is lost); 130 interrupted (everything finished so far is kept).")

# to a pipe or a file (a CI log) tables are printed this wide: never cropped or folded, whatever COLUMNS says
PIPE_WIDTH = 10_000


def out_console(stderr: bool = False):
    """The rich console for tables and reports. On a terminal: the terminal's width (tables fold their cells,
    nothing is cut). To a pipe or a file: as wide as the content, so a CI log keeps every column and reason."""
    from rich.console import Console

    console = Console(stderr=stderr)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, width=PIPE_WIDTH)


def make_space(name: str, options: list[str] | None = None):
    from ..search.config import check_option_types
    from ..spaces import SPACES, create_space, parse_space_options

    config = parse_space_options(options)
    if name in SPACES:
        check_option_types(SPACES[name], config, "space_opt")
    try:
        return create_space(name, **config)
    except (ValueError, TypeError) as exc:
        raise HwnasError(f"--space-opt for space {name!r}: {exc}") from None


def read_arch_lines(path: Path) -> list[str]:
    """Arch strings from a CSV with an ``arch`` column, or one arch per line (blank lines and # skipped)."""
    from ..fileio import read_text
    from ..spaces import parse_arch_table

    path = Path(path)
    if not path.is_file():
        raise HwnasError(f"arch file {path} does not exist")
    return [arch for _, arch in parse_arch_table(read_text(path, "arch file"))]


def device_name(value):
    """typer callback of every ``--device NAME`` option (a name, not a profile path): hwnas.paths.check_device_name."""
    from ..paths import check_device_name

    return value if value is None else check_device_name(value)


# -- the CLI vocabulary (docs/design.md, "One CLI vocabulary"): an old spelling stays as a hidden alias ---------
def deprecated(old: str, new: str) -> None:
    """The one line an old spelling prints on stderr (it still works)."""
    import typer

    typer.echo(f"warning: {old} is deprecated: use {new}", err=True)


def old_spelling(old: str, new: str):
    """A hidden option for the old spelling ``old`` of the flag ``new``: it still works and prints one
    deprecation line on stderr. Merge it with ``either``."""
    import typer

    def warn(value):
        if value is not None:
            deprecated(old, new)
        return value

    return typer.Option(None, old, hidden=True, callback=warn, help=f"old spelling of {new}")


def either(new: str, value, old: str, old_value):
    """The value of a flag given by its name ``new`` or its old spelling ``old`` (not both)."""
    if old_value is None:
        return value
    if value is not None:
        raise HwnasError(f"{old} is the old spelling of {new}: give {new} once")
    return old_value
