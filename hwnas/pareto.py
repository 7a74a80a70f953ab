"""Non-dominated sorting, Pareto ranking with constraints, and hypervolume (all objectives minimised)."""

from __future__ import annotations

import numpy as np


def non_dominated_mask(F: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of F (n, m) that no other row dominates (duplicates are all kept)."""
    F = np.asarray(F, dtype=float)
    n = len(F)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        if not mask[i]:
            continue
        dominated = np.all(F[i] <= F, axis=1) & np.any(F[i] < F, axis=1)
        mask &= ~dominated
    return mask


def hypervolume(F: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume dominated by F and bounded by ``ref`` (pymoo's exact indicator)."""
    from pymoo.indicators.hv import HV

    F = np.asarray(F, dtype=float)
    ref = np.asarray(ref, dtype=float)
    F = F[np.all(F <= ref, axis=1)]
    if len(F) == 0:
        return 0.0
    return float(HV(ref_point=ref)(F))


# -- Pareto ranking with constraints (the one rule every strategy uses) -------------------------------------
def pareto_fronts(F: np.ndarray, violation: np.ndarray | None = None) -> list[np.ndarray]:
    """Row indices of F (n, m; minimised) in fronts, best first: the non-dominated fronts of the feasible rows
    (violation <= 0; pymoo's non-dominated sorting, each front in increasing index), then every infeasible row
    as a front of its own, by increasing violation (ties: lower index first)."""
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    F = np.asarray(F, dtype=float)
    n = len(F)
    violation = np.zeros(n) if violation is None else np.asarray(violation, dtype=float)
    feasible = np.flatnonzero(violation <= 0)
    fronts: list[np.ndarray] = []
    if len(feasible):
        for front in NonDominatedSorting().do(F[feasible]):
            fronts.append(feasible[np.sort(np.asarray(front, dtype=int))])
    infeasible = np.flatnonzero(violation > 0)
    fronts.extend(infeasible[np.argsort(violation[infeasible], kind="stable")].reshape(-1, 1))
    return fronts


def pareto_ranks(F: np.ndarray, violation: np.ndarray | None = None) -> np.ndarray:
    """Rank of each row: 0 = non-dominated among the feasible rows; infeasible rows rank after every feasible
    one, one rank each, by increasing violation (``pareto_fronts``)."""
    ranks = np.full(len(F), -1, dtype=int)
    for r, front in enumerate(pareto_fronts(F, violation)):
        ranks[front] = r
    return ranks


def pareto_order(F: np.ndarray, violation: np.ndarray | None = None) -> np.ndarray:
    """All row indices in NSGA-II survival order: the fronts of ``pareto_fronts`` in turn, each by decreasing
    crowding distance (ties: lower index first)."""
    from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance

    F = np.asarray(F, dtype=float)
    out: list[int] = []
    for front in pareto_fronts(F, violation):
        cd = calc_crowding_distance(F[front]) if len(front) > 2 else np.full(len(front), np.inf)
        cd = np.nan_to_num(cd, nan=0.0, posinf=np.finfo(float).max)
        out.extend(front[np.lexsort((front, -cd))].tolist())
    return np.array(out, dtype=int)


def pareto_select(F: np.ndarray, k: int, violation: np.ndarray | None = None) -> np.ndarray:
    """Indices (sorted) of exactly min(k, n) rows of F: whole fronts in order, the front that does not fit
    entirely filled by largest crowding distance (NSGA-II survival)."""
    from .errors import HwnasError

    if int(k) < 0:
        raise HwnasError(f"pareto_select: k must be >= 0, got {k}")
    return np.sort(pareto_order(F, violation)[: int(k)])
