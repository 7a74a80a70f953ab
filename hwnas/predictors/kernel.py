"""Kernel-level predictor (nn-Meter style): latency = sum over the kernels the runtime executes.

Kernel detection (``features.cell_kernels`` for nb201): every executed edge becomes one kernel -- a fused
Conv+BN (1x1 or 3x3), an AvgPool, an Identity, a Zero (multiply by 0, only when 'none' edges are executed) --
plus one ReLU per distinct source node feeding convolutions (runtimes share it), m-1 Add kernels for a node
with m inputs and a Fill for an output node nobody writes. Which graph the runtime executes is a
device/runtime property: ``graph="pruned"`` (converters drop dead branches, as in the int8 TFLite models of
BRP-NAS' LatBench), ``"full"`` (every op runs, as in the NB201 reference PyTorch code used by HELP) or
``"auto"`` (5-fold cross-validation picks; the card says which).

Each kernel type has its own regressor on its configuration: latency_t(config) = a_t + b_t * MMACs +
c_t * output MB, summed over the network's kernels; all regressors are fitted jointly by robust (Huber) ridge
least squares on whole-network latencies, which is linear in the per-type sums (count, MMACs, MB). A kernel
type that never occurred in training raises ``UnknownOpError`` (never 0 ms). The network skeleton (stem,
reduction blocks, head) is the intercept.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .huber_ridge import RobustLinear, kfold_indices
from .base import ArtifactError, LatencyPredictor, load_npz, read_model_json, save_npz
from .features import GRAPHS, FeatureError


class KernelPredictor(LatencyPredictor):
    kind = "kernel"

    def __init__(self, space=None, seed: int = 0, graph: str = "auto", alpha: float | None = None, n_boot: int = 16):
        self.space = space
        self.seed = seed
        self.graph = graph
        self.alpha = alpha
        self.n_boot = n_boot

    def _cv_error(self, X, y, rng) -> float:
        n = len(y)
        if n > 3000:
            sub = rng.choice(n, 3000, replace=False)
            X, y, n = X[sub], y[sub], 3000
        folds = kfold_indices(n, min(5, n), rng)
        errs = []
        for f in folds:
            tr = np.setdiff1d(np.arange(n), f)
            m = RobustLinear(self.alpha if self.alpha is not None else 1e-3, n_boot=0).fit(X[tr], y[tr], rng)
            errs.append(np.abs(m.predict(X[f])[0] - y[f]) / y[f])
        return float(np.median(np.concatenate(errs)))

    def _fit(self, archs, y):
        if self.graph not in (*GRAPHS, "auto"):
            raise FeatureError(f"unknown graph {self.graph!r}; known: auto, {', '.join(GRAPHS)}")
        rng = np.random.default_rng(self.seed)
        Xs = {g: self.featurizer_.kernels(archs, g) for g in (GRAPHS if self.graph == "auto" else (self.graph,))}
        if self.graph == "auto" and len(y) >= 8:
            self.cv_errors_ = {g: self._cv_error(X, y, np.random.default_rng(self.seed)) for g, X in Xs.items()}
            self.graph_ = min(self.cv_errors_, key=self.cv_errors_.get)
        else:
            self.cv_errors_ = {}
            self.graph_ = "pruned" if self.graph == "auto" else self.graph
        X = Xs[self.graph_]
        self.names_ = self.featurizer_.kernel_names(self.graph_)
        self.seen_ = (X != 0).any(0)
        self.model_ = RobustLinear(self.alpha, n_boot=self.n_boot).fit(X, y, rng)

    def _unseen(self, archs):
        return self._unseen_names(self.featurizer_.kernels(archs, self.graph_), self.seen_, self.names_)

    def _predict(self, archs):
        X = self.featurizer_.kernels(archs, self.graph_)
        self._check_seen(X, self.seen_, self.names_, archs, self.space_, "kernel")
        return self.model_.predict(X)

    def _card_extra(self):
        return {"graph": self.graph_, "graph_cv_median_ape": self.cv_errors_,
                "method": "kernel detection on the executed graph; per-kernel-type linear regressors on "
                          "(count, MMACs, output MB) fitted jointly by Huber ridge on whole-network latencies"}

    def _save(self, d: Path):
        save_npz(d / "model.npz", {**self.model_.state(), "seen": self.seen_})
        (d / "kernels.json").write_text(json.dumps({"graph": self.graph_, "features": self.names_,
                                                    "cv_median_ape": self.cv_errors_}, indent=1))
        return ["model.npz", "kernels.json"]

    def _load(self, d: Path, card):
        meta = read_model_json(d / "kernels.json")
        if meta.get("graph") not in GRAPHS:
            raise ArtifactError(f"{d}: unknown executed graph {meta.get('graph')!r}")
        self.graph_ = meta["graph"]
        self.cv_errors_ = meta.get("cv_median_ape", {})
        self.names_ = self.featurizer_.kernel_names(self.graph_)
        if meta.get("features") != self.names_:
            raise ArtifactError(f"{d}: kernel features {meta.get('features')} differ from this hwnas' {self.names_}")
        z = load_npz(d / "model.npz")
        self.model_ = RobustLinear.from_state(z)
        self.seen_ = z["seen"].astype(bool)
