"""Helpers shared by CLI commands (making a space from flags, reading arch lists)."""

from __future__ import annotations

from pathlib import Path

from ..errors import HwnasError


def make_space(name: str, options: list[str] | None = None):
    from ..spaces import create_space, parse_space_options

    return create_space(name, **parse_space_options(options))


def read_arch_lines(path: Path) -> list[str]:
    """Arch strings from a CSV with an ``arch`` column, or one arch per line (blank lines and # skipped)."""
    from ..spaces import parse_arch_table

    path = Path(path)
    if not path.is_file():
        raise HwnasError(f"arch file {path} does not exist")
    return [arch for _, arch in parse_arch_table(path.read_text())]
