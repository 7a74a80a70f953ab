"""A predictor with a fallback model for the ops it never saw, and the space coverage of a predictor.

With ten measurements of a new device, a ``lut`` or ``kernel`` model often cross-validates best but has never
seen some op / kernel the space can produce (``e3:skip_connect``, ``fill_zeros``): it must refuse such archs
(never a silent 0 ms). Another model can cover them: a ``transfer`` model when other devices are in the store
(``fallback="transfer"``), else the device's own ``lut`` (``fallback="lut"``: with 200 measured cells that
have a path, a kernel model never sees ``fill_zeros``, which only cells without an input-output path execute,
but the lut saw every (edge, op) token). ``FallbackPredictor`` answers with the primary model where it can and
with the fallback's estimate elsewhere, says so per arch (``provenance``: ``transfer(unseen op e3:skip_connect)``,
``lut(unseen op fill_zeros)``) and widens the uncertainty of those rows:
std = max(``inflate`` * fallback std, ``min_rel_std`` * mean). An arch neither model can answer still raises
``UnknownOpError``. The card says which share of ``space_probe`` each model answers.

``space_coverage(p, space)``: the fraction of a probe of the space (1,000 seeded archs plus one arch for every
op / kernel type the space can produce, see ``space_probe``) that ``p`` can predict, and the ops it lacks. ``auto`` uses it to prefer models that
cover the space.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import ArtifactError, LatencyPredictor, PredictorError, UnknownOpError

FALLBACKS = ("transfer", "lut")  # models that answer the archs the primary cannot
PROBE_MAX = 20000
PROBE_SAMPLES = 1000
_PROBES: dict = {}


def space_probe(space) -> list:
    """Archs to ask a predictor about: ``PROBE_SAMPLES`` seeded samples plus, for every unit a predictor must
    have seen (each (position, op) token and, with a kernel view, each kernel type under every executed-graph
    hypothesis), one arch of the space that has it (found among all archs when the space has at most
    ``PROBE_MAX``, else among 20,000 samples). Computed once per space and settings."""
    import json

    from .active import _cover_units
    from .features import featurizer_for

    key = (space.name, json.dumps(space.config(), sort_keys=True))
    if key not in _PROBES:
        rng = np.random.default_rng(0)
        if hasattr(space, "all_archs") and space.size() <= PROBE_MAX:
            every = list(space.all_archs())
        else:
            every = space.sample_distinct(PROBE_MAX, rng)
        units = _cover_units(featurizer_for(space), every)
        first = {int(np.argmax(units[:, j])) for j in range(units.shape[1]) if units[:, j].any()}
        picks = set(rng.choice(len(every), min(PROBE_SAMPLES, len(every)), replace=False).tolist()) | first
        _PROBES[key] = [every[i] for i in sorted(picks)]
    return _PROBES[key]


def space_coverage(p: LatencyPredictor, space=None) -> dict:
    """{"coverage": fraction of the probe the predictor can answer, "unseen": the ops it lacks (sorted),
    "probe": how many archs were probed}."""
    probe = space_probe(space if space is not None else p.space_)
    unseen = p.unseen_ops(probe)
    missing = sorted({u for u in unseen if u is not None})
    return {"coverage": float(np.mean([u is None for u in unseen])), "unseen": missing, "probe": len(probe)}


class FallbackPredictor(LatencyPredictor):
    kind = "fallback"

    def __init__(self, space=None, seed: int = 0, primary: str = "kernel", sources: dict | None = None,
                 n_boot: int | None = None, inflate: float = 2.0, min_rel_std: float = 0.10,
                 fallback: str = "transfer"):
        self.space = space
        self.seed = seed
        self.primary = primary
        self.sources = sources
        self.n_boot = n_boot
        self.inflate = inflate
        self.min_rel_std = min_rel_std
        self.fallback = fallback

    def _check_kinds(self):
        if self.primary in ("fallback", "auto", "transfer"):
            raise PredictorError(f"fallback: primary kind {self.primary!r} makes no sense; use lut, kernel or arch")
        if self.fallback not in FALLBACKS or self.fallback == self.primary:
            raise PredictorError(f"fallback: fallback kind {self.fallback!r} must be one of {', '.join(FALLBACKS)} "
                                 f"and differ from the primary {self.primary!r}")
        if self.fallback == "transfer" and not self.sources:
            raise PredictorError("fallback needs source predictors of other devices for the transfer estimate")

    def _fit(self, archs, y):
        from . import create_predictor

        self._check_kinds()
        boot = {} if self.n_boot is None else {"n_boot": self.n_boot}
        self.primary_ = create_predictor(self.primary, space=self.space_, seed=self.seed,
                                         **(boot if self.primary != "arch" else {})).fit(archs, y)
        extra = {"sources": self.sources} if self.fallback == "transfer" else {}
        self.fallback_ = create_predictor(self.fallback, space=self.space_, seed=self.seed, **extra,
                                          **boot).fit(archs, y)

    @classmethod
    def compose(cls, primary: LatencyPredictor, fallback: LatencyPredictor, **params) -> "FallbackPredictor":
        """A fitted FallbackPredictor from two models already fitted on the same data (``auto`` composes the
        candidates it cross-validated, without fitting them again)."""
        if primary.data_hash_ != fallback.data_hash_:
            raise PredictorError("fallback: the primary and fallback models were fitted on different data")
        p = cls(space=primary.space_, primary=primary.kind, fallback=fallback.kind,
                sources=getattr(fallback, "sources_", None), **params)
        p._check_kinds()
        p.space_, p.featurizer_ = primary.space_, primary.featurizer_
        p.n_train_, p.data_hash_, p.info_ = primary.n_train_, primary.data_hash_, {}
        p.primary_, p.fallback_ = primary, fallback
        p.fitted_ = True
        return p

    def provenance(self, archs) -> list:
        """Per arch: None when the primary model answers, else ``<fallback kind>(unseen op NAME)``."""
        return [None if u is None else f"{self.fallback_.kind}(unseen op {u})"
                for u in self.primary_.unseen_ops(archs)]

    def answered_share(self) -> dict:
        """The share of ``space_probe`` each model answers: {primary kind, fallback kind, "none", "probe"}."""
        probe = space_probe(self.space_)
        mine = np.array([u is None for u in self.primary_.unseen_ops(probe)])
        rest = [a for a, k in zip(probe, mine) if not k]
        fb = np.array([u is None for u in self.fallback_.unseen_ops(rest)], dtype=bool)
        n = len(probe)
        return {self.primary_.kind: float(mine.sum() / n), self.fallback_.kind: float(fb.sum() / n),
                "none": float((len(rest) - fb.sum()) / n), "probe": n}

    def _unseen(self, archs):
        mine = self.primary_.unseen_ops(archs)
        todo = [i for i, u in enumerate(mine) if u is not None]
        if todo:
            fb = self.fallback_.unseen_ops([archs[i] for i in todo])
            for i, u in zip(todo, fb):
                mine[i] = u
        return mine

    def _predict(self, archs):
        unseen = self.primary_.unseen_ops(archs)
        ok = np.array([u is None for u in unseen])
        mean, std = np.empty(len(archs)), np.empty(len(archs))
        if ok.any():
            mean[ok], std[ok] = self.primary_.predict([a for a, k in zip(archs, ok) if k])
        if (~ok).any():
            m, s = self.fallback_.predict([a for a, k in zip(archs, ok) if not k])
            mean[~ok] = m
            std[~ok] = np.maximum(self.inflate * s, self.min_rel_std * m)
        return mean, std

    def _card_extra(self):
        cov = space_coverage(self.primary_, self.space_)
        fb = self.fallback_.kind
        return {"primary": self.primary_.kind, "fallback": fb,
                "primary_space_coverage": cov["coverage"], "primary_unseen_ops": cov["unseen"],
                "answered_share": self.answered_share(),
                "method": f"{self.primary_.kind} where it saw every op; else the {fb} model's estimate "
                          f"(provenance {fb}(unseen op ...), std = max({self.inflate} x its std, "
                          f"{self.min_rel_std} x mean)); answered_share: the share of the space probe "
                          f"(space_probe) each model answers"}

    def _save(self, d: Path):
        self.primary_.save(d / "primary")
        self.fallback_.save(d / "fallback")
        return ["primary/card.json", "fallback/card.json"]

    def _load(self, d: Path, card):
        self.primary_ = LatencyPredictor.load(d / "primary", space=self.space_)
        self.fallback_ = LatencyPredictor.load(d / "fallback", space=self.space_)
        want = card.get("fallback", "transfer")
        if self.fallback_.kind != want or self.primary_.kind != card.get("primary"):
            raise ArtifactError(f"{d}: fallback artifact holds {self.primary_.kind} + {self.fallback_.kind}, "
                                f"card says {card.get('primary')} + {want}")
        self.fallback = want
        self.sources = getattr(self.fallback_, "sources_", None)


def row_provenance(p: LatencyPredictor, archs) -> list:
    """Per arch: a note on how ``p`` answered it differently from its own model (None when it did not)."""
    fn = getattr(p, "provenance", None)
    return fn(archs) if fn is not None else [None] * len(archs)


__all__ = ["FallbackPredictor", "space_coverage", "space_probe", "row_provenance", "UnknownOpError"]
