"""Search-space registry: a plain dict filled explicitly (no import side effects)."""

from __future__ import annotations

from typing import Callable

from ..errors import unknown
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
    return factory(**config)


def arch_from_text(space: GeneSpace, text: str):
    """Parse an arch given as the space's string, or as ``genes:1,2,3`` / a JSON list of genes."""
    from ..core import InvalidArchError

    text = text.strip()
    if text.startswith("genes:"):
        try:
            genes = [int(t) for t in text[6:].split(",") if t.strip()]
        except ValueError:
            raise InvalidArchError(f"{space.name}: malformed genes {text!r}: expected genes:1,2,3") from None
        return space.make(genes)
    return space.from_string(text)


__all__ = ["SPACES", "create_space", "register_space", "arch_from_text", "GeneSpace", "NB201Space", "MobileNetSpace",
           "MonasCondenseNetSpace", "MonasAlexNetSpace", "DPPNetSpace"]
