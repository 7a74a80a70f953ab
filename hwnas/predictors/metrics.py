"""Accuracy metrics of latency predictors (nn-Meter's headline: the fraction within +-10%)."""

from __future__ import annotations

import numpy as np

from ..errors import HwnasError

METRIC_NAMES = ("within_5pct", "within_10pct", "mape_pct", "rmse_ms", "kendall_tau", "spearman_rho")


def _arrays(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_pred, dtype=float).ravel()
    if t.shape != p.shape:
        raise HwnasError(f"metrics: {t.size} true values but {p.size} predictions")
    if t.size == 0:
        raise HwnasError("metrics: no values to score")
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise HwnasError("metrics: true latencies must be positive finite numbers")
    return t, p


def within(y_true, y_pred, tolerance: float) -> float:
    """Fraction of predictions whose relative error |pred - true| / true is at most ``tolerance``."""
    t, p = _arrays(y_true, y_pred)
    return float(np.mean(np.abs(p - t) / t <= tolerance + 1e-12))


def mape(y_true, y_pred) -> float:
    """Mean absolute percentage error, in percent."""
    t, p = _arrays(y_true, y_pred)
    return float(np.mean(np.abs(p - t) / t) * 100.0)


def rmse(y_true, y_pred) -> float:
    t, p = _arrays(y_true, y_pred)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def kendall_tau(y_true, y_pred) -> float:
    """Kendall's tau-b (ties handled); nan when either side is constant."""
    from scipy.stats import kendalltau

    t, p = _arrays(y_true, y_pred)
    if t.size < 2 or np.ptp(t) == 0 or np.ptp(p) == 0:
        return float("nan")
    return float(kendalltau(t, p).statistic)


def spearman_rho(y_true, y_pred) -> float:
    from scipy.stats import spearmanr

    t, p = _arrays(y_true, y_pred)
    if t.size < 2 or np.ptp(t) == 0 or np.ptp(p) == 0:
        return float("nan")
    return float(spearmanr(t, p).statistic)


def score(y_true, y_pred) -> dict[str, float]:
    """All metrics as a dict (keys: METRIC_NAMES)."""
    return {
        "within_5pct": within(y_true, y_pred, 0.05),
        "within_10pct": within(y_true, y_pred, 0.10),
        "mape_pct": mape(y_true, y_pred),
        "rmse_ms": rmse(y_true, y_pred),
        "kendall_tau": kendall_tau(y_true, y_pred),
        "spearman_rho": spearman_rho(y_true, y_pred),
    }


def format_metrics(m: dict[str, float]) -> str:
    return (f"within +-5%: {m['within_5pct']:.3f}  within +-10%: {m['within_10pct']:.3f}  "
            f"MAPE: {m['mape_pct']:.2f}%  RMSE: {m['rmse_ms']:.3f} ms  "
            f"Kendall tau: {m['kendall_tau']:.3f}  Spearman rho: {m['spearman_rho']:.3f}")


__all__ = ["within", "mape", "rmse", "kendall_tau", "spearman_rho", "score", "format_metrics", "METRIC_NAMES"]


def out_of_fold(n: int, folds, fit, predict) -> np.ndarray:
    """Out-of-fold predictions of ``n`` rows: for each fold (an index array) ``fit(train_index)`` makes a model
    and ``predict(model, fold_index)`` answers the fold's rows (NaN where the model cannot: an op its training
    folds never saw). One loop for every predictor's cross-validation."""
    oof = np.full(n, np.nan)
    for f in folds:
        model = fit(np.setdiff1d(np.arange(n), f))
        oof[f] = predict(model, f)
    return oof


def each_or_nan(predict_one, index, cannot: tuple) -> np.ndarray:
    """``predict_one(i)`` for each ``i`` of ``index``; NaN where it raises one of ``cannot``."""
    out = np.full(len(index), np.nan)
    for j, i in enumerate(index):
        try:
            out[j] = predict_one(i)
        except cannot:
            pass
    return out


def oof_score(y, oof, folds: int) -> dict:
    """``score`` of the out-of-fold predictions that exist, with ``coverage`` (the share of rows some fold's
    model could predict) and the number of ``folds``."""
    y, oof = np.asarray(y, float), np.asarray(oof, float)
    ok = np.isfinite(oof)
    m = score(y[ok], oof[ok]) if ok.sum() >= 2 else {}
    m["coverage"] = float(ok.mean())
    m["folds"] = folds
    return m
