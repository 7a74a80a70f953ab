"""``auto``: pick the predictor kind by k-fold cross-validation on the available data, and say which.

Candidates: lut, kernel (when the space has a kernel view), arch (when there are enough samples) and transfer
(when source predictors of other devices are given). Each is scored on pooled out-of-fold predictions;
the score is within+-10% + Kendall tau (both in [0, 1]-ish, higher is better). The winner is refitted on all
data. ``fit`` returns the AutoPredictor; ``best_`` is the fitted winner and ``cv_`` the table of every
candidate's cross-validated metrics. Saving writes the winner's artifact, whose card records the choice.
"""

from __future__ import annotations

import numpy as np

from .huber_ridge import kfold_indices
from .base import LatencyPredictor, PredictorError
from .metrics import score


class AutoPredictor(LatencyPredictor):
    kind = "auto"

    def __init__(self, space=None, seed: int = 0, candidates: tuple | None = None, folds: int = 5,
                 sources: dict | None = None):
        self.space = space
        self.seed = seed
        self.candidates = candidates
        self.folds = folds
        self.sources = sources

    def _candidates(self, n: int) -> list[str]:
        if self.candidates:
            return list(self.candidates)
        out = ["lut"]
        if self.featurizer_.supports_kernels:
            out.append("kernel")
        if n >= 40:
            out.append("arch")
        if self.sources:
            out.append("transfer")
        return out

    def _make(self, kind, cv: bool = False):
        from . import create_predictor

        params = {"sources": self.sources} if kind == "transfer" else {}
        if cv and kind in ("lut", "kernel", "transfer"):
            params["n_boot"] = 0  # out-of-fold means need no uncertainty
        return create_predictor(kind, space=self.space_, seed=self.seed, **params)

    def _fit(self, archs, y):
        n = len(y)
        if n < 6:
            raise PredictorError(f"auto needs at least 6 measurements to cross-validate, got {n}; pick --kind")
        rng = np.random.default_rng(self.seed)
        folds = kfold_indices(n, min(self.folds, n), rng)
        self.cv_ = {}
        for kind in self._candidates(n):
            oof = np.full(n, np.nan)
            try:
                for f in folds:
                    tr = np.setdiff1d(np.arange(n), f)
                    p = self._make(kind, cv=True).fit([archs[i] for i in tr], y[tr])
                    try:
                        oof[f] = p.predict([archs[i] for i in f])[0]
                    except PredictorError:  # an op unseen in this fold: score it as a miss
                        for i in f:
                            try:
                                oof[i] = p.predict([archs[i]])[0][0]
                            except PredictorError:
                                oof[i] = np.nan
            except PredictorError as exc:
                self.cv_[kind] = {"error": str(exc)}
                continue
            ok = np.isfinite(oof)
            m = score(y[ok], oof[ok]) if ok.sum() >= 2 else {}
            m["coverage"] = float(ok.mean())
            m["score"] = (m.get("within_10pct", 0.0) * m["coverage"] + np.nan_to_num(m.get("kendall_tau", 0.0)))
            self.cv_[kind] = m
        scored = {k: v["score"] for k, v in self.cv_.items() if "score" in v}
        if not scored:
            raise PredictorError("no predictor kind could be fitted: " +
                                 "; ".join(f"{k}: {v.get('error')}" for k, v in self.cv_.items()))
        self.chosen_ = max(scored, key=scored.get)
        self.best_ = self._make(self.chosen_).fit(archs, y)
        self.best_.set_card(**{k: v for k, v in self.info_.items() if k != "name"})
        self.best_.set_card(selected_by="auto", cv_metrics=self.cv_[self.chosen_],
                            auto_cv={k: v for k, v in self.cv_.items()}, cv_folds=len(folds))

    def _predict(self, archs):
        return self.best_.predict(archs)

    def set_card(self, **fields):
        super().set_card(**fields)
        if getattr(self, "best_", None) is not None:
            self.best_.set_card(**fields)
        return self

    @property
    def card(self):
        card = self.best_.card
        return card

    def save(self, directory):
        return self.best_.save(directory)
