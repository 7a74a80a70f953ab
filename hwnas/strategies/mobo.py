"""Cheap-cost multi-objective Bayesian optimisation (``mobo``): spend the budget on accuracy only.

In hardware-aware NAS the device objectives usually come from a latency table, a latency predictor or a count
on the built graph: they are cheap. What the budget pays for is accuracy (training). This strategy uses that:

1. a candidate pool: every arch of the space when it has at most ``pool_size`` (nb201: all 15,625 cells),
   else ``pool_size`` distinct random archs;
2. the pool's cheap objectives, through the same mechanism DPP-Net uses (``toolkit.cheap_objective_values``: static
   costs counted from the graph, device costs from table/predictor sources); they spend no budget. Objectives
   without a cheap source (accuracy, device-in-the-loop measurements) are predicted;
3. ``n_init`` pool archs are evaluated, one from each of ``n_init`` equally full bins of the first cheap
   objective (``init="stratified"``: the start covers the whole cost axis; ``anchor=True`` takes the first bin's
   cheapest arch, always on the front: measured, not better; ``"random"``: uniform). Then, each
   step, a bootstrap ensemble of ridge regressions on the space's encoding (``space.encode``: nb201 gives graph
   features -- op counts, conv depth of the live paths, a conv-free path -- beside the one-hot genes of the
   simplified cell; ``encoding="genes"``: one-hot + pairwise genes) (+ the cheap objectives as features)
   predicts the other objectives with a spread (ensemble std). It is fit to the log of the values (when all are
   positive), which keeps bad archs visibly bad and spreads the good end; ``focus=q`` first clips values worse
   than the evaluated q-quantile (measured to hurt: docs/search.md). ``model="trees"`` / ``"blend"`` swap in
   extra-trees or a ridge + trees blend. The trend's residuals on the evaluated archs correct it: per functional
   class (``residual="class"``: shrunk class mean, within-class noise added to the spread) or by a Gaussian
   process over the distance between simplified genes (``residual="gp"``, length ``ell``: measured, not better);
4. each batch of ``batch_size`` is picked greedily by hypervolume improvement of the optimistic point
   (known cheap values, predicted mean - ``kappa`` x std) over the current evaluated front; each pick is
   added to the front at its predicted mean (kriging believer) before the next pick. Normalisation: the
   current front's ideal/nadir (cheap objectives: their pool minimum as ideal), reference nadir + 10%.
   With more than two objectives the batch is taken in NSGA-II survival order of the optimistic points.
   ``explore_kappa=K`` (two objectives): each batch's last pick uses kappa K instead (measured, not better).

Budget = unique archs evaluated, spent exactly (``toolkit.Budget``). Seeded by the passed Generator only.
The assumption: the cost objectives are cheap. When they are measured in the loop they are predicted like
accuracy, and the strategy is an ordinary surrogate-assisted search.
"""

from __future__ import annotations

import numpy as np

from ..contracts import SearchResult
from ..errors import HwnasError
from ..params import Params
from ..pareto import non_dominated_mask, pareto_order
from ..spaces.base import one_hot
from .toolkit import Budget, Recorder, cheap_objective_values


def focus_transform(y: np.ndarray, q: float | None):
    """(transformed y, inverse): values above the ``q`` quantile clipped to it, then log when all are positive.
    ``q`` None (or >= 1) keeps the values and only logs positive ones. Monotone, so rankings and optimistic
    bounds carry back through the inverse."""
    y = np.asarray(y, dtype=float)
    if q is not None and float(q) < 1 and len(y):
        y = np.minimum(y, np.quantile(y, float(q)))
    if len(y) and np.all(y > 0):
        return np.log(y), np.exp
    return y, (lambda v: v)


class RidgeEnsemble:
    """Bootstrap ensemble of ridge regressions (closed form); mean and spread of the members' predictions."""

    def __init__(self, n_members: int = 8, alpha: float = 1.0, seed: int = 0):
        self.n_members = n_members
        self.alpha = alpha
        self.seed = seed

    def fit(self, X, y) -> "RidgeEnsemble":
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        rng = np.random.default_rng(self.seed)
        self.x_mean_ = X.mean(0)
        self.y_mean_ = y.mean()
        Xc = X - self.x_mean_
        self.coefs_ = []
        n, d = Xc.shape
        for m in range(int(self.n_members)):
            idx = np.arange(n) if m == 0 else rng.integers(0, n, n)
            A, b = Xc[idx], y[idx] - self.y_mean_
            if d <= n:
                w = np.linalg.solve(A.T @ A + self.alpha * np.eye(d), A.T @ b)
            else:  # dual form: cheaper with fewer samples than features
                w = A.T @ np.linalg.solve(A @ A.T + self.alpha * np.eye(len(A)), b)
            self.coefs_.append(w)
        self.W_ = np.column_stack(self.coefs_)
        return self

    def predict(self, X) -> tuple[np.ndarray, np.ndarray]:
        P = (np.asarray(X, dtype=float) - self.x_mean_) @ self.W_ + self.y_mean_
        return P.mean(1), P.std(1)


class TreeEnsemble:
    """Extremely randomised trees (scikit-learn); mean and spread of the trees' predictions."""

    def __init__(self, n_trees: int = 64, seed: int = 0):
        self.n_trees = n_trees
        self.seed = seed

    def fit(self, X, y) -> "TreeEnsemble":
        from sklearn.ensemble import ExtraTreesRegressor

        self.model_ = ExtraTreesRegressor(n_estimators=int(self.n_trees), random_state=int(self.seed) % (2**31),
                                          n_jobs=1).fit(np.asarray(X, dtype=float), np.asarray(y, dtype=float))
        return self

    def predict(self, X) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X, dtype=float)
        P = np.column_stack([t.predict(X) for t in self.model_.estimators_])
        return P.mean(1), P.std(1)


class Blend:
    """Equal-weight blend of surrogates: mean of the means; spread from the members' variances plus their
    disagreement."""

    def __init__(self, *models):
        self.models = models

    def fit(self, X, y) -> "Blend":
        for m in self.models:
            m.fit(X, y)
        return self

    def predict(self, X) -> tuple[np.ndarray, np.ndarray]:
        out = [m.predict(X) for m in self.models]
        means = np.column_stack([o[0] for o in out])
        var = np.column_stack([o[1] ** 2 for o in out]).mean(1) + means.var(1)
        return means.mean(1), np.sqrt(var)


def hv_improvement_2d(front: np.ndarray, P: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Hypervolume each row of P (2 minimised objectives) adds to ``front`` within the box below ``ref``."""
    P = np.asarray(P, dtype=float)
    F = np.asarray(front, dtype=float).reshape(-1, 2)
    F = F[np.all(F < ref, axis=1)]
    if len(F):
        F = F[non_dominated_mask(F)]
        F = F[np.argsort(F[:, 0])]
    # staircase: on [xs[k], xs[k+1]) the front dominates everything above level ys[k]
    xs = np.concatenate([[-np.inf], F[:, 0], [ref[0]]])
    ys = np.concatenate([[ref[1]], F[:, 1]])
    lo = np.maximum(xs[None, :-1], P[:, :1])
    hi = np.minimum(xs[None, 1:], ref[0])
    width = np.clip(hi - lo, 0.0, None)
    height = np.clip(ys[None, :] - P[:, 1:2], 0.0, None)
    return (width * height).sum(1)


def hv_improvement_picks(front, P, M, free, k: int, ref, rng, n_samples: int = 4096, chunk: int = 256) -> list[int]:
    """Greedy picks (indices into P) by hypervolume improvement over ``front`` in any number of objectives,
    estimated on ``n_samples`` seeded uniform points of the box [min(P, 0), ref]: a candidate's gain is the share
    of the points not yet dominated that its optimistic point dominates; after a pick, the points its mean (``M``,
    kriging believer) dominates are taken out. Candidates the front already dominates, or not ``free``, gain
    nothing. Fewer than ``k`` picks when nothing promises an improvement."""
    P, M, F = np.asarray(P, float), np.asarray(M, float), np.asarray(front, float)
    lo = np.minimum(P[free].min(0) if free.any() else np.zeros(P.shape[1]), 0.0)
    S = lo + rng.random((int(n_samples), P.shape[1])) * (ref - lo)
    alive = ~_dominated(F, S, chunk)
    cand = np.flatnonzero(free & ~_dominated(F, P, chunk, strict=False))
    S = S[alive]
    if not len(cand) or not len(S):
        return []
    D = np.vstack([np.all(P[cand[i:i + chunk], None, :] <= S[None], axis=2) for i in range(0, len(cand), chunk)])
    gain = D.sum(1).astype(float)
    chosen: list[int] = []
    for _ in range(k):
        i = int(np.argmax(gain))
        if gain[i] <= 0:
            break
        chosen.append(int(cand[i]))
        gone = np.all(M[cand[i]] <= S, axis=1) | D[i]  # what the pick (at its mean) and its optimism now cover
        gain -= D[:, gone].sum(1)
        D[:, gone] = False
        gain[i] = -np.inf
    return chosen


def _exact_picks_2d(Z, P, M, free, k: int, ref) -> list[int]:
    """Greedy picks (indices into P) by the exact hypervolume improvement of the optimistic points ``P`` over
    ``Z`` (two objectives), each pick added to ``Z`` at its mean ``M``; fewer than ``k`` when nothing improves."""
    chosen: list[int] = []
    for _ in range(k):
        gain = hv_improvement_2d(Z, P, ref)
        gain[~free] = -1.0
        gain[chosen] = -np.inf
        i = int(np.argmax(gain))
        if gain[i] <= 0:
            break
        chosen.append(i)
        Z = np.vstack([Z, M[i]])
    return chosen


def _more_optimistic(mean, opt, factor: float) -> np.ndarray:
    """The optimistic point ``factor`` times further from the mean (in log space where all values are positive,
    as the surrogate's spread is)."""
    if np.all(mean > 0) and np.all(opt > 0):
        return mean * (opt / mean) ** factor
    return mean - factor * (mean - opt)


def _dominated(F, X, chunk: int = 256, strict: bool = True) -> np.ndarray:
    """Rows of X that some row of F dominates (``strict=False``: weakly, F <= X in every objective)."""
    out = np.zeros(len(X), dtype=bool)
    if not len(F):
        return out
    for i in range(0, len(X), chunk):
        x = X[i:i + chunk, None, :]
        le = np.all(F[None] <= x, axis=2)
        out[i:i + chunk] = np.any(le & np.any(F[None] < x, axis=2), axis=1) if strict else np.any(le, axis=1)
    return out


class _Effects(dict):
    def get_many(self, keys) -> np.ndarray:
        return np.array([self.get(int(k), 0.0) for k in keys], dtype=float)


def class_effects(classes, residuals, shrink: float = 1.0) -> tuple[_Effects, float]:
    """Per-class mean residual, shrunk towards 0 (sum / (n + shrink)), and the pooled within-class standard
    deviation of the residuals (0 until some class has two members)."""
    classes = np.asarray(classes, dtype=int)
    residuals = np.asarray(residuals, dtype=float)
    eff, ss, dof = _Effects(), 0.0, 0
    for c in np.unique(classes):
        r = residuals[classes == c]
        eff[int(c)] = float(r.sum() / (len(r) + shrink))
        if len(r) > 1:
            ss += float(((r - r.mean()) ** 2).sum())
            dof += len(r) - 1
    return eff, (np.sqrt(ss / dof) if dof else 0.0)


def residual_gp(codes, done, cand, r, noise_var: float, ell: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(posterior mean, latent posterior variance) at ``cand`` of a Gaussian process on the residuals ``r`` of the
    evaluated rows ``done``: kernel ``s2 exp(-d / ell)``, d the Hamming distance between rows of ``codes`` (the
    simplified genes, with functionally identical archs at distance 0), ``s2`` the residuals' variance beyond
    ``noise_var``. Where nothing near has been evaluated the variance is ``s2``: the linear trend's blind spots
    (a structure it gets wrong) stay worth a look, and a neighbour's surprise carries over. Measured as
    ``mobo[residual=gp]``: no better than the class effects (docs/search.md, issue 26), so not the default."""
    r = np.asarray(r, dtype=float)
    s2 = max(float(np.mean(r ** 2)) - noise_var, 0.1 * noise_var, 1e-6)

    def kern(a, b):
        d = np.zeros((len(a), len(b)))
        for i in range(0, len(a), 2048):
            d[i:i + 2048] = (codes[a[i:i + 2048], None, :] != codes[None, b, :]).sum(2)
        return s2 * np.exp(-d / float(ell))

    L = np.linalg.cholesky(kern(done, done) + (noise_var + 1e-9 * s2) * np.eye(len(done)))
    V = np.linalg.solve(L, kern(done, cand))
    alpha = np.linalg.solve(L.T, np.linalg.solve(L, r))
    return kern(cand, done) @ alpha, np.clip(s2 - (V ** 2).sum(0), 0.0, None)


def _cheap_allowed(cheap: dict, bounds, n: int) -> np.ndarray:
    """The pool rows worth budget: cheap bounds rule candidates out before they cost anything, and an unknown
    cheap value (an arch a table lacks) is infeasible (filled in ``cheap`` with the worst known value); all rows
    when nothing is left."""
    allowed = np.ones(n, dtype=bool)
    for j, b in bounds:
        if j in cheap:
            allowed &= ~(cheap[j] > b)
    for j in cheap:
        allowed &= np.isfinite(cheap[j])
        cheap[j] = np.where(np.isfinite(cheap[j]), cheap[j], np.nanmax(cheap[j]))
    if not allowed.any():
        allowed[:] = True
    return allowed


class CheapCostMOBO(Params):
    """Surrogate search over a pool whose cheap objectives are known; the budget buys the expensive ones."""

    name = "mobo"

    def __init__(self, n_init: int = 20, batch_size: int = 10, kappa: float = 0.5, pool_size: int = 20000,
                 n_members: int = 8, alpha: float = 1.0, encoding: str = "space", focus: float | None = None,
                 model: str = "ridge", init: str = "stratified", cost_features: bool = True, noise: bool = True,
                 residual: str = "class", ell: float = 0.5, anchor: bool = False,
                 explore_kappa: float | None = None):
        self.n_init = n_init
        self.batch_size = batch_size
        self.kappa = kappa
        self.pool_size = pool_size
        self.n_members = n_members
        self.alpha = alpha
        self.encoding = encoding
        self.focus = focus
        self.model = model
        self.init = init
        self.cost_features = cost_features
        self.noise = noise
        self.residual = residual
        self.ell = ell
        self.anchor = anchor
        self.explore_kappa = explore_kappa

    def _pool(self, space, rng):
        size = int(space.size())
        if size <= int(self.pool_size) and hasattr(space, "all_archs"):
            return list(space.all_archs())
        return space.sample_distinct(min(int(self.pool_size), size), rng)

    def run(self, space, evaluator, budget, rng, callback=None) -> SearchResult:
        self._check_params()
        objectives = tuple(evaluator.objectives)
        m = len(objectives)
        guard = Budget(evaluator, budget, space)
        rec = Recorder(evaluator, callback)
        seed = int(rng.integers(0, 2**31 - 1))
        pool = self._pool(space, rng)
        cheap = cheap_objective_values(evaluator, space, pool, range(m), {})
        cheap = {j: v for j, v in cheap.items() if np.all(np.isfinite(v)) or np.isfinite(v).any()}
        predicted = [j for j in range(m) if j not in cheap]  # empty when every objective is free
        X = self._features(space, pool, cheap)
        bounds = [(j, o.bound) for j, o in enumerate(objectives) if o.bound is not None]
        # functionally identical archs (the space's equivalence_key) share a class effect; their measured
        # accuracies still differ by training noise, which the optimistic score counts as uncertainty
        _, klass = np.unique([space.equivalence_key(a) for a in pool], return_inverse=True)
        codes = self._codes(space, pool, klass)
        allowed = _cheap_allowed(cheap, bounds, len(pool))
        evaluated = np.zeros(len(pool), dtype=bool)
        index = {a.arch_id: i for i, a in enumerate(pool)}

        def evaluate(picks):
            kept, _ = guard.evaluate([pool[i] for i in picks])
            for a in kept:
                evaluated[index[a.arch_id]] = True

        step = 1
        evaluate(self._initial(np.flatnonzero(allowed), cheap, min(int(self.n_init), guard.remaining), rng))
        rec.record(step, phase="init")
        while not guard.exhausted:
            cand = np.flatnonzero(~evaluated & allowed)
            if not len(cand):
                cand = np.flatnonzero(~evaluated)
            if not len(cand):
                break
            done = np.flatnonzero(evaluated)
            Y = np.array([guard.known(pool[i]) for i in done], dtype=float)
            mean, opt = self._predict(X, Y, m, (klass, codes), done, cand, cheap, seed + 1000 * step)
            violation = np.zeros(len(cand))
            for j, b in bounds:
                violation += np.maximum(opt[:, j] - b, 0.0)
            k = min(int(self.batch_size), guard.remaining, len(cand))
            evaluate(cand[self._select(Y, opt, mean, violation, cheap, cand, k, bounds)])
            step += 1
            rec.record(step, phase="surrogate", n_candidates=int(len(cand)),
                       predicted=[objectives[j].label for j in predicted])
        config = {**self.get_params(), "budget": int(budget), "seed": seed, "pool": len(pool),
                  "cheap": [objectives[j].label for j in sorted(cheap)],
                  "predicted": [objectives[j].label for j in predicted]}
        return rec.result(self.name, space, config)

    def _check_params(self) -> None:
        if int(self.n_init) < 1 or int(self.batch_size) < 1:
            raise HwnasError(f"mobo: n_init and batch_size must be >= 1, got {self.n_init}, {self.batch_size}")
        if self.encoding not in ("space", "genes"):
            raise HwnasError(f"mobo: encoding must be 'space' or 'genes', got {self.encoding!r}")
        if self.model not in ("ridge", "trees", "blend"):
            raise HwnasError(f"mobo: model must be 'ridge', 'trees' or 'blend', got {self.model!r}")
        if self.residual not in ("gp", "class"):
            raise HwnasError(f"mobo: residual must be 'gp' or 'class', got {self.residual!r}")
        if self.init not in ("stratified", "random"):
            raise HwnasError(f"mobo: init must be 'stratified' or 'random', got {self.init!r}")
        if self.focus is not None and not (isinstance(self.focus, (int, float)) and 0 < float(self.focus) <= 1):
            raise HwnasError(f"mobo: focus must be a quantile in (0, 1] or None, got {self.focus!r}")

    def _features(self, space, pool, cheap: dict) -> np.ndarray:
        """The surrogate's input rows for the pool: the arch encoding [+ the standardized cheap costs]."""
        if self.encoding == "space":
            X = np.asarray(space.encode(pool), dtype=float)
        else:
            X = one_hot(np.array([space.simplify(a).genes for a in pool]), space.cardinalities(), pairwise=True)
        if self.cost_features and cheap:
            C = np.column_stack([cheap[j] for j in sorted(cheap)])
            C = np.where(np.isfinite(C), C, np.nanmax(np.where(np.isfinite(C), C, -np.inf), axis=0))
            C = (C - C.mean(0)) / np.where(C.std(0) > 0, C.std(0), 1.0)
            X = np.hstack([X, C])
        return X

    def _predict(self, X, Y, m: int, groups, done, cand, cheap: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(predicted mean, optimistic point = mean - kappa x spread) of every objective for the candidates: the
        cheap ones known, the others from a surrogate fitted on the evaluated rows (seed + objective index);
        ``groups``: (functional class, residual-model rows) of every pool arch, for ``_residuals``."""
        mean = np.empty((len(cand), m))
        opt = np.empty((len(cand), m))
        for j in range(m):
            if j in cheap:
                mean[:, j] = opt[:, j] = cheap[j][cand]
                continue
            ok = np.isfinite(Y[:, j])
            if not ok.any():  # nothing known yet: every candidate looks alike
                mean[:, j], opt[:, j] = 0.0, 0.0
                continue
            y, back = focus_transform(Y[ok, j], self.focus)
            model = self._surrogate(seed + j)
            model.fit(X[done][ok], y)
            mu, sd = model.predict(X[cand])
            if self.noise and ok.sum() > 2:
                mu, sd = self._residuals(groups, done[ok], cand, y - model.predict(X[done][ok])[0], mu, sd)
            mean[:, j], opt[:, j] = back(mu), back(mu - float(self.kappa) * sd)
        return mean, opt

    def _codes(self, space, pool, klass) -> np.ndarray | None:
        """The residual model's rows (``residual="gp"``): simplified genes, functionally identical archs given the
        genes of their class's first member so they lie at distance 0."""
        if self.residual != "gp":
            return None
        genes = np.array([space.simplify(a).genes for a in pool], dtype=int).reshape(len(pool), -1)
        _, first = np.unique(klass, return_index=True)
        return genes[first][klass]

    def _residuals(self, groups, done, cand, resid, mu, sd) -> tuple[np.ndarray, np.ndarray]:
        """The trend's prediction corrected by what its residuals say (transformed scale): the class effect and the
        training noise (``residual="class"``), or a Gaussian process over gene distance (``"gp"``)."""
        klass, codes = groups
        eff, sigma = class_effects(klass[done], resid)
        if self.residual != "gp":
            return mu + eff.get_many(klass[cand]), np.sqrt(sd ** 2 + sigma ** 2)
        gm, gv = residual_gp(codes, done, cand, resid, sigma ** 2 if sigma > 0 else 1e-4, float(self.ell))
        return mu + gm, np.sqrt(sd ** 2 + gv + sigma ** 2)

    def _initial(self, allowed: np.ndarray, cheap: dict, n: int, rng) -> np.ndarray:
        """``n`` first picks: random, or (``init="stratified"``, with a cheap objective) one random arch from each
        of ``n`` equally full bins of the first cheap objective, so the start covers the whole cost axis."""
        if self.init != "stratified" or not cheap or n < 1:
            return rng.permutation(allowed)[:n]
        cost = cheap[min(cheap)]
        order = allowed[np.argsort(cost[allowed], kind="stable")]
        bins = [b for b in np.array_split(order, n) if len(b)]
        if self.anchor:  # the cheapest arch is on the front whatever its accuracy: start from it
            bins[0] = bins[0][cost[bins[0]] <= cost[bins[0][0]]]
        return np.array([rng.choice(b) for b in bins], dtype=int)

    def _surrogate(self, seed: int):
        ridge = RidgeEnsemble(int(self.n_members), float(self.alpha), seed)
        if self.model == "ridge":
            return ridge
        trees = TreeEnsemble(8 * int(self.n_members), seed)
        return trees if self.model == "trees" else Blend(ridge, trees)

    def _select(self, Y, opt, mean, violation, cheap, cand, k, bounds) -> np.ndarray:
        """Indices into the candidate rows: ``k`` greedy hypervolume-improvement picks of the optimistic points
        (exact in 2 objectives, ``hv_improvement_picks``' sampled estimate in more), the rest (when nothing
        promises an improvement) in NSGA-II survival order of the optimistic points."""
        m = opt.shape[1]
        feas = np.all(np.isfinite(Y), axis=1)
        for j, b in bounds:
            feas &= Y[:, j] <= b
        front = Y[feas]
        if len(front):
            front = front[non_dominated_mask(front)]
        if len(front) == 0:
            return pareto_order(opt, violation)[:k]
        ideal = front.min(0)
        for j in cheap:
            ideal[j] = min(ideal[j], float(np.min(cheap[j][cand])))
        nadir = front.max(0)
        scale = np.where(nadir - ideal > 0, nadir - ideal, 1.0)
        Z = (front - ideal) / scale
        Zopt = (opt - ideal) / scale
        M = (mean - ideal) / scale
        ref = np.full(m, 1.1)
        free = violation <= 0
        if m == 2 and self.explore_kappa is not None and k > 1 and float(self.kappa) > 0:
            chosen = _exact_picks_2d(Z, Zopt, M, free, k - 1, ref)
            bold = (_more_optimistic(mean, opt, float(self.explore_kappa) / float(self.kappa)) - ideal) / scale
            spare = free.copy()
            spare[chosen] = False
            chosen += _exact_picks_2d(np.vstack([Z, M[chosen]]), bold, M, spare, 1, ref)
        elif m == 2:
            chosen = _exact_picks_2d(Z, Zopt, M, free, k, ref)
        else:
            chosen = hv_improvement_picks(Z, Zopt, M, free, k, ref, np.random.default_rng(len(Y)))
        taken = set(chosen)  # nothing promises more: fill in survival order of the optimistic points
        rest = [r for r in pareto_order(opt, violation) if r not in taken]
        return np.array(chosen + rest[: k - len(chosen)], dtype=int)


__all__ = ["CheapCostMOBO", "RidgeEnsemble", "focus_transform", "hv_improvement_2d", "hv_improvement_picks"]
