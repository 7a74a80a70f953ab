"""Transfer to a new device from few samples, with other devices' measurements as the prior (HELP-like).

HELP (Lee et al., NeurIPS 2021) meta-learns a predictor conditioned on a device embedding made of the
latencies of a few reference archs. We use the same prior knowledge in a simpler, robust form: a source
predictor is fitted for every other device in the store (all its measurements); for the target device,
log latency is regressed on the sources' predicted log latencies of the same archs: with non-negative
weights by default (Huber loss; ``positive=False``: Huber ridge, alpha by CV). A source that cannot predict some arch (an op it never saw: BRP-NAS' tables hold no disconnected
cells) is left out for that arch, with a model refitted on the remaining sources. Devices share most of
the ranking structure (which ops are expensive), so a handful of target measurements only has to learn how
this device weights the sources. The std adds the bootstrap spread to the residual scale (in log space,
converted to ms).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .huber_ridge import RobustLinear
from .base import ArtifactError, LatencyPredictor, PredictorError, UnknownOpError, load_npz, save_npz


def _memo_unseen(p, archs, ids=None) -> list:
    """``p.unseen_ops(archs)``, remembered on the (shared, already fitted) source predictor per arch id."""
    ids = ids or [a.arch_id for a in archs]
    memo = p.__dict__.setdefault("_unseen_memo", {})
    todo = [(i, a) for i, a in zip(ids, archs) if i not in memo]
    if todo:
        memo.update(zip((i for i, _ in todo), p.unseen_ops([a for _, a in todo])))
    return [memo[i] for i in ids]


def source_log_predictions(sources: dict, archs) -> np.ndarray:
    """(n, n_sources) log predicted latency of every source predictor; nan where a source cannot predict an
    arch (an op it never saw). Predictions are remembered per arch id on the source objects (they are shared,
    fitted once, and asked for the same archs again by every fold, candidate and proposal)."""
    ids = [a.arch_id for a in archs]
    cols = []
    for p in sources.values():
        memo = p.__dict__.setdefault("_pred_memo", {})
        todo = [(i, a) for i, a in zip(ids, archs) if i not in memo]
        if todo:
            unseen = _memo_unseen(p, [a for _, a in todo], [i for i, _ in todo])
            ok = [a for (_, a), u in zip(todo, unseen) if u is None]
            mean = p.predict(ok)[0] if ok else []
            memo.update(zip((i for (i, _), u in zip(todo, unseen) if u is None), np.log(np.maximum(mean, 1e-3))))
            memo.update((i, np.nan) for (i, _), u in zip(todo, unseen) if u is not None)
        cols.append(np.fromiter((memo[i] for i in ids), float, len(ids)))
    return np.stack(cols, 1) if cols else np.zeros((len(archs), 0))


def _nonneg_huber(X, y, iters: int = 20, epsilon: float = 1.35):
    """y ~ X w + b with w >= 0 and Huber weights (IRLS over scipy's NNLS on centred data)."""
    from scipy.optimize import nnls

    wts = np.ones(len(y))
    w = np.zeros(X.shape[1])
    b, scale = float(np.median(y)), 1e-9
    for _ in range(iters):
        sw = np.sqrt(wts)
        xm, ym = (wts @ X) / wts.sum(), float(wts @ y) / wts.sum()
        w, _ = nnls((X - xm) * sw[:, None], (y - ym) * sw)
        b = ym - float(xm @ w)
        r = y - X @ w - b
        scale = max(1.4826 * float(np.median(np.abs(r))), 1e-9)
        wts = np.minimum(1.0, epsilon * scale / np.maximum(np.abs(r), 1e-300))
    return w, b, scale


def _nonneg_linear(X, y, rng, n_boot: int) -> RobustLinear:
    """Non-negative weights on the sources (a device's log latency as a positive mix of other devices'): with
    ten samples and nine collinear sources the CV-tuned ridge can pick a tiny penalty and flip signs (Spearman
    0.52 on one proposed set of adreno-506, 0.95 with non-negative weights). Returned as a ``RobustLinear``
    (same predict, state and bootstrap uncertainty)."""
    m = RobustLinear(alpha=0.0, n_boot=n_boot)
    m.mean_, m.scale_, m.alpha_ = np.zeros(X.shape[1]), np.ones(X.shape[1]), 0.0
    w, b, s = _nonneg_huber(X, y)
    coefs, inters = [w], [b]
    for _ in range(n_boot if len(y) >= 4 else 0):
        idx = rng.integers(0, len(y), len(y))
        wb, bb, _ = _nonneg_huber(X[idx], y[idx])
        coefs.append(wb)
        inters.append(bb)
    m.coef_, m.intercept_, m.noise_ = np.array(coefs), np.array(inters), float(s)
    return m


class TransferPredictor(LatencyPredictor):
    kind = "transfer"

    def __init__(self, space=None, seed: int = 0, sources: dict | None = None, alpha: float | None = None,
                 n_boot: int = 16, positive: bool = True):
        self.space = space
        self.seed = seed
        self.sources = sources
        self.alpha = alpha
        self.n_boot = n_boot
        self.positive = positive

    def _source_features(self, archs) -> np.ndarray:
        """(n, n_sources) log predicted latency; nan where a source cannot predict an arch (an op it never saw)."""
        return source_log_predictions(self.sources_, archs)

    def _unseen(self, archs):
        """An arch is unseen only when no source can predict it (the model falls back to the others)."""
        per = [_memo_unseen(p, archs) for p in self.sources_.values()]
        return [None if any(u[i] is None for u in per) else per[0][i] for i in range(len(archs))]

    def _fit(self, archs, y):
        if not self.sources:
            raise PredictorError("transfer needs source predictors of other devices (none in the store?)")
        self.sources_ = dict(sorted(self.sources.items()))
        for name, p in self.sources_.items():
            if p.space_.name != self.space_.name or p.space_.config() != self.space_.config():
                raise PredictorError(f"source predictor {name!r} is for {p.space_.name} {p.space_.config()}, "
                                     f"not {self.space_.name} {self.space_.config()}")
        X = self._source_features(archs)
        usable = np.isfinite(X).all(0)
        if not usable.any():
            raise PredictorError("no source predictor can predict every training arch of the target device")
        self.X_train_ = X[:, usable]
        self.sources_ = {n: p for (n, p), u in zip(self.sources_.items(), usable) if u}
        self.y_log_ = np.log(y)
        self.model_ = self._fit_subset(np.ones(int(usable.sum()), bool))
        self._subsets = {}

    def _fit_subset(self, cols: np.ndarray) -> RobustLinear:
        rng = np.random.default_rng(self.seed)
        if self.positive:
            return _nonneg_linear(self.X_train_[:, cols], self.y_log_, rng, self.n_boot)
        return RobustLinear(self.alpha, n_boot=self.n_boot).fit(self.X_train_[:, cols], self.y_log_, rng)

    def _predict(self, archs):
        X = self._source_features(archs)
        mean, std = np.empty(len(archs)), np.empty(len(archs))
        ok = np.isfinite(X)
        full = ok.all(1)
        if full.any():
            mean[full], std[full] = self.model_.predict(X[full])
        for mask in {tuple(r) for r in ok[~full]}:
            cols = np.array(mask, bool)
            rows = (~full) & (ok == cols).all(1)
            if not cols.any():
                i = int(np.flatnonzero(rows)[0])
                raise UnknownOpError(f"no source device's predictor can predict arch "
                                     f"{self.space_.to_string(archs[i])} (it uses an op none of them saw)")
            # some sources never saw an op of these archs: a model on the remaining sources (cached)
            if mask not in self._subsets:
                self._subsets[mask] = self._fit_subset(cols)
            mean[rows], std[rows] = self._subsets[mask].predict(X[rows][:, cols])
        ms = np.exp(mean)
        return ms, ms * std

    def _card_extra(self):
        w = self.model_.coef_[0] / self.model_.scale_
        return {"sources": {n: {"kind": p.kind, "device": p.info_.get("device", n),
                                "training_count": p.n_train_, "weight": float(wi)}
                            for (n, p), wi in zip(self.sources_.items(), w)},
                "method": ("non-negative Huber regression" if self.positive else "Huber ridge") +
                          " of target log latency on source devices' predicted log latency"}

    def _save(self, d: Path):
        files = []
        for i, (name, p) in enumerate(self.sources_.items()):
            p.set_card(source_name=name)
            p.save(d / f"source_{i}")
            files.append(f"source_{i}/card.json")
        save_npz(d / "model.npz", {**self.model_.state(), "X_train": self.X_train_, "y_log": self.y_log_})
        return files + ["model.npz"]

    def _load(self, d: Path, card):
        self.sources_ = {}
        i = 0
        while (d / f"source_{i}").is_dir():
            p = LatencyPredictor.load(d / f"source_{i}", space=self.space_)
            self.sources_[p.info_.get("source_name", f"source_{i}")] = p
            i += 1
        if len(self.sources_) != len(card.get("sources", {})):
            raise ArtifactError(f"{d}: card lists {len(card.get('sources', {}))} sources, found {len(self.sources_)}")
        self.sources_ = dict(sorted(self.sources_.items()))
        self.sources = self.sources_
        z = load_npz(d / "model.npz")
        self.model_ = RobustLinear.from_state(z)
        self.X_train_, self.y_log_ = z["X_train"], z["y_log"]
        self._subsets = {}
