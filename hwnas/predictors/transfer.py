"""Transfer to a new device from few samples, with other devices' measurements as the prior (HELP-like).

HELP (Lee et al., NeurIPS 2021) meta-learns a predictor conditioned on a device embedding made of the
latencies of a few reference archs. We use the same prior knowledge in a simpler, robust form: a source
predictor is fitted for every other device in the store (all its measurements); for the target device,
log latency is regressed on the sources' log latencies of the same archs: with non-negative weights by
default (Huber loss; ``positive=False``: Huber ridge, alpha by CV). Every source gives one feature, its
predicted log latency, and, when it carries its own measurements (``attach_measurements``: ``fit-predictor``
attaches the rows the store holds), a second one: its *measured* log latency of that arch (its prediction
where it never measured it). The measured column keeps what the source's kernel model cannot express and
other devices share (BRP-NAS' int8 phones: oracle Spearman 0.98 with measured columns, 0.95 predicted only);
the predicted column is its denoised version. A source that cannot predict some arch (an op it never saw:
BRP-NAS' tables hold no disconnected cells) is left out for that arch, with a model refitted on the
remaining sources. Devices share most of the ranking structure (which ops are expensive), so a handful of
target measurements only has to learn how this device weights the sources. The std adds the bootstrap
spread to the residual scale (in log space, converted to ms).

Priors that do not apply (issue 24, gap 3): leave-one-out on the target cells compares the transfer model with a
target-only model of the arch's graph costs (``few_sample``: MMACs, memory traffic, kernels, conv depth; a
monotone fit). When no mix of the sources explains the target cells as well as the target's own costs do
(``check_prior``, on by default; nb201, 6 or more cells), the predictor answers with the target-only model, with
the std of its leave-one-out log error, labels every row ``target-only(...)`` and records the decision, the
reason and both models' leave-one-out figures in the card (``prior_check``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .few_sample import COST_NAMES, MIN_CHECK, CostModel, graph_cost_features, prior_check, supports_costs
from .huber_ridge import RobustLinear
from .base import ArtifactError, LatencyPredictor, PredictorError, UnknownOpError, load_npz, save_npz


def _memo_unseen(p, archs, ids=None) -> list:
    """``p.unseen_ops(archs)``, remembered per arch id in the source predictor's memo (cleared when it is refitted)."""
    ids = ids or [a.arch_id for a in archs]
    memo = p.memo("unseen_ops")
    todo = [(i, a) for i, a in zip(ids, archs) if i not in memo]
    if todo:
        memo.update(zip((i for i, _ in todo), p.unseen_ops([a for _, a in todo])))
    return [memo[i] for i in ids]


def source_log_predictions(sources: dict, archs) -> np.ndarray:
    """(n, n_sources) log predicted latency of every source predictor; nan where a source cannot predict an
    arch (an op it never saw). Predictions are remembered per arch id in each source's memo
    (``LatencyPredictor.memo``: the sources are shared and asked for the same archs again by every fold, candidate
    and proposal; a refit clears it)."""
    ids = [a.arch_id for a in archs]
    cols = []
    for p in sources.values():
        memo = p.memo("log_predictions")
        todo = [(i, a) for i, a in zip(ids, archs) if i not in memo]
        if todo:
            unseen = _memo_unseen(p, [a for _, a in todo], [i for i, _ in todo])
            ok = [a for (_, a), u in zip(todo, unseen) if u is None]
            mean = p.predict(ok)[0] if ok else []
            memo.update(zip((i for (i, _), u in zip(todo, unseen) if u is None), np.log(np.maximum(mean, 1e-3))))
            memo.update((i, np.nan) for (i, _), u in zip(todo, unseen) if u is not None)
        cols.append(np.fromiter((memo[i] for i in ids), float, len(ids)))
    return np.stack(cols, 1) if cols else np.zeros((len(archs), 0))


def attach_measurements(p, archs, latency_ms):
    """Let source predictor ``p`` carry its device's measured latencies ({arch id: ms}, positive finite only):
    a transfer model then uses them as a second feature of that source. Returns ``p``."""
    y = np.asarray(latency_ms, float)
    p.measured_ = {a.arch_id: float(v) for a, v in zip(archs, y) if np.isfinite(v) and v > 0}
    return p


def source_features(sources: dict, archs) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """(n, columns) features of the transfer model and the columns' (source, "predicted" | "measured"):
    per source its predicted log latency, then, when it carries measurements, its measured log latency
    (the prediction where it has no measurement of that arch); nan where a source cannot predict an arch."""
    P = source_log_predictions(sources, archs)
    cols, names = [], []
    for j, (name, p) in enumerate(sources.items()):
        cols.append(P[:, j])
        names.append((name, "predicted"))
        meas = getattr(p, "measured_", None)
        if meas:
            m = np.fromiter((meas.get(a.arch_id, np.nan) for a in archs), float, len(archs))
            cols.append(np.where(np.isfinite(m), np.log(np.maximum(m, 1e-3)), P[:, j]))
            names.append((name, "measured"))
    return (np.stack(cols, 1) if cols else np.zeros((len(archs), 0))), names


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
                 n_boot: int = 16, positive: bool = True, check_prior: bool = True):
        self.space = space
        self.seed = seed
        self.sources = sources
        self.alpha = alpha
        self.n_boot = n_boot
        self.positive = positive
        self.check_prior = check_prior

    @property
    def target_only_(self) -> bool:
        """True when the prior check found that no mix of the sources explains the target cells."""
        return (getattr(self, "prior_check_", None) or {}).get("use") == "target-only"

    def _source_features(self, archs) -> np.ndarray:
        """(n, columns) log latency of the sources (``source_features``); nan where a source cannot predict."""
        return source_features(self.sources_, archs)[0]

    def _unseen(self, archs):
        """An arch is unseen only when no source can predict it (the model falls back to the others)."""
        if self.target_only_:  # graph costs exist for every arch of the space
            return [None] * len(archs)
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
        X, names = source_features(self.sources_, archs)
        bad = {n for (n, _), ok in zip(names, np.isfinite(X).all(0)) if not ok}
        if len(bad) == len(self.sources_):
            raise PredictorError("no source predictor can predict every training arch of the target device")
        usable = np.array([n not in bad for n, _ in names])
        self.X_train_ = X[:, usable]
        self.columns_ = [c for c, u in zip(names, usable) if u]
        self.sources_ = {n: p for n, p in self.sources_.items() if n not in bad}
        self.y_log_ = np.log(y)
        self.model_ = self._fit_subset(np.ones(self.X_train_.shape[1], bool))
        self._subsets = {}
        self.prior_check_, self.cost_ = None, None
        if self.check_prior and supports_costs(self.featurizer_) and len(y) >= MIN_CHECK:
            costs = graph_cost_features(self.featurizer_, archs)
            self.prior_check_ = prior_check(self._loo_fit_predict, self.X_train_, costs, y)
            self.cost_ = CostModel().fit(costs, y)

    def _loo_fit_predict(self, X, y, X_test) -> np.ndarray:
        """Log predictions of the transfer model fitted on (X, y) without bootstrap (the prior check's LOO)."""
        if self.positive:
            w, b, _ = _nonneg_huber(X, np.log(y))
            return X_test @ w + b
        rng = np.random.default_rng(self.seed)
        return RobustLinear(self.alpha, n_boot=0).fit(X, np.log(y), rng).predict(X_test)[0]

    def predict_target_only(self, archs) -> tuple[np.ndarray, np.ndarray]:
        """The target-only model's (mean, std) ms: exp of the monotone graph-cost fit, std = mean x its
        leave-one-out log RMSE (at least its residual scale)."""
        mean = np.exp(self.cost_.predict_log(graph_cost_features(self.featurizer_, archs)))
        sd = max(self.prior_check_["target_only"]["loo_log_rmse"], self.cost_.noise_)
        return mean, mean * sd

    def provenance(self, archs) -> list:
        """Per arch: ``target-only(...)`` when the prior check rejected the sources, else None (module doc)."""
        if self.target_only_:
            return ["target-only(other devices do not explain its cells)"] * len(archs)
        return [None] * len(archs)

    def _fit_subset(self, cols: np.ndarray) -> RobustLinear:
        rng = np.random.default_rng(self.seed)
        if self.positive:
            return _nonneg_linear(self.X_train_[:, cols], self.y_log_, rng, self.n_boot)
        return RobustLinear(self.alpha, n_boot=self.n_boot).fit(self.X_train_[:, cols], self.y_log_, rng)

    def _predict(self, archs):
        if self.target_only_:
            return self.predict_target_only(archs)
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
        w = dict(zip(self.columns_, self.model_.coef_[0] / self.model_.scale_))
        srcs = {}
        for n, p in self.sources_.items():
            srcs[n] = {"kind": p.kind, "device": p.info_.get("device", n), "training_count": p.n_train_,
                       "weight": float(w[(n, "predicted")])}
            if (n, "measured") in w:
                srcs[n].update(measured_cells=len(p.measured_), weight_measured=float(w[(n, "measured")]))
        measured = sum("measured_cells" in v for v in srcs.values())
        extra = {}
        if self.prior_check_ is not None:
            extra["prior_check"] = self.prior_check_
        if self.target_only_:
            extra["target_only_model"] = {
                "method": "non-negative Huber regression of log latency on standardized graph costs (monotone)",
                "costs": dict(zip(COST_NAMES, (float(w) for w in self.cost_.coef_ / self.cost_.scale_))),
                "std": "mean x leave-one-out log RMSE on the target cells"}
            return {"sources": srcs, **extra,
                    "method": "target-only: monotone fit of log latency on graph costs (MMACs, memory traffic, "
                              "kernels, conv depth); the other devices did not explain the target cells "
                              "(prior_check)"}
        return {"sources": srcs, **extra,
                "method": ("non-negative Huber regression" if self.positive else "Huber ridge") +
                          " of target log latency on source devices' predicted log latency" +
                          (f" and, for {measured} sources, their measured log latency (predicted where not "
                           f"measured)" if measured else "")}

    def _save(self, d: Path):
        files, measured = [], {}
        for i, (name, p) in enumerate(self.sources_.items()):
            p.set_card(source_name=name)
            p.save(d / f"source_{i}")
            files.append(f"source_{i}/card.json")
            if (name, "measured") in self.columns_:
                measured[f"measured_ids_{i}"] = np.array(list(p.measured_), dtype=str)
                measured[f"measured_ms_{i}"] = np.array(list(p.measured_.values()), float)
        cost = self.cost_.state() if self.cost_ is not None else {}
        save_npz(d / "model.npz", {**self.model_.state(), "X_train": self.X_train_, "y_log": self.y_log_,
                                   **measured, **cost})
        return files + ["model.npz"]

    def _load(self, d: Path, card):
        z = load_npz(d / "model.npz")
        self.sources_ = {}
        i = 0
        while (d / f"source_{i}").is_dir():
            p = LatencyPredictor.load(d / f"source_{i}", space=self.space_)
            if f"measured_ids_{i}" in z:
                p.measured_ = dict(zip(z[f"measured_ids_{i}"].tolist(), z[f"measured_ms_{i}"].tolist()))
            self.sources_[p.info_.get("source_name", f"source_{i}")] = p
            i += 1
        if len(self.sources_) != len(card.get("sources", {})):
            raise ArtifactError(f"{d}: card lists {len(card.get('sources', {}))} sources, found {len(self.sources_)}")
        self.sources_ = dict(sorted(self.sources_.items()))
        self.sources = self.sources_
        self.columns_ = source_features(self.sources_, [])[1]
        if len(self.columns_) != z["X_train"].shape[1]:
            raise ArtifactError(f"{d}: model.npz has {z['X_train'].shape[1]} feature columns, the sources give "
                                f"{len(self.columns_)}")
        self.model_ = RobustLinear.from_state(z)
        self.X_train_, self.y_log_ = z["X_train"], z["y_log"]
        self._subsets = {}
        self.prior_check_ = card.get("prior_check")
        self.cost_ = CostModel.from_state(z) if "cost_coef" in z else None
        if self.target_only_ and self.cost_ is None:
            raise ArtifactError(f"{d}: the card says the target-only model answers, model.npz lacks it")
