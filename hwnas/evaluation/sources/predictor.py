"""``predictor[:ROOT]``: latency from a trained latency predictor: the device's predictor of the space, or its
space-agnostic graph-kernel predictor where there is none or it is the better one
(``hwnas.predictors.for_space``); where the device has neither and a store is named (``pareto-search --store``,
``$HWNAS_STORE``), one fitted from the device's rows in that store."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ...contracts import Arch
from ...errors import HwnasError, ParametersError
from .base import Source


class PredictorSource(Source):
    """Latency of one device from its trained predictor."""

    kind = "predictor"
    cheap = True

    def __init__(self, device: str, root: str | None = None):
        self.device, self.root = device, root

    @classmethod
    def from_spec(cls, arg, device, settings):
        return cls(device, root=arg or settings.get("predictor_root"))

    def _predictor(self, space):
        pred = getattr(self, "_pred", None)
        if pred is None:
            from ...predictors.for_space import predictor_for_space

            try:
                pred = predictor_for_space(self.device, space, root=self.root)
            except HwnasError as exc:
                pred = self._fit_from_store(space, exc)
            self._pred = pred
        return pred

    def _fit_from_store(self, space, missing: HwnasError):
        """No saved predictor, but a store is named (``--store`` / ``$HWNAS_STORE``, e.g. a team store): fit one
        from the device's rows there (``fit-predictor --kind auto``, kept in memory), so one person's
        measurements train everyone's searches. Without a named store: the error of the missing predictor."""
        import os

        if not os.environ.get("HWNAS_STORE"):
            raise missing
        from ...predictors.from_store import fit_from_store
        from ...store import MeasurementStore

        with MeasurementStore() as store:
            try:
                pred, data = fit_from_store(store, self.device, space.name, "auto", space_config=space.config())
            except HwnasError as exc:
                raise HwnasError(f"{missing}; nor could one be fitted from the store {store.path}: {exc}") from None
            name = pred.card["name"]
            pred.set_card(name=f"{name}-from-store", store=f"{store.engine} {store.path}")
        return pred

    def describe_for(self, space) -> str:
        card = getattr(self._predictor(space), "card", {}) or {}
        name = card.get("name") or card.get("kind") or "predictor"
        return f"predicted:{name}@{self.device}"

    def check(self, space, quantity: str) -> None:
        self.describe_for(space)  # loads the predictor: an unknown device fails now

    def values(self, space, archs: Sequence[Arch], quantity: str) -> tuple[np.ndarray, list[str]]:
        if quantity != "latency_ms":
            raise ParametersError(f"{quantity}@{self.device}: predictors predict latency only; give an energy table "
                                  "or `energy` measure")
        mean, _std = self._predictor(space).predict(list(archs))
        return np.asarray(mean, dtype=float).reshape(len(archs)), [self.describe_for(space)] * len(archs)
