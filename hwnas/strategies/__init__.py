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
from .moasha import MOASHA
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
    "moasha": MOASHA,
}


def register_strategy(name: str, factory: Callable[..., SearchStrategy]) -> None:
    STRATEGIES[name] = factory


AUTO = "auto"
CHEAP_COST_DEFAULT = "mobo"   # the best worst case on NB201 when every cost is cheap (docs/search.md)
GENERAL_DEFAULT = "nsga2"


def choose_strategy(evaluator, strategy_opt: dict | None = None) -> tuple[str, str]:
    """The strategy ``auto`` stands for, and why: ``mobo`` when every cost objective has a cheap source
    (table, predictor, count: looked up for free, so the budget buys accuracy only), else ``nsga2``."""
    from ..evaluation.objectives import STATIC_METRICS
    from .toolkit import is_accuracy_objective

    if strategy_opt:
        return GENERAL_DEFAULT, (f"auto: --strategy-opt given without --strategy ({', '.join(strategy_opt)}); "
                                 f"the options are read as {GENERAL_DEFAULT}'s")
    costs = getattr(evaluator, "costs", None) or {}
    space = getattr(evaluator, "space", None)
    fast_counts = bool(getattr(space, "static_costs_fast", False))

    def cheap(o) -> bool:
        if o.name in STATIC_METRICS:  # counted by building each network: cheap for a pool only where fast
            return fast_counts
        return bool(getattr(costs.get(o.label), "cheap", False))

    cost_objectives = [o for o in evaluator.objectives if not is_accuracy_objective(o)]
    dear = [o for o in cost_objectives if not cheap(o)]
    if dear or not cost_objectives or len(cost_objectives) == len(evaluator.objectives):
        if dear:
            labels = ", ".join(o.label for o in dear)
            static = [o for o in dear if o.name in STATIC_METRICS]
            why = (f"{labels} {'is' if len(dear) == 1 else 'are'} counted by building each network, too slow for a "
                   f"pool of every candidate in space {getattr(space, 'name', '?')}" if len(static) == len(dear)
                   else f"{labels} has no cheap source (measured in the loop)")
        else:
            why = "no accuracy objective next to the costs" if cost_objectives else "no cost objective"
        return GENERAL_DEFAULT, f"auto: {why}"
    labels = ", ".join(o.label for o in cost_objectives)
    return CHEAP_COST_DEFAULT, (f"auto: every cost objective ({labels}) has a cheap source (table, predictor or "
                                "a fast count), so the budget buys accuracy only")


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


__all__ = ["STRATEGIES", "AUTO", "choose_strategy", "create_strategy", "register_strategy", "Evaluation", "Evaluator", "SearchResult",
           "SearchStrategy", "NSGA2Search", "RandomSearch", "AgingEvolution", "MONAS", "DPPNet", "CheapCostMOBO", "MOASHA"]
