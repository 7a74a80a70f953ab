"""Value sources: where each quantity of an evaluation comes from, behind one interface
(``hwnas.contracts.ValueSource``: ``values(space, archs, quantity) -> (values, provenance)``).

``SOURCES`` maps a kind to its class (a plain dict; ``register_source`` adds one) and ``create_source`` parses
``KIND[:ARG]`` for one role: the accuracy source (``error``) or the cost source of one device.
"""

from __future__ import annotations

from typing import Callable

from ...errors import unknown
from .base import Source
from .count import CountSource
from .measure import MeasureSource
from .predictor import PredictorSource
from .proxy import PROXIES, ProxySource
from .supernet import SupernetSource
from .table import MissingArchError, TableSource
from .train import TrainSource

SOURCES: dict[str, Callable[..., Source]] = {
    "table": TableSource,
    "proxy": ProxySource,
    "train": TrainSource,
    "predictor": PredictorSource,
    "measure": MeasureSource,
    "count": CountSource,
    "supernet": SupernetSource,
}

# the kinds a search may name for each role, and what an unknown kind is called in the error
ROLES = {"accuracy": ("accuracy source", ("table", "proxy", "train", "supernet")),
         "cost": ("device cost source", ("table", "predictor", "measure"))}


def register_source(kind: str, cls: Callable[..., Source], roles: tuple[str, ...] = ()) -> None:
    SOURCES[kind] = cls
    for role in roles:
        what, kinds = ROLES[role]
        ROLES[role] = (what, kinds + (kind,))


def create_source(spec: str, role: str = "accuracy", device: str | None = None, **settings) -> Source:
    """``table:FILE`` | ``proxy[:NAME]`` | ``train[:DATASET]`` | ``supernet:PATH`` (role ``accuracy``) or ``table:FILE`` |
    ``predictor[:ROOT]`` | ``measure[:quick]`` (role ``cost``, for ``device``) -> a source. ``settings``: the search's
    dataset, epochs, proxy, data_dir, download, batch_size, seed, max_train, predictor_root."""
    kind, _, arg = str(spec).strip().partition(":")
    what, kinds = ROLES[role]
    if kind not in kinds:
        raise unknown(what, kind, tuple("table:FILE" if k == "table" else k for k in kinds))
    return SOURCES[kind].from_spec(arg, device if role == "cost" else None, settings)


__all__ = ["SOURCES", "ROLES", "Source", "create_source", "register_source", "TableSource", "ProxySource",
           "TrainSource", "SupernetSource", "PredictorSource", "MeasureSource", "CountSource", "MissingArchError", "PROXIES"]
