"""Lookup-table predictor: latency = base + the sum of per-(position, op) entries (FBNet / ProxylessNAS / OFA).

The classic LUT is filled from op-level profiles. Whole-network measurements are what the store usually has
(and all that public benchmarks publish), so here the table is *fitted*: one entry per (position, op) token,
e.g. nb201 edge 3 running nor_conv_3x3 in every cell of the network, estimated jointly by robust (Huber)
ridge least squares from whole-network latencies. Entries are therefore relative: 'none' at a position is a
table entry like any other, and the network skeleton (stem, reduction blocks, head) is in ``base_ms``.
A (position, op) never seen in training raises ``UnknownOpError``; it is never 0 ms.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .huber_ridge import RobustLinear
from .base import LatencyPredictor, load_npz, save_npz


class LUTPredictor(LatencyPredictor):
    kind = "lut"

    def __init__(self, space=None, seed: int = 0, alpha: float | None = None, n_boot: int = 16):
        self.space = space
        self.seed = seed
        self.alpha = alpha
        self.n_boot = n_boot

    def _fit(self, archs, y):
        X = self.featurizer_.tokens(archs)
        self.names_ = self.featurizer_.token_names()
        self.seen_ = (X != 0).any(0)
        self.model_ = RobustLinear(self.alpha, n_boot=self.n_boot).fit(X, y, np.random.default_rng(self.seed))

    def _unseen(self, archs):
        return self._unseen_names(self.featurizer_.tokens(archs), self.seen_, self.names_)

    def _predict(self, archs):
        X = self.featurizer_.tokens(archs)
        self._check_seen(X, self.seen_, self.names_, archs, self.space_, "op")
        mean, std = self.model_.predict(X)
        return mean, std

    def table(self) -> dict[str, float]:
        """The fitted lookup table in ms per token (unscaled), plus ``base_ms``."""
        m = self.model_
        w = m.coef_[0] / m.scale_
        out = {"base_ms": float(m.intercept_[0] - np.sum(w * m.mean_))}
        out.update({n: float(v) for n, v, s in zip(self.names_, w, self.seen_) if s})
        return out

    def _card_extra(self):
        return {"method": "per-(position, op) table fitted by Huber ridge least squares on whole-network "
                          "latencies (no op-level profiles)", "alpha": float(self.model_.alpha_)}

    def _save(self, d: Path):
        save_npz(d / "model.npz", {**self.model_.state(), "seen": self.seen_})
        (d / "table.json").write_text(json.dumps({"tokens": self.names_, "table_ms": self.table()}, indent=1))
        return ["model.npz", "table.json"]

    def _load(self, d: Path, card):
        z = load_npz(d / "model.npz")
        self.model_ = RobustLinear.from_state(z)
        self.seen_ = z["seen"].astype(bool)
        self.names_ = self.featurizer_.token_names()
        if len(self.seen_) != len(self.names_):
            from .base import ArtifactError

            raise ArtifactError(f"{d}: table has {len(self.seen_)} tokens, this space has {len(self.names_)}")
