"""``auto``: pick the predictor kind by k-fold cross-validation on the available data, and say which.

Candidates: lut, kernel (when the space has a kernel view), arch (when there are enough samples) and transfer
(when source predictors of other devices are given). Each candidate is first fitted on all the data and asked
which archs of the space it can answer (``fallback.space_coverage``: no fold of ten points can reveal that a
model never saw ``e3:skip_connect``); with priors, a candidate that cannot cover the space becomes
``<kind>+transfer`` (unseen ops take the transfer model's estimate, labelled, with a wider std). Then each is
scored on pooled out-of-fold predictions: within+-10% x fold coverage + Kendall tau.

The pick (``pick``) composes instead of excluding: among the candidates cross-validation measured, the one with
the best score is picked alone when no other candidate covers more of the space. When another covers more
and a covering ``lut`` was fitted (and cross-validated, when any candidate was), auto composes ``<best>+lut``
(a ``FallbackPredictor``: the best model answers the archs it covers, the lut the rest, labelled
``lut(unseen op ...)`` with a wider std), scored on the same out-of-fold predictions (the best model's where it had one, the lut's elsewhere). So an op that only
cells without an input-output path execute (``fill_zeros``; such cells are not measured) never demotes a
kernel model that cross-validates at 0.95 to a lut at 0.57 for every other arch. Only when no such composite
covers as much as the widest candidate does the older rule apply: highest space coverage, then score. An arch
no model can answer still raises ``UnknownOpError``. The fits from step 1 are kept. ``fit`` returns the
AutoPredictor; ``best_`` is the fitted winner and ``cv_`` the table of every candidate's cross-validated
metrics (a composite's row has ``composed_of``). Saving writes the winner's artifact, whose card records the
choice (and, for a composite, both models and the share of the space probe each answers).
"""

from __future__ import annotations

import numpy as np

from .huber_ridge import kfold_indices
from .base import LatencyPredictor, PredictorError
from .fallback import space_coverage
from .metrics import score


AUTO_RULE = ("among the candidates cross-validation measured (out-of-fold predictions of 2 or more archs; all "
             "candidates when none was): the best cross-validated within+-10% x fold coverage + Kendall tau, alone "
             "when no candidate covers more of the space, else composed with a covering lut (<best>+lut: the lut "
             "answers the archs the best model cannot); without such a composite: highest space coverage, then "
             "score")


def measured(cv: dict) -> list[str]:
    """The candidates cross-validation measured: a score from out-of-fold predictions, not just a fit."""
    return [k for k, m in cv.items() if "score" in m and "within_10pct" in m]


def best_single(cv: dict) -> str:
    """The measured (else fitted) candidate with the best cross-validated score, composites left out."""
    fitted = [k for k, m in cv.items() if "score" in m and "composed_of" not in m]
    pool = [k for k in measured(cv) if "composed_of" not in cv[k]] or fitted
    return max(pool, key=lambda k: cv[k]["score"])


def pick(cv: dict) -> str:
    """The kind auto picks from its table ``cv`` (AUTO_RULE): the best-scored model where it covers as much
    of the space as any candidate, else that model composed with a covering fallback (``composed_of``); a model
    that cannot answer part of the space is not chosen alone when one that can is, and a model no fold could
    test is never chosen over one that was tested (six rows: a lut with no out-of-fold prediction at all was
    picked over a kernel model scoring 0.77)."""
    fitted = [k for k, m in cv.items() if "score" in m]
    pool = measured(cv) or fitted
    top_cov = max(cv[k]["space_coverage"] for k in pool)
    best = best_single(cv)
    if cv[best]["space_coverage"] >= top_cov - 1e-12:
        return best
    comp = [k for k in pool if (cv[k].get("composed_of") or [None])[0] == best
            and cv[k]["space_coverage"] >= top_cov - 1e-12]
    if comp:
        return comp[0]
    singles = [k for k in pool if "composed_of" not in cv[k]] or pool
    cov = max(cv[k]["space_coverage"] for k in singles)
    scored = {k: cv[k]["score"] for k in singles if cv[k]["space_coverage"] >= cov - 1e-12}
    return max(scored, key=scored.get)


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
        f = self.featurizer_
        out = {"lut": len(f.token_names())}  # kind -> its number of linear coefficients
        if f.supports_kernels:
            out["kernel"] = len(f.kernel_names("pruned"))
        if n >= 40:
            out["arch"] = 0
        if self.sources:
            out["transfer"] = 0
        # fewer samples than coefficients: the ridge fits any ten points and CV on folds of two cannot tell
        # (kernel picked on ten random cells of essential_ph_1: Spearman 0.16); such kinds are left out when
        # another candidate remains
        determined = [k for k, d in out.items() if n >= d]
        return determined or list(out)

    def _make(self, kind, cv: bool = False):
        from . import create_predictor

        boot = {"n_boot": 0} if cv else {}  # out-of-fold means need no uncertainty
        if kind.endswith("+transfer"):
            return create_predictor("fallback", space=self.space_, seed=self.seed, primary=kind.split("+")[0],
                                    sources=self.sources, **boot)
        params = {"sources": self.sources} if kind == "transfer" else {}
        if kind in ("lut", "kernel", "transfer"):
            params.update(boot)
        return create_predictor(kind, space=self.space_, seed=self.seed, **params)

    def _cv(self, kind, archs, y, folds) -> dict:
        oof = self._oof(kind, archs, y, folds)
        self.oof_[kind] = oof
        return self._metrics(y, oof)

    @staticmethod
    def _metrics(y, oof) -> dict:
        ok = np.isfinite(oof)
        m = score(y[ok], oof[ok]) if ok.sum() >= 2 else {}
        m["coverage"] = float(ok.mean())
        m["score"] = (m.get("within_10pct", 0.0) * m["coverage"] + np.nan_to_num(m.get("kendall_tau", 0.0)))
        return m

    def _oof(self, kind, archs, y, folds) -> np.ndarray:
        from .metrics import out_of_fold

        def predict(p, fold):
            test = [archs[i] for i in fold]
            ok = np.array([u is None for u in p.unseen_ops(test)])  # an op unseen in this fold: a miss
            out = np.full(len(fold), np.nan)
            if ok.any():
                out[ok] = p.predict([a for a, k in zip(test, ok) if k])[0]
            return out

        return out_of_fold(len(y), folds, lambda tr: self._make(kind, cv=True).fit([archs[i] for i in tr], y[tr]),
                           predict)

    def _compose(self, fitted: dict, y) -> None:
        """Add ``<best>+lut`` to ``cv_`` / ``fitted`` when the best-scored candidate does not cover the space and
        the lut covers more of it (module docstring). Its out-of-fold predictions: the best model's where it
        had one, the lut's elsewhere (what the composite would answer in that fold)."""
        from .fallback import FallbackPredictor

        ok = {k: m for k, m in self.cv_.items() if "score" in m}
        tested = measured(self.cv_)
        if tested:  # a model no fold could test never answers, not even as the fallback (six rows: issue 22)
            ok = {k: m for k, m in ok.items() if k in tested}
        if not ok or "lut" not in fitted or "lut" not in ok:
            return
        best = best_single(self.cv_)
        top = max(m["space_coverage"] for m in ok.values())
        if (best not in ("kernel", "arch") or ok[best]["space_coverage"] >= top - 1e-12
                or ok["lut"]["space_coverage"] <= ok[best]["space_coverage"]):
            return
        comp = FallbackPredictor.compose(fitted[best], fitted["lut"])
        oof = np.where(np.isfinite(self.oof_[best]), self.oof_[best], self.oof_["lut"])
        m = self._metrics(y, oof)
        cov = space_coverage(comp, self.space_)
        m.update(space_coverage=cov["coverage"], space_unseen=cov["unseen"][:8],
                 primary_unseen=self.cv_[best]["space_unseen"], composed_of=[best, "lut"],
                 answered_share=comp.answered_share())
        kind = f"{best}+lut"
        self.cv_[kind], fitted[kind], self.oof_[kind] = m, comp, oof

    def _fit(self, archs, y):
        n = len(y)
        if n < 6:
            raise PredictorError(f"auto needs at least 6 measurements to cross-validate, got {n}; pick a `kind`")
        rng = np.random.default_rng(self.seed)
        folds = kfold_indices(n, min(self.folds, n), rng)
        self.cv_, fitted, self.oof_ = {}, {}, {}
        for kind in self._candidates(n):
            # 1. fitted on all the data, which ops of the space can it answer? (no fold can reveal this)
            try:
                full = self._make(kind).fit(archs, y)
                cov = space_coverage(full, self.space_)
                if cov["coverage"] < 1.0 and self.sources and kind in ("lut", "kernel", "arch"):
                    kind = f"{kind}+transfer"  # unseen ops: the transfer model's estimate, labelled as such
                    full = self._make(kind).fit(archs, y)
                    cov = {**space_coverage(full, self.space_), "primary_unseen": cov["unseen"]}
                # 2. out-of-fold accuracy
                m = self._cv(kind, archs, y, folds)
            except PredictorError as exc:
                self.cv_[kind] = {"error": str(exc)}
                continue
            m["space_coverage"] = cov["coverage"]
            m["space_unseen"] = cov["unseen"][:8]
            if "primary_unseen" in cov:
                m["primary_unseen"] = cov["primary_unseen"][:8]
            self.cv_[kind], fitted[kind] = m, full
        if not fitted:
            raise PredictorError("no predictor kind could be fitted: " +
                                 "; ".join(f"{k}: {v.get('error')}" for k, v in self.cv_.items()))
        self._compose(fitted, y)
        self.chosen_ = pick(self.cv_)
        self.best_ = fitted[self.chosen_]
        self.best_.set_card(**{k: v for k, v in self.info_.items() if k != "name"})
        self.best_.set_card(selected_by="auto", cv_metrics=self.cv_[self.chosen_],
                            auto_cv={k: v for k, v in self.cv_.items()}, cv_folds=len(folds),
                            auto_rule=AUTO_RULE)

    def provenance(self, archs):
        from .fallback import row_provenance

        return row_provenance(self.best_, archs)

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

    def save(self, directory, extra: dict[str, str] | None = None):
        return self.best_.save(directory, extra)


def auto_why(cv: dict, chosen: str) -> str:
    """Why auto picked ``chosen`` (predictors.auto.pick), in words: the best score of the candidates that cover
    the most of the space among those cross-validation measured; which candidates no fold could test; which
    better-scored candidate it passed over because that one cannot predict some ops of the space."""
    fitted = {k: m for k, m in cv.items() if "score" in m}
    if fitted[chosen].get("composed_of"):
        best, fb = fitted[chosen]["composed_of"]
        share = fitted[chosen].get("answered_share", {})
        return (f"{best} has the best cross-validated score ({fitted[best]['score']:.3f}) but never saw "
                f"{', '.join(fitted[best]['space_unseen'][:3])}; it answers {share.get(best, 0):.1%} of the space "
                f"probe and {fb} the other {share.get(fb, 0):.1%} (provenance {fb}(unseen op ...), wider std)")
    tested = measured(cv)
    pool = {k: fitted[k] for k in (tested or fitted)}
    best_cov = max(m["space_coverage"] for m in pool.values())
    where = ("can predict every op of the space" if best_cov >= 1.0
             else f"cover the most of the space ({best_cov:.3f})")
    why = (f"the best cross-validated score (within+-10% x fold coverage + Kendall tau: {fitted[chosen]['score']:.3f})"
           f" of the candidates that {where}")
    untested = [k for k in fitted if k not in pool]
    if untested:
        why += f"; not cross-validated (no fold could predict 2 held-out archs), so not picked: {', '.join(untested)}"
    passed = [f"{k} (score {m['score']:.3f}, space coverage {m['space_coverage']:.3f})" for k, m in pool.items()
              if m["space_coverage"] < best_cov - 1e-12 and m["score"] > fitted[chosen]["score"]]
    if passed:
        why += f"; passed over, because they raise on ops of the space: {', '.join(passed)}"
    if not tested:
        why += "; no candidate could be cross-validated"
    return why
