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

    config = parse_space_options(options)
    try:
        return create_space(name, **config)
    except TypeError as exc:
        raise HwnasError(f"space {name!r} does not take these settings: {config}") from exc


def read_arch_lines(path: Path) -> list[str]:
    """Arch strings from a CSV with an ``arch`` column, or one arch per line (blank lines and # skipped)."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise HwnasError(f"arch file {path} does not exist")
    text = path.read_text()
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if lines and lines[0].split(",")[0].strip() == "arch":
        rows = list(csv.DictReader(lines))
        return [r["arch"].strip() for r in rows if r.get("arch")]
    return [ln.strip() for ln in lines]
