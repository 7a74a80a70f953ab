"""Helpers shared by CLI commands (parsing space settings, reading arch lists)."""

from __future__ import annotations

from pathlib import Path

from ..errors import HwnasError


def parse_space_options(options: list[str] | None) -> dict:
    """``--space-opt C=8 --space-opt N=1`` -> {"C": 8, "N": 1} (numbers parsed, else strings)."""
    out: dict = {}
    for item in options or []:
        if "=" not in item:
            raise HwnasError(f"--space-opt {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = int(value)
        except ValueError:
            try:
                out[key.strip()] = float(value)
            except ValueError:
                out[key.strip()] = value
    return out


def make_space(name: str, options: list[str] | None = None):
    from ..spaces import create_space

    return create_space(name, **parse_space_options(options))


def read_arch_lines(path: Path) -> list[str]:
    """Arch strings from a CSV with an ``arch`` column, or one arch per line (blank lines and # skipped)."""
    from ..spaces import parse_arch_table

    path = Path(path)
    if not path.is_file():
        raise HwnasError(f"arch file {path} does not exist")
    return [arch for _, arch in parse_arch_table(path.read_text())]
