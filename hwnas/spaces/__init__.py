"""Search-space registry: a plain dict filled explicitly (no import side effects)."""

from __future__ import annotations

from typing import Callable

from ..errors import HwnasError, ParameterError, unknown
from .base import GeneSpace
from .dppnet import DPPNetSpace
from .mobilenet import MobileNetSpace
from .monas import MonasAlexNetSpace, MonasCondenseNetSpace
from .nb201 import NB201Space

SPACES: dict[str, Callable[..., GeneSpace]] = {
    "nb201": NB201Space,
    "mobilenet": MobileNetSpace,
    "monas_condensenet": MonasCondenseNetSpace,
    "monas_alexnet": MonasAlexNetSpace,
    "dppnet": DPPNetSpace,
}


def register_space(name: str, factory: Callable[..., GeneSpace]) -> None:
    SPACES[name] = factory


def create_space(name: str, **config) -> GeneSpace:
    """Create a search space by name; ``config`` overrides its settings (e.g. ``C=8, N=1``)."""
    try:
        factory = SPACES[name]
    except KeyError:
        raise unknown("search space", name, SPACES) from None
    try:
        return factory(**config)
    except TypeError as exc:
        raise HwnasError(f"space {name!r} does not take these settings: {config}") from exc


def parse_space_options(options: list[str] | None) -> dict:
    """``["C=8", "N=1"]`` (``--space-opt``, ``--strategy-opt``) -> {"C": 8, "N": 1} (numbers parsed, else strings)."""
    out: dict = {}
    for item in options or []:
        if "=" not in item:
            raise ParameterError("space_opt", f"{item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = int(value)
        except ValueError:
            try:
                out[key.strip()] = float(value)
            except ValueError:
                out[key.strip()] = value
    return out


def arch_from_text(space: GeneSpace, text: str):
    """Parse an arch given as the space's string, or as ``genes:1,2,3`` / a JSON list of genes."""
    from ..contracts import InvalidArchError

    text = text.strip()
    if text.startswith("genes:"):
        try:
            genes = [int(t) for t in text[6:].split(",") if t.strip()]
        except ValueError:
            raise InvalidArchError(f"{space.name}: malformed genes {text!r}: expected genes:1,2,3") from None
        return space.make(genes)
    return space.from_string(text)


def parse_arch_table(text: str) -> list[tuple[str | None, str]]:
    """Rows of an arch list: one arch per line, or a CSV with an ``arch`` column and optional ``name``."""
    import csv

    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if lines and "arch" in [c.strip() for c in lines[0].split(",")]:
        header = [c.strip() for c in lines[0].split(",")]
        rows = list(csv.DictReader(lines, fieldnames=header))[1:]
        out = []
        for r in rows:
            arch = r.get("arch") or ""
            if header[-1] == "arch" and r.get(None):  # unquoted commas in the last column (mobilenet strings)
                arch = ",".join([arch, *r[None]])
            if arch.strip():
                out.append(((r.get("name") or "").strip() or None, arch.strip()))
        return out
    return [(None, ln.strip()) for ln in lines]


__all__ = ["SPACES", "create_space", "register_space", "parse_space_options", "arch_from_text", "parse_arch_table", "GeneSpace", "NB201Space", "MobileNetSpace",
           "MonasCondenseNetSpace", "MonasAlexNetSpace", "DPPNetSpace"]
