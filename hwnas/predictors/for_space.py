"""Which trained predictor answers a search's latency for a device and a space (``--latency DEV=predictor``).

Two kinds of artifact can: a space-specific one (``lut`` / ``kernel`` / ``arch`` / ``transfer`` / ``fallback``,
fitted on that space's measured archs, same space settings) and the device's ``graph-kernel`` predictor
(space-agnostic: per-kernel models from op-level profiles, any graph whose kernels it has seen). The choice:

1. no space-specific artifact with the space's settings -> the graph-kernel one (if the device has none either:
   the usual "no latency predictor" error);
2. the space-specific one cannot answer every arch of the space (``fallback.space_coverage`` < 1: an op it never
   saw, e.g. a lut fitted on 16 MobileNet subnets) -> the graph-kernel one: a search would stop at the first
   arch with that op;
3. both answer the whole space -> the higher cross-validated within +-10% (each card's ``cv_metrics``);
   a tie, or a graph-kernel card without them, keeps the space-specific one.

The graph-kernel predictor reads each candidate's kernels from the space's layer description
(``space_kernels``: no export) where the space has one, else from the exported graph. Its provenance names the
model: ``graph-kernel <training data hash>``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class GraphKernelForSpace:
    """A ``graph-kernel`` predictor answering one space's archs (``predict(archs) -> (mean, std)``)."""

    kind = "graph-kernel"

    def __init__(self, predictor, space, directory: Path | None = None, why: str = ""):
        self.predictor, self.space_, self.directory, self.why = predictor, space, directory, why
        self.exported = 0  # archs whose kernels came from an exported graph (no layer description)

    @property
    def label(self) -> str:
        return f"graph-kernel {self.predictor.data_hash_}"

    @property
    def card(self) -> dict:
        return {**self.predictor.card, "name": self.label}

    def predict(self, archs) -> tuple[np.ndarray, np.ndarray]:
        archs = list(archs)
        kernels, exported = self.predictor.arch_kernels(self.space_, archs)
        self.exported += exported
        return self.predictor.predict_many(kernels, lambda i: self.space_.to_string(archs[i]))


def _graph_kernel(device: str, root) -> tuple[object, Path] | None:
    """The device's newest graph-kernel artifact (ONNX Runtime graphs preferred), or None."""
    from . import list_artifacts
    from .graph import KIND, GraphKernelPredictor

    arts = [a for a in list_artifacts(device, "graph", root) if a[1].get("kind") == KIND]
    if not arts:
        return None
    ort = [a for a in arts if (a[1].get("space_config") or {}).get("runtime", "onnxruntime") == "onnxruntime"]
    d = (ort or arts)[0][0]
    return GraphKernelPredictor.load(d), d


def _within10(card: dict) -> float | None:
    v = (card.get("cv_metrics") or {}).get("within_10pct")
    return float(v) if isinstance(v, (int, float)) and np.isfinite(v) else None


def predictor_for_space(device: str, space, root: Path | str | None = None):
    """The predictor that answers ``space``'s latency on ``device`` (module doc: the rules). Returns an object
    with ``predict(archs) -> (mean ms, std ms)`` and ``card``; a ``GraphKernelForSpace`` carries ``why``."""
    from . import PREDICTORS, LatencyPredictor, list_artifacts, load_predictor

    arts = [a for a in list_artifacts(device, space.name, root) if a[1].get("kind") in PREDICTORS]
    same = [a for a in arts if a[1].get("space_config") == space.config()]
    gk = _graph_kernel(device, root)
    if gk is None:
        if same:
            return LatencyPredictor.load(same[0][0], space=space)
        return load_predictor(device, space=space.name, root=root)  # as before: none raises
    pred, d = gk
    if not same:
        why = (f"no {space.name} predictor of these settings ({len(arts)} of others)" if arts
               else f"no {space.name} predictor")
        return GraphKernelForSpace(pred, space, d, why)
    specific = LatencyPredictor.load(same[0][0], space=space)
    from .fallback import space_coverage

    cov = space_coverage(specific, space)
    if cov["coverage"] < 1.0:
        return GraphKernelForSpace(pred, space, d, f"{same[0][0].name} answers {cov['coverage']:.1%} of a probe of "
                                                   f"the space (never saw {', '.join(map(str, cov['unseen'][:3]))})")
    a, b = _within10(same[0][1]), _within10(pred.card)
    if b is not None and (a is None or b > a):
        return GraphKernelForSpace(pred, space, d, f"cross-validated within +-10%: graph-kernel {b:.3f} > "
                                                   f"{same[0][0].name} {a if a is not None else 'n/a'}")
    return specific


__all__ = ["predictor_for_space", "GraphKernelForSpace"]
