"""A robust (Huber) ridge regression with bootstrap uncertainty, stored as plain arrays (npz-safe)."""

from __future__ import annotations


import numpy as np

ALPHAS = (1e-6, 1e-4, 1e-3, 1e-2, 1e-1)


def _huber(X, y, alpha, epsilon, iters: int = 30):
    """Huber-loss ridge by iteratively reweighted least squares: (coef, intercept, residual scale).

    The penalty ``alpha`` is per sample (alpha * n * |w|^2); the intercept is not penalised. The residual
    scale is re-estimated each iteration as 1.4826 * median |residual| (MAD).
    """
    n, d = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    P = np.diag(np.r_[np.full(d, alpha * n), 0.0])
    wts = np.ones(n)
    beta = np.zeros(d + 1)
    floor = 1e-9 * (np.mean(np.abs(y)) + 1e-12)
    scale = floor
    for _ in range(iters):
        Aw = A * wts[:, None]
        new = np.linalg.solve(Aw.T @ A + P + 1e-10 * np.eye(d + 1), Aw.T @ y)
        r = y - A @ new
        scale = max(1.4826 * float(np.median(np.abs(r))), floor)
        wts = np.minimum(1.0, epsilon * scale / np.maximum(np.abs(r), 1e-300))
        done = np.max(np.abs(new - beta)) <= 1e-8 * (1 + np.max(np.abs(new)))
        beta = new
        if done:
            break
    return beta[:d].copy(), float(beta[d]), float(scale)


def kfold_indices(n: int, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    perm = rng.permutation(n)
    return [perm[i::k] for i in range(k)]


class RobustLinear:
    """y ~ X w + b with Huber loss and an L2 penalty on standardized columns.

    ``alpha`` None: picked from ``ALPHAS`` by k-fold CV (median absolute relative error). ``n_boot`` refits on
    bootstrap resamples give the spread of predictions (epistemic uncertainty); the Huber scale of the
    residuals is added as noise: std = sqrt(var_bootstrap + scale^2).
    """

    def __init__(self, alpha: float | None = None, epsilon: float = 1.35, n_boot: int = 16, relative: bool = True):
        self.alpha, self.epsilon, self.n_boot, self.relative = alpha, epsilon, n_boot, relative

    def _cv_alpha(self, Z, y, rng):
        n = len(y)
        if n < 8:
            return 1e-2
        if n > 3000:  # the choice barely depends on n beyond this; keep it cheap
            sub = rng.choice(n, 3000, replace=False)
            Z, y, n = Z[sub], y[sub], 3000
        folds = kfold_indices(n, min(5, n), rng)
        best, best_err = None, np.inf
        for a in ALPHAS:
            errs = []
            for f in folds:
                tr = np.setdiff1d(np.arange(n), f)
                w, b, _ = _huber(Z[tr], y[tr], a, self.epsilon)
                pred = Z[f] @ w + b
                errs.append(np.abs(pred - y[f]) / (np.abs(y[f]) if self.relative else 1.0))
            err = float(np.median(np.concatenate(errs)))
            if err < best_err - 1e-12:
                best, best_err = a, err
        return best

    def fit(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> "RobustLinear":
        X = np.asarray(X, float)
        y = np.asarray(y, float)
        self.mean_ = X.mean(0)
        sd = X.std(0)
        self.scale_ = np.where(sd > 1e-12, sd, 1.0)
        Z = (X - self.mean_) / self.scale_
        self.alpha_ = self.alpha if self.alpha is not None else self._cv_alpha(Z, y, rng)
        w, b, s = _huber(Z, y, self.alpha_, self.epsilon)
        coefs, inters = [w], [b]
        for _ in range(self.n_boot if len(y) >= 4 else 0):
            idx = rng.integers(0, len(y), len(y))
            wb, bb, _ = _huber(Z[idx], y[idx], self.alpha_, self.epsilon)
            coefs.append(wb)
            inters.append(bb)
        self.coef_ = np.array(coefs)
        self.intercept_ = np.array(inters)
        self.noise_ = float(s)
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Z = (np.asarray(X, float) - self.mean_) / self.scale_
        all_pred = Z @ self.coef_.T + self.intercept_
        mean = all_pred[:, 0]
        boot_var = all_pred[:, 1:].var(1) if all_pred.shape[1] > 1 else np.zeros(len(mean))
        return mean, np.sqrt(boot_var + self.noise_ ** 2)

    # -- npz-safe state --------------------------------------------------------------------------------------
    def state(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {prefix + "mean": self.mean_, prefix + "scale": self.scale_, prefix + "coef": self.coef_,
                prefix + "intercept": self.intercept_, prefix + "noise": np.array([self.noise_]),
                prefix + "alpha": np.array([self.alpha_])}

    @classmethod
    def from_state(cls, arrays, prefix: str = "") -> "RobustLinear":
        m = cls()
        m.mean_ = np.asarray(arrays[prefix + "mean"], float)
        m.scale_ = np.asarray(arrays[prefix + "scale"], float)
        m.coef_ = np.asarray(arrays[prefix + "coef"], float)
        m.intercept_ = np.asarray(arrays[prefix + "intercept"], float)
        m.noise_ = float(arrays[prefix + "noise"][0])
        m.alpha_ = float(arrays[prefix + "alpha"][0])
        return m
