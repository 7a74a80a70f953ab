"""Learned predictor on the architecture encoding: a LightGBM ensemble (default) or an MLP ensemble.

Features (``Featurizer.arch_features``; nb201): per-edge one-hot (30), op counts, counts of ops on live
(input-to-output) paths, node fan-ins, the kernel counts of both executed-graph hypotheses and the static
costs (MMACs, M params) the space counts from its built network (cached; see ``features.nb201_static_table``).
The target is log latency. With ``base="kernel"`` (default) the trees learn the residual of a kernel-level
model (``KernelPredictor``), which carries the additive structure the trees would need many samples to learn.

Uncertainty: ``n_models`` members trained with different seeds on bagged rows and columns; std combines the
spread of their log predictions with the robust scale (1.4826 MAD) of the in-sample log residuals (at least
the kernel base's relative residual scale, as in-sample tree residuals run small), in ms. LightGBM boosters are saved as LightGBM text, MLP weights as ``.npz``.
An op (one-hot column) never seen in training raises ``UnknownOpError``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .base import ArtifactError, LatencyPredictor, PredictorError, load_npz, read_model_json, read_model_text, save_npz

MODELS = ("gbdt", "mlp")
BASES = ("kernel", "none")


class ArchPredictor(LatencyPredictor):
    kind = "arch"

    def __init__(self, space=None, seed: int = 0, model: str = "gbdt", base: str = "kernel", n_models: int = 5,
                 n_estimators: int = 300, learning_rate: float = 0.05, num_leaves: int = 15,
                 hidden: tuple = (64, 64)):
        self.space = space
        self.seed = seed
        self.model = model
        self.base = base
        self.n_models = n_models
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.hidden = hidden

    def min_samples(self) -> int:
        return 8

    # -- helpers --------------------------------------------------------------------------------------
    def _features(self, archs):
        X = self.featurizer_.arch_features(archs)
        return X

    def _base_log(self, archs) -> np.ndarray:
        if self.base_model_ is None:
            return np.zeros(len(archs))
        mean, _ = self.base_model_.predict(archs)
        return np.log(np.maximum(mean, self.floor_ms_))

    def _onehot_cols(self):
        names = self.featurizer_.arch_feature_names()
        return np.array([n.startswith("onehot:") for n in names]), names

    def _fit(self, archs, y):
        if self.model not in MODELS:
            raise PredictorError(f"unknown arch model {self.model!r}; known: {', '.join(MODELS)}")
        if self.base not in BASES:
            raise PredictorError(f"unknown base {self.base!r}; known: {', '.join(BASES)}")
        self.floor_ms_ = float(np.min(y) * 0.25)
        self.base_model_ = None
        if self.base == "kernel" and self.featurizer_.supports_kernels:
            from .kernel import KernelPredictor

            self.base_model_ = KernelPredictor(self.space_, seed=self.seed, n_boot=0).fit(archs, y)
        X = self._features(archs)
        onehot, _ = self._onehot_cols()
        self.seen_ = (X != 0).any(0) | ~onehot
        r = np.log(y) - self._base_log(archs)
        rng = np.random.default_rng(self.seed)
        seeds = [int(s) for s in rng.integers(0, 2**31 - 1, self.n_models)]
        if self.model == "gbdt":
            self.boosters_ = [self._fit_gbdt(X, r, s) for s in seeds]
        else:
            self._fit_mlp(X, r, seeds)
        # residual scale in log space (robust: 1.4826 * MAD of the in-sample residuals) joins the ensemble spread
        res = r - self._member_preds(X).mean(1)
        self.noise_log_ = float(1.4826 * np.median(np.abs(res - np.median(res))))
        if self.base_model_ is not None:  # in-sample tree residuals run small; the linear base's are honest
            self.noise_log_ = max(self.noise_log_, self.base_model_.model_.noise_ / float(np.median(y)))

    def _fit_gbdt(self, X, r, seed):
        import lightgbm as lgb

        n = len(r)
        params = {"objective": "huber", "alpha": 0.1, "learning_rate": self.learning_rate,
                  "num_leaves": self.num_leaves, "min_data_in_leaf": max(2, min(20, n // 20)),
                  "min_data_in_bin": 1, "bagging_fraction": 0.8, "bagging_freq": 1, "feature_fraction": 0.8,
                  "lambda_l2": 1.0, "seed": seed, "deterministic": True, "num_threads": 1, "verbose": -1}
        ds = lgb.Dataset(X, r, params={"verbose": -1, "min_data_in_bin": 1})
        return lgb.train(params, ds, num_boost_round=self.n_estimators)

    def _fit_mlp(self, X, r, seeds):
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor

        self.x_mean_, sd = X.mean(0), X.std(0)
        self.x_scale_ = np.where(sd > 1e-12, sd, 1.0)
        self.y_mean_, self.y_scale_ = float(r.mean()), float(r.std() or 1.0)
        Z = (X - self.x_mean_) / self.x_scale_
        t = (r - self.y_mean_) / self.y_scale_
        self.mlps_ = []
        for s in seeds:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                m = MLPRegressor(hidden_layer_sizes=tuple(self.hidden), alpha=1e-2, max_iter=800,
                                 early_stopping=len(r) >= 50, random_state=s).fit(Z, t)
            self.mlps_.append(([w.copy() for w in m.coefs_], [b.copy() for b in m.intercepts_]))

    def _member_preds(self, X) -> np.ndarray:
        if self.model == "gbdt":
            return np.stack([b.predict(X) for b in self.boosters_], 1)
        Z = (X - self.x_mean_) / self.x_scale_
        out = []
        for W, B in self.mlps_:
            h = Z
            for i, (w, b) in enumerate(zip(W, B)):
                h = h @ w + b
                if i < len(W) - 1:
                    h = np.maximum(h, 0.0)
            out.append(h.ravel() * self.y_scale_ + self.y_mean_)
        return np.stack(out, 1)

    def _unseen(self, archs):
        _, names = self._onehot_cols()
        mine = self._unseen_names(self._features(archs), self.seen_, [n.removeprefix("onehot:") for n in names])
        base = self.base_model_.unseen_ops(archs) if self.base_model_ is not None else [None] * len(archs)
        return [m if m is not None else b for m, b in zip(mine, base)]

    def _predict(self, archs):
        X = self._features(archs)
        _, names = self._onehot_cols()
        self._check_seen(X, self.seen_, [n.removeprefix("onehot:") for n in names], archs, self.space_, "op")
        logp = self._member_preds(X) + self._base_log(archs)[:, None]
        mean = np.exp(logp.mean(1))
        return mean, mean * np.sqrt(logp.var(1) + self.noise_log_ ** 2)

    def _card_extra(self):
        return {"method": f"{self.model} ensemble of {self.n_models} on log latency"
                          + (" residual of a kernel-level model" if self.base_model_ is not None else "")}

    # -- artifacts --------------------------------------------------------------------------------------
    def _save(self, d: Path):
        files = []
        meta = {"model": self.model, "floor_ms": self.floor_ms_, "n_members": self.n_models, "noise_log": self.noise_log_,
                "has_base": self.base_model_ is not None}
        arrays = {"seen": self.seen_}
        if self.model == "gbdt":
            for i, b in enumerate(self.boosters_):
                (d / f"gbdt_{i}.txt").write_text(b.model_to_string())
                files.append(f"gbdt_{i}.txt")
        else:
            arrays.update({"x_mean": self.x_mean_, "x_scale": self.x_scale_,
                           "y": np.array([self.y_mean_, self.y_scale_])})
            for i, (W, B) in enumerate(self.mlps_):
                meta.setdefault("layers", len(W))
                for j, (w, b) in enumerate(zip(W, B)):
                    arrays[f"m{i}_W{j}"] = w
                    arrays[f"m{i}_b{j}"] = b
        save_npz(d / "arrays.npz", arrays)
        (d / "arch.json").write_text(json.dumps(meta, indent=1))
        files += ["arrays.npz", "arch.json"]
        if self.base_model_ is not None:
            self.base_model_.save(d / "base")
            files.append("base/card.json")
        return files

    def _load(self, d: Path, card):
        meta = read_model_json(d / "arch.json")
        z = load_npz(d / "arrays.npz")
        self.seen_ = z["seen"].astype(bool)
        if len(self.seen_) != len(self.featurizer_.arch_feature_names()):
            raise ArtifactError(f"{d}: {len(self.seen_)} features, this hwnas computes "
                                f"{len(self.featurizer_.arch_feature_names())}")
        self.model = meta["model"]
        self.floor_ms_ = float(meta["floor_ms"])
        self.noise_log_ = float(meta["noise_log"])
        self.base_model_ = None
        if meta.get("has_base"):
            from .kernel import KernelPredictor

            self.base_model_ = KernelPredictor.load(d / "base", space=self.space_)
        if self.model == "gbdt":
            import lightgbm as lgb

            self.boosters_ = []
            for i in range(int(meta["n_members"])):
                try:
                    self.boosters_.append(lgb.Booster(model_str=read_model_text(d / f"gbdt_{i}.txt")))
                except (OSError, lgb.basic.LightGBMError) as exc:
                    raise ArtifactError(f"{d}: LightGBM model {i} is unreadable ({exc})") from None
        elif self.model == "mlp":
            self.x_mean_, self.x_scale_ = z["x_mean"], z["x_scale"]
            self.y_mean_, self.y_scale_ = float(z["y"][0]), float(z["y"][1])
            self.mlps_ = [([z[f"m{i}_W{j}"] for j in range(meta["layers"])],
                           [z[f"m{i}_b{j}"] for j in range(meta["layers"])]) for i in range(int(meta["n_members"]))]
        else:
            raise ArtifactError(f"{d}: unknown arch model {self.model!r}")
