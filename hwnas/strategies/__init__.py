"""Search strategies: a plain dict registry filled explicitly, behind ``create_strategy``.

Every strategy implements ``run(space, evaluator, budget, rng, callback=None) -> SearchResult`` (the
``SearchStrategy`` contract in ``hwnas.contracts``), takes its parameters as constructor keywords (``get_params``
from ``hwnas.params.Params``), builds on ``toolkit`` (budget, history, objectives) and ``hwnas.pareto``, asks the
space for space knowledge (``simplify``, ``equivalence_key``), and passes ``hwnas.strategies.testing.check_strategy``.
"""

from __future__ import annotations

from typing import Callable

from ..errors import HwnasError, unknown
from ..contracts import Evaluation, Evaluator, SearchResult, SearchStrategy
from .dppnet import DPPNet
from .evolution import AgingEvolution
from .mobo import CheapCostMOBO
from .monas import MONAS
from .nsga2 import NSGA2Search
from .random_search import RandomSearch

STRATEGIES: dict[str, Callable[..., SearchStrategy]] = {
    "nsga2": NSGA2Search,
    "random": RandomSearch,
    "evolution": AgingEvolution,
    "monas": MONAS,
    "dppnet": DPPNet,
    "mobo": CheapCostMOBO,
}


def register_strategy(name: str, factory: Callable[..., SearchStrategy]) -> None:
    STRATEGIES[name] = factory


def create_strategy(name: str, **params) -> SearchStrategy:
    """Create a strategy by name with its keyword parameters (e.g. ``population_size=20``)."""
    try:
        factory = STRATEGIES[name]
    except KeyError:
        raise unknown("strategy", name, STRATEGIES) from None
    try:
        return factory(**params)
    except TypeError as exc:
        raise HwnasError(f"strategy {name!r} does not take these parameters: {params}") from exc


__all__ = ["STRATEGIES", "create_strategy", "register_strategy", "Evaluation", "Evaluator", "SearchResult",
           "SearchStrategy", "NSGA2Search", "RandomSearch", "AgingEvolution", "MONAS", "DPPNet", "CheapCostMOBO"]
