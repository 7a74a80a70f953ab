"""Active learning: which archs to measure next so the predictor improves most (``hwnas propose``,
``hwnas profile --next K``).

nn-Meter's adaptive data sampling measures more configurations where its predictor is wrong. Before measuring
we cannot know the error, so we use the predictor's own uncertainty as its stand-in:

1. A candidate pool of unmeasured archs is drawn from the space with the passed generator.
2. Coverage first: an arch that contains a (position, op) token no measured or already-proposed arch has gets
   priority -- an op the predictor never saw makes it raise, so covering every op is the first need.
3. Then, with a fitted predictor: relative uncertainty std/mean of its prediction, damped for candidates close
   (in the standardized feature space) to archs already measured or proposed, so the K picks spread out
   instead of clustering on one uncertain region. Without a predictor (cold start): farthest-point sampling
   in the feature space (maximin distance to everything measured or proposed).
4. A new device with other devices as the prior (no predictor of its own yet): the features are the transfer
   model's (the sources' predicted and measured log latencies, standardized), and the picks are greedy
   D-optimal on them -- each maximizes z' A^-1 z, A the information matrix of everything measured or chosen
   (plus an intercept): the cells that best separate the sources' weightings, which is what ten measurements
   must decide (issue 13: Spearman mean 0.947 vs 0.921 for random cells, offline on the ten NB201 devices).
   The covering picks break their ties the same way. The D-optimal features also hold two graph costs of the
   arch (``PICK_COSTS``: MMACs and kernels launched, ``few_sample``), the main axes of the target-only model the
   transfer fit falls back to when no mix of the sources explains the new device (issue 24, gap 3): the picks
   then span them too, so ten cells can tell a device unlike every source apart and fit it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..contracts import Arch
from ..errors import HwnasError, ParameterError


# the graph costs among the D-optimal features with a prior: two (work and launches), so the target-only model's
# main axes are spanned without taking the picks away from the sources (all seven: family-out GPUs 0.94 vs 0.97)
PICK_COSTS = ("pruned:mmacs", "pruned:kernels")
D_OPT_RIDGE = 1e-3  # A = ridge I + sum z z' (the first picks: before A has full rank)


@dataclass
class Proposal:
    arch: Arch
    reason: str  # "coverage" | "uncertainty" | "spread" | "information"
    predicted_ms: float | None = None
    std_ms: float | None = None


class NothingToPropose(HwnasError):
    """Every (measurable) arch of the space is already measured."""


def _pool(space, exclude: set[str], size: int, rng: np.random.Generator) -> list[Arch]:
    total = space.size()
    if hasattr(space, "all_archs") and total <= 4 * size:
        cands = [a for a in space.all_archs() if a.arch_id not in exclude]
        if len(cands) > size:
            idx = rng.choice(len(cands), size, replace=False)
            cands = [cands[i] for i in sorted(idx)]
        return cands
    return space.sample_distinct(size, rng, exclude=exclude, max_tries=size * 20)


def _cover_units(f, archs) -> np.ndarray:
    """(n, units) bool: the (position, op) tokens an arch uses and, where the space has a kernel view, the
    kernel types it executes under every executed-graph hypothesis (what a predictor must have seen)."""
    parts = [f.tokens(archs) > 0]
    if f.supports_kernels:
        from .features import GRAPHS

        for g in GRAPHS:
            names = f.kernel_names(g)
            K = f.kernels(archs, g)
            parts.append(K[:, [i for i, n in enumerate(names) if n.endswith(":count")]] > 0)
    return np.hstack(parts)


def propose_next(space, measured_archs: Sequence[Arch], k: int, rng: np.random.Generator, predictor=None,
                 pool_size: int = 2000, prior: dict | None = None, candidates: Sequence[Arch] | None = None,
                 cost_features: bool = True) -> list[Proposal]:
    """K unmeasured archs of ``space`` whose measurement should improve the predictor most (see module doc).

    ``prior``: source predictors of other devices (as for ``transfer``). Then the picks are made on the
    transfer features (the sources' predicted and measured log latencies, standardized), which is what a
    transfer model of the new device regresses on: a covering design first (every token and kernel type),
    then greedy D-optimal in that space (see the module doc). ``candidates``: choose only among these archs (e.g.
    the cells a benchmark table holds); by default the whole space. ``cost_features`` (with a prior): the
    D-optimal features also hold two of the arch's graph costs (``PICK_COSTS``), so the picks also pin down the
    target-only model the transfer fit checks its sources against."""
    from .features import featurizer_for

    if k < 1:
        raise ParameterError("k", f"must be at least 1, got {k}")
    measured = [space.check(a) for a in measured_archs]
    pool = _candidate_pool(space, measured, k, rng, pool_size, candidates)
    f = featurizer_for(space)
    Zp, Zm = _standardized(*_pick_features(f, pool, measured, prior, cost_features))
    Tp = _cover_units(f, pool)
    covered = _cover_units(f, measured).any(0) if measured else np.zeros(Tp.shape[1], bool)
    mean, std, rel = _predicted(predictor, pool)
    dmin = _nearest_sq_dist(Zp, Zm)
    dopt = _DOptimal(Zp, Zm) if prior and rel is None else None
    chosen: list[Proposal] = []
    available = np.ones(len(pool), bool)
    for _ in range(min(k, len(pool))):
        reason, score = _score((Tp & ~covered).sum(1), available, dopt, rel, dmin)
        i = _first_best(np.where(available, score, -np.inf))
        available[i] = False
        covered |= Tp[i]
        if dopt is not None:
            dopt.add(i)
        dmin = np.minimum(dmin, ((Zp - Zp[i]) ** 2).sum(1))
        chosen.append(Proposal(pool[i], reason, None if mean is None else float(mean[i]),
                               None if std is None else float(std[i])))
    return chosen


def _first_best(score: np.ndarray) -> int:
    """The first candidate whose score is the best up to rounding (1e-12 relative): archs with the same
    features (isomorphic cells) tie, and which one wins must not hang on the last bit of the arithmetic."""
    best = score.max()
    return int(np.argmax(score >= best - 1e-12 * max(1.0, abs(best))))


def _candidate_pool(space, measured: list[Arch], k: int, rng: np.random.Generator, pool_size: int,
                    candidates: Sequence[Arch] | None) -> list[Arch]:
    """Unmeasured, measurable archs to choose among: from ``candidates`` or drawn from the space."""
    exclude = {a.arch_id for a in measured}
    if candidates is not None:
        pool = [a for a in candidates if a.arch_id not in exclude]
        if len(pool) > max(pool_size, k):
            pool = [pool[i] for i in sorted(rng.choice(len(pool), max(pool_size, k), replace=False))]
    else:
        pool = _pool(space, exclude, max(pool_size, k), rng)
    if hasattr(space, "has_path"):  # a constant (no path from input to output) cannot be measured: never propose it
        pool = [a for a in pool if space.has_path(a)]
    if not pool:
        raise NothingToPropose(f"every measurable arch of space {space.name!r} is already measured")
    return pool


def _pick_features(f, pool: list[Arch], measured: list[Arch], prior: dict | None,
                   cost_features: bool) -> tuple[np.ndarray, np.ndarray]:
    """(pool, measured) feature rows the picks are made on: the arch features, or with a prior the transfer
    features (+ ``PICK_COSTS`` when ``cost_features``)."""
    if not prior:
        Xp = f.arch_features(pool)
        return Xp, f.arch_features(measured) if measured else np.zeros((0, Xp.shape[1]))
    from .few_sample import COST_NAMES, graph_cost_features, supports_costs
    from .transfer import source_features

    Xp = source_features(prior, pool)[0]
    Xm = source_features(prior, measured)[0] if measured else np.zeros((0, Xp.shape[1]))
    fill = np.nanmean(np.vstack([Xp, Xm]), 0)
    Xp, Xm = np.where(np.isfinite(Xp), Xp, fill), np.where(np.isfinite(Xm), Xm, fill)
    if cost_features and supports_costs(f):  # also the target-only model's columns (issue 24, gap 3)
        cols = [COST_NAMES.index(c) for c in PICK_COSTS]
        Xp = np.hstack([Xp, graph_cost_features(f, pool)[:, cols]])
        Xm = np.hstack([Xm, graph_cost_features(f, measured)[:, cols] if measured else np.zeros((0, len(cols)))])
    return Xp, Xm


def _standardized(Xp: np.ndarray, Xm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    both = np.vstack([Xp, Xm])
    sd = both.std(0)
    mu = both.mean(0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    return (Xp - mu) / sd, (Xm - mu) / sd


def _predicted(predictor, pool: list[Arch]):
    """(mean, std, relative std) of a fitted predictor on the pool (an arch with unseen ops: nan, inf, inf), or
    three Nones."""
    if predictor is None or not getattr(predictor, "fitted_", False):
        return None, None, None
    from .base import PredictorError

    try:
        mean, std = predictor.predict(pool)
    except PredictorError:  # some pool archs use unseen ops: predict one by one, unseen ones get inf
        mean, std = np.full(len(pool), np.nan), np.full(len(pool), np.inf)
        for i, a in enumerate(pool):
            try:
                m, s = predictor.predict([a])
                mean[i], std[i] = m[0], s[0]
            except PredictorError:
                pass
    rel = np.where(np.isfinite(mean) & (mean > 0), std / np.maximum(np.abs(np.nan_to_num(mean)), 1e-9), np.inf)
    return mean, std, rel


def _nearest_sq_dist(Zp: np.ndarray, Zm: np.ndarray) -> np.ndarray:
    """Squared distance of each candidate to the nearest measured arch (inf with none)."""
    if not len(Zm):
        return np.full(len(Zp), np.inf)
    if len(Zm) * len(Zp) < 4e6:
        return np.min(((Zp[:, None, :] - Zm[None, :, :]) ** 2).sum(-1), axis=1)
    return np.array([np.min(((Zm - z) ** 2).sum(1)) for z in Zp])


class _DOptimal:
    """Greedy D-optimal design on the candidates' features (with an intercept): ``gain`` is z' A^-1 z for every
    candidate, A = ridge I + the sum of z z' over everything measured or chosen; ``add`` updates A^-1 by a
    rank-one (Sherman-Morrison) step instead of inverting A again."""

    def __init__(self, Zp: np.ndarray, Zm: np.ndarray):
        self.Z = np.hstack([Zp, np.ones((len(Zp), 1))])
        Zm1 = np.hstack([Zm, np.ones((len(Zm), 1))])
        self.Ainv = np.linalg.inv(D_OPT_RIDGE * np.eye(self.Z.shape[1]) + Zm1.T @ Zm1)
        self.gain = np.einsum("ij,jk,ik->i", self.Z, self.Ainv, self.Z)

    def add(self, i: int) -> None:
        v = self.Ainv @ self.Z[i]
        self.Ainv -= np.outer(v, v) / (1.0 + self.Z[i] @ v)
        self.gain = np.einsum("ij,jk,ik->i", self.Z, self.Ainv, self.Z)


def _score(new_tokens: np.ndarray, available: np.ndarray, dopt: _DOptimal | None, rel, dmin: np.ndarray):
    """(reason, score per candidate) of the next pick: coverage first, then information (a prior), uncertainty
    (a predictor) or spread."""
    gain = None if dopt is None else dopt.gain
    if (new_tokens[available] > 0).any():
        finite_d = np.where(np.isfinite(dmin), dmin, 1e9) if gain is None else gain
        return "coverage", new_tokens * 1e6 + finite_d
    if gain is not None:
        return "information", gain
    if rel is not None:
        finite_rel = np.where(np.isfinite(rel), rel, np.nanmax(np.where(np.isfinite(rel), rel, 0)) * 10 + 1)
        finite_d = available & np.isfinite(dmin)
        spread = dmin / (dmin + (np.median(dmin[finite_d]) if np.isfinite(dmin[available]).any() else 1.0))
        return "uncertainty", finite_rel * np.where(np.isfinite(spread), spread, 1.0)
    return "spread", np.where(np.isfinite(dmin), dmin, 1e9)


__all__ = ["propose_next", "Proposal"]


def propose_for_device(space, device: str, store, k: int, rng: np.random.Generator, models=None,
                       pool_size: int = 2000) -> tuple[list[Proposal], str, int]:
    """Proposals for ``device`` from what ``store`` holds: uses the device's saved predictor when there is one,
    else fits a quick one on the stored measurements (10 or more), else covers ops and spreads out.
    Returns (proposals, how they were chosen, number already measured)."""
    from ..spaces import arch_from_text
    from . import ArtifactError, create_predictor, load_predictor
    from .features import featurizer_for

    # the rows of this space's settings only: a cell measured at C=8 is not measured at C=16
    rows = [m for m in store.query(device=device, space=space.name)
            if ((m.settings or {}).get("space") or space.config()) == space.config()]
    measured, lat = [], []
    for m in rows:
        try:
            measured.append(arch_from_text(space, m.arch))
            lat.append(m.latency_ms)
        except HwnasError:
            continue

    def nothing_left() -> HwnasError:
        from collections import Counter

        from .from_store import settings_text

        sources = Counter(m.source for m in rows)
        every = "every one of the" if len({a.arch_id for a in measured}) >= space.size() else "every measurable arch of the"
        return NothingToPropose(
            f"nothing to propose: {every} {space.size():,} archs of {space.name} "
            f"({settings_text(space.name, space.config())}) already has a latency for {device!r} in {store.path} ({len(rows):,} rows: "
            + ", ".join(f"{n:,} {src}" for src, n in sources.most_common())
            + "); propose for a device you measure yourself (e.g. `hwnas propose --device host ...` after "
            "`hwnas profile --device host ...`) or for other space settings (--space-opt)")

    if len({a.arch_id for a in measured}) >= space.size():
        raise nothing_left()
    predictor, prior, how = None, None, "no predictor yet: covering ops, then spreading out"
    try:
        predictor = load_predictor(device, space=space, root=models)
        how = f"uncertainty of {predictor.card['name']}"
    except ArtifactError:
        if len(measured) >= 10:
            kind = "kernel" if featurizer_for(space).supports_kernels else "lut"
            predictor = create_predictor(kind, space=space).fit(measured, lat)
            how = f"uncertainty of a {kind} predictor fitted now on {len(measured)} measurements"
        else:
            from .from_store import source_predictors

            prior = source_predictors(store, device, space) or None
            if prior:
                how = (f"new device: covering every op and kernel, then D-optimal on the predicted and measured "
                       f"latencies of {len(prior)} other devices ({', '.join(prior)})")
    try:
        props = propose_next(space, measured, k, rng, predictor=predictor, pool_size=pool_size, prior=prior)
    except NothingToPropose:
        raise nothing_left() from None
    return props, how, len(measured)
