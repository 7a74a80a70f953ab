"""A target-only latency model for a handful of measurements, and the check whether other devices explain them.

Few-shot transfer (``transfer.py``) regresses a new device's log latency on other devices' latencies. That only
works when some positive mix of the sources ranks like the target; a device of a hardware family absent from
the priors (an accelerator unlike every source, another runtime) can follow another op-cost pattern, and the
transfer model then trusts sources that do not resemble it (issue 24, gap 3).

``graph_cost_features``: per arch, a few physical costs of the network it executes, computed from the space's
kernel view (no measurement of any device): total MMACs, total output MB written (memory traffic), number of
kernels launched (each under both executed-graph hypotheses: pruned, i.e. dead edges dropped, and full), and
the conv depth (most convolutions on one input-output path of the cell). ``CostModel``: log latency as a
non-negative combination of the standardized costs (Huber, non-negative least squares), so more of any cost
never predicts less time: a monotone fit with at most 7 weights that ten cells can pin down.

``prior_check``: leave-one-out on the target cells of both models (each refitted without the held-out cell),
compared cell by cell: d_i = |transfer LOO log error_i| - |target-only LOO log error_i|. The transfer model (the
default: other devices explain devices of their families, Spearman 0.95 on ten cells) is kept unless the
target-only model is better by a one-sided paired t-test at the 5% level (mean d / (sd d / sqrt n) above the
t quantile with n - 1 degrees of freedom: 1.83 for ten cells). The level is the textbook one, fixed before any
figure was seen; nothing was tuned on held-out devices (docs/predictors.md says how the rule was chosen: a
plain "lower LOO error wins" fell back on 4 of 30 leave-one-device-out runs whose sources were fine).
"""

from __future__ import annotations

import numpy as np

from ..spaces.nb201 import NB201Space

COST_NAMES = ("pruned:mmacs", "pruned:mbytes", "pruned:kernels", "full:mmacs", "full:mbytes", "full:kernels",
              "conv_depth")
LEVEL = 0.05  # one-sided paired t-test level of the prior check (textbook, fixed before any figure)
MIN_CHECK = 6  # fewer target cells: leave-one-out cannot tell the models apart; the transfer model is kept


def supports_costs(featurizer) -> bool:
    return bool(getattr(featurizer, "supports_kernels", False)) and featurizer.space.name == "nb201"


def _conv_depth(genes) -> int:
    """Most convolutions on one live input-output path of an nb201 cell (edges: 0->1, 0->2, 1->2, 0->3, 1->3, 2->3)."""
    edges = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
    live = NB201Space.live_edges(tuple(genes))
    depth = {0: 0}
    for node in (1, 2, 3):
        best = [depth[s] + (1 if g in (2, 3) else 0) for (s, t), g, ok in zip(edges, genes, live)
                if t == node and ok and g != 0 and s in depth]
        if best:
            depth[node] = max(best)
    return depth.get(3, 0)


def graph_cost_features(featurizer, archs) -> np.ndarray:
    """(n, len(COST_NAMES)) physical costs of each arch (module doc); the space must have a kernel view."""
    cols = []
    for graph in ("pruned", "full"):
        K = featurizer.kernels(archs, graph)
        names = featurizer.kernel_names(graph)
        for q in (":mmacs", ":mbytes", ":count"):
            cols.append(K[:, [i for i, n in enumerate(names) if n.endswith(q)]].sum(1))
    cols.append(np.array([_conv_depth(a.genes) for a in archs], float))
    return np.stack(cols, 1) if len(archs) else np.zeros((0, len(COST_NAMES)))


class CostModel:
    """log latency ~ b + sum_j w_j z_j, w >= 0, z the standardized costs (Huber NNLS); state in plain arrays."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> "CostModel":
        from .transfer import _nonneg_huber

        X = np.asarray(X, float)
        self.mean_ = X.mean(0)
        sd = X.std(0)
        self.scale_ = np.where(sd > 1e-12, sd, 1.0)
        self.coef_, self.intercept_, self.noise_ = _nonneg_huber((X - self.mean_) / self.scale_, np.log(y))
        return self

    def predict_log(self, X: np.ndarray) -> np.ndarray:
        return ((np.asarray(X, float) - self.mean_) / self.scale_) @ self.coef_ + self.intercept_

    def state(self, prefix: str = "cost_") -> dict:
        return {f"{prefix}mean": self.mean_, f"{prefix}scale": self.scale_, f"{prefix}coef": self.coef_,
                f"{prefix}intercept": np.array([self.intercept_]), f"{prefix}noise": np.array([self.noise_])}

    @classmethod
    def from_state(cls, z, prefix: str = "cost_") -> "CostModel":
        m = cls()
        m.mean_, m.scale_, m.coef_ = z[f"{prefix}mean"], z[f"{prefix}scale"], z[f"{prefix}coef"]
        m.intercept_, m.noise_ = float(z[f"{prefix}intercept"][0]), float(z[f"{prefix}noise"][0])
        return m


def loo_log_predictions(fit_predict, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Leave-one-out predicted log latency: ``fit_predict(X_train, y_train, X_test) -> log predictions``."""
    out = np.empty(len(y))
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        out[i] = fit_predict(X[keep], y[keep], X[i:i + 1])[0]
    return out


def _loo_summary(log_pred: np.ndarray, y: np.ndarray) -> dict:
    from .metrics import spearman_rho

    r = log_pred - np.log(y)
    rho = spearman_rho(y, np.exp(log_pred))
    return {"loo_log_rmse": float(np.sqrt(np.mean(r ** 2))), "loo_spearman": None if not np.isfinite(rho) else float(rho)}


def prior_check(transfer_fit_predict, X_src: np.ndarray, costs: np.ndarray, y: np.ndarray) -> dict:
    """Do the sources explain the target cells? Leave-one-out of the transfer model (``transfer_fit_predict`` on
    the source columns) against the target-only ``CostModel`` on the costs; ``use`` is "transfer" when the
    transfer model's LOO log RMSE is no larger, else "target-only". Returns the decision, the reason and both
    models' LOO figures (the uncertainty that goes with either answer)."""
    from scipy.stats import t as student_t

    lt = loo_log_predictions(transfer_fit_predict, X_src, y)
    lc = loo_log_predictions(lambda X, yy, Xt: CostModel().fit(X, yy).predict_log(Xt), costs, y)
    t, c = _loo_summary(lt, y), _loo_summary(lc, y)
    d = np.abs(lt - np.log(y)) - np.abs(lc - np.log(y))
    n = len(y)
    se = float(d.std(ddof=1)) / np.sqrt(n)
    tstat = float(d.mean() / se) if se > 1e-12 else (np.inf if d.mean() > 0 else 0.0)
    crit = float(student_t.ppf(1 - LEVEL, n - 1))
    use = "target-only" if tstat > crit else "transfer"
    errs = (f"leave-one-out log error {t['loo_log_rmse']:.3f} (transfer) vs {c['loo_log_rmse']:.3f} "
            f"(target-only graph costs), paired t {tstat:.2f}")
    if use == "transfer":
        reason = f"the other devices explain the {n} target cells as well as its own graph costs: {errs} <= {crit:.2f}"
    else:
        reason = (f"no mix of the other devices explains the {n} target cells: {errs} > {crit:.2f}; predicting from "
                  f"this device's own cells and graph costs (MMACs, memory traffic, kernels, conv depth), "
                  f"uncertainty from its leave-one-out error")
    return {"use": use, "reason": reason, "cells": int(n), "transfer": t, "target_only": c,
            "paired_t": tstat if np.isfinite(tstat) else None, "critical_t": crit,
            "rule": f"leave-one-out on the target cells, |log error| per cell: the target-only model only when it is "
                    f"better by a one-sided paired t-test at the {LEVEL:.0%} level (fixed a priori, not tuned)"}


__all__ = ["COST_NAMES", "CostModel", "graph_cost_features", "prior_check", "supports_costs", "MIN_CHECK"]
